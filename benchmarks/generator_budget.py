"""Generator size and length against pool quality, for choosing the default config's CPU budget.

    .venv/bin/python benchmarks/generator_budget.py --results results/digits_16 --blocks 64 128 --batch 128
        --steps 1200 [--lr 5e-4] [--threads 2] [--per-class 30]

Trains the denoiser on the run's real train split and autoencoder (`generator/autoencoder.pt`), samples
`per-class` images per class as the pool does (DDIM 25 steps, guidance 2), and prints seconds per training step and
the label agreement of the run's real-trained embedder (`embedder/convnet.pt`) with the sampled labels.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from common import record_output

from histodistill.base import load_npz, save_checkpoint
from histodistill.classifier import predict_logits
from histodistill.generator import (
    DenoiserConfig,
    load_codec,
    load_denoiser,
    sample_images,
    train_denoiser,
)
from histodistill.selection import load_embedder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--blocks", type=int, nargs="+", default=[64, 128])
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--steps", type=int, default=1200)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--per-class", type=int, default=30)
    args = ap.parse_args()
    record_output(__file__)
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    real = load_npz(args.results / "data" / "real.npz")
    codec = load_codec(args.results / "generator" / "autoencoder.pt", device)
    cfg = DenoiserConfig(
        block_out_channels=tuple(args.blocks), batch_size=args.batch, steps=args.steps, lr=args.lr, label_dropout=0.15
    )
    n_classes = int(real["n_classes"])
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        final = train_denoiser(
            codec, real["train_images"], real["train_labels"], n_classes, cfg, 0, Path(tmp) / "c.pt", progress=False
        )
        per_step = (time.perf_counter() - start) / args.steps
        save_checkpoint(Path(tmp) / "d.pt", final)
        model, meta = load_denoiser(Path(tmp) / "d.pt", device)
    labels = np.repeat(np.arange(n_classes), args.per_class)
    images = sample_images(codec, model, meta, labels, "ddim", 25, 2.0, 1000, 500, progress=False)
    embedder = load_embedder(args.results / "embedder" / "convnet.pt", device)
    agreement = float((predict_logits(embedder, images, device).argmax(1) == labels).mean())
    print(
        f"blocks {args.blocks} batch {args.batch} steps {args.steps} lr {args.lr}: {per_step:.3f} s/step "
        f"({args.threads} threads), agreement {agreement:.4f} on {len(labels)} samples",
        flush=True,
    )


if __name__ == "__main__":
    main()
