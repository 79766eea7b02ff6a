"""Rule train_autoencoder_public (DP mode): the autoencoder from public data - trained on the public dataset, or a
pretrained one whose latent scaling comes from its own config - never from private images."""

from histodistill.base import RESIDENT_LIMIT, NpyRows, resolve_precision, run_job, save_checkpoint
from histodistill.generator import AutoencoderConfig, train_autoencoder


def main(smk, device):
    cfg = AutoencoderConfig(
        **{**smk.params.autoencoder, "block_out_channels": tuple(smk.params.autoencoder["block_out_channels"])}
    )
    if smk.params.public:
        images, stats = NpyRows(smk.input.images), "data"
    else:  # a pretrained autoencoder: only the private split's shape is read (channels, size), never its pixels
        images, stats = NpyRows(smk.input.images), "pretrained"
    precision = resolve_precision(smk.params.precision, device)
    ae = train_autoencoder(
        images,
        cfg,
        smk.params.seed,
        device,
        precision=precision,
        latent_stats=stats,
        resident_limit=0 if stats == "pretrained" else RESIDENT_LIMIT,  # pretrained: no pixel is loaded
    )
    ae["trained_on"] = {"public": smk.params.public, "pretrained": cfg.pretrained is not None}
    save_checkpoint(smk.output[0], ae)


run_job(snakemake, main)  # noqa: F821
