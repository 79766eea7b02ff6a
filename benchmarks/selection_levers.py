"""The levers of `infodist_plus`, measured on the files of a finished run: validation and test accuracy, paired seeds.

    .venv/bin/python benchmarks/selection_levers.py --results results/digits_16 [--config config.yaml]
        [--seeds 0 1 2 3 4] [--ipc 1 10] [--variants NAME ...] [--out results/digits_16/tables/levers] [--threads N]
    .venv/bin/python benchmarks/selection_levers.py --tables-from A.csv B.csv --out merged   # tables of several runs

Every variant selects from the same pool, embeddings and privacy filter as the run (`pool/`, `embeddings/`,
`pool/privacy_filter.npz`), builds its graphs and Infomap communities with the run's settings, and is evaluated with
the run's `evaluate:` protocol on the same seeds (paired: seed s trains the same initial network for every variant).
Writes `{out}.csv` (one row per variant, IPC and seed) and `{out}.md`: mean ± std of validation and test accuracy,
and each variant's paired difference to k-means and to random synthetic (mean and std over seeds). Choose on the
validation columns; report the test columns.

Pools: the selection is a function of the pool, so one pool's ranking holds some luck of that draw. Runs on other
pools of the same config (another `pool.base_seed`, in their own `results:` folder) carry their --results folder in
the CSV's `pool` column; `--tables-from` over several pools pairs each variant with k-means by pool and seed, and
adds each pool's mean test difference to k-means.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]

from histodistill.base import config_with_defaults, load_npy, load_npz, resolve_precision
from histodistill.classifier import evaluate_subset, evaluation_config
from histodistill.generator import load_pool
from histodistill.selection import (
    Graph,
    GraphConfig,
    build_graph,
    community_prototypes,
    find_communities,
    select_by_communities,
    select_kmeans,
    select_random,
)

# name -> (kind, graph overrides, settings). `paper` is infodist as the paper defines it.
VARIANTS: dict[str, tuple[str, dict, dict]] = {
    "random_synthetic": ("random", {}, {}),
    "kmeans": ("kmeans", {}, {}),
    "infodist": ("paper", {"knn": None}, {}),
    "infodist-knn10": ("paper", {"knn": 10}, {}),
    "plus-knn10-hub-equal-merge": ("plus", {"knn": 10}, {"pick": "hub", "quota": "equal", "merge": True}),
    "plus-knn10-medoid-equal": ("plus", {"knn": 10}, {"pick": "medoid", "quota": "equal", "merge": False}),
    "plus-knn10-medoid-size": ("plus", {"knn": 10}, {"pick": "medoid", "quota": "size", "merge": False}),
    "plus-knn10-medoid-size-merge": ("plus", {"knn": 10}, {"pick": "medoid", "quota": "size", "merge": True}),
    "plus-knn10-medoid-flow-merge": ("plus", {"knn": 10}, {"pick": "medoid", "quota": "flow", "merge": True}),
    "plus-knn10-local_hub-size-merge": ("plus", {"knn": 10}, {"pick": "local_hub", "quota": "size", "merge": True}),
    "plus-paper-medoid-size-merge": ("plus", {"knn": None}, {"pick": "medoid", "quota": "size", "merge": True}),
    "plus-paper-local_hub-size-merge": ("plus", {"knn": None}, {"pick": "local_hub", "quota": "size", "merge": True}),
    # K tracks the budget: Infomap's preferred number of modules = IPC (`"modules": "ipc"`)
    "plus-knn10-k=ipc-medoid": ("plus", {"knn": 10}, {"modules": "ipc", "pick": "medoid", "quota": "size"}),
    "plus-knn10-k=ipc-hub": ("plus", {"knn": 10}, {"modules": "ipc", "pick": "hub", "quota": "equal"}),
    "plus-paper-k=ipc-medoid": ("plus", {"knn": None}, {"modules": "ipc", "pick": "medoid", "quota": "size"}),
    "plus-paper-k=ipc-hub": ("plus", {"knn": None}, {"modules": "ipc", "pick": "hub", "quota": "equal"}),
    # hubness reduction: local scaling of distances, or mutual edges only
    "plus-knn10ls-medoid-size-merge": ("plus", {"knn": 10, "hubness": "local_scaling"}, {"pick": "medoid"}),
    "plus-knn10ls-hub-equal-merge": (
        "plus",
        {"knn": 10, "hubness": "local_scaling"},
        {"pick": "hub", "quota": "equal"},
    ),
    "plus-knn10ls-k=ipc-medoid": (
        "plus",
        {"knn": 10, "hubness": "local_scaling"},
        {"modules": "ipc", "pick": "medoid"},
    ),
    "plus-knn10ls-k=ipc-hub": (
        "plus",
        {"knn": 10, "hubness": "local_scaling"},
        {"modules": "ipc", "pick": "hub", "quota": "equal"},
    ),
    "plus-knn10mutual-medoid-size-merge": ("plus", {"knn": 10, "hubness": "mutual"}, {"pick": "medoid"}),
    "plus-knn10mutual-k=ipc-hub": (
        "plus",
        {"knn": 10, "hubness": "mutual"},
        {"modules": "ipc", "pick": "hub", "quota": "equal"},
    ),
    # each k-means part of a group gives the most visited node of its own subgraph
    "plus-paper-part_hub-size-merge": ("plus", {"knn": None}, {"pick": "part_hub"}),
    "plus-knn10-part_hub-size-merge": ("plus", {"knn": 10}, {"pick": "part_hub"}),
    "plus-knn10ls-part_hub-size-merge": ("plus", {"knn": 10, "hubness": "local_scaling"}, {"pick": "part_hub"}),
    "plus-knn10-k=ipc-part_hub": ("plus", {"knn": 10}, {"modules": "ipc", "pick": "part_hub"}),
    "plus-knn10ls-k=ipc-part_hub": (
        "plus",
        {"knn": 10, "hubness": "local_scaling"},
        {"modules": "ipc", "pick": "part_hub"},
    ),
    "plus-knn10-part_hub-size": ("plus", {"knn": 10}, {"pick": "part_hub", "merge": False}),
    # each k-means part of a group gives its most typical image (TypiClust's density within the class)
    "plus-knn10-part_typical-size-merge": ("plus", {"knn": 10}, {"pick": "part_typical"}),
    "plus-paper-part_typical-size-merge": ("plus", {"knn": None}, {"pick": "part_typical"}),
    # certainty-weighted facility location over the class (issue #32): the communities' size quotas as a matroid
    "plus-knn10-facility-c0": ("plus", {"knn": 10}, {"pick": "facility", "certainty_weight": 0.0}),
    "plus-knn10-facility-c1": ("plus", {"knn": 10}, {"pick": "facility", "certainty_weight": 1.0}),
    "plus-knn10-facility-c4": ("plus", {"knn": 10}, {"pick": "facility", "certainty_weight": 4.0}),
    "plus-knn10-facility_free-c0": (
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 0.0, "quota": "free"},
    ),
    "plus-knn10-facility_free-c0.25": (
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 0.25, "quota": "free"},
    ),
    "plus-knn10-facility_free-c0.5": (
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 0.5, "quota": "free"},
    ),
    "plus-knn10-facility_free-c1": (
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 1.0, "quota": "free"},
    ),
    "plus-knn10-facility_free-c4": (
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 4.0, "quota": "free"},
    ),
    "plus-knn10-facility_tophat-c0": (  # ProbCover's ball coverage, the ablation of the kernel
        "plus",
        {"knn": 10},
        {"pick": "facility", "certainty_weight": 0.0, "kernel": "tophat"},
    ),
    "plus-paperls-k=ipc-hub": (
        "plus",
        {"knn": None, "hubness": "local_scaling"},
        {"modules": "ipc", "pick": "hub", "quota": "equal"},
    ),
}
# the certainty term falling faster than 1/IPC: λ = c · n / IPC^a with a = 3 or 4 (issue #32's next candidate)
VARIANTS.update(
    {
        f"plus-knn10-facility{'_free' if free else ''}-c{c:g}-a{a}": (
            "plus",
            {"knn": 10},
            {"pick": "facility", "certainty_weight": c, "certainty_decay": a, **({"quota": "free"} if free else {})},
        )
        for free in (True, False)
        for a in (3, 4)
        for c in (0.25, 0.5, 1.0, 2.0, 4.0)
    }
)


def pool_certainty(embedder: Path, images: np.ndarray, labels: np.ndarray, device: torch.device) -> np.ndarray:
    """The run's embedder's softmax probability of each pool image's own label (what the `facility` pick weighs)."""
    from histodistill.selection import label_certainty, load_embedder

    return label_certainty(load_embedder(embedder, device), images, labels, device)[0]


