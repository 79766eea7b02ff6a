"""Rule privacy_reference: the real-side numbers every audit reads (computed once per dataset), and the release
test's calibration check on unseen validation images."""

import logging

import numpy as np

from histodistill.base import run_job, save_npz, write_json
from histodistill.privacy import privacy_reference, release_calibration_check
from histodistill.selection import embed, load_embedder


def main(smk, device):
    model = load_embedder(smk.input.embedder, device)
    p = smk.params
    ref = privacy_reference(
        smk.input.real,
        lambda images: embed(images, model, device),
        k=p.k,
        seed=p.seed,
        chunk=p.chunk,
        n_planted=p.planted,
        planted_noise=p.planted_noise,
        device=device,
        train_emb=np.load(smk.input.train_embeddings),
        shift=p.release_shift,
    )
    check = release_calibration_check(ref, p.alpha, p.sizes, p.tail)
    log = logging.getLogger("histodistill")
    for n, entry in check["sizes"].items():
        for space in ("pixel", "random_features"):
            e = entry[space]
            log.info(
                "release test at %s images (level %.2g), %s: flags %d of %d unseen validation images; detection "
                "radius %.3g (holdout min %.3g, median %.3g)",
                n,
                entry["level"],
                space,
                e["validation_flagged"],
                check["n_validation"],
                e["detection_radius"],
                e["holdout_min"],
                e["holdout_median"],
            )
    save_npz(smk.output.reference, **ref)
    write_json(smk.output.controls, check)


run_job(snakemake, main)  # noqa: F821
