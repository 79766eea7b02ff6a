"""Rule sample_grid: a picture of a selected subset (one row per class)."""

from histodistill.report import sample_grid
from histodistill.subsets import load_subset
from histodistill.workflow import run_job


def main(smk, device):
    subset = load_subset(smk.input[0])
    sample_grid(
        subset["images"],
        subset["labels"],
        smk.output[0],
        title=smk.wildcards.subset,
        class_names=smk.params.class_names,
    )


run_job(snakemake, main)  # noqa: F821
