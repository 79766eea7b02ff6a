"""Rule select_infodist: IPC images per class from the Infomap communities (quota + top-up, ranked), among the pool
images the privacy filter keeps."""

import numpy as np

from histodistill.io import load_npz
from histodistill.pool import load_pool
from histodistill.subsets import infodist_indices, save_subset
from histodistill.io import load_npy
from histodistill.workflow import run_job


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    pool_labels = load_npy(smk.input.labels)
    if not np.array_equal(pool_labels, labels):
        from histodistill.errors import HistodistillError

        raise HistodistillError(f"{smk.input.labels}: labels do not match the pool shards; rerun embed_pool")
    keep = load_npz(smk.input.keep, required=("keep",))["keep"]
    idx = infodist_indices(labels, list(smk.input.communities), int(smk.wildcards.ipc), smk.params.rank, keep)
    save_subset(smk.output[0], images[idx], labels[idx], idx, "pool")


run_job(snakemake, main)  # noqa: F821
