"""Rule distill_gradient_matching: DC or DSA (the `method` wildcard), IPC learnable images per class, as a subset."""

from histodistill.base import load_npz, resolve_precision, run_job
from histodistill.distill import GMConfig, gradient_matching
from histodistill.selection import save_distilled


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "n_classes"))
    method = smk.wildcards.method
    precision = resolve_precision(smk.params.precision, device)
    cfg = GMConfig(**smk.params.settings, dsa=method == "dsa", precision=precision)
    result = gradient_matching(
        real["train_images"],
        real["train_labels"],
        int(real["n_classes"]),
        int(smk.wildcards.ipc),
        cfg,
        device,
        key=f"distill.{method}.init",
    )
    save_distilled(smk.output[0], result, cfg.init)


run_job(snakemake, main)  # noqa: F821
