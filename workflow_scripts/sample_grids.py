"""Rule sample_grids: a picture of each selected subset (one row per class)."""

import logging

from histodistill.base import run_job
from histodistill.reporting import sample_grid
from histodistill.selection import load_subset


def main(smk, device):
    for name, subset_file, figure in zip(smk.params.subsets, smk.input, smk.output, strict=True):
        subset = load_subset(subset_file)
        sample_grid(subset["images"], subset["labels"], figure, title=name, class_names=smk.params.class_names)
        logging.getLogger("histodistill").info("%s: %d images drawn", name, len(subset["labels"]))


run_job(snakemake, main)  # noqa: F821
