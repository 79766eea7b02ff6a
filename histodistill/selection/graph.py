"""Per-class directed graphs over embeddings (InfoDist step 4).

For node n: w[n, l] = softmax over l of 1/‖e_n − e_l‖, with the self logit set to 0 before the softmax (so the
self term still counts in the normaliser, as in the paper), then the self edge dropped. Edges with w ≥ threshold
are kept: `"1/N"` (the paper), `"median"` of the row's weights, or a number. Additions, off in the paper preset:
logits scaled by (median distance or 1) / `temperature` to sharpen the softmax; a cap of `knn` strongest out-edges
per node; and hubness reduction (`hubness`): `local_scaling` divides every distance by √(σ_n σ_l), σ the distance to
a node's `scaling_k`-th nearest neighbour (Zelnik-Manor & Perona 2004), so that a node in a sparse region is as
near its own neighbours as one in a dense region is to its; `mutual` keeps an edge n → l only if l → n is kept too,
so a hub cannot collect edges from nodes it is not near in their own ranking.

torch is imported inside the functions that compute, so that jobs which only read edge lists start without it.

Exact weights are computed in row chunks (memory O(N·chunk)); `approximate_graph` uses the k nearest neighbours
and estimates the softmax normaliser from a seeded sample of the other nodes, for pools too large for N² work.
"""

from __future__ import annotations

import gzip
import io
import os
from dataclasses import dataclass

import numpy as np

from histodistill.base.errors import HistodistillError
from histodistill.base.io import atomic_write_bytes

MIN_DISTANCE = 1e-8


@dataclass(frozen=True)
class GraphConfig:
    threshold: str | float = "1/N"
    temperature: float = 1.0
    distance_scale: str = "none"  # "none" or "median"
    knn: int | None = None
    chunk: int = 1024
    method: str = "exact"  # "exact", "approximate" or "auto"
    approx_neighbours: int = 256
    approx_sample: int = 2048
    approx_search_dims: int | None = 64
    exact_max_nodes: int = 50_000
    seed: int = 0
    hubness: str = "none"  # "none", "local_scaling" or "mutual"
    scaling_k: int = 7


@dataclass
class Graph:
    n_nodes: int
    source: np.ndarray  # int64
    target: np.ndarray  # int64
    weight: np.ndarray  # float64

    @property
    def n_edges(self) -> int:
        return len(self.source)

    @property
    def density(self) -> float:
        return self.n_edges / max(1, self.n_nodes * (self.n_nodes - 1))


def check_embeddings(emb: np.ndarray, where: str) -> None:
    if emb.ndim != 2:
        raise HistodistillError(f"{where}: embeddings must be a 2-D matrix, got shape {emb.shape}")
    if not np.isfinite(emb).all():
        bad = int((~np.isfinite(emb).all(axis=1)).sum())
        raise HistodistillError(f"{where}: {bad} embedding rows contain NaN or infinite values; retrain the embedder")


def distance_scale(emb: np.ndarray, cfg: GraphConfig) -> float:
    """Logits are `scale / d` with scale = (median pairwise distance, or 1) / temperature.

    With `distance_scale: median` a typical logit is 1/temperature whatever the embedding's units; a small
    temperature sharpens the softmax (fewer edges pass 1/N), a large one flattens it. The paper is scale 1.
    """
    import torch

    if cfg.distance_scale == "none":
        return 1.0 / float(cfg.temperature)
    if cfg.distance_scale == "median":
        rng = np.random.default_rng(cfg.seed)
        sample = emb[rng.choice(len(emb), size=min(len(emb), 1000), replace=False)]
        d = torch.cdist(torch.from_numpy(sample).double(), torch.from_numpy(sample).double())
        off = d[~torch.eye(len(sample), dtype=torch.bool)]
        med = float(off.median()) if off.numel() else 1.0
        return max(med, MIN_DISTANCE) / float(cfg.temperature)
    raise HistodistillError(f"graph.distance_scale: unknown {cfg.distance_scale!r}; use 'none' or 'median'")


def _row_threshold(w: torch.Tensor, threshold: str | float, n: int) -> torch.Tensor:
    """Per-row threshold values for a block of weight rows (self entries already excluded as NaN)."""
    import torch

    if threshold == "1/N":
        return torch.full((len(w), 1), 1.0 / n, dtype=w.dtype)
    if threshold == "median":
        return torch.nanquantile(w, 0.5, dim=1, keepdim=True, interpolation="lower")
    try:
        return torch.full((len(w), 1), float(threshold), dtype=w.dtype)
    except (TypeError, ValueError):
        raise HistodistillError(f"graph.threshold: {threshold!r} is not '1/N', 'median' or a number") from None


