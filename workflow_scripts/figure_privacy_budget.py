"""Rule figure_privacy_budget (DP mode): this run's test accuracy at its ε over the measured utility-privacy curve."""

import json

import pandas as pd

from histodistill.base import run_job
from histodistill.reporting import reference_lines_of, run_point, utility_privacy_figure


def main(smk, device):
    summary = pd.read_csv(smk.input.summary, dtype={"ipc": str})
    budget = json.load(open(smk.input.budget[0]))
    curve = pd.read_csv(smk.input.curve[0]) if smk.input.curve else None
    title = f"{smk.params.dataset}: accuracy against ε (δ = {budget['delta']:g})"
    utility_privacy_figure(
        curve,
        smk.output[0],
        title,
        run=run_point(summary, budget),
        reference_lines=reference_lines_of(summary),
        dpi=smk.params.figures["dpi"],
    )


run_job(snakemake, main)  # noqa: F821
