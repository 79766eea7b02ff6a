"""Selection of IPC images per class: InfoDist (Infomap communities) and the coreset baselines.

InfoDist (DESIGN step 6): with K modules and budget B, every module gets ⌊B/K⌋ images and the r = B mod K modules
with the largest flow get one more (so with K > B the B largest modules give one image each). Each module gives its
nodes in descending rank score (modular centrality by default). If a module is smaller than its quota, the shortfall
is topped up from the largest module with nodes left, next-highest score first. Ties are broken by module id and
node id, so the result is deterministic.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from .errors import HistodistillError
from .graph import Graph

RANKS = ("modular_centrality", "flow", "enter_flow", "exit_flow")
COMMUNITY_COLUMNS = ["node", "module", "modular_centrality", "flow", "enter_flow", "exit_flow"]


def find_communities(graph: Graph, trials: int = 5, seed: int = 42) -> pd.DataFrame:
    """Two-level directed Infomap on a weighted graph; one row per node (all nodes, isolated ones included)."""
    import infomap

    im = infomap.Infomap(two_level=True, directed=True, num_trials=trials, seed=seed, silent=True)
    im.add_nodes(range(graph.n_nodes))
    if graph.n_edges:
        im.add_links(zip(graph.source.tolist(), graph.target.tolist(), graph.weight.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im.run()
        rows = [
            (n.node_id, n.module_id, n.modular_centrality, n.data.flow, n.data.enterFlow, n.data.exitFlow)
            for n in im.tree
            if n.is_leaf
        ]
    df = pd.DataFrame(rows, columns=COMMUNITY_COLUMNS)
    return df.sort_values("node", kind="stable").reset_index(drop=True)


def module_order(communities: pd.DataFrame) -> pd.DataFrame:
    """Modules sorted largest first: by total flow, then size, then module id (deterministic)."""
    mods = communities.groupby("module").agg(flow=("flow", "sum"), size=("node", "size")).reset_index()
    return mods.sort_values(["flow", "size", "module"], ascending=[False, False, True], kind="stable").reset_index(
        drop=True
    )


def allocate_quota(n_modules: int, budget: int) -> list[int]:
    """Quota per module, modules given largest first: ⌊B/K⌋ each, +1 for the first B mod K."""
    if n_modules < 1:
        raise HistodistillError("cannot allocate a budget over zero modules")
    base, extra = divmod(budget, n_modules)
    return [base + (1 if i < extra else 0) for i in range(n_modules)]


def select_by_communities(communities: pd.DataFrame, budget: int, rank: str = "modular_centrality") -> np.ndarray:
    """Node ids of the selected images, in selection order (module by module, then the top-up)."""
    if rank not in RANKS:
        raise HistodistillError(f"select.rank: unknown {rank!r}; use one of {list(RANKS)}")
    n = len(communities)
    if budget > n:
        raise HistodistillError(f"budget {budget} is larger than the {n} images available")
    mods = module_order(communities)
    quota = allocate_quota(len(mods), budget)
    ranked = {
        m: grp.sort_values([rank, "node"], ascending=[False, True], kind="stable")["node"].to_numpy()
        for m, grp in communities.groupby("module")
    }
    chosen: list[int] = []
    taken: dict[int, int] = {}
    for m, q in zip(mods["module"], quota):
        take = ranked[m][:q]
        chosen.extend(int(v) for v in take)
        taken[m] = len(take)
    shortfall = budget - len(chosen)
    for m in mods["module"]:  # top-up: largest module first, next-highest score first
        if shortfall == 0:
            break
        extra = ranked[m][taken[m] : taken[m] + shortfall]
        chosen.extend(int(v) for v in extra)
        taken[m] += len(extra)
        shortfall -= len(extra)
    return np.asarray(chosen, dtype=np.int64)


# ------------------------------------------------------------------------------------------------ baselines


def select_random(n: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=budget, replace=False)).astype(np.int64)


def select_kmeans(emb: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """k-means with k = budget; the image nearest to each centroid (distinct images).

    Distances come from `KMeans.transform` (N x budget, computed in chunks by scikit-learn), so the temporary does not
    grow with the feature width (raw pixels at 224 px RGB are 150,528 wide)."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=budget, random_state=seed, n_init=3).fit(emb)
    d = km.transform(emb)
    chosen: list[int] = []
    used = np.zeros(len(emb), dtype=bool)
    for c in range(budget):
        dc = np.where(used, np.inf, d[:, c])
        i = int(np.argmin(dc))
        used[i] = True
        chosen.append(i)
    return np.asarray(chosen, dtype=np.int64)


