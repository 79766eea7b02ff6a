"""The privacy tables (one row per audited set, the pool's table). No torch: table jobs stay light."""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

import pandas as pd

from histodistill.base.errors import HistodistillError

from .gate import gate_verdict
from .release import RELEASE_SPACES
from .spaces import SPACES

TABLE_COLUMNS = (
    "method",
    "ipc",
    "source",
    "init",
    "n",
    "release_level",
    "release_flagged",
    "release_exact_copies",
    "release_min_p_pixel",
    "release_min_p_random_features",
    "dcr_share_pixel",
    "dcr_share_pixel_lo",
    "dcr_share_pixel_hi",
    "null_share_pixel",
    "dcr_difference_pixel_lo",
    "dcr_share_min_leak_pixel",
    "dcr_share_embedding",
    "dcr_share_embedding_lo",
    "dcr_share_embedding_hi",
    "null_share_embedding",
    "dcr_difference_embedding_lo",
    "dcr_share_min_leak_embedding",
    "near_copy_rate_pixel",
    "near_copy_rate_embedding",
    "mia_auc",
    "mia_auc_lo",
    "mia_auc_hi",
    "mia_min_leak",
    "domias_auc",
    "domias_min_leak",
    "precision",
    "precision_baseline",
    "recall",
    "recall_baseline",
    "coverage",
    "coverage_baseline",
    "frechet_distance",
    "frechet_distance_baseline",
    "gate",
    "gate_reasons",
)


def privacy_row(report: dict[str, Any], gate: dict[str, float]) -> dict[str, Any]:
    """One table row of an audit report (method and IPC from its 'subset' name)."""
    from histodistill.reporting.summary import parse_subset

    method, ipc = parse_subset(report["subset"])
    ok, reasons = gate_verdict(report, gate)
    row: dict[str, Any] = {
        "method": method,
        "ipc": ipc,
        "source": report["source"],
        "init": report.get("init", ""),
        "n": report["n_shared"],
        "release_level": report["release"]["level"],
        "release_flagged": len(report["release"]["flagged"]),
        "release_exact_copies": len(report["release"]["exact_copies"]),
    }
    for space in RELEASE_SPACES:
        row[f"release_min_p_{space}"] = report["release"]["spaces"][space]["min_p"]
    for space in SPACES:
        d = report["dcr"][space]
        row[f"dcr_share_{space}"] = d["share"]
        row[f"dcr_share_{space}_lo"], row[f"dcr_share_{space}_hi"] = d["ci95"]
        row[f"null_share_{space}"] = d["null_share"]
        row[f"dcr_difference_{space}_lo"] = d["difference_ci95"][0]
        row[f"dcr_share_min_leak_{space}"] = d["power"]["smallest_detectable_leak"]
        row[f"near_copy_rate_{space}"] = d["near_copy_rate"]
    mia = report["mia_distance"]["embedding"]
    row["mia_auc"] = mia["auc"]
    row["mia_auc_lo"], row["mia_auc_hi"] = mia["auc_ci95"] or (None, None)
    row["mia_min_leak"] = mia["power"]["smallest_detectable_leak"]
    row["domias_auc"] = report["mia_density"]["auc"]
    row["domias_min_leak"] = report["mia_density"]["power"]["smallest_detectable_leak"]
    for key in ("precision", "recall", "coverage", "frechet_distance"):
        row[key] = report["fidelity"][key]["value"]
        row[f"{key}_baseline"] = report["fidelity"][key]["baseline"]
    row["gate"] = "pass" if ok else "fail"
    row["gate_reasons"] = "; ".join(reasons)
    return row


def privacy_table(paths: Iterable[str | os.PathLike], gate: dict[str, float]) -> pd.DataFrame:
    """One row per audited set (method, IPC) from the audit JSONs."""
    rows = []
    for p in paths:
        with open(p) as fh:
            r = json.load(fh)
        if "subset" not in r or "release" not in r or "power" not in r["dcr"].get("pixel", {}):
            raise HistodistillError(f"{p}: not a privacy audit report of this version; rerun privacy_audit")
        rows.append(privacy_row(r, gate))
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    ipc_order = df["ipc"].map(lambda v: 10**9 if v == "all" else int(v))
    return df.assign(_o=ipc_order).sort_values(["_o", "method"]).drop(columns="_o").reset_index(drop=True)


def pool_table(report: dict[str, Any]) -> pd.DataFrame:
    """The whole pool's and the kept pool's DCR share per space, beside the holdout null, and the non-inferiority
    test (Δ = share − null, its one-sided upper bound, the margin, the criterion's power, the verdict)."""
    rows = []
    for space in SPACES:
        for part in ("whole_pool", "kept"):
            d = report[space][part]
            if d is None:
                continue
            rows.append(
                {
                    "space": space,
                    "images": part,
                    "n": d["n"],
                    "dcr_share": d["share"],
                    "lo": d["ci95"][0],
                    "hi": d["ci95"][1],
                    "null_share": d["null_share"],
                    "null_lo": d["null_ci95"][0],
                    "null_hi": d["null_ci95"][1],
                    "near_copy_rate": d["near_copy_rate"],
                    "delta": d["non_inferiority"]["delta"],
                    "delta_upper95": d["non_inferiority"]["upper95"],
                    "margin": d["non_inferiority"]["margin"],
                    "power": d["non_inferiority"]["power"],
                    "verdict": d["non_inferiority"]["verdict"],
                }
            )
    return pd.DataFrame(rows)
