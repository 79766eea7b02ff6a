"""Rule privacy_table: one row per audited subset (copy rate, MIA AUC + CI, TPR@1%FPR, PRDC, Fréchet)."""

import logging

from histodistill.io import atomic_write_bytes, read_json
from histodistill.privacy import privacy_table
from histodistill.report import class_copy_rate_markdown, privacy_markdown, with_class_copy_rates
from histodistill.workflow import run_job


def main(smk, device):
    table = privacy_table(smk.input)
    table = with_class_copy_rates(table, [read_json(p) for p in smk.input], smk.params.class_names)
    atomic_write_bytes(smk.output.csv, table.to_csv(index=False, float_format="%.6f").encode())
    text = privacy_markdown(table)
    per_class = class_copy_rate_markdown(table)
    if per_class:
        text += f"\nCopy rate per class ({smk.params.dataset})\n\n" + per_class
    atomic_write_bytes(smk.output.markdown, text.encode())
    logging.getLogger("histodistill").info("\n%s", table.to_string(index=False))


run_job(snakemake, main)  # noqa: F821
