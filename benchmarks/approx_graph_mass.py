"""How much of the exact graph's kept weight the approximate (k-NN) path keeps, on real pool embeddings.

    .venv/bin/python benchmarks/approx_graph_mass.py [--run results/digits_16] [--n 5000]

Samples `n` images of one class from the run's trained generator (pool settings of config.yaml), embeds them with
the run's embedder, builds the exact and the approximate graph for several settings and prints the fraction of the
exact graph's kept weight mass that the approximate graph keeps on the same edges.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import record_output

from histodistill.generator import load_codec, load_denoiser, sample_images
from histodistill.selection import GraphConfig, approximate_graph, embed, exact_graph, load_embedder


def kept_mass(approx, exact) -> float:
    ex = {(int(s), int(t)): w for s, t, w in zip(exact.source, exact.target, exact.weight)}
    got = sum(ex.get((int(s), int(t)), 0.0) for s, t in zip(approx.source, approx.target))
    return got / sum(ex.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="results/digits_16")
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--label", type=int, default=3)
    args = ap.parse_args()
    record_output(__file__)
    run, device = Path(args.run), torch.device("cpu")
    codec = load_codec(run / "generator" / "autoencoder.pt", device)
    model, meta = load_denoiser(run / "generator" / "denoiser.pt", device)
    start = time.perf_counter()
    images = sample_images(codec, model, meta, np.full(args.n, args.label), "ddim", 25, 2.0, 7, 500, progress=False)
    print(f"sampled {args.n} images of class {args.label} in {time.perf_counter() - start:.0f} s")
    emb = embed(images, load_embedder(run / "embedder" / "convnet.pt", device), device)
    settings = {
        "10-NN cap (default)": GraphConfig(knn=10),
        "10-NN cap, median-scaled, T=0.1": GraphConfig(knn=10, distance_scale="median", temperature=0.1),
        "paper (1/N, no cap)": GraphConfig(knn=None),
    }
    for name, cfg in settings.items():
        exact = exact_graph(emb, cfg)
        for k in (32, 256):
            approx = approximate_graph(emb, GraphConfig(**{**cfg.__dict__, "approx_neighbours": k}))
            print(
                f"{name}: exact {exact.n_edges} edges; approximate (k={k}) keeps {kept_mass(approx, exact):.4f} of its weight"
            )


if __name__ == "__main__":
    main()
