"""Evaluation training speed: epochs per second for ConvNet and ResNet18 at IPC 10 and 100 × classes, 28 and 64 px.

    .venv/bin/python benchmarks/eval_speed.py [--epochs 20] [--classes 9] [--nets convnet resnet18]
        [--sizes 28 64] [--ipcs 10 100] [--seeds 3] [--precision auto|fp32|bf16 ...] [--batch-seeds auto|on|off ...]
        [--compile off|on|cudagraphs ...]

The evaluation protocol as the workflow runs it (histodistill.classifier.train_classifiers: DSA, contrastive term, EMA;
images resident on the device), on random images (speed does not depend on the content). `--seeds S` trains S
seeds per measurement, one after the other or side by side (`--batch-seeds on`); the figures are per seed, so
the two modes compare directly. `auto` resolves as in the workflow (bf16 and batched seeds on CUDA only).
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np
import torch
from common import describe_device, record_output

from histodistill.base import resolve_precision, resolve_switch
from histodistill.classifier import TrainConfig, train_classifiers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--classes", type=int, default=9)
    ap.add_argument("--nets", nargs="+", default=["convnet", "resnet18"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[28, 64])
    ap.add_argument("--ipcs", nargs="+", type=int, default=[10, 100])
    ap.add_argument("--seeds", type=int, default=1, help="seeds trained per measurement")
    ap.add_argument("--precision", nargs="+", choices=["auto", "fp32", "bf16"], default=["auto"])
    ap.add_argument("--batch-seeds", nargs="+", choices=["auto", "on", "off"], default=["auto"])
    ap.add_argument(
        "--compile",
        nargs="+",
        choices=["on", "off", "cudagraphs"],
        default=["off"],
        help="torch.compile, seed by seed (cudagraphs: mode reduce-overhead, not yet a workflow setting)",
    )
    args = ap.parse_args()
    record_output(__file__)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {describe_device(device)}; batch 256; DSA + contrastive + EMA; {args.seeds} seed(s)")
    rng = np.random.default_rng(0)
    seeds = list(range(args.seeds))
    for net in args.nets:
        for size in args.sizes:
            for ipc in args.ipcs:
                n = ipc * args.classes
                images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
                labels = np.repeat(np.arange(args.classes), ipc)
                depth = 5 if size == 64 else 3
                for precision in args.precision:
                    for switch, compiled in itertools.product(args.batch_seeds, args.compile):
                        batched = resolve_switch({"on": True, "off": False}.get(switch, switch), device)
                        if batched and compiled != "off":
                            continue  # compiling is for seed-by-seed training only
                        cfg = TrainConfig(
                            net=net,
                            depth=depth,
                            width=128,
                            epochs=args.epochs,
                            batch_size=256,
                            precision=resolve_precision(precision, device),
                            compile=compiled != "off",
                            compile_mode="reduce-overhead" if compiled == "cudagraphs" else "default",
                        )
                        warm = TrainConfig(**{**cfg.__dict__, "epochs": 1})
                        train_classifiers(images, labels, args.classes, warm, seeds, device, batched, False)
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        start = time.perf_counter()
                        train_classifiers(images, labels, args.classes, cfg, seeds, device, batched, False)
                        if device.type == "cuda":
                            torch.cuda.synchronize()
                        per_seed = (time.perf_counter() - start) / len(seeds)
                        row = {
                            "net": net if net == "resnet18" else f"convnet-d{depth}w128",
                            "px": size,
                            "images": n,
                            "precision": cfg.precision,
                            "seeds": len(seeds),
                            "batched": batched,
                            "compiled": compiled,
                            "epochs_per_s_per_seed": round(args.epochs / per_seed, 2),
                            "s_per_1000_epochs_per_seed": round(1000 * per_seed / args.epochs, 1),
                        }
                        print(row, flush=True)


if __name__ == "__main__":
    main()
