"""Rule train_embedder: a classifier trained on the real train split (best validation epoch) used as embedder."""

from histodistill.base import load_npz, resolve_precision, run_job, save_checkpoint
from histodistill.selection import train_embedder


def main(smk, device):
    real = load_npz(smk.input.real)
    precision = resolve_precision(smk.params.precision, device)
    save_checkpoint(smk.output[0], train_embedder(real, smk.wildcards.net, smk.params.embed, device, precision))


run_job(snakemake, main)  # noqa: F821
