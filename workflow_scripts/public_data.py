"""Rule public_data (DP mode): every image of the public dataset (the other embedded dataset), its digits framed as
the private dataset frames them, as one training set for the autoencoder and the denoiser's pre-training
(results/{ds}/public/)."""

import logging

from histodistill.base import run_job, save_npy
from histodistill.data import public_digits


def main(smk, device):
    ds = smk.params.dataset
    images, labels = public_digits(smk.params.public, ds["name"], ds["size"])
    logging.getLogger("histodistill").info(
        "public dataset %s, framed as %s: %d images %s", smk.params.public, ds["name"], len(labels), images.shape[1:]
    )
    save_npy(smk.output.images, images)
    save_npy(smk.output.labels, labels)


run_job(snakemake, main)  # noqa: F821