def _keep(w: torch.Tensor, cfg: GraphConfig, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Threshold (and optionally k-cap) a block of weight rows; NaN marks excluded entries.

    Returns (row in block, column in block, weight) of the kept entries."""
    import torch

    thr = _row_threshold(w, cfg.threshold, n)
    keep = (w >= thr) & ~torch.isnan(w)
    if cfg.knn is not None and cfg.knn < w.shape[1]:
        filled = torch.where(keep, w, torch.full_like(w, -1.0))
        top = torch.topk(filled, cfg.knn, dim=1).indices
        cap = torch.zeros_like(keep)
        cap.scatter_(1, top, True)
        keep &= cap
    r, c = keep.nonzero(as_tuple=True)
    return r, c, w[r, c]


HUBNESS = ("none", "local_scaling", "mutual")


def local_scales(x: torch.Tensor, k: int, chunk: int) -> torch.Tensor:
    """σ of every row: the distance to its k-th nearest other row (the farthest when there are fewer than k others)."""
    import torch

    n = len(x)
    k = max(1, min(k, n - 1))
    out = torch.empty(n, dtype=x.dtype)
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(n, start + chunk))
        d = torch.cdist(x[rows], x)
        d[torch.arange(len(rows)), rows] = float("inf")  # not its own neighbour
        out[rows] = torch.topk(d, k, dim=1, largest=False).values[:, -1]
    return out.clamp_min_(MIN_DISTANCE)


def mutual_edges(graph: Graph) -> Graph:
    """The edges n → l whose reverse l → n is also in the graph (weights kept)."""
    n = np.int64(max(1, graph.n_nodes))
    key = graph.source * n + graph.target
    keep = np.isin(key, graph.target * n + graph.source)
    return Graph(graph.n_nodes, graph.source[keep], graph.target[keep], graph.weight[keep])


def exact_graph(emb: np.ndarray, cfg: GraphConfig) -> Graph:
    """The exact graph, computed in row chunks of `cfg.chunk` (memory O(N·chunk))."""
    import torch

    n = len(emb)
    if n < 2:
        return Graph(n, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    x = torch.from_numpy(np.ascontiguousarray(emb, dtype=np.float64))
    scale = distance_scale(emb, cfg)
    chunk = max(1, min(cfg.chunk, (1 << 24) // n))  # at most 16M float64 entries (128 MB) per block
    root_sigma = local_scales(x, cfg.scaling_k, chunk).sqrt_() if cfg.hubness == "local_scaling" else None
    src, dst, wts = [], [], []
    for start in range(0, n, chunk):
        rows = torch.arange(start, min(n, start + chunk))
        d = torch.cdist(x[rows], x)
        if root_sigma is not None:
            d /= root_sigma[rows, None] * root_sigma[None, :]
        logits = scale / d.clamp_min_(MIN_DISTANCE)
        logits[torch.arange(len(rows)), rows] = 0.0  # self logit 0 before the softmax
        w = torch.softmax(logits, dim=1)
        w[torch.arange(len(rows)), rows] = float("nan")  # no self edges
        r, t, v = _keep(w, cfg, n)
        src.append(rows[r])
        dst.append(t)
        wts.append(v)
    return Graph(
        n, torch.cat(src).numpy().astype(np.int64), torch.cat(dst).numpy().astype(np.int64), torch.cat(wts).numpy()
    )


def approximate_graph(emb: np.ndarray, cfg: GraphConfig) -> Graph:
    """k-nearest-neighbour graph whose softmax normaliser is estimated from a seeded sample of the other nodes.

    Only the `approx_neighbours` closest nodes can receive an edge; since the weights decrease with distance these
    carry most of each row's kept mass. Candidates are searched in a PCA projection to `approx_search_dims`
    dimensions (when the embedding is wider), then their distances are computed exactly in the full space. The
    normaliser is exact over the neighbours and self, and the remaining N − 1 − k terms are estimated by the mean
    over `approx_sample` random nodes outside the neighbourhood.
    """
    import torch
    from sklearn.neighbors import NearestNeighbors

    n = len(emb)
    k = min(cfg.approx_neighbours, n - 1)
    if k < 1:
        return Graph(n, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    scale = distance_scale(emb, cfg)
    x = np.ascontiguousarray(emb, dtype=np.float32)
    search = x
    if cfg.approx_search_dims and x.shape[1] > cfg.approx_search_dims:
        from sklearn.decomposition import PCA

        pca = PCA(n_components=cfg.approx_search_dims, svd_solver="randomized", random_state=cfg.seed)
        search = np.ascontiguousarray(pca.fit_transform(x), dtype=np.float32)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(search).kneighbors(search)
    # Drop self (the first column normally; duplicates may reorder) and keep k others per row.
    not_self = idx != np.arange(n)[:, None]
    order = np.argsort(~not_self, axis=1, kind="stable")[:, :k]
    idx = np.take_along_axis(idx, order, 1)
    dist = np.empty(idx.shape, dtype=np.float64)  # exact distances in the full space
    step = max(1, (1 << 23) // max(1, k * x.shape[1]))  # rows per block: ~64 MB of gathered float64 neighbours
    for start in range(0, n, step):
        rows = slice(start, min(n, start + step))
        dist[rows] = np.linalg.norm(x[rows, None, :].astype(np.float64) - x[idx[rows]], axis=-1)
    logit_nn = scale / np.maximum(dist, MIN_DISTANCE)
    rng = np.random.default_rng(cfg.seed)
    m = min(cfg.approx_sample, n)
    sample = rng.choice(n, size=m, replace=False)
    rest = n - 1 - k
    src, dst, wts = [], [], []
    xt = torch.from_numpy(x).double()
    st = xt[torch.from_numpy(sample)]
    for start in range(0, n, cfg.chunk):
        rows = np.arange(start, min(n, start + cfg.chunk))
        ln = torch.from_numpy(logit_nn[rows])
        cap = ln.max(dim=1, keepdim=True).values.clamp_min(0.0)
        z = torch.exp(-cap) + torch.exp(ln - cap).sum(dim=1, keepdim=True)  # self (logit 0) + neighbours
        if rest > 0:
            d = torch.cdist(xt[torch.from_numpy(rows)], st).clamp_min_(MIN_DISTANCE)
            excluded = torch.zeros(len(rows), m, dtype=torch.bool)
            nn_set = torch.from_numpy(idx[rows])
            smp = torch.from_numpy(sample)
            excluded |= (nn_set.unsqueeze(2) == smp.view(1, 1, -1)).any(dim=1)
            excluded |= torch.from_numpy(rows).unsqueeze(1) == smp.view(1, -1)
            e = torch.where(excluded, torch.zeros_like(d), torch.exp(scale / d - cap))
            cnt = (~excluded).sum(dim=1, keepdim=True).clamp_min(1)
            z = z + rest * e.sum(dim=1, keepdim=True) / cnt
        w = torch.exp(ln - cap) / z
        r, c, v = _keep(w, cfg, n)
        src.append(torch.from_numpy(rows)[r])
        dst.append(torch.from_numpy(idx[rows])[r, c])
        wts.append(v)
    return Graph(
        n, torch.cat(src).numpy().astype(np.int64), torch.cat(dst).numpy().astype(np.int64), torch.cat(wts).numpy()
    )


def build_graph(emb: np.ndarray, cfg: GraphConfig, where: str = "embeddings") -> Graph:
    """The class graph by the configured method ('auto': exact up to `exact_max_nodes`, approximate above)."""
    check_embeddings(emb, where)
    if cfg.hubness not in HUBNESS:
        raise HistodistillError(f"graph.hubness: unknown {cfg.hubness!r}; use one of {list(HUBNESS)}")
    method = cfg.method
    if method == "auto":
        method = "exact" if len(emb) <= cfg.exact_max_nodes else "approximate"
    if method == "exact":
        graph = exact_graph(emb, cfg)
    elif method == "approximate":
        if cfg.hubness == "local_scaling":
            raise HistodistillError(
                f"graph.hubness: local_scaling needs the exact graph, and this class has {len(emb)} images "
                f"(graph.method {cfg.method!r}); set graph.method: exact, or raise graph.exact_max_nodes"
            )
        graph = approximate_graph(emb, cfg)
    else:
        raise HistodistillError(f"graph.method: unknown {cfg.method!r}; use 'exact', 'approximate' or 'auto'")
    return mutual_edges(graph) if cfg.hubness == "mutual" else graph


def build_graph_among(emb: np.ndarray, kept: np.ndarray, cfg: GraphConfig, where: str = "embeddings") -> Graph:
    """The class graph of the `kept` rows only (`build_graph` on them, its N their number), in the node ids of all
    rows: a row left out is an isolated node, so community and edge files keep the class's numbering (DP mode's pool
    vote keeps part of each class)."""
    kept_rows = np.flatnonzero(np.asarray(kept, dtype=bool))
    if len(kept) != len(emb):
        raise HistodistillError(f"{where}: {len(kept)} keep flags for {len(emb)} images")
    inner = build_graph(emb[kept_rows], cfg, where)
    return Graph(len(emb), kept_rows[inner.source], kept_rows[inner.target], inner.weight)


def write_edges(path: str | os.PathLike, graph: Graph) -> None:
    """Edge list as gzip-compressed TSV (source, target, weight); byte-reproducible (gzip mtime 0)."""
    text = io.StringIO()
    text.write(f"# nodes={graph.n_nodes}\nsource\ttarget\tweight\n")
    for s, t, w in zip(graph.source.tolist(), graph.target.tolist(), graph.weight.tolist()):
        text.write(f"{s}\t{t}\t{w:.10g}\n")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
        gz.write(text.getvalue().encode())
    atomic_write_bytes(path, buf.getvalue())


def read_edges(path: str | os.PathLike) -> Graph:
    with gzip.open(path, "rt") as fh:
        header = fh.readline()
        if not header.startswith("# nodes="):
            raise HistodistillError(f"{path}: not a histodistill edge list (missing '# nodes=' header)")
        n = int(header.strip().split("=")[1])
        fh.readline()
        data = np.loadtxt(fh, delimiter="\t", ndmin=2)
    if data.size == 0:
        return Graph(n, np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
    return Graph(n, data[:, 0].astype(np.int64), data[:, 1].astype(np.int64), data[:, 2])
