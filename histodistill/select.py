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
# Within one module, Infomap's modular centrality is a monotone function of node flow, and a node's enter and exit flow
# equal its flow when it has no self-link (our graphs have none), so all four ranks order a module's nodes the same
# way (tests/test_select.py checks it on real Infomap output): the rank option does not change `infodist`. The
# picks of `community_prototypes` (infodist_plus) are the orders that differ: the medoid (by embedding) and part_hub
# (by a walk confined to a k-means part) and part_typical (by the density of the class around each image).
PROTOTYPE_PICKS = ("medoid", "hub", "local_hub", "part_hub", "part_typical", "facility")
TYPICALITY_NEIGHBOURS = 20  # TypiClust's k (Hacohen et al. 2022)
PROTOTYPE_QUOTAS = ("size", "flow", "equal", "free")  # free: facility only, no community constraint
COMMUNITY_COLUMNS = ["node", "module", "modular_centrality", "flow", "enter_flow", "exit_flow"]


def _infomap_leaves(graph: Graph, options: dict, run_options: dict) -> pd.DataFrame:
    """Directed two-level Infomap on a weighted graph; one row per node (isolated ones included), in node order."""
    import infomap

    im = infomap.Infomap(two_level=True, directed=True, silent=True, **options)
    im.add_nodes(range(graph.n_nodes))
    if graph.n_edges:
        im.add_links(zip(graph.source.tolist(), graph.target.tolist(), graph.weight.tolist()))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        im.run(**run_options)
        rows = [
            (n.node_id, n.module_id, n.modular_centrality, n.data.flow, n.data.enterFlow, n.data.exitFlow)
            for n in im.tree
            if n.is_leaf
        ]
    df = pd.DataFrame(rows, columns=COMMUNITY_COLUMNS)
    return df.sort_values("node", kind="stable").reset_index(drop=True)


def find_communities(graph: Graph, trials: int = 5, seed: int = 42, modules: int | None = None) -> pd.DataFrame:
    """Two-level directed Infomap on a weighted graph; one row per node (all nodes, isolated ones included).

    `modules`: Infomap's preferred number of modules (its `--preferred-number-of-modules`, a penalty on the code
    length of partitions with another number), so that the number of communities can follow the budget; None lets
    the map equation alone decide (the paper)."""
    if modules is not None and modules < 1:
        raise HistodistillError(f"find_communities: preferred number of modules {modules} is below 1")
    run_options = {} if modules is None else {"preferred_number_of_modules": int(modules)}
    return _infomap_leaves(graph, {"num_trials": trials, "seed": seed}, run_options)


def node_flow(graph: Graph) -> np.ndarray:
    """Every node's Infomap flow (the stationary visit rate of its random walk), in node order; Infomap's flow step
    alone, without the search for modules (whose result the flow does not depend on)."""
    return _infomap_leaves(graph, {"no_infomap": True}, {})["flow"].to_numpy()


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


# ------------------------------------------------------------------------------------------------ infodist_plus


