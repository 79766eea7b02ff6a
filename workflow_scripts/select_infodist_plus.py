"""Rule select_infodist_plus: representatives of the Infomap communities (the project's selector, not the paper's),
among the pool images the privacy filter keeps; with pick `facility` or the certainty gate, weighed by the embedder's
certainty of each image's own label."""

import numpy as np

from histodistill.base import HistodistillError, check_embedding_file, load_npy, run_job
from histodistill.generator import load_pool
from histodistill.selection import gate_pool, pool_keep_flags, prototype_indices, save_subset


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    if not np.array_equal(load_npy(smk.input.labels), labels):
        raise HistodistillError(f"{smk.input.labels}: labels do not match the pool shards; rerun embed_pool")
    emb = load_npy(smk.input.embeddings, mmap_mode="r")
    check_embedding_file(smk.input.embeddings, emb, len(images))
    keep = pool_keep_flags(list(smk.input.keep), labels)
    p = smk.params
    certainty = None
    if smk.input.embedder:
        from histodistill.selection import label_certainty, load_embedder

        certainty, correct = label_certainty(load_embedder(smk.input.embedder[0], device), images, labels, device)
        if p.certainty["certainty_gate"] > 0:
            keep = gate_pool(certainty, correct, labels, keep, p.certainty["certainty_gate"], int(smk.wildcards.ipc))
    idx = prototype_indices(
        labels,
        emb,
        list(smk.input.communities),
        int(smk.wildcards.ipc),
        keep,
        p.pick,
        p.quota,
        p.merge,
        p.seed,
        graph_files=list(smk.input.edges),
        certainty=certainty,
        certainty_weight=p.certainty["certainty_weight"],
        kernel=p.certainty["kernel"],
        certainty_decay=p.certainty["certainty_decay"],
    )
    save_subset(smk.output[0], images[idx], labels[idx], idx, "pool")


run_job(snakemake, main)  # noqa: F821