def class_graphs(emb: np.ndarray, labels: np.ndarray, graph: dict, cfg: dict) -> dict[int, Graph]:
    settings = {**cfg["graph"], **graph}
    gcfg = GraphConfig(**{k: v for k, v in settings.items() if k in GraphConfig.__dataclass_fields__})
    return {int(c): build_graph(np.asarray(emb[labels == c], dtype=np.float64), gcfg) for c in np.unique(labels)}


def class_communities(graphs: dict[int, Graph], cfg: dict, modules: int | None) -> dict[int, pd.DataFrame]:
    trials, seed = cfg["select"]["trials"], cfg["select"]["seed"]
    return {c: find_communities(g, trials, seed, modules) for c, g in graphs.items()}


def select(
    kind: str, settings: dict, ipc: int, emb, labels, keep, communities, seed: int, graphs=None, certainty=None
) -> np.ndarray:
    """Global pool indices, class by class, among the kept images (as the workflow's selection rules); `certainty`
    (the embedder's probability of each pool image's own label) for the `facility` pick."""
    chosen = []
    for c in np.unique(labels):
        nodes = np.where(labels == c)[0]
        kept_local = np.where(keep[nodes])[0]
        e = np.asarray(emb[nodes], dtype=np.float64)
        if kind == "random":
            local = kept_local[select_random(len(kept_local), ipc, np.random.default_rng([seed, int(c)]))]
        elif kind == "kmeans":
            local = kept_local[select_kmeans(e[kept_local].astype(np.float32), ipc, seed + int(c))]
        else:
            df = communities[int(c)]
            df = df[df["node"].isin(kept_local)]
            if kind == "paper":
                local = select_by_communities(df, ipc, "modular_centrality")
            else:
                prototype = {k: v for k, v in settings.items() if k != "modules"}
                graph = graphs[int(c)] if graphs else None
                if prototype.get("pick") == "facility":
                    prototype["certainty"] = np.asarray(certainty)[nodes]
                local = community_prototypes(e, df, ipc, seed=seed + int(c), graph=graph, **prototype)
        chosen.append(nodes[np.asarray(local)])
    return np.concatenate(chosen)


