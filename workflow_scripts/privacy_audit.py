"""Rule privacy_audit: DCR share, near copies, membership attacks with their power, and fidelity beside n-matched
real images, of one shared set (members = the real train split for every set)."""

import logging

import numpy as np

from histodistill.base import load_npz, run_job, write_json
from histodistill.privacy import audit_subset, gather_rows, jsonable, npz_member_shape, npz_row_chunks
from histodistill.reporting import closest_pairs_figure, dcr_histogram
from histodistill.selection import embed, load_embedder, load_subset


def main(smk, device):
    subset = load_subset(smk.input.subset)
    reference = load_npz(smk.input.reference)
    model = load_embedder(smk.input.embedder, device)
    p = smk.params
    report = audit_subset(
        subset,
        smk.input.real,
        reference,
        lambda images: embed(images, model, device),
        where=smk.input.subset,
        chunk=p.chunk,
        n_bootstrap=p.bootstrap,
        seed=p.seed,
        near_copy_quantile=p.near_copy_quantile,
        power_reps=p.power_reps,
        device=device,
        alpha=p.alpha,
        tail=p.tail,
        margin=p.margin,
    )
    report["subset"] = smk.wildcards.subset
    report["embedder"] = smk.input.embedder
    emb = report["_arrays"]["embedding"]
    shape, _ = npz_member_shape(smk.input.real, "train_images")
    nearest = gather_rows(npz_row_chunks(smk.input.real, "train_images"), emb["shared_nn"]).reshape(-1, *shape[1:])
    closest_pairs_figure(
        subset["images"],
        nearest,
        emb["shared_dcr"],
        np.arange(len(nearest)),
        smk.output.pairs,
        title=smk.wildcards.subset,
        threshold=report["dcr"]["embedding"]["near_copy_threshold"],
    )
    dcr_histogram(
        [
            (s, a["shared_dcr"], a["reference_dcr"], report["dcr"][s]["near_copy_threshold"])
            for s, a in report["_arrays"].items()
        ],
        smk.output.histogram,
        title=smk.wildcards.subset,
    )
    report = jsonable(report)
    log = logging.getLogger("histodistill")
    for space, d in report["dcr"].items():
        log.info(
            "%s %s: DCR share %.3f [%.3f, %.3f] (null %.3f; smallest detectable leak %s), near-copy rate %.3f",
            smk.wildcards.subset,
            space,
            d["share"],
            *d["ci95"],
            d["null_share"],
            d["power"]["smallest_detectable_leak"],
            d["near_copy_rate"],
        )
    mia = report["mia_distance"]["embedding"]
    release = report["release"]
    log.info(
        "release test (level %.2g): %d images flagged, %d exact copies; min p %s",
        release["level"],
        len(release["flagged"]),
        len(release["exact_copies"]),
        {s: f"{v['min_p']:.2g}" for s, v in release["spaces"].items()},
    )
    log.info(
        "distance attack AUC %.3f (smallest detectable leak %s), DOMIAS AUC %.3f",
        mia["auc"],
        mia["power"]["smallest_detectable_leak"],
        report["mia_density"]["auc"],
    )
    write_json(smk.output.json, report)


run_job(snakemake, main)  # noqa: F821
