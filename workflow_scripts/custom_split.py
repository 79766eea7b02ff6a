"""Rule custom_split: the split of your own dataset (one row per image: split, label, class, source), for audit."""

import logging

from histodistill.base import atomic_write_bytes, run_job
from histodistill.data import split_plan, split_table


def main(smk, device):
    plan, names = split_plan(smk.params.dataset)
    atomic_write_bytes(smk.output[0], plan.to_csv(index=False).encode())
    logging.getLogger("histodistill").info(
        "split of %s (%d classes: %s):\n%s", smk.params.dataset["path"], len(names), ", ".join(names), split_table(plan)
    )


run_job(snakemake, main)  # noqa: F821
