"""Rule pool_quality: does a real-trained classifier agree with the pool labels? Fréchet distance per class."""

import logging

from histodistill.embed import embed, load_embedder
from histodistill.io import load_npz, write_json
from histodistill.pool import load_pool, pool_quality
from histodistill.train import predict_logits
from histodistill.workflow import run_job


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
