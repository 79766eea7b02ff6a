"""Rule train_denoiser_dp (DP mode): the denoiser trained with DP-SGD on the private train split, from the public
pre-training where there is one; resumable (the accountant's state travels in the checkpoint); writes the privacy
budget spent (generator/dp_budget.json)."""

import json
import os

from histodistill.base import (
    NpyRows,
    atomic_write_bytes,
    load_checkpoint,
    load_npz,
    resolve_precision,
    run_job,
    save_checkpoint,
)
from histodistill.generator import (
    AUTOENCODER_KEYS,
    DenoiserConfig,
    codec_from_checkpoint,
    dp_config_from,
    train_denoiser,
)


def main(smk, device):
    real = load_npz(smk.input.real, required=("train_labels", "n_classes"), only_required=True)
    autoencoder = load_checkpoint(smk.input.autoencoder, required=AUTOENCODER_KEYS)  # read once: codec and its source
    codec = codec_from_checkpoint(autoencoder, device)
    cfg = DenoiserConfig(
        **{**smk.params.denoiser, "block_out_channels": tuple(smk.params.denoiser["block_out_channels"])}
    )
    dp = dp_config_from(smk.params.dp)
    init = load_checkpoint(smk.input.init[0], required=("state_dict",)) if smk.input.init else None
    final = train_denoiser(
        codec,
        NpyRows(smk.input.train_images),  # batches are read from disk as they are drawn
        real["train_labels"],
        int(real["n_classes"]),
        cfg,
        smk.params.seed,
        smk.params.checkpoint,
        precision=resolve_precision(smk.params.precision, device),
        dp=dp,
        init=init,
    )
    budget = {
        **final["dp"],
        "public_pretraining": (init or {}).get("public"),
        "autoencoder": autoencoder.get("trained_on", {}),
    }
    atomic_write_bytes(smk.output.budget, (json.dumps(budget, indent=2) + "\n").encode())
    save_checkpoint(smk.output.denoiser, final)
    if os.path.exists(smk.params.checkpoint):
        os.remove(smk.params.checkpoint)  # the final output supersedes the resume point


run_job(snakemake, main)  # noqa: F821
