"""Rule pretrain_denoiser_public (DP mode): the denoiser pre-trained without DP on the public dataset; DP-SGD then
fine-tunes it on the private train split (rule train_denoiser)."""

import os

import numpy as np

from histodistill.base import HistodistillError, NpyRows, resolve_precision, run_job, save_checkpoint
from histodistill.generator import DenoiserConfig, load_codec, train_denoiser


def main(smk, device):
    codec = load_codec(smk.input.autoencoder, device)
    block = smk.params.denoiser
    cfg = DenoiserConfig(**{**block, "block_out_channels": tuple(block["block_out_channels"])})
    labels = np.load(smk.input.labels)
    if labels.max() >= smk.params.n_classes:
        raise HistodistillError(
            f"privacy.dp.public_dataset: {smk.params.public} has label {labels.max()}, but the private set has "
            f"{smk.params.n_classes} classes; the public labels must be the private classes"
        )
    final = train_denoiser(
        codec,
        NpyRows(smk.input.images),
        labels,
        smk.params.n_classes,
        cfg,
        smk.params.seed,
        smk.params.checkpoint,
        precision=resolve_precision(smk.params.precision, device),
    )
    final["public"] = {"dataset": smk.params.public, "images": int(len(labels))}
    save_checkpoint(smk.output[0], final)
    if os.path.exists(smk.params.checkpoint):
        os.remove(smk.params.checkpoint)


run_job(snakemake, main)  # noqa: F821
