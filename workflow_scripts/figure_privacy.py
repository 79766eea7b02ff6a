"""Rule figure_privacy: attack AUC and DCR share (with CIs and the null) of every shared set."""

import pandas as pd

from histodistill.base import run_job
from histodistill.reporting import privacy_figure


def main(smk, device):
    table = pd.read_csv(smk.input[0], dtype={"ipc": str})
    privacy_figure(table, smk.output[0], title=f"{smk.params.dataset}: privacy audit", dpi=smk.params.figures["dpi"])


run_job(snakemake, main)  # noqa: F821
