"""Rule train_autoencoder: AutoencoderKL on the real train split (or a local pretrained one)."""

from histodistill.checkpoint import save_checkpoint
from histodistill.generator import AutoencoderConfig
from histodistill.generator import train_autoencoder
from histodistill.io import load_npz
from histodistill.workflow import run_job


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images",))
    cfg = AutoencoderConfig(
        **{**smk.params.autoencoder, "block_out_channels": tuple(smk.params.autoencoder["block_out_channels"])}
    )
    save_checkpoint(smk.output[0], train_autoencoder(real["train_images"], cfg, smk.params.seed, device))


run_job(snakemake, main)  # noqa: F821
