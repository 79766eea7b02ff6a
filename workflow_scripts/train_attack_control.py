"""Rule train_attack_control: the generator attack's positive control - the run's denoiser architecture trained on a
few dozen training images for many steps, so that it memorises them."""

import numpy as np
import torch

from histodistill.base import NpyRows, load_npz, run_job, save_checkpoint
from histodistill.generator import DenoiserConfig, load_codec, train_denoiser


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_labels", "n_classes"), only_required=True)
    p = smk.params
    members = np.sort(np.random.default_rng([p.seed, 71]).choice(len(real["train_labels"]), p.images, replace=False))
    cfg = DenoiserConfig(
        **{
            **p.denoiser,
            "block_out_channels": tuple(p.denoiser["block_out_channels"]),
            "steps": p.steps,
            "batch_size": p.images,
            "checkpoint_every": 0,
        }
    )
    codec = load_codec(smk.input.autoencoder, device)
    images = NpyRows(smk.input.train_images)[members]
    final = train_denoiser(
        codec, images, real["train_labels"][members], int(real["n_classes"]), cfg, p.seed, smk.output[0] + ".resume"
    )
    save_checkpoint(smk.output[0], {**final, "members": torch.from_numpy(members)})


run_job(snakemake, main)  # noqa: F821
