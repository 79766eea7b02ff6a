"""Rule select_infodist: IPC images per class from the Infomap communities (quota + top-up, ranked), among the pool
images the privacy filter keeps (all of them where the method is in select.privacy_filter.unfiltered)."""

import numpy as np

from histodistill.base import load_npy, run_job
from histodistill.generator import load_pool
from histodistill.selection import infodist_indices, pool_keep_flags, save_subset


def main(smk, device):
    images, labels = load_pool(smk.input.shards)
    pool_labels = load_npy(smk.input.labels)
    if not np.array_equal(pool_labels, labels):
        from histodistill.base import HistodistillError

        raise HistodistillError(f"{smk.input.labels}: labels do not match the pool shards; rerun embed_pool")
    keep = pool_keep_flags(list(smk.input.keep), labels)
    idx = infodist_indices(labels, list(smk.input.communities), int(smk.wildcards.ipc), smk.params.rank, keep)
    save_subset(smk.output[0], images[idx], labels[idx], idx, "pool")


run_job(snakemake, main)  # noqa: F821