def select_herding(emb: np.ndarray, budget: int) -> np.ndarray:
    """Herding (Welling 2009): greedily pick images whose running mean tracks the class mean."""
    mu = emb.mean(0)
    chosen: list[int] = []
    acc = np.zeros_like(mu)
    avail = np.ones(len(emb), dtype=bool)
    for t in range(1, budget + 1):
        cand = ((mu[None] - (acc[None] + emb) / t) ** 2).sum(1)
        cand[~avail] = np.inf
        i = int(np.argmin(cand))
        chosen.append(i)
        avail[i] = False
        acc += emb[i]
    return np.asarray(chosen, dtype=np.int64)


def select_kcenter(emb: np.ndarray, budget: int) -> np.ndarray:
    """Greedy k-center: start at the image nearest the class mean, then repeatedly the farthest from the set."""
    first = int(np.argmin(((emb - emb.mean(0)) ** 2).sum(1)))
    chosen = [first]
    mind = ((emb - emb[first]) ** 2).sum(1)
    for _ in range(budget - 1):
        i = int(np.argmax(mind))
        chosen.append(i)
        mind = np.minimum(mind, ((emb - emb[i]) ** 2).sum(1))
    return np.asarray(chosen, dtype=np.int64)


def check_budget(ipc: int, counts: dict[int, int], where: str) -> None:
    """IPC must not exceed any class's number of candidates."""
    short = {c: n for c, n in counts.items() if n < ipc}
    if short:
        c, n = next(iter(sorted(short.items())))
        raise HistodistillError(
            f"{where}: IPC {ipc} is larger than the {n} images of class {c} (classes short: {sorted(short)}); "
            "lower select.ipc or raise pool.per_class × pool.shards"
        )


# ------------------------------------------------------------------------------------------------ privacy gate


def privacy_filter(
    pool_dcr: dict[str, np.ndarray], holdout_dcr: dict[str, np.ndarray], quantile: float = 0.05
) -> np.ndarray:
    """Keep-mask of the pool: an image is removed when, in any space, its distance to the closest real training
    image is at most the `quantile` of the real holdout images' distances to the train split (`<=`, so exact copies
    are removed even when that quantile is 0). Unseen real images would lose about `quantile` per space."""
    if not 0 < quantile <= 0.5:
        raise HistodistillError(f"select.privacy_filter.quantile: {quantile} is outside (0, 0.5]")
    if set(pool_dcr) != set(holdout_dcr) or not pool_dcr:
        raise HistodistillError(f"privacy_filter: spaces differ ({sorted(pool_dcr)} vs {sorted(holdout_dcr)})")
    keep = None
    for space, d in pool_dcr.items():
        ok = np.asarray(d, float) > np.quantile(np.asarray(holdout_dcr[space], float), quantile)
        keep = ok if keep is None else keep & ok
    return keep


def removed_per_class(labels: np.ndarray, keep: np.ndarray, removed_by: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per class: pool images, removed (any space; and per space), kept."""
    rows = []
    for c in np.unique(labels):
        m = labels == c
        row = {"class": int(c), "pool": int(m.sum())}
        row.update({f"removed_{s}": int((r & m).sum()) for s, r in removed_by.items()})
        row.update(removed=int((~keep & m).sum()), kept=int((keep & m).sum()))
        rows.append(row)
    return pd.DataFrame(rows)
