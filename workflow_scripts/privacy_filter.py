"""Rule privacy_filter: the privacy gate before selection (pool images too close to a training image removed). Its
threshold comes from the validation split; the test split is the audit holdout and is not read here."""

import logging

import numpy as np

from histodistill.base import atomic_write_bytes, run_job, save_npz
from histodistill.generator import load_pool
from histodistill.privacy import SPACES, filter_distances, privacy_filter, removed_per_class
from histodistill.selection import embed, load_embedder


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    model = load_embedder(smk.input.embedder, device)
    train_emb = np.load(smk.input.train_embeddings)
    d = filter_distances(images, smk.input.real, lambda x: embed(x, model, device), smk.params.chunk, device, train_emb)
    cfg = smk.params.privacy_filter
    q = cfg["quantile"]
    removed_by = {
        s: (
            ~privacy_filter({s: d[f"{s}_dcr"]}, {s: d[f"{s}_val_dcr"]}, q)
            if cfg["enabled"]
            else np.zeros(len(labels), bool)
        )
        for s in SPACES
    }
    keep = ~np.logical_or.reduce(list(removed_by.values()))
    table = removed_per_class(labels, keep, removed_by)
    log = logging.getLogger("histodistill")
    log.info(
        "privacy filter %s (quantile %.3f of validation-to-train distances): removed %d of %d pool images\n%s",
        "on" if cfg["enabled"] else "off",
        q,
        int((~keep).sum()),
        len(keep),
        table.to_string(index=False),
    )
    save_npz(smk.output.keep, keep=keep, labels=labels, **d)
    atomic_write_bytes(smk.output.removed, table.to_csv(index=False).encode())


run_job(snakemake, main)  # noqa: F821
