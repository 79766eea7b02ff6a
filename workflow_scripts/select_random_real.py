"""Rule select_random_real: IPC random real training images per class (the feasibility study's predictor)."""

import numpy as np

from histodistill.base import load_npz, run_job
from histodistill.selection import per_class_selection, save_subset, select_random


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels"))
    ipc, seed = int(smk.wildcards.ipc), smk.params.seed
    idx = per_class_selection(
        real["train_labels"],
        ipc,
        lambda c, m: select_random(len(m), ipc, np.random.default_rng([seed, c])),
        where=f"{smk.input.real} (random_real, IPC {ipc})",
    )
    save_subset(smk.output[0], real["train_images"][idx], real["train_labels"][idx], idx, "real")


run_job(snakemake, main)  # noqa: F821
