"""Cost of one privacy audit as the real data grows: time and peak memory of every part.

    .venv/bin/python benchmarks/privacy_scaling.py [--real 10000 100000] [--shared 1000] [--dim 256]

Random clustered embeddings stand in for the embedder's features (cost does not depend on their values). Each size
runs in a fresh process so that peak resident memory (ru_maxrss) is its own. The workflow's per-subset wall time at
digits scale is in results/{ds}/benchmarks/privacy_audit_*.tsv.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def one(n_real: int, n_shared: int, dim: int) -> dict:
    import torch

    from histodistill.privacy import (
        density_ratio_attack,
        distance_to_closest_record,
        membership_inference,
        prdc,
    )

    torch.set_num_threads(2)
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(20, dim)) * 3

    def draw(n: int) -> np.ndarray:
        return (centres[rng.integers(0, 20, n)] + rng.normal(size=(n, dim))).astype(np.float32)

    train, holdout, shared = draw(n_real), draw(max(1000, n_real // 5)), draw(n_shared)
    half = len(holdout) // 2
    times = {}
    start = time.perf_counter()
    distance_to_closest_record(shared, train, holdout)
    times["dcr_s"] = time.perf_counter() - start
    start = time.perf_counter()
    membership_inference(shared, train, holdout[:half])
    times["mia_s"] = time.perf_counter() - start
    start = time.perf_counter()
    density_ratio_attack(shared, holdout[half:], train, holdout[:half])
    times["domias_s"] = time.perf_counter() - start
    start = time.perf_counter()
    prdc(train, shared)
    times["prdc_s"] = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "real": n_real,
        "shared": n_shared,
        "dim": dim,
        **{k: round(v, 1) for k, v in times.items()},
        "total_s": round(sum(times.values()), 1),
        "peak_MB": round(peak),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--real", nargs="+", type=int, default=[10000, 100000])
    ap.add_argument("--shared", type=int, default=1000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.shared, args.dim)))
        return
    for n in args.real:
        cmd = [sys.executable, __file__, "--one", str(n), "--shared", str(args.shared), "--dim", str(args.dim)]
        out = subprocess.run(cmd, capture_output=True, text=True)
        print(out.stdout.strip() or out.stderr.strip()[-800:], flush=True)


if __name__ == "__main__":
    main()
