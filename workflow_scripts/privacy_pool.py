"""Rule privacy_pool: DCR share (against the audit holdout's null) and near-copy rate of the whole pool and of the
images the filter keeps."""

import logging

import numpy as np

from histodistill.base import atomic_write_bytes, load_npz, run_job, write_json
from histodistill.generator import load_pool
from histodistill.privacy import pool_distances, pool_report, pool_table
from histodistill.selection import embed, load_embedder


def main(smk, device):
    images, _ = load_pool(smk.input.shards)
    keep = load_npz(smk.input.keep, required=("keep",))["keep"].astype(bool)
    ref = load_npz(smk.input.reference)
    model = load_embedder(smk.input.embedder, device)
    d = pool_distances(
        images,
        smk.input.real,
        lambda x: embed(x, model, device),
        smk.params.chunk,
        device,
        np.load(smk.input.train_embeddings),
    )
    p = smk.params
    report = pool_report(d, keep, ref, p.near_copy_quantile, p.margin, p.n_boot, p.seed, p.min_power)
    table = pool_table(report)
    logging.getLogger("histodistill").info("\n%s", table.to_string(index=False))
    write_json(smk.output.json, report)
    atomic_write_bytes(smk.output.csv, table.to_csv(index=False, float_format="%.6f").encode())


run_job(snakemake, main)  # noqa: F821
