"""How deep multi-level Infomap's hierarchy goes on a finished run's class graphs (issue #13's hierarchy lever).

    .venv/bin/python benchmarks/infomap_levels.py --results results/digits_16 [results/mnist5k_16 ...]

For each run, each class and two graphs (the paper's 1/N graph and the 10-NN graph of infodist_plus), runs directed
multi-level Infomap (the run's trials and seed) and prints (top modules, levels): levels 2 means modules of leaves,
with no sub-module to split a module's budget over.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from common import record_output

from histodistill.base import load_npy
from histodistill.selection import GraphConfig, build_graph


def levels(graph, trials: int, seed: int) -> tuple[int, int]:
    import infomap

    im = infomap.Infomap(directed=True, num_trials=trials, seed=seed, silent=True)
    im.add_nodes(range(graph.n_nodes))
    im.add_links(zip(graph.source.tolist(), graph.target.tolist(), graph.weight.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = im.run()
    return int(result.num_top_modules), int(result.num_levels)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, nargs="+", required=True, help="finished runs' dataset folders")
    ap.add_argument("--net", default="convnet")
    ap.add_argument("--trials", type=int, default=5)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()
    record_output(__file__)
    for run in args.results:
        emb = load_npy(run / "embeddings" / f"{args.net}.npy")
        labels = load_npy(run / "embeddings" / f"{args.net}.labels.npy")
        for name, cfg in (("paper", GraphConfig()), ("knn10", GraphConfig(knn=10))):
            out = [
                levels(build_graph(np.asarray(emb[labels == c], dtype=np.float64), cfg), args.trials, args.seed)
                for c in np.unique(labels)
            ]
            flat = sum(lv == 2 for _, lv in out)
            print(f"{run} {name}: (top modules, levels) per class {out}; {flat} of {len(out)} flat", flush=True)


if __name__ == "__main__":
    main()
