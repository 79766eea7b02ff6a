"""Rules distill_dm and distill_dm_refine: distribution matching, IPC learnable images per class, written as a subset;
dm_refine starts from a pool selection (input `start`) instead of `distill.dm.init`."""

from histodistill.base import load_npz, resolve_precision, run_job
from histodistill.distill import DMConfig, distribution_matching
from histodistill.selection import load_subset, save_distilled


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "n_classes"))
    p = smk.params.dm
    cfg = DMConfig(**p, precision=resolve_precision(smk.params.precision, device))
    start = None
    if "start" in smk.input.keys():
        subset = load_subset(smk.input.start)
        start = (subset["images"], subset["labels"])
    result = distribution_matching(
        real["train_images"],
        real["train_labels"],
        int(real["n_classes"]),
        int(smk.wildcards.ipc),
        cfg,
        device,
        start=start,
    )
    # started from synthetic pool images (dm_refine): no real image in the start
    save_distilled(smk.output[0], result, "pool" if start is not None else cfg.init)


run_job(snakemake, main)  # noqa: F821
