"""Rule train_autoencoder: AutoencoderKL on the real train split (or a local pretrained one)."""

from histodistill.accel import resolve_precision
from histodistill.checkpoint import save_checkpoint
from histodistill.generator import AutoencoderConfig, train_autoencoder
from histodistill.io import load_npz
from histodistill.workflow import run_job


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_images",), only_required=True)
    cfg = AutoencoderConfig(
        **{**smk.params.autoencoder, "block_out_channels": tuple(smk.params.autoencoder["block_out_channels"])}
    )
    precision = resolve_precision(smk.params.precision, device)
    ae = train_autoencoder(real["train_images"], cfg, smk.params.seed, device, precision=precision)
    save_checkpoint(smk.output[0], ae)


run_job(snakemake, main)  # noqa: F821
