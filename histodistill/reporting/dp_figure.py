"""The utility-privacy figure of DP mode: test accuracy against ε, from a curve measured by `benchmarks/dp_curve.py`
(one DP run per ε), with the current run marked on it.

Torch-free; used by `benchmarks/dp_curve.py` and by rule `figure_privacy_budget` (the report's figure)."""

from __future__ import annotations

import math
import os

import pandas as pd

# curve columns drawn, and their style: the selected and the unselected set at both sizes
CURVE_SERIES = (
    ("infodist_plus_ipc10", "o-"),
    ("random_synthetic_ipc10", "s--"),
    ("infodist_plus_ipc1", "o-"),
    ("random_synthetic_ipc1", "s--"),
)


def run_point(summary: pd.DataFrame, budget: dict) -> dict[str, float]:
    """This run as one curve row: ε spent and the ConvNet test accuracy (%) of each drawn series."""
    row: dict[str, float] = {"epsilon_target": float(budget["epsilon_target"]), "epsilon": float(budget["epsilon"])}
    conv = summary[summary["model"] == "convnet"]
    for _, r in conv.iterrows():
        row[f"{r['method']}_ipc{r['ipc']}_test"] = 100 * float(r["acc_mean"])
        row[f"{r['method']}_ipc{r['ipc']}_test_sd"] = 100 * float(r["acc_std"]) if pd.notna(r["acc_std"]) else 0.0
    return row


def _x(epsilons: pd.Series, top: float) -> pd.Series:
    return epsilons.astype(float).replace(math.inf, top)


def utility_privacy_figure(
    curve: pd.DataFrame | None,
    path: str | os.PathLike,
    title: str,
    run: dict[str, float] | None = None,
    reference_lines: dict[str, float] | None = None,
    dpi: int = 150,
) -> None:
    """Accuracy (%) against ε on a log axis, ε = ∞ (clipping, no noise) drawn at the right end. `curve`: rows of
    `benchmarks/dp_curve.py` (columns `epsilon_target`, `{series}_test`, `{series}_test_sd`); `run`: this run's
    point (`run_point`), drawn as stars; `reference_lines`: horizontal lines (random real IPC 1, a non-private run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    eps = []
    if curve is not None and len(curve):
        eps += list(curve["epsilon_target"].astype(float))
    if run is not None:
        eps.append(float(run["epsilon_target"]))
    finite = [e for e in eps if math.isfinite(e)]
    top = (max(finite) if finite else 10.0) * 3
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (series, style) in enumerate(CURVE_SERIES):
        colour = colours[i % len(colours)]
        col = f"{series}_test"
        if curve is not None and col in curve:
            ax.errorbar(
                _x(curve["epsilon_target"], top),
                curve[col],
                yerr=curve.get(col + "_sd"),
                fmt=style,
                capsize=2,
                color=colour,
                label=series,
            )
        if run is not None and col in run:
            ax.errorbar(
                [_x(pd.Series([run["epsilon_target"]]), top).iloc[0]],
                [run[col]],
                yerr=[run.get(col + "_sd", 0.0)],
                fmt="*",
                ms=12,
                capsize=2,
                color=colour,
                label=None if curve is not None and col in curve else series,
            )
    if run is not None and curve is not None:
        ax.plot([], [], "*", ms=10, color="black", label=f"this run (ε = {run['epsilon']:.2f})")
    for j, (name, value) in enumerate((reference_lines or {}).items()):
        ax.axhline(value, color="grey" if j == 0 else "black", ls=":" if j == 0 else "-.", lw=0.8, label=name)
    ticks = sorted(set(eps), key=lambda e: (math.isinf(e), e))
    ax.set_xscale("log")
    ax.set_xticks(list(_x(pd.Series(ticks, dtype=float), top)), [("∞" if math.isinf(e) else f"{e:g}") for e in ticks])
    ax.minorticks_off()
    ax.set_xlabel("ε (∞: clipped, no noise)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def reference_lines_of(summary: pd.DataFrame) -> dict[str, float]:
    """random_real at IPC 1 (issue 31's bar: the released IPC 10 set should beat it) from a run's summary."""
    hit = summary[
        (summary["method"] == "random_real") & (summary["ipc"].astype(str) == "1") & (summary["model"] == "convnet")
    ]
    return {"random_real_ipc1": 100 * float(hit["acc_mean"].iloc[0])} if len(hit) else {}
