"""Rule distill_mtt: trajectory matching against the stored expert trajectories, written as a subset."""

import logging

import numpy as np

from histodistill.base import load_npz, resolve_precision, run_job
from histodistill.distill import ExpertConfig, MTTConfig, load_zca, trajectory_matching
from histodistill.selection import save_distilled


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "n_classes"))
    experts = [np.load(p, mmap_mode="r") for p in smk.input.experts]  # each iteration reads two rows of one file
    expert_cfg = ExpertConfig(**{k: v for k, v in smk.params.experts.items() if k not in ("count", "seed")})
    cfg = MTTConfig(**smk.params.mtt, precision=resolve_precision(smk.params.precision, device))
    zca = load_zca(smk.input.zca)
    result, learned_lr = trajectory_matching(
        real["train_images"],
        real["train_labels"],
        int(real["n_classes"]),
        int(smk.wildcards.ipc),
        experts,
        expert_cfg,
        cfg,
        device,
        zca=zca,
    )
    logging.getLogger("histodistill").info(
        "learned learning rate %.6f (recorded in the subset; evaluate.protocol distillation trains the set with it)",
        learned_lr,
    )
    save_distilled(smk.output[0], result, cfg.init, learned_lr, zca=zca.digest if zca is not None else None)


run_job(snakemake, main)  # noqa: F821
