"""Rule summarise: summary.csv / summary.md (mean ± std over seeds), graph statistics, accuracy figure."""

import json
import logging

import pandas as pd

from histodistill.io import atomic_write_bytes
from histodistill.report import accuracy_figure, aggregate, collect_results, markdown_table
from histodistill.workflow import run_job


def main(smk, device):
    eval_files = [p for p in smk.input if p.endswith(".json") and "/eval/" in p]
    summary = aggregate(collect_results(eval_files))
    graph = (
        pd.DataFrame([json.load(open(p)) for p in smk.input.graph_stats]) if smk.input.graph_stats else pd.DataFrame()
    )
    text = markdown_table(summary)
    if not graph.empty:
        text += "\n| graph | mean edge density | modules per class (min–max) |\n|---|---|---|\n"
        for key, g in graph.groupby("graph", sort=False):
            text += f"| {key} | {g['edge_density'].mean():.4f} | {g['n_modules'].min()}–{g['n_modules'].max()} |\n"
    atomic_write_bytes(smk.output.csv, summary.to_csv(index=False, float_format="%.6f").encode())
    atomic_write_bytes(smk.output.markdown, text.encode())
    atomic_write_bytes(smk.output.graph, graph.to_csv(index=False, float_format="%.6f").encode())
    accuracy_figure(summary, smk.output.figure, title=smk.config["dataset"]["name"])
    logging.getLogger("histodistill").info("\n%s", text)


run_job(snakemake, main)  # noqa: F821
