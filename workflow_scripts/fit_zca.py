"""Rule fit_zca: the ZCA transform of the real train split (`distill.mtt.zca`), which the MTT experts, MTT and the
evaluation of MTT's sets share."""

import logging

from histodistill.base import load_npz, run_job, save_npz
from histodistill.distill import fit_zca, zca_arrays


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images",))
    zca = fit_zca(real["train_images"], float(smk.params.eps), device)
    logging.getLogger("histodistill").info(
        "ZCA on %d train images of %s: eps %g, digest %s", len(real["train_images"]), zca.shape, zca.eps, zca.digest
    )
    save_npz(smk.output[0], **zca_arrays(zca))


run_job(snakemake, main)  # noqa: F821
