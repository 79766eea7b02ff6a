"""Rule figure_classes: for each figure subset, real train, synthetic pool and selected images side by side, one row
per class."""

import numpy as np

from histodistill.base import NpyRows, load_npz, run_job
from histodistill.reporting import real_pool_selected_figure


def main(smk, device):
    p = smk.params.figures
    real_labels = load_npz(smk.input.real, required=("train_labels",), only_required=True)["train_labels"].reshape(-1)
    rng = np.random.default_rng(p["seed"])
    shown = np.sort(  # at most images_per_class real rows per class, the only ones read from disk
        np.concatenate(
            [
                rng.choice(m, min(len(m), p["images_per_class"]), replace=False)
                for m in (np.flatnonzero(real_labels == c) for c in np.unique(real_labels))
            ]
        )
    )
    real = (NpyRows(smk.input.train_images)[shown], real_labels[shown])
    shards = [load_npz(s, required=("images", "labels")) for s in smk.input.shards]
    pool = (np.concatenate([s["images"] for s in shards]), np.concatenate([s["labels"] for s in shards]).astype(int))
    for name, path, figure in zip(smk.params.subsets, smk.input.subsets, smk.output, strict=True):
        subset = load_npz(path, required=("images", "labels"))
        real_pool_selected_figure(
            real,
            pool,
            (subset["images"], subset["labels"].astype(np.int64)),
            smk.params.class_names,
            figure,
            per_block=p["images_per_class"],
            seed=p["seed"],
            title=f"{smk.params.dataset}: real, pool and {name}",
            dpi=p["dpi"],
        )


run_job(snakemake, main)  # noqa: F821
