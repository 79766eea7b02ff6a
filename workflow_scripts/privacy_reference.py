"""Rule privacy_reference: the real-side numbers every audit reads (computed once per dataset) and the planted
near-copy control."""

import logging

import numpy as np

from histodistill.embed import embed, load_embedder
from histodistill.io import save_npz, write_json
from histodistill.privacy import privacy_reference, reference_controls
from histodistill.workflow import run_job


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
    )
    controls = reference_controls(ref, p.near_copy_quantile, p.gate)
    log = logging.getLogger("histodistill")
    for space in ("pixel", "embedding"):
        c = controls[space]["planted_near_copies"]
        log.info(
            "%s: planted near-copies DCR share %.3f [%.3f, %.3f] (null %.3f), near-copy rate %.3f, detected %s",
            space,
            c["share"],
            *c["ci95"],
            c["null_share"],
            c["near_copy_rate"],
            c["detected"],
        )
        if not c["detected"]:
            log.warning("%s: the planted near-copy control is NOT detected; the audit cannot see leaks here", space)
    save_npz(smk.output.reference, **ref)
    write_json(smk.output.controls, controls)


run_job(snakemake, main)  # noqa: F821
