"""Rule train_embedder_on_pool (DP mode): the embedder that ranks the pool, trained on the synthetic pool alone (a
seeded tenth of each class chooses the epoch): post-processing of the DP generator's output, no private image read."""

from histodistill.base import resolve_precision, run_job, save_checkpoint
from histodistill.generator import load_pool
from histodistill.selection import pool_as_training_data, train_embedder


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    data = pool_as_training_data(images, labels, smk.params.n_classes, seed=smk.params.embed["seed"])
    ckpt = train_embedder(
        data, smk.wildcards.net, smk.params.embed, device, resolve_precision(smk.params.precision, device)
    )
    ckpt["trained_on"] = "synthetic pool"
    save_checkpoint(smk.output[0], ckpt)


run_job(snakemake, main)  # noqa: F821
