"""Rule distill_dm: distribution matching, IPC learnable images per class, written as a subset."""

from histodistill.accel import resolve_precision
from histodistill.distill import DMConfig, distribution_matching
from histodistill.io import load_npz
from histodistill.subsets import save_subset
from histodistill.workflow import run_job


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "n_classes"))
    p = smk.params.dm
    cfg = DMConfig(**p, precision=resolve_precision(smk.params.precision, device))
    result = distribution_matching(
        real["train_images"], real["train_labels"], int(real["n_classes"]), int(smk.wildcards.ipc), cfg, device
    )
    source = "real" if cfg.init == "real" else "distilled"
    save_subset(smk.output[0], result.images, result.labels, result.indices, source, init=cfg.init)


run_job(snakemake, main)  # noqa: F821
