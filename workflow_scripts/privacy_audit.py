"""Rule privacy_audit: DCR, membership-inference attacks and PRDC/Fréchet fidelity of one shared subset."""

import logging

from histodistill.embed import embed, load_embedder
from histodistill.io import load_npz, write_json
from histodistill.privacy import audit_subset, closest_pairs_figure, dcr_histogram, jsonable
from histodistill.report import copy_rate_per_class
from histodistill.subsets import load_subset
from histodistill.workflow import run_job


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "test_images", "test_labels"))
    subset = load_subset(smk.input.subset)
    model = load_embedder(smk.input.embedder, device)
    p = smk.params.privacy
    report = audit_subset(
        subset,
        real,
        lambda images: embed(images, model, device),
        where=smk.input.subset,
        chunk=p["chunk"],
        n_bootstrap=p["bootstrap"],
        k=p["k"],
        seed=p["seed"],
        device=device,
    )
    report["subset"] = smk.wildcards.subset
    report["embedder"] = smk.input.embedder
    emb, pix = report["dcr"]["embedding"], report["dcr"]["pixel"]
    closest_pairs_figure(
        subset["images"],
        real["train_images"],
        emb["_arrays"]["shared_dcr"],
        emb["_arrays"]["shared_nn"],
        smk.output.pairs,
        title=smk.wildcards.subset,
        threshold=emb["threshold_p5"],
    )
    dcr_histogram(
        [
            (name, d["_arrays"]["shared_dcr"], d["_arrays"]["reference_dcr"])
            for name, d in (("embedding", emb), ("pixel", pix))
        ],
        smk.output.histogram,
        title=smk.wildcards.subset,
    )
    report["copy_rate_per_class"] = copy_rate_per_class(
        emb["_arrays"]["shared_dcr"], emb["threshold_p5"], subset["labels"], smk.params.class_names
    )
    report = jsonable(report)
    mia = report["mia_distance"]["embedding"]
    logging.getLogger("histodistill").info(
        "%s: copy rate %.3f (pixel %.3f), distance MIA AUC %.3f [%.3f, %.3f], DOMIAS AUC %.3f, coverage %.3f",
        smk.wildcards.subset,
        emb["copy_rate"],
        pix["copy_rate"],
        mia["auc"],
        *(mia["auc_ci95"] or (float("nan"), float("nan"))),
        report["mia_density"]["auc"],
        report["fidelity"]["coverage"],
    )
    write_json(smk.output.json, report)


run_job(snakemake, main)  # noqa: F821
