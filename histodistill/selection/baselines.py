"""Coreset baselines on the same embeddings: random, k-means (nearest to centroid), herding and k-center."""

from __future__ import annotations

import numpy as np

from histodistill.base.errors import HistodistillError


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
