"""Rule train_autoencoder: AutoencoderKL on the real train split (or a local pretrained one)."""

from histodistill.base import NpyRows, resolve_precision, resolve_switch, run_job, save_checkpoint
from histodistill.generator import AutoencoderConfig, train_autoencoder


def main(smk, device):
    images = NpyRows(smk.input.train_images)  # batches are read from disk as they are drawn
    cfg = AutoencoderConfig(
        **{**smk.params.autoencoder, "block_out_channels": tuple(smk.params.autoencoder["block_out_channels"])}
    )
    precision = resolve_precision(smk.params.precision, device)
    compiled = resolve_switch(smk.params.compile, device)
    ae = train_autoencoder(images, cfg, smk.params.seed, device, precision=precision, compiled=compiled)
    save_checkpoint(smk.output[0], ae)


run_job(snakemake, main)  # noqa: F821
