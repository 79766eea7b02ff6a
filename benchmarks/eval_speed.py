"""Evaluation training speed: epochs per second for ConvNet and ResNet18 at IPC 10 and 100 × classes, 28 and 64 px.

    .venv/bin/python benchmarks/eval_speed.py [--epochs 20] [--classes 9] [--nets convnet resnet18]

The evaluation protocol as the workflow runs it (DSA, contrastive term, EMA; images resident on the device), on
random images (speed does not depend on the content).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import describe_device  # noqa: E402

from histodistill.train import TrainConfig, train_classifier  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--classes", type=int, default=9)
    ap.add_argument("--nets", nargs="+", default=["convnet", "resnet18"])
    ap.add_argument("--sizes", nargs="+", type=int, default=[28, 64])
    ap.add_argument("--ipcs", nargs="+", type=int, default=[10, 100])
    args = ap.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    print(f"device: {describe_device(device)}; batch 256; DSA + contrastive + EMA")
    rng = np.random.default_rng(0)
    for net in args.nets:
        for size in args.sizes:
            for ipc in args.ipcs:
                n = ipc * args.classes
                images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
                labels = np.repeat(np.arange(args.classes), ipc)
                depth = 5 if size == 64 else 3
                cfg = TrainConfig(net=net, depth=depth, width=128, epochs=args.epochs, batch_size=256)
                train_classifier(
                    images, labels, args.classes, TrainConfig(**{**cfg.__dict__, "epochs": 1}), 0, device, False
                )
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
                train_classifier(images, labels, args.classes, cfg, 0, device, progress=False)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                seconds = time.perf_counter() - start
                print(
                    {
                        "net": net if net == "resnet18" else f"convnet-d{depth}w128",
                        "px": size,
                        "images": n,
                        "epochs_per_s": round(args.epochs / seconds, 2),
                        "s_per_1000_epochs": round(1000 * seconds / args.epochs, 1),
                    },
                    flush=True,
                )


if __name__ == "__main__":
    main()
