"""Rule feasibility_table: every dataset's summary into feasibility.csv, correlations, Markdown table and figure."""

import logging

import pandas as pd

from histodistill.base import atomic_write_bytes, run_job
from histodistill.reporting import correlations, figure, gather, markdown


def main(smk, device):
    summaries = {name: pd.read_csv(path, keep_default_na=False) for name, path in smk.input.items()}
    table = gather(summaries)
    corr = correlations(table)
    text = markdown(table, corr)
    atomic_write_bytes(smk.output.csv, table.to_csv(index=False, float_format="%.6f").encode())
    atomic_write_bytes(smk.output.correlations, corr.to_csv(index=False, float_format="%.6f").encode())
    atomic_write_bytes(smk.output.markdown, text.encode())
    figure(table, corr, smk.output.figure)
    logging.getLogger("histodistill").info("\n%s", text)


run_job(snakemake, main)  # noqa: F821
