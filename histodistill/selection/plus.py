"""`infodist_plus`, this project's selector: communities merged or split to the budget, and prototypes chosen by
typicality, k-means parts, hubs or certainty-weighted facility location."""

from __future__ import annotations

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError

from .baselines import select_kmeans
from .graph import Graph
from .infodist import allocate_quota, module_order, node_flow

# Within one module, Infomap's modular centrality is a monotone function of node flow, and a node's enter and exit flow
# equal its flow when it has no self-link (our graphs have none), so all four ranks order a module's nodes the same
# way (tests/test_select.py checks it on real Infomap output): the rank option does not change `infodist`. The
# picks of `community_prototypes` (infodist_plus) are the orders that differ: the medoid (by embedding) and part_hub
# (by a walk confined to a k-means part) and part_typical (by the density of the class around each image).
PROTOTYPE_PICKS = ("medoid", "hub", "local_hub", "part_hub", "part_typical", "facility")
TYPICALITY_NEIGHBOURS = 20  # TypiClust's k (Hacohen et al. 2022)
PROTOTYPE_QUOTAS = ("size", "flow", "equal", "free")  # free: facility only, no community constraint


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
    location (histodistill.selection.facility; `certainty` = the embedder's probability of each row's own label, rows of
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
