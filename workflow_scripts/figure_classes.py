"""Rule figure_classes: real train, synthetic pool and selected images side by side, one row per class."""

from histodistill.figures import real_pool_selected_figure
from histodistill.io import NpyRows, load_npz
from histodistill.workflow import run_job


def main(smk, device):
    p = smk.params.figures
    real_labels = load_npz(smk.input.real, required=("train_labels",), only_required=True)["train_labels"]
    real_images = NpyRows(smk.input.train_images)  # only the drawn rows are read
    pool = [load_npz(s, required=("images", "labels")) for s in smk.input.shards]
    subset = load_npz(smk.input.subset, required=("images", "labels"))
    import numpy as np

    rng = np.random.default_rng(p["seed"])
    shown = np.sort(  # at most images_per_class real rows per class are read from disk
        np.concatenate(
            [
                rng.choice(m, min(len(m), p["images_per_class"]), replace=False)
                for m in (np.flatnonzero(real_labels.reshape(-1) == c) for c in np.unique(real_labels))
            ]
        )
    )
    real_pool_selected_figure(
        (real_images[shown], real_labels.reshape(-1)[shown]),
        (np.concatenate([s["images"] for s in pool]), np.concatenate([s["labels"] for s in pool]).astype(np.int64)),
        (subset["images"], subset["labels"].astype(np.int64)),
        smk.params.class_names,
        smk.output[0],
        per_block=p["images_per_class"],
        seed=p["seed"],
        title=f"{smk.params.dataset}: real, pool and {smk.wildcards.subset}",
        dpi=p["dpi"],
    )


run_job(snakemake, main)  # noqa: F821
