"""The utility-privacy curve of DP mode (issue 31): the DP preset at several ε on one dataset.

    .venv/bin/python benchmarks/dp_curve.py [--configs config.yaml] [--epsilons 1 4 10 inf] [--cores 2]
        [--out docs/dp_curve_digits_16]
    .venv/bin/python benchmarks/dp_curve.py --configs config.yaml configs/mnist5k.yaml --out docs/dp_curve_mnist5k_16

For each ε it runs `snakemake --configfile {configs} configs/dp.yaml` with privacy.dp.epsilon = ε (results in
results/{dataset}_{size}_dp{ε}; ε = inf clips without noise, the curve's non-private end on the same pipeline) and
reads back, per ε:

* the budget spent (pool/dp_budget.json with the pool vote, else generator/dp_budget.json: ε by the PRV
  accountant, DP-SGD's σ, steps, q, and the vote's σ);
* pool label agreement: the share of pool images that the *non-private* run's real-trained embedder
  (results/{dataset}_{size}/embedder/convnet.pt, from `make run` or the mnist5k run) assigns to their sampled label.
  The DP run's own embedder learnt from the pool and would agree with it by construction. In brackets: the same on
  the images the pool vote kept (the whole pool without a vote);
* validation and test accuracy of infodist_plus, kmeans, random_synthetic and random_real (tables/summary.csv);
* the pool's pixel DCR share against its holdout null and the non-inferiority verdict (tables/privacy_pool.csv);
* the denoising-loss membership attack on the generator (privacy/generator.json).

The outputs that do not depend on ε (public/, generator/autoencoder.pt, generator/public_denoiser.pt and the
generator attack's overtrained control) are copied from the first run into the next ones instead of being trained
again. Rows go to `{out}.csv`, the table to
`{out}.md`, the figure to `{out}.png`.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]

from histodistill.base import config_with_defaults
from histodistill.reporting import reference_lines_of, utility_privacy_figure
from histodistill.workflow import dataset_id

# what does not depend on ε (the public training, and the generator attack's overtrained control)
SHARED_OUTPUTS = (
    "public/images.npy",
    "public/labels.npy",
    "generator/autoencoder.pt",
    "generator/public_denoiser.pt",
    "generator/attack_control.pt",
)
METHODS = ("infodist_plus", "kmeans", "random_synthetic", "random_real", "full_real")


def merged_config(configs: list[str], epsilon: float) -> dict:
    cfg: dict = {}
    for path in [*configs, "configs/dp.yaml"]:
        _merge(cfg, yaml.safe_load((REPO / path).read_text()))
    cfg["privacy"]["dp"]["epsilon"] = epsilon
    return cfg


def _merge(dst: dict, src: dict) -> None:
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            _merge(dst[k], v)
        else:
            dst[k] = v


def label_agreement(results: Path, reference_embedder: Path) -> float:
    import torch

    from histodistill.classifier import predict_logits
    from histodistill.generator import load_pool
    from histodistill.selection import load_embedder

    images, labels = load_pool(sorted(str(p) for p in (results / "pool").glob("shard_*.npz")))
    model = load_embedder(reference_embedder, torch.device("cpu"))
    agree = predict_logits(model, images, torch.device("cpu")).argmax(1) == labels
    keep = np.load(results / "pool" / "privacy_filter.npz")["keep"]  # all true without the pool vote
    return float(agree.mean()), float(agree[keep].mean())


def row_for(results: Path, epsilon: float, reference_embedder: Path) -> dict:
    composed = results / "pool" / "dp_budget.json"  # with the pool vote: DP-SGD and the vote composed
    budget = json.loads((composed if composed.exists() else results / "generator" / "dp_budget.json").read_text())
    summary = pd.read_csv(results / "tables" / "summary.csv")
    pool = pd.read_csv(results / "tables" / "privacy_pool.csv")
    attack = json.loads((results / "privacy" / "generator.json").read_text())
    row = {
        "epsilon_target": epsilon,
        "epsilon": budget["epsilon"],
        "sigma": budget["noise_multiplier"],
        "vote_sigma": (budget.get("vote") or {}).get("noise_multiplier", np.nan),
        "steps": budget["steps"],
        "sample_rate": budget["sample_rate"],
        **dict(
            zip(
                ("label_agreement", "kept_label_agreement"),
                label_agreement(results, reference_embedder) if reference_embedder.exists() else (np.nan, np.nan),
            )
        ),
        "generator_auc": attack["auc"],
        "generator_auc_lo": attack["auc_ci95"][0],
        "generator_auc_hi": attack["auc_ci95"][1],
        "generator_tpr1": attack["tpr_at_1pct_fpr"],
    }
    whole = pool[(pool["space"] == "pixel") & (pool["images"] == "whole_pool")].iloc[0]
    row.update(
        pool_dcr=whole["dcr_share"],
        pool_null=whole["null_share"],
        pool_delta_upper=whole["delta_upper95"],
        pool_verdict=whole["verdict"],
    )
    for m in METHODS:
        for _, r in summary[(summary["method"] == m) & (summary["model"] == "convnet")].iterrows():
            row[f"{m}_ipc{r['ipc']}_test"] = 100 * r["acc_mean"]
            row[f"{m}_ipc{r['ipc']}_test_sd"] = 100 * r["acc_std"]
            if "val_acc_mean" in r:
                row[f"{m}_ipc{r['ipc']}_val"] = 100 * r["val_acc_mean"]
    return row


def markdown(rows: pd.DataFrame, title: str, command: str) -> str:
    cells = [c for c in rows.columns if c.endswith("_test") and not c.startswith("full_real")]
    lines = [
        title,
        "",
        f"Command: `{command}`",
        "",
        "| ε target | ε spent (PRV) | σ (DP-SGD) | σ (vote) | pool (kept) label agreement | "
        + " | ".join(c.replace("_test", "").replace("_", " ") + " test %" for c in cells)
        + " | pool DCR share (null) | pool verdict | generator attack AUC [95 % CI] |",
        "|" + "---|" * (8 + len(cells)),
    ]
    for _, r in rows.iterrows():
        lines.append(
            f"| {r.epsilon_target:g} | {r.epsilon:.3f} | {r.sigma:.3f} | {r.vote_sigma:.3f} | "
            f"{100 * r.label_agreement:.1f} % ({100 * r.kept_label_agreement:.1f} %) | "
            + " | ".join(f"{r[c]:.1f} ± {r[c + '_sd']:.1f}" for c in cells)
            + f" | {r.pool_dcr:.3f} ({r.pool_null:.3f}) | {r.pool_verdict} | {r.generator_auc:.3f} "
            f"[{r.generator_auc_lo:.3f}, {r.generator_auc_hi:.3f}] |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", nargs="+", default=["config.yaml"])
    ap.add_argument("--epsilons", nargs="+", type=float, default=[10.0, 4.0, 1.0, math.inf])
    ap.add_argument("--cores", default="2")
    ap.add_argument("--out", default="docs/dp_curve_digits_16")
    args = ap.parse_args()
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    rows, first = [], None
    for eps in args.epsilons:
        cfg = merged_config(args.configs, eps)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as fh:
            yaml.safe_dump(cfg, fh, sort_keys=False)  # snakemake compares params as ordered
        full = config_with_defaults(fh.name)
        results = REPO / full["results"] / dataset_id(full)
        if first is not None:
            for rel in SHARED_OUTPUTS:
                src, dst = first / rel, results / rel
                if src.exists() and not dst.exists():
                    dst.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(src, dst)
        t0 = time.time()
        cmd = [str(Path(sys.executable).parent / "snakemake"), "--cores", args.cores, "--configfile", fh.name]
        print(f"ε = {eps:g}: {' '.join(cmd)}", flush=True)
        subprocess.run(cmd, cwd=REPO, check=True)
        print(f"ε = {eps:g}: {time.time() - t0:.0f} s", flush=True)
        first = first or results
        non_private = {**full, "privacy": {**full["privacy"], "dp": {**full["privacy"]["dp"], "enabled": False}}}
        reference = REPO / full["results"] / dataset_id(non_private) / "embedder" / "convnet.pt"
        rows.append(row_for(results, eps, reference))
        table = pd.DataFrame(rows)
        table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6f")
    table = pd.DataFrame(rows).sort_values("epsilon_target").reset_index(drop=True)
    command = (
        "python benchmarks/dp_curve.py --configs "
        + " ".join(args.configs)
        + " --epsilons "
        + " ".join(f"{e:g}" for e in args.epsilons)
        + " --out "
        + args.out
    )
    title = f"Utility-privacy curve, {dataset_id({**full, 'privacy': {'dp': {'enabled': False}}})}"
    out.with_suffix(".md").write_text(markdown(table, f"# {title}", command))
    reference_summary = REPO / full["results"] / dataset_id(non_private) / "tables" / "summary.csv"
    non_private_lines = {}
    if reference_summary.exists():
        s = pd.read_csv(reference_summary)
        hit = s[(s["method"] == "infodist_plus") & (s["ipc"].astype(str) == "10") & (s["model"] == "convnet")]
        if len(hit):
            non_private_lines["non-private run, infodist_plus_ipc10"] = 100 * float(hit["acc_mean"].iloc[0])
    lines = {**reference_lines_of(pd.read_csv(results / "tables" / "summary.csv")), **non_private_lines}
    utility_privacy_figure(table, out.with_suffix(".png"), title, reference_lines=lines)


if __name__ == "__main__":
    main()
