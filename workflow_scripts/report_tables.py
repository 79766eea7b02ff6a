"""Rule report_tables: the method × IPC table as Markdown and LaTeX (best per column in bold), and the summary and
privacy tables and the run's configuration as HTML pages for the report."""

import json
from pathlib import Path

import pandas as pd

from histodistill.base import atomic_write_bytes, run_job
from histodistill.reporting import config_html, html_table, method_tables, privacy_budget_markdown


def main(smk, device):
    summary = pd.read_csv(smk.input.summary, dtype={"ipc": str}, keep_default_na=False, na_values=[""])
    markdown, latex = method_tables(summary)
    atomic_write_bytes(smk.output.markdown, markdown.encode())
    atomic_write_bytes(smk.output.latex, latex.encode())
    ds = smk.params.dataset
    title = f"{ds}: test metrics (%, mean ± std over seeds; best per column in bold)"
    if smk.input.get("dp_budget"):
        title += ". " + privacy_budget_markdown(json.loads(Path(smk.input.dp_budget[0]).read_text())).strip()
    atomic_write_bytes(smk.output.summary_html, html_table(markdown, title).encode())
    privacy = Path(smk.input.privacy).read_text()
    atomic_write_bytes(smk.output.privacy_html, html_table(privacy, f"{ds}: privacy audit of the shared sets").encode())
    atomic_write_bytes(
        smk.output.config_html, config_html(smk.params.config, f"{ds}: configuration of this run").encode()
    )


run_job(snakemake, main)  # noqa: F821
