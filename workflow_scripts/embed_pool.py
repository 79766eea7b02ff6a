"""Rule embed_pool: one embedding matrix for the whole pool (rows in pool order) and its labels."""

from histodistill.base import run_job, save_npy
from histodistill.generator import load_pool
from histodistill.selection import embed, load_embedder


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    model = load_embedder(smk.input.embedder[0], device) if smk.input.embedder else None
    save_npy(smk.output.embeddings, embed(images, model, device))
    save_npy(smk.output.labels, labels)


run_job(snakemake, main)  # noqa: F821
