"""Rule sample_pool_shard: `per_class` guided samples of every class, seeded base_seed + shard."""

import logging

import numpy as np

from histodistill.base import resolve_precision, run_job, sampling_compile, save_npz
from histodistill.generator import load_codec, load_denoiser, sample_images, sampling_batch_size

log = logging.getLogger("histodistill")


def main(smk, device):
    codec = load_codec(smk.input.autoencoder, device)
    model, meta = load_denoiser(smk.input.denoiser, device)
    p = smk.params
    labels = np.repeat(np.arange(meta["n_classes"], dtype=np.int64), p.per_class)
    batch = sampling_batch_size(p.batch_size, device)
    precision = resolve_precision(p.precision, device)
    compiled = sampling_compile(p.compile, device, len(labels), p.steps)
    log.info("sampling %d images in batches of %d, %s, compiled denoiser: %s", len(labels), batch, precision, compiled)
    images = sample_images(
        codec,
        model,
        meta,
        labels,
        p.scheduler,
        p.steps,
        p.guidance,
        p.seed,
        batch,
        precision=precision,
        compile_denoiser=compiled,
    )
    save_npz(smk.output[0], images=images, labels=labels, seed=np.asarray(p.seed, dtype=np.int64))


run_job(snakemake, main)  # noqa: F821
