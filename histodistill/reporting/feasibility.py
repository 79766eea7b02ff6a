"""The feasibility study across datasets (arXiv 2407.14429): does random-real accuracy predict distillation?

Every dataset's summary table gives, per method, IPC and network, the mean test accuracy; the random real subset at
the same IPC and network is the predictor. One point per dataset × IPC (× network) and method; per method the
Pearson and Spearman correlation between random-real accuracy (x) and the method's accuracy (y).
"""

from __future__ import annotations

import os
from typing import Mapping

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError

PREDICTOR = "random_real"
COLUMNS = ["dataset", "method", "init", "ipc", "model", "random_real_acc", "acc", "acc_std", "n_seeds"]


def gather(summaries: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """dataset -> summary table (report.aggregate's columns) into one row per dataset, method, IPC and network,
    beside the random real subset's accuracy at the same IPC and network. Full real data and the predictor itself
    are not rows; a dataset without random real rows is an error naming it."""
    rows = []
    for dataset, summary in summaries.items():
        s = summary.assign(ipc=summary["ipc"].astype(str))
        base = s[s["method"] == PREDICTOR].set_index(["ipc", "model"])["acc_mean"]
        if base.empty:
            raise HistodistillError(
                f"feasibility: the {dataset} summary has no {PREDICTOR} rows; add {PREDICTOR} to select.methods"
            )
        for r in s[(s["method"] != PREDICTOR) & (s["ipc"] != "all")].itertuples(index=False):
            if (r.ipc, r.model) not in base.index:
                continue
            init = getattr(r, "init", "")
            rows.append(
                {
                    "dataset": dataset,
                    "method": r.method,
                    "init": "" if pd.isna(init) else str(init),
                    "ipc": int(r.ipc),
                    "model": r.model,
                    "random_real_acc": float(base[(r.ipc, r.model)]),
                    "acc": float(r.acc_mean),
                    "acc_std": float(r.acc_std),
                    "n_seeds": int(r.n_seeds),
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS).sort_values(["method", "model", "dataset", "ipc"], kind="stable")


def correlations(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and network: number of points, Pearson r and Spearman ρ of accuracy against random-real accuracy
    (NaN with fewer than 3 points or a constant side)."""
    from scipy.stats import pearsonr, spearmanr

    out = []
    for (method, model), g in table.groupby(["method", "model"], sort=True):
        x, y = g["random_real_acc"].to_numpy(float), g["acc"].to_numpy(float)
        ok = len(g) >= 3 and np.ptp(x) > 0 and np.ptp(y) > 0
        out.append(
            {
                "method": method,
                "model": model,
                "n_points": len(g),
                "pearson": float(pearsonr(x, y).statistic) if ok else float("nan"),
                "spearman": float(spearmanr(x, y).statistic) if ok else float("nan"),
            }
        )
    return pd.DataFrame(out, columns=["method", "model", "n_points", "pearson", "spearman"])


def _fmt(v: float) -> str:
    return "–" if np.isnan(v) else f"{v:.2f}"


def markdown(table: pd.DataFrame, corr: pd.DataFrame) -> str:
    """Accuracy per dataset × IPC (random real and each method, %) and the correlations per method."""
    lines = ["| dataset | IPC | network | random real | " + " | ".join(sorted(table["method"].unique())) + " |"]
    methods = sorted(table["method"].unique())
    lines.append("|---|---|---|---|" + "---|" * len(methods))
    for (dataset, ipc, model), g in table.groupby(["dataset", "ipc", "model"], sort=True):
        acc = dict(zip(g["method"], g["acc"]))
        cells = [f"{100 * acc[m]:.1f}" if m in acc else "" for m in methods]
        lines.append(f"| {dataset} | {ipc} | {model} | {100 * g['random_real_acc'].iloc[0]:.1f} | " + " | ".join(cells))
    lines[2:] = [line + " |" for line in lines[2:]]
    lines += ["", "| method | network | points | Pearson r | Spearman ρ |", "|---|---|---|---|---|"]
    for r in corr.itertuples(index=False):
        lines.append(f"| {r.method} | {r.model} | {r.n_points} | {_fmt(r.pearson)} | {_fmt(r.spearman)} |")
    return "\n".join(lines) + "\n"


def figure(table: pd.DataFrame, corr: pd.DataFrame, path: str | os.PathLike) -> None:
    """Random-real accuracy (x) against each method's accuracy (y), one point per dataset × IPC, a colour per method
    with its Pearson r and Spearman ρ in the legend; the diagonal y = x for reference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    markers = {d: m for d, m in zip(sorted(table["dataset"].unique()), "osD^vP*Xph<>")}
    stats = {(r.method, r.model): r for r in corr.itertuples(index=False)}
    for i, ((method, model), g) in enumerate(table.groupby(["method", "model"], sort=True)):
        colour = f"C{i % 10}"
        r = stats[(method, model)]
        label = f"{method} ({model}): r={_fmt(r.pearson)}, ρ={_fmt(r.spearman)}, n={r.n_points}"
        for j, (dataset, gd) in enumerate(g.groupby("dataset", sort=True)):
            ax.scatter(
                100 * gd["random_real_acc"],
                100 * gd["acc"],
                color=colour,
                marker=markers[dataset],
                label=label if j == 0 else None,
            )
    for dataset, marker in markers.items():
        ax.scatter([], [], color="grey", marker=marker, label=dataset)
    lo = 100 * min(table["random_real_acc"].min(), table["acc"].min()) - 2 if len(table) else 0
    ax.plot([lo, 100], [lo, 100], ls="--", color="k", lw=0.8)
    ax.set_xlabel("random real accuracy at the same IPC (%)")
    ax.set_ylabel("method accuracy (%)")
    ax.set_title("Feasibility: does random real predict distillation?")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
