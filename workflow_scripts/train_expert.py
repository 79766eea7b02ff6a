"""Rule train_expert: expert k's trajectory (parameters after every epoch) on the real train split, for MTT."""

from histodistill.base import load_npz, run_job, save_npy
from histodistill.distill import ExpertConfig, load_zca, train_expert


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images", "train_labels", "n_classes"))
    settings = {k: v for k, v in smk.params.experts.items() if k not in ("count", "seed")}
    k = int(smk.wildcards.k)
    trajectory = train_expert(
        real["train_images"],
        real["train_labels"],
        int(real["n_classes"]),
        ExpertConfig(**settings),
        seed=smk.params.experts["seed"] + k,
        device=device,
        zca=load_zca(smk.input.zca),
    )
    save_npy(smk.output[0], trajectory)


run_job(snakemake, main)  # noqa: F821
