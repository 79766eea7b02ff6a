"""DM's iteration count against validation and test accuracy, on a finished run's real data.

    .venv/bin/python benchmarks/dm_iterations.py --results results/digits_16 [--config config.yaml]
        [--iterations 100 200] [--ipc 1 10] [--threads 1]

For each iteration count and IPC: `distill.distribution_matching` with the config's `distill.dm` settings (iterations
replaced), then ConvNets on the distilled set with the config's `evaluate:` protocol and seeds; prints distillation
seconds and mean validation and test accuracy. Choose on validation; report test.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]

from common import record_output

from histodistill.base import config_with_defaults, load_npz
from histodistill.classifier import evaluate_subset, train_config_for
from histodistill.distill import DMConfig, distribution_matching


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--iterations", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    record_output(__file__)
    torch.set_num_threads(args.threads)
    cfg = config_with_defaults(args.config)
    real = load_npz(args.results / "data" / "real.npz")
    n_classes = int(real["n_classes"])
    tcfg = train_config_for(cfg["evaluate"]["models"][0], cfg["evaluate"], full_real=False)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    for iterations in args.iterations:
        for ipc in args.ipc:
            dm = DMConfig(**{**cfg["distill"]["dm"], "iterations": iterations})
            start = time.perf_counter()
            result = distribution_matching(real["train_images"], real["train_labels"], n_classes, ipc, dm, device)
            seconds = time.perf_counter() - start
            runs = evaluate_subset(
                result.images, result.labels, real["test_images"], real["test_labels"], n_classes, tcfg,
                cfg["evaluate"]["seeds"], device, val_images=real["val_images"], val_labels=real["val_labels"],
            )  # fmt: skip
            val = 100 * np.mean([r["val_acc"] for r in runs])
            test = 100 * np.mean([r["acc"] for r in runs])
            print(
                f"DM iterations {iterations} IPC {ipc}: distil {seconds:.0f} s, val {val:.1f} test {test:.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
