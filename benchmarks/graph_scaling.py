"""Graph + Infomap time and peak memory per class for growing pools (512-d embeddings).

    .venv/bin/python benchmarks/graph_scaling.py [--sizes 1000 10000 50000 100000] [--knn 10]

Each size runs in a fresh process so that peak resident memory (ru_maxrss) is that size's own. Embeddings are
clustered Gaussian blobs (random directions would make every distance alike). Exact chunked graph up to 50,000
nodes, the approximate k-nearest-neighbour path above; `--knn` caps out-edges per node (the paper's uncapped 1/N
threshold keeps about half of all N² edges on such data, which no one can store at N = 100k).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from common import record_output


def one(n: int, dim: int, knn: int | None, method: str) -> dict:
    import torch

    from histodistill.selection import GraphConfig, build_graph, find_communities

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(50, dim)) * 3
    emb = (centres[rng.integers(0, 50, n)] + rng.normal(size=(n, dim))).astype(np.float32)
    cfg = GraphConfig(knn=knn, method=method, chunk=1024, approx_neighbours=max(32, 2 * (knn or 16)))
    start = time.perf_counter()
    graph = build_graph(emb, cfg)
    t_graph = time.perf_counter() - start
    start = time.perf_counter()
    df = find_communities(graph, trials=1, seed=42)
    t_infomap = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "N": n,
        "path": "exact" if method == "exact" else "approximate",
        "knn": knn,
        "edges": graph.n_edges,
        "graph_s": round(t_graph, 1),
        "infomap_s": round(t_infomap, 1),
        "total_s": round(t_graph + t_infomap, 1),
        "modules": int(df["module"].nunique()),
        "peak_MB": round(peak_mb),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", nargs="+", type=int, default=[1000, 10000, 50000, 100000])
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--knn", type=int, default=10)
    ap.add_argument("--exact-max", type=int, default=50000)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    record_output(__file__)
    if args.one:
        method = "exact" if args.one <= args.exact_max else "approximate"
        print(json.dumps(one(args.one, args.dim, args.knn, method)))
        return
    print(f"2 threads; {args.dim}-d clustered embeddings; knn cap {args.knn}")
    for n in args.sizes:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            str(n),
            "--dim",
            str(args.dim),
            "--knn",
            str(args.knn),
            "--exact-max",
            str(args.exact_max),
        ]
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr.strip()[-500:], flush=True)


if __name__ == "__main__":
    main()
