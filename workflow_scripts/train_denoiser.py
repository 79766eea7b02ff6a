"""Rule train_denoiser: class-conditional denoiser on autoencoder latents; resumable from periodic checkpoints."""

import os

from histodistill.base import NpyRows, load_npz, resolve_precision, resolve_switch, run_job, save_checkpoint
from histodistill.generator import DenoiserConfig, load_codec, train_denoiser


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_labels", "n_classes"), only_required=True)
    codec = load_codec(smk.input.autoencoder, device)
    cfg = DenoiserConfig(
        **{**smk.params.denoiser, "block_out_channels": tuple(smk.params.denoiser["block_out_channels"])}
    )
    final = train_denoiser(
        codec,
        NpyRows(smk.input.train_images),  # batches are read from disk as they are drawn
        real["train_labels"],
        int(real["n_classes"]),
        cfg,
        smk.params.seed,
        smk.params.checkpoint,
        precision=resolve_precision(smk.params.precision, device),
        compiled=resolve_switch(smk.params.compile, device),
    )
    save_checkpoint(smk.output[0], final)
    if os.path.exists(smk.params.checkpoint):
        os.remove(smk.params.checkpoint)  # the final output supersedes the resume point


run_job(snakemake, main)  # noqa: F821
