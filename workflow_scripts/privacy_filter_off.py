"""Rule privacy_filter_off (DP mode): every pool image kept, from the pool alone (no private image read)."""

import numpy as np

from histodistill.base import atomic_write_bytes, run_job, save_npz
from histodistill.generator import load_pool
from histodistill.privacy import removed_per_class


def main(smk, device):
    labels = load_pool(smk.input.shards)[1]
    keep = np.ones(len(labels), bool)
    save_npz(smk.output.keep, keep=keep, labels=labels)
    atomic_write_bytes(smk.output.removed, removed_per_class(labels, keep, {}).to_csv(index=False).encode())


run_job(snakemake, main)  # noqa: F821
