"""Rule select_infodist_plus: representatives of the Infomap communities (the project's selector, not the paper's),
among the pool images the privacy filter keeps."""

import numpy as np

from histodistill.io import check_embedding_file
from histodistill.errors import HistodistillError
from histodistill.io import load_npy, load_npz
from histodistill.pool import load_pool
from histodistill.subsets import prototype_indices, save_subset
from histodistill.workflow import run_job


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    if not np.array_equal(load_npy(smk.input.labels), labels):
        raise HistodistillError(f"{smk.input.labels}: labels do not match the pool shards; rerun embed_pool")
    emb = load_npy(smk.input.embeddings, mmap_mode="r")
    check_embedding_file(smk.input.embeddings, emb, len(images))
    keep = load_npz(smk.input.keep, required=("keep",))["keep"]
    p = smk.params
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
    )
    save_subset(smk.output[0], images[idx], labels[idx], idx, "pool")


run_job(snakemake, main)  # noqa: F821
