"""Rule summarise: summary.csv / summary.md (mean ± std over seeds), graph statistics, accuracy figure."""

import json
import logging

import pandas as pd

from histodistill.base import atomic_write_bytes, run_job
from histodistill.reporting import (
    aggregate,
    class_accuracy,
    class_accuracy_markdown,
    collect_results,
    ipc_figure,
    markdown_table,
    pool_filter_note,
    privacy_budget_markdown,
    protocol_note,
    validation_ranking_markdown,
    with_class_accuracy,
    with_privacy_budget,
)
from histodistill.workflow import POOL_METHODS, REAL_METHODS


def main(smk, device):
    eval_files = [p for p in smk.input if p.endswith(".json") and "/eval/" in p]
    summary = aggregate(collect_results(eval_files))
    summary = with_class_accuracy(summary, class_accuracy(eval_files, smk.params.class_names))
    budget = json.load(open(smk.input.dp_budget[0])) if smk.input.get("dp_budget") else None
    summary = with_privacy_budget(summary, budget, REAL_METHODS)
    graph = (
        pd.DataFrame([json.load(open(p)) for p in smk.input.graph_stats]) if smk.input.graph_stats else pd.DataFrame()
    )
    text = f"{smk.params.dataset}: classes {', '.join(smk.params.class_names)}\n\n" + markdown_table(summary)
    if budget is not None:
        text += "\n" + privacy_budget_markdown(budget)
    else:  # in DP mode every pool row reads the vote's keep flags (the budget note says so)
        f = smk.params.pool_filter
        methods = list(dict.fromkeys(summary["method"]))
        note = pool_filter_note(methods, POOL_METHODS, f["enabled"], f["unfiltered"])
        text += "\n" + note if note else ""
    text += "\n" + protocol_note(smk.params.protocol)
    ranking = validation_ranking_markdown(summary)
    if ranking:
        text += "\nRanked by validation accuracy (%, mean ± std over seeds; choose on val, report test)\n\n" + ranking
    per_class = class_accuracy_markdown(summary)
    if per_class:
        text += "\nPer-class test accuracy (%, mean over seeds)\n\n" + per_class
    if not graph.empty:
        text += "\n| graph | mean edge density | modules per class (min–max) |\n|---|---|---|\n"
        for key, g in graph.groupby("graph", sort=False):
            text += f"| {key} | {g['edge_density'].mean():.4f} | {g['n_modules'].min()}–{g['n_modules'].max()} |\n"
    atomic_write_bytes(smk.output.csv, summary.to_csv(index=False, float_format="%.6f").encode())
    atomic_write_bytes(smk.output.markdown, text.encode())
    atomic_write_bytes(smk.output.graph, graph.to_csv(index=False, float_format="%.6f").encode())
    ipc_figure(summary, "acc", smk.output.figure, title=smk.params.dataset)
    logging.getLogger("histodistill").info("\n%s", text)


run_job(snakemake, main)  # noqa: F821