def variant_selections(
    variants: list[str], ipcs: list[int], emb, labels: np.ndarray, keep: np.ndarray, cfg: dict, certainty=None
) -> Iterator[tuple[str, int, np.ndarray]]:
    """(variant, IPC, global pool indices) for every variant and IPC, in that order; each graph and each set of
    communities is built once and shared by the variants that use it."""
    seed = cfg["select"]["baseline_seed"]
    graphs: dict[str, dict[int, Graph]] = {}
    communities: dict[tuple[str, int | None], dict[int, pd.DataFrame]] = {}
    for name in variants:
        kind, graph, settings = VARIANTS[name]
        key = repr(sorted(graph.items()))
        if kind in ("paper", "plus") and key not in graphs:
            graphs[key] = class_graphs(emb, labels, graph, cfg)
        for ipc in ipcs:
            mods = ipc if settings.get("modules") == "ipc" else None
            if kind in ("paper", "plus") and (key, mods) not in communities:
                communities[key, mods] = class_communities(graphs[key], cfg, mods)
            yield name, ipc, select(
                kind, settings, ipc, emb, labels, keep, communities.get((key, mods)), seed, graphs.get(key), certainty
            )


def markdown(rows: pd.DataFrame) -> str:
    """Mean ± std of val and test accuracy per variant and IPC; differences to the baselines paired per run (pool and
    seed: the same pool and the same initial network), then mean ± std over the runs; with several pools, also each
    pool's mean test difference to k-means and a 95 % t-interval over the pools' mean test differences to k-means and
    to random synthetic (the pools, not the runs, are the independent draws: a pool's seeds share its selection).
    `rows` has a `pool` column (one value for one pool). A baseline not among the rows' variants gets "–" columns.
    """
    pools = list(dict.fromkeys(rows["pool"]))
    several = len(pools) > 1
    lines = []
    for ipc, grp in rows.groupby("ipc"):
        seeds = grp["seed"].nunique()
        grp = grp.set_index(["pool", "seed"])
        base = {b: grp[grp["variant"] == b] for b in ("kmeans", "random_synthetic")}
        runs = f"{len(pools)} pools × {seeds} seeds" if several else f"{seeds} paired seeds"
        per_pool = "".join(f" test − k-means, pool {i + 1} |" for i in range(len(pools))) if several else ""
        if several:
            per_pool = " test − k-means, 95 % CI over pools | test − random synthetic, 95 % CI over pools |" + per_pool
        lines += [
            f"\nIPC {ipc} ({runs}; accuracy in %)\n",
            "| variant | val ACC | test ACC | val − k-means | test − k-means | test − random synthetic |" + per_pool,
            "|---|---|---|---|---|---|" + ("---|" * (len(pools) + 2) if several else ""),
        ]
        order = grp.groupby("variant")["val_acc"].mean().sort_values(ascending=False).index
        for v in order:
            g = grp[grp["variant"] == v]

            def paired(col: str, b: str) -> pd.Series | None:
                """Per-run difference to baseline `b` in points; None where `b` was not run on this variant's runs."""
                if not g.index.isin(base[b].index).all():
                    return None
                return 100 * (g[col] - base[b].loc[g.index, col])

            def diff(col: str, b: str, pool: str | None = None) -> str:
                d = paired(col, b)
                if d is None:
                    return "–"
                if pool is not None:
                    d = d.loc[pool]
                    return f"{d.mean():+.1f}"
                return f"{d.mean():+.1f} ± {d.std(ddof=1):.1f}"

            def pool_interval(b: str) -> str:
                from scipy.stats import ttest_1samp

                d = paired("acc", b)
                if d is None:
                    return "–"
                per_pool_mean = d.groupby(level="pool").mean()
                if len(per_pool_mean) < 2 or per_pool_mean.std() == 0:
                    return f"{per_pool_mean.mean():+.1f}"
                ci = ttest_1samp(per_pool_mean, 0.0).confidence_interval(0.95)
                return f"{per_pool_mean.mean():+.1f} [{ci.low:+.1f}, {ci.high:+.1f}]"

            lines.append(
                f"| {v} | {100 * g['val_acc'].mean():.1f} ± {100 * g['val_acc'].std(ddof=1):.1f} "
                f"| {100 * g['acc'].mean():.1f} ± {100 * g['acc'].std(ddof=1):.1f} "
                f"| {diff('val_acc', 'kmeans')} | {diff('acc', 'kmeans')} | {diff('acc', 'random_synthetic')} |"
                + (f" {pool_interval('kmeans')} | {pool_interval('random_synthetic')} |" if several else "")
                + ("".join(f" {diff('acc', 'kmeans', p)} |" for p in pools) if several else "")
            )
    if several:
        lines += ["", "Pools: " + "; ".join(f"{i + 1} = {p}" for i, p in enumerate(pools))]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, help="a finished run's dataset folder")
    ap.add_argument(
        "--tables-from",
        type=Path,
        nargs="+",
        help="write the tables of these CSVs of earlier runs on one dataset to --out (a variant's first rows of a pool "
        "win); runs on several pools of the dataset (its `pool` column: the --results folder) pair by pool and seed",
    )
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    args = ap.parse_args()
    if args.tables_from:
        if args.out is None:
            ap.error("--tables-from needs --out")
        rows = pd.concat([pd.read_csv(p) for p in args.tables_from])
        rows = rows.assign(pool=rows["pool"].fillna("") if "pool" in rows else "")
        rows = rows.drop_duplicates(["pool", "variant", "ipc", "seed"])
        rows.to_csv(f"{args.out}.csv", index=False, float_format="%.6f")
        Path(f"{args.out}.md").write_text(f"{', '.join(map(str, args.tables_from))}\n" + markdown(rows))
        print(Path(f"{args.out}.md").read_text())
        return
    if args.results is None:
        ap.error("--results is required")
    cfg = config_with_defaults(args.config)
    out = args.out or args.results / "tables" / "levers"
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    net = cfg["embed"]["net"]
    images, labels = load_pool(sorted(str(p) for p in (args.results / "pool").glob("shard_*.npz")))
    emb = load_npy(args.results / "embeddings" / f"{net}.npy", mmap_mode="r")
    keep = load_npz(args.results / "pool" / "privacy_filter.npz", required=("keep",))["keep"].astype(bool)
    real = load_npz(args.results / "data" / "real.npz")
    n_classes = int(real["n_classes"])
    params = cfg["evaluate"]
    # as evaluate_subset: the run's precision resolved for this device (bf16 on a GPU with it under `auto`), and the
    # longest evaluation it runs (the largest IPC) decides compiling
    precision = resolve_precision(cfg["precision"], device)
    ipc = max(cfg["select"]["ipc"])
    tcfg, batch_seeds = evaluation_config(params["models"][0], params, False, precision, device, ipc * n_classes)
    done: dict[tuple[int, ...], list[dict]] = {}  # a selection another variant already made is not retrained
    seen: dict[tuple[str, int], tuple[int, tuple[int, ...]]] = {}
    rows = []
    certainty = None
    if any(VARIANTS[v][2].get("pick") == "facility" for v in args.variants):
        certainty = pool_certainty(args.results / "embedder" / f"{cfg['embed']['net']}.pt", images, labels, device)
    for name, ipc, idx in variant_selections(args.variants, args.ipc, emb, labels, keep, cfg, certainty):
        start = time.perf_counter()
        key_idx = tuple(sorted(idx.tolist()))
        results = done.get(key_idx) or evaluate_subset(
            images[idx],
            labels[idx],
            real["test_images"],
            real["test_labels"],
            n_classes,
            tcfg,
            args.seeds,
            device,
            batch_seeds,
            val_images=real["val_images"],
            val_labels=real["val_labels"],
        )
        done[key_idx] = results
        same = next((v for v, i in seen.items() if i == (ipc, key_idx)), None)
        seen[name, ipc] = (ipc, key_idx)
        for r in results:
            rows.append(
                {
                    "pool": str(args.results),
                    "variant": name,
                    "ipc": ipc,
                    "seed": r["seed"],
                    "val_acc": r["val_acc"],
                    "acc": r["acc"],
                }
            )
        out.parent.mkdir(parents=True, exist_ok=True)
        pd.DataFrame(rows).to_csv(f"{out}.csv", index=False, float_format="%.6f")  # so far (a long run may stop)
        accs = [100 * r["acc"] for r in results]
        note = f", the same images as {same[0]}" if same else ""
        print(f"{name} IPC {ipc}: test {np.mean(accs):.1f} ({time.perf_counter() - start:.0f} s{note})", flush=True)
    table = pd.DataFrame(rows)
    text = f"{args.results} — {params['models'][0]}, {params['epochs']} epochs, seeds {args.seeds}\n" + markdown(table)
    Path(f"{out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
