"""The evaluation's cost (ConvNet width, training epochs) against validation and test accuracy, on a finished run's
subsets.

    .venv/bin/python benchmarks/eval_budget.py --results results/digits_16 [--width 32] [--epochs 200]
        [--config config.yaml] [--subsets kmeans_ipc10 infodist_plus_ipc10 ...] [--threads 1]

Trains the config's `evaluate:` protocol (its seeds, DSA, learning-rate schedule, ...) with the given width and
epochs (default: the config's) on each subset file of the run and prints mean validation and test accuracy: whether
a cheaper evaluation ranks the methods as the dearer one does. Run it once per setting (two runs side by side use
one core each).
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from common import record_output

from histodistill.base import config_with_defaults, load_npz
from histodistill.classifier import evaluate_subset, train_config_for

DEFAULT_SUBSETS = ["kmeans_ipc10", "infodist_plus_ipc10", "random_real_ipc10", "random_synthetic_ipc10",
                   "infodist_ipc10", "kmeans_ipc1", "infodist_ipc1"]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--width", type=int, help="default: the config's evaluate.width")
    ap.add_argument("--epochs", type=int, help="default: the config's evaluate.epochs")
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--subsets", nargs="+", default=DEFAULT_SUBSETS)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    record_output(__file__)
    torch.set_num_threads(args.threads)
    cfg = config_with_defaults(args.config)
    real = load_npz(args.results / "data" / "real.npz")
    params = cfg["evaluate"]
    tcfg = train_config_for(params["models"][0], params, full_real=False)
    tcfg = dataclasses.replace(tcfg, width=args.width or tcfg.width, epochs=args.epochs or tcfg.epochs)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for name in args.subsets:
        subset = load_npz(args.results / "subsets" / f"{name}.npz", required=("images", "labels"))
        start = time.perf_counter()
        runs = evaluate_subset(
            subset["images"], subset["labels"], real["test_images"], real["test_labels"], int(real["n_classes"]),
            tcfg, params["seeds"], device, val_images=real["val_images"], val_labels=real["val_labels"],
        )  # fmt: skip
        val, test = (100 * np.mean([r[k] for r in runs]) for k in ("val_acc", "acc"))
        print(
            f"width {tcfg.width} epochs {tcfg.epochs} {name}: val {val:.1f} test {test:.1f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
