"""Rule train_embedder: a classifier trained on the real train split (best validation epoch) used as embedder."""

from histodistill.accel import resolve_precision
from histodistill.checkpoint import save_checkpoint
from histodistill.embed import train_embedder
from histodistill.io import load_npz
from histodistill.workflow import run_job


def main(smk, device):
    real = load_npz(smk.input.real)
    precision = resolve_precision(smk.params.precision, device)
    save_checkpoint(smk.output[0], train_embedder(real, smk.wildcards.net, smk.params.embed, device, precision))


run_job(snakemake, main)  # noqa: F821