def merge_communities(emb: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Ward agglomeration of communities down to `n_groups`: repeatedly merge the pair whose union raises the
    within-group sum of squares least, n_a·n_b/(n_a+n_b)·‖μ_a − μ_b‖²; ties go to the pair of lowest group ids.
    Returns the merged group of every node (relabelled 0..n_groups−1 in order of first appearance)."""
    ids = list(dict.fromkeys(np.asarray(groups).tolist()))
    if n_groups < 1:
        raise HistodistillError("merge_communities: need at least one group")
    members = {g: np.where(groups == g)[0] for g in ids}
    n = {g: float(len(members[g])) for g in ids}
    mu = {g: np.asarray(emb[members[g]], dtype=np.float64).mean(0) for g in ids}
    parent = {g: g for g in ids}
    alive = list(ids)
    while len(alive) > n_groups:
        best, pair = np.inf, None
        for i, a in enumerate(alive):
            for b in alive[i + 1 :]:
                cost = n[a] * n[b] / (n[a] + n[b]) * float(((mu[a] - mu[b]) ** 2).sum())
                if cost < best:
                    best, pair = cost, (a, b)
        a, b = pair
        mu[a] = (n[a] * mu[a] + n[b] * mu[b]) / (n[a] + n[b])
        n[a] += n[b]
        parent[b] = a
        alive.remove(b)

    def root(g):
        while parent[g] != g:
            g = parent[g]
        return g

    relabel = {g: i for i, g in enumerate(alive)}
    return np.asarray([relabel[root(g)] for g in np.asarray(groups).tolist()], dtype=np.int64)


def proportional_quota(weights: np.ndarray, capacity: np.ndarray, budget: int) -> np.ndarray:
    """One image per group, then each further image to the group with the largest weight per image already given
    (D'Hondt: argmax w/(q+1)), never above a group's capacity; ties to the lower group index."""
    k = len(weights)
    if budget < k or budget > int(np.sum(capacity)):
        raise HistodistillError(f"proportional_quota: budget {budget} for {k} groups of {int(np.sum(capacity))} nodes")
    q = np.ones(k, dtype=np.int64)
    w = np.asarray(weights, dtype=np.float64)
    for _ in range(budget - k):
        score = np.where(q < capacity, w / (q + 1), -np.inf)
        q[int(np.argmax(score))] += 1
    return q


def _medoids(emb: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` distinct representatives of a group: the image nearest its mean for one, k-means' nearest images for
    more."""
    if count == 1:
        d = ((emb - emb.mean(0)) ** 2).sum(1)
        return np.asarray([int(np.argmin(d))], dtype=np.int64)
    return select_kmeans(emb, count, seed)


def _kmeans_parts(emb: np.ndarray, count: int, seed: int) -> list[np.ndarray]:
    """Rows of a group split by k-means into `count` parts (the whole group for one)."""
    if count == 1:
        return [np.arange(len(emb))]
    from sklearn.cluster import KMeans

    assign = KMeans(n_clusters=count, random_state=seed, n_init=3).fit_predict(emb)
    return [np.where(assign == j)[0] for j in range(count)]


def _part_maxima(emb: np.ndarray, score: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` representatives of a group: split it by k-means into `count` parts (one part for one) and take each
    part's row of highest `score` (ties to the lower row): its most visited node for `local_hub` (the class walk's
    Infomap flow), its most typical image for `part_typical` (`typicality` within the class)."""
    return np.asarray([int(p[np.argmax(score[p])]) for p in _kmeans_parts(emb, count, seed)], dtype=np.int64)


def subgraph(graph: Graph, nodes: np.ndarray) -> Graph:
    """The graph induced by `nodes` (its edges with both ends among them), renumbered 0..len(nodes)−1 in their order."""
    local = np.full(graph.n_nodes, -1, dtype=np.int64)
    local[np.asarray(nodes, dtype=np.int64)] = np.arange(len(nodes))
    inside = (local[graph.source] >= 0) & (local[graph.target] >= 0)
    return Graph(len(nodes), local[graph.source[inside]], local[graph.target[inside]], graph.weight[inside])


def _part_hubs(emb: np.ndarray, graph: Graph, nodes: np.ndarray, count: int, seed: int) -> np.ndarray:
    """`count` representatives of a group: split it by k-means into `count` parts (one part for one); each part gives
    its most visited node of a random walk on the part's own subgraph (Infomap flow; ties to the lower row). Unlike
    `local_hub`, whose flow comes from the whole class graph and so favours the nodes nearest the class's centre,
    each part's walk stays inside the part."""
    chosen = []
    for part in _kmeans_parts(emb, count, seed):
        chosen.append(int(part[int(np.argmax(node_flow(subgraph(graph, nodes[part]))))]))
    return np.asarray(chosen, dtype=np.int64)


def typicality(emb: np.ndarray, k: int = TYPICALITY_NEIGHBOURS) -> np.ndarray:
    """TypiClust's typicality (Hacohen, Dekel & Weinshall 2022): the inverse of an image's mean Euclidean distance to
    its k nearest other images (k capped at n − 1; every image is equally typical when it is alone). High where the
    class is dense: a mode of the class rather than its mean."""
    n = len(emb)
    k = min(k, n - 1)
    if k < 1:
        return np.ones(n)
    from sklearn.neighbors import NearestNeighbors

    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(emb).kneighbors(emb)
    mean = dist[:, 1:].mean(1)  # sorted by distance: drop the image itself (a zero distance)
    return 1.0 / np.maximum(mean, np.finfo(np.float64).tiny)


def community_prototypes(
    emb: np.ndarray,
    communities: pd.DataFrame,
    budget: int,
    pick: str = "medoid",
    quota: str = "size",
    merge: bool = True,
    seed: int = 0,
    graph: Graph | None = None,
    certainty: np.ndarray | None = None,
    certainty_weight: float = 1.0,
    kernel: str = "heat",
    certainty_decay: float = 2.0,
) -> np.ndarray:
    """`infodist_plus`: representatives of the Infomap communities of one class (node ids of `communities`, rows of
    `emb` in node order).

    With more communities than the budget (K > B) and `merge`, the communities are merged by Ward agglomeration into
    B groups (without `merge`: the B largest by flow, as the paper); then every group gets a quota: one each plus the
    rest in proportion to its `size` or `flow` (D'Hondt), or `equal` (the paper's ⌊B/K⌋ + 1 for the largest, topped
    up). A group gives its `medoid` (the image nearest its mean; k-means' nearest images for a quota above one), its
    `hub`s (highest modular centrality, as the paper), its `local_hub`s (k-means splits the group into as many
    parts as its quota; each part gives its highest-flow node), or its `part_hub`s (the same parts; each gives the
    most visited node of a walk on its own subgraph of `graph`, the class graph the communities come from), or its
    `part_typical`s (the same parts; each gives its image of highest `typicality` within the class, as TypiClust).
    With B = 1 and `merge`, the group is the whole class: its medoid, or its most visited node (the paper's pick when
    the class is one module). `facility` instead picks the whole class's set at once: certainty-weighted facility
    location (histodistill.facility; `certainty` = the embedder's probability of each row's own label, rows of
    `emb`) with the groups' quotas as a partition matroid."""
    if pick not in PROTOTYPE_PICKS:
        raise HistodistillError(f"select.infodist_plus.pick: unknown {pick!r}; use one of {list(PROTOTYPE_PICKS)}")
    if quota not in PROTOTYPE_QUOTAS:
        raise HistodistillError(f"select.infodist_plus.quota: unknown {quota!r}; use one of {list(PROTOTYPE_QUOTAS)}")
    if quota == "free" and pick != "facility":
        raise HistodistillError("select.infodist_plus.quota: free (no per-community quota) is for pick facility only")
    if pick == "part_hub" and graph is None:
        raise HistodistillError("select.infodist_plus.pick: part_hub needs the class graph")
    if pick == "facility" and certainty is None:
        raise HistodistillError("select.infodist_plus.pick: facility needs the embedder's certainty of every image")
    df = communities.sort_values("node", kind="stable").reset_index(drop=True)
    nodes = df["node"].to_numpy()
    if budget > len(nodes):
        raise HistodistillError(f"budget {budget} is larger than the {len(nodes)} images available")
    x = np.asarray(emb[nodes], dtype=np.float64)
    # the score a part's pick maximises, taken over the whole class before any community is left out
    score = typicality(x) if pick == "part_typical" else df["flow"].to_numpy()
    order = module_order(df)["module"].to_numpy()  # largest flow first
    groups = df["module"].to_numpy()
    if len(order) > budget:
        if merge:
            groups = merge_communities(x, groups, budget)
        else:
            top = set(order[:budget].tolist())
            keep = np.isin(groups, list(top))
            df, x, groups, nodes = df[keep].reset_index(drop=True), x[keep], groups[keep], nodes[keep]
            score = score[keep]
    stats = module_order(df.assign(module=groups))  # groups largest first, as modules are ordered
    gids, sizes, flows = stats["module"].to_numpy(), stats["size"].to_numpy(), stats["flow"].to_numpy()
    if quota == "free":
        q = np.minimum(sizes, budget)  # any number from any community: the quotas do not bind
    elif quota == "equal":
        q = np.asarray(allocate_quota(len(gids), budget), dtype=np.int64)
        q = np.minimum(q, sizes)
        for i in range(len(q)):  # top-up from the largest groups with nodes left
            extra = min(budget - int(q.sum()), int(sizes[i] - q[i]))
            q[i] += max(0, extra)
    else:
        q = proportional_quota(sizes if quota == "size" else flows, sizes, budget)
    if pick == "facility":
        from .facility import certainty_weight_for, greedy_facility_location, similarity

        p = np.asarray(certainty, dtype=np.float64)[nodes]
        lam = certainty_weight_for(len(nodes), budget, certainty_weight, certainty_decay)
        quota_of = {int(g): int(c) for g, c in zip(gids, q)}
        rows = greedy_facility_location(similarity(x, kernel), p, budget, lam, groups=groups, quota=quota_of)
        return nodes[np.sort(rows)].astype(np.int64)
    chosen: list[int] = []
    for g, count in zip(gids, q):
        rows = np.where(groups == g)[0]
        if count == 0:
            continue
        if pick == "part_hub":
            picks = _part_hubs(x[rows], graph, nodes[rows], int(count), seed + int(g))
            chosen.extend(int(nodes[rows[i]]) for i in picks)
        elif pick in ("local_hub", "part_typical"):
            chosen.extend(int(nodes[rows[i]]) for i in _part_maxima(x[rows], score[rows], int(count), seed + int(g)))
        elif pick == "hub":
            ranked = df.iloc[rows].sort_values(["modular_centrality", "node"], ascending=[False, True], kind="stable")
            chosen.extend(int(v) for v in ranked["node"].to_numpy()[:count])
        else:
            chosen.extend(int(nodes[rows[i]]) for i in _medoids(x[rows], int(count), seed + int(g)))
    return np.asarray(chosen, dtype=np.int64)


# ------------------------------------------------------------------------------------------------ baselines


def select_random(n: int, budget: int, rng: np.random.Generator) -> np.ndarray:
    return np.sort(rng.choice(n, size=budget, replace=False)).astype(np.int64)


KMEANS_COPY_LIMIT = 256 * 1024 * 1024  # feature bytes above which k-means centres the features in place


def select_kmeans(emb: np.ndarray, budget: int, seed: int) -> np.ndarray:
    """k-means with k = budget; the image nearest to each centroid (distinct images).

    Distances come from `KMeans.transform` (N x budget, computed in chunks by scikit-learn), so the temporary does not
    grow with the feature width (raw pixels at 224 px RGB are 150,528 wide). Features above KMEANS_COPY_LIMIT bytes
    are centred in place (scikit-learn's copy_x=False; `emb` is restored afterwards, up to rounding) instead of in a
    copy as large as the class's features."""
    from sklearn.cluster import KMeans

    in_place = emb.nbytes > KMEANS_COPY_LIMIT and emb.flags.writeable and emb.flags.c_contiguous
    km = KMeans(n_clusters=budget, random_state=seed, n_init=3, copy_x=not in_place).fit(emb)
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
