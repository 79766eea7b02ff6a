"""Rule figure_metric_ipc: test accuracy and AUC against IPC, every method and network, with error bars."""

import pandas as pd

from histodistill.base import run_job
from histodistill.reporting import ipc_figure


def main(smk, device):
    summary = pd.read_csv(smk.input[0], dtype={"ipc": str}, keep_default_na=False, na_values=[""])
    for metric, figure in zip(smk.params.metrics, smk.output, strict=True):
        ipc_figure(summary, metric, figure, title=smk.params.dataset, dpi=smk.params.figures["dpi"])


run_job(snakemake, main)  # noqa: F821
