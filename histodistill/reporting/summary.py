"""The summary: per-seed metrics aggregated per method and IPC, and its Markdown tables and notes."""

from __future__ import annotations

import json
import os
import re
from typing import Iterable

import numpy as np
import pandas as pd

METRICS = ("acc", "auc", "f1")
VAL_METRICS = ("val_acc", "val_auc", "val_f1")  # on the real validation split: what defaults are chosen on
_SUBSET = re.compile(r"^(?P<method>.+)_ipc(?P<ipc>\d+|all)$")


def parse_subset(name: str) -> tuple[str, str]:
    m = _SUBSET.match(name)
    if not m:
        raise ValueError(f"not a subset name: {name!r}")
    return m["method"], m["ipc"]


def collect_results(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per evaluation JSON: method, ipc, model, seed and the metrics."""
    rows = []
    for p in paths:
        with open(p) as fh:
            r = json.load(fh)
        method, ipc = parse_subset(r["subset"])
        rows.append(
            {
                "method": method,
                "ipc": ipc,
                "init": r.get("init", ""),
                "model": r["model"],
                "seed": r["seed"],
                **{k: r[k] for k in METRICS},
                **{k: (np.nan if r.get(k) is None else r[k]) for k in VAL_METRICS},
            }
        )
    return pd.DataFrame(rows)


def _ipc_key(ipc: pd.Series) -> pd.Series:
    return ipc.map(lambda v: 10**9 if v == "all" else int(v))


def aggregate(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1; 0 for one seed) and number of seeds per method, IPC and network."""
    g = results.groupby(["method", "ipc", "model"], sort=False)
    metrics = [m for m in (*METRICS, *VAL_METRICS) if m in results]
    out = g[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out["n_seeds"] = g.size()
    if "init" in results:  # a distilled set's starting point ('real' / 'noise'); '' for selected subsets
        out["init"] = g["init"].first()
    out = out.reset_index().fillna({f"{m}_std": 0.0 for m in metrics if results[m].notna().any()})
    return out.sort_values(["model", "ipc", "method"], key=lambda s: _ipc_key(s) if s.name == "ipc" else s).reset_index(
        drop=True
    )


DP_COLUMNS = {
    "dp_epsilon": "epsilon",
    "dp_delta": "delta",
    "dp_sigma": "noise_multiplier",
    "dp_steps": "steps",
    "dp_sample_rate": "sample_rate",
    "dp_clip": "max_grad_norm",
}


def with_privacy_budget(summary: pd.DataFrame, budget: dict | None, private_methods: Iterable[str]) -> pd.DataFrame:
    """The DP guarantee (ε, δ, σ, steps, sampling rate, clipping norm) on every row whose set comes from the DP
    generator; rows computed from the private split itself (`private_methods`) carry no guarantee (empty)."""
    if budget is None:
        return summary
    out = summary.copy()
    covered = ~out["method"].isin(list(private_methods))
    for column, key in DP_COLUMNS.items():
        out[column] = np.where(covered, float(budget[key]), np.nan)
    return out


def protocol_note(protocol: str) -> str:
    """One line naming the evaluation protocol every row of the summary was trained with (evaluate.protocol)."""
    if protocol == "distillation":
        return (
            "Evaluation protocol: distillation, the dataset-distillation reference's evaluate_synset (SGD at "
            "evaluate.distillation.lr, mtt at its learned lr; step decay at half the epochs; no EMA or contrastive "
            "term; DSA except for evaluate.distillation.without_augmentation).\n"
        )
    return "Evaluation protocol: infodist, InfoDist's training (warm-up and cosine, EMA, boundary contrastive term).\n"


def pool_filter_note(methods: list[str], pool_methods: tuple[str, ...], enabled: bool, unfiltered: list[str]) -> str:
    """One line saying which rows chose from the privacy-filtered pool and which from the whole pool ('' without pool
    rows). Ablation rows (infodist-…) follow infodist; dm_refine starts from its selector's set."""
    pool_rows = [m for m in methods if m.split("-")[0] in pool_methods]
    if not pool_rows:
        return ""
    whole = [m for m in pool_rows if not enabled or m.split("-")[0] in unfiltered]
    shaped = [m for m in pool_rows if m not in whole]
    parts = []
    if shaped:
        parts.append(f"chose among the images the privacy filter kept: {', '.join(shaped)}")
    if whole:
        parts.append(f"chose from the whole pool: {', '.join(whole)}")
    return "Pool rows " + "; ".join(parts) + " (select.privacy_filter).\n"


def privacy_budget_markdown(budget: dict) -> str:
    """One paragraph: the guarantee and what it covers."""
    public = budget.get("public_pretraining") or {}
    return (
        f"Differential privacy: (ε = {budget['epsilon']:.3f}, δ = {budget['delta']:g}) for every set drawn from the "
        f"synthetic pool, by the {budget['accountant'].upper()} accountant; DP-SGD on the denoiser with σ = "
        f"{budget['noise_multiplier']:.4f}, {budget['steps']} steps, Poisson sampling rate q = "
        f"{budget['sample_rate']:.4f} of {budget['n_private']} private images, clipping norm C = "
        f"{budget['max_grad_norm']:g}, noise multiplicity {budget['noise_multiplicity']}. Public: the autoencoder "
        f"({(budget.get('autoencoder') or {}).get('public', '?')})"
        + (
            f" and the denoiser's pre-training ({public.get('dataset')}, {public.get('images')} images)"
            if public
            else ""
        )
        + ". random_real and full_real are real training images: references only, no guarantee, never shared.\n"
    )


def class_accuracy(paths: Iterable[str | os.PathLike], class_names: list[str]) -> pd.DataFrame:
    """Per-class test accuracy (mean over seeds) per method, IPC and network, one column `acc[{class name}]` per
    class; empty when the evaluation files predate per-class results."""
    rows = []
    for p in paths:
        with open(p) as fh:
            r = json.load(fh)
        if "per_class_acc" not in r:
            continue
        if len(r["per_class_acc"]) != len(class_names):
            raise ValueError(f"{p}: {len(r['per_class_acc'])} per-class results for {len(class_names)} classes")
        method, ipc = parse_subset(r["subset"])
        accs = {f"acc[{name}]": (np.nan if v is None else v) for name, v in zip(class_names, r["per_class_acc"])}
        rows.append({"method": method, "ipc": ipc, "model": r["model"], **accs})
    if not rows:
        return pd.DataFrame(columns=["method", "ipc", "model"])
    return pd.DataFrame(rows).groupby(["method", "ipc", "model"], sort=False).mean().reset_index()


def with_class_accuracy(summary: pd.DataFrame, per_class: pd.DataFrame) -> pd.DataFrame:
    """The summary with the per-class accuracy columns appended (rows and their order unchanged)."""
    return summary.merge(per_class, on=["method", "ipc", "model"], how="left", validate="one_to_one")


def class_accuracy_markdown(summary: pd.DataFrame) -> str:
    """Per-class test accuracy (%) per method, IPC and network; '' when there are no per-class columns."""
    cols = [c for c in summary.columns if c.startswith("acc[") and c.endswith("]")]
    if not cols:
        return ""
    lines = [
        "| method | IPC | network | " + " | ".join(c[4:-1].replace("|", "/") for c in cols) + " |",
        "|---|---|---|" + "---|" * len(cols),
    ]
    for _, r in summary.iterrows():
        cells = ["–" if pd.isna(r[c]) else f"{100 * r[c]:.1f}" for c in cols]
        lines.append(f"| {r['method']} | {r['ipc']} | {r['model']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _method_label(method: str, rows: pd.DataFrame) -> str:
    """`dm (init real)` for a distilled set, so a set that started from patients' images says so; else the name."""
    init = next((str(v) for v in rows.get("init", pd.Series(dtype=str)).fillna("") if str(v)), "")
    return f"{method} (init {init})" if init else method


def markdown_table(summary: pd.DataFrame) -> str:
    """Paper-style table: one row per method × network, one column group per IPC (ACC ± std, AUC, F1, in %)."""
    ipcs = sorted(summary["ipc"].unique(), key=lambda v: 10**9 if v == "all" else int(v))
    header = "| method | network | " + " | ".join(f"IPC {i}: ACC | AUC | F1" for i in ipcs) + " |"
    sep = "|---|---|" + "---|---|---|" * len(ipcs)
    lines = [header, sep]
    for (method, model), grp in summary.groupby(["method", "model"], sort=False):
        cells = []
        for i in ipcs:
            row = grp[grp["ipc"] == i]
            if row.empty:
                cells.append(" | | ")
                continue
            r = row.iloc[0]
            cells.append(
                f"{100 * r.acc_mean:.1f} ± {100 * r.acc_std:.1f} | {100 * r.auc_mean:.1f} | {100 * r.f1_mean:.1f}"
            )
        lines.append(f"| {_method_label(method, grp)} | {model} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def validation_ranking_markdown(summary: pd.DataFrame) -> str:
    """Methods ranked by mean validation accuracy per network and IPC (the ranking defaults are chosen by), with the
    test accuracy beside it; '' when the evaluations carry no validation metrics."""
    if "val_acc_mean" not in summary or summary["val_acc_mean"].isna().all():
        return ""
    lines = ["| network | IPC | rank | method | val ACC | test ACC |", "|---|---|---|---|---|---|"]
    rows = summary[summary["ipc"] != "all"].dropna(subset=["val_acc_mean"])
    for (model, ipc), grp in rows.groupby(["model", "ipc"], sort=False):
        ranked = grp.sort_values(["val_acc_mean", "method"], ascending=[False, True], kind="stable")
        for k, (_, r) in enumerate(ranked.iterrows(), start=1):
            lines.append(
                f"| {model} | {ipc} | {k} | {r['method']} | {100 * r['val_acc_mean']:.1f} ± {100 * r['val_acc_std']:.1f}"
                f" | {100 * r['acc_mean']:.1f} ± {100 * r['acc_std']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def privacy_markdown(table: pd.DataFrame) -> str:
    """The privacy table (method × IPC) as Markdown: DCR share [95 % CI] in pixel and embedding space (null = unseen
    validation images), the smallest leak the DCR share and the distance attack detect at this set size, near-copy
    rate, distance-attack AUC [CI], coverage and Fréchet distance beside n-matched unseen real images, gate."""

    def fmt(v: object, digits: int = 3) -> str:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return "–"
        return f"{float(v):.{digits}f}"

    def leak(v: object) -> str:
        return "none ≤ 100 %" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * float(v):.0f} %"

    lines = [
        "| method | IPC | init | n | DCR share pixel [CI] (null) | DCR share emb. [CI] (null) | detects leak ≥ (pixel) | "
        "near copies px / emb | attack AUC [CI] | attack detects ≥ | coverage (real) | Fréchet (real) | gate |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in table.itertuples(index=False):
        lines.append(
            f"| {r.method} | {r.ipc} | {getattr(r, 'init', '') or '–'} | {r.n} | {fmt(r.dcr_share_pixel)} [{fmt(r.dcr_share_pixel_lo)}, "
            f"{fmt(r.dcr_share_pixel_hi)}] ({fmt(r.null_share_pixel)}) | {fmt(r.dcr_share_embedding)} "
            f"[{fmt(r.dcr_share_embedding_lo)}, {fmt(r.dcr_share_embedding_hi)}] ({fmt(r.null_share_embedding)}) | "
            f"{leak(r.dcr_share_min_leak_pixel)} | {fmt(r.near_copy_rate_pixel, 2)} / {fmt(r.near_copy_rate_embedding, 2)} | "
            f"{fmt(r.mia_auc)} [{fmt(r.mia_auc_lo)}, {fmt(r.mia_auc_hi)}] | {leak(r.mia_min_leak)} | "
            f"{fmt(r.coverage)} ({fmt(r.coverage_baseline)}) | {fmt(r.frechet_distance, 2)} "
            f"({fmt(r.frechet_distance_baseline, 2)}) | {r.gate} |"
        )
    return "\n".join(lines) + "\n"
