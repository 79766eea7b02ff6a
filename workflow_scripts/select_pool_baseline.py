"""Rule select_pool_baseline: random / k-means / herding / k-center selection on the same pool and embedding, among
the pool images the privacy filter keeps."""

import numpy as np

from histodistill.base import NpyRows, check_embedding_file, run_job
from histodistill.generator import load_pool
from histodistill.selection import (
    per_class_selection,
    pool_keep_flags,
    save_subset,
    select_herding,
    select_kcenter,
    select_kmeans,
    select_random,
)


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    emb = NpyRows(smk.input.embeddings)  # one class's rows at a time, read from disk (raw pixels can be GBs)
    check_embedding_file(smk.input.embeddings, emb, len(images))
    method, ipc, seed = smk.wildcards.method, int(smk.wildcards.ipc), smk.params.seed
    keep = pool_keep_flags(list(smk.input.keep), labels)
    kept = np.where(keep)[0]  # the filter's survivors (the whole pool, if unfiltered); selection works on them only
    labels_kept = labels[kept]

    def pick(c, members):
        rng = np.random.default_rng([seed, c])
        if method == "random_synthetic":
            return select_random(len(members), ipc, rng)
        e = np.asarray(emb[kept[members]], dtype=np.float32)
        if method == "kmeans":
            return select_kmeans(e, ipc, seed + c)
        if method == "herding":
            return select_herding(e, ipc)
        return select_kcenter(e, ipc)

    idx = kept[per_class_selection(labels_kept, ipc, pick, where=f"{smk.input.shards[0]}.. ({method}, IPC {ipc})")]
    save_subset(smk.output[0], images[idx], labels[idx], idx, "pool")


run_job(snakemake, main)  # noqa: F821
