"""Rule pool_quality: does a real-trained classifier agree with the pool labels? Fréchet distance per class."""

import logging

from histodistill.base import load_npz, run_job, write_json
from histodistill.classifier import predict_logits
from histodistill.generator import load_pool, pool_quality
from histodistill.selection import embed, load_embedder


def main(smk, device):
    real = load_npz(smk.input.real)
    images, labels = load_pool(smk.input.shards)
    model = load_embedder(smk.input.embedder, device)
    pred = predict_logits(model, images, device).argmax(1)
    report = pool_quality(
        labels, pred, embed(images, model, device), real["train_labels"], embed(real["train_images"], model, device)
    )
    logging.getLogger("histodistill").info("pool agreement %.4f (mean over classes)", report["agreement_mean"])
    write_json(smk.output[0], report)


run_job(snakemake, main)  # noqa: F821
