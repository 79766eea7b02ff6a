"""Certainty-weighted facility location: one objective for coverage and certainty (`infodist_plus` pick `facility`).

For one class, with p_i the embedder's probability of image i's own label and K a similarity between images,

    F(S) = Σ_i p_i · max_{j ∈ S} K_ij  +  λ · Σ_{j ∈ S} log p_j

is maximised greedily over sets S of the budget's size, under a partition matroid (at most q_g images from group g:
the Infomap communities with the size quota). The first term is facility location (Mirchandani & Francis 1990) with
every image weighted by its certainty: it rewards covering the class, as k-medoids does. The second rewards certain
picks. At a budget of one the greedy pick is the certainty-weighted density peak; as the budget grows the coverage
term dominates (λ falls with the budget: `certainty_weight` and `certainty_decay`). Greedy is within 1/2 of the
optimum under a matroid (Fisher, Nemhauser & Wolsey 1978) for the monotone submodular first term; the second is
modular.

K: the heat (Gaussian) kernel of embedding distances, exp(−d² / 2h²), its bandwidth h the median distance of an image
to its k-th nearest neighbour (the class's kNN graph scale); or the top-hat kernel 1[d ≤ h] (ProbCover's ball
coverage, Yehuda et al. 2022), the ablation. Torch-free."""

from __future__ import annotations

import numpy as np

from histodistill.base.errors import HistodistillError

KERNELS = ("heat", "tophat")
BANDWIDTH_NEIGHBOURS = 10


def pairwise_sq_distances(emb: np.ndarray) -> np.ndarray:
    x = np.asarray(emb, dtype=np.float64)
    sq = (x**2).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)


def similarity(emb: np.ndarray, kernel: str = "heat", k: int = BANDWIDTH_NEIGHBOURS) -> np.ndarray:
    """K (n × n, K_ii = 1): the heat kernel of embedding distances, or the top-hat kernel, at bandwidth h = the
    median distance to the k-th nearest other image (k capped at n − 1)."""
    if kernel not in KERNELS:
        raise HistodistillError(f"select.infodist_plus.kernel: unknown {kernel!r}; use one of {list(KERNELS)}")
    d2 = pairwise_sq_distances(emb)
    n = len(d2)
    if n == 1:
        return np.ones((1, 1))
    kth = np.sqrt(np.sort(d2, axis=1)[:, min(k, n - 1)])  # column 0 is the image itself
    h = float(np.median(kth)) or 1.0
    if kernel == "tophat":
        return (d2 <= h * h).astype(np.float64)
    return np.exp(-d2 / (2.0 * h * h))


def certainty_weight_for(n: int, budget: int, certainty_weight: float, decay: float = 2.0) -> float:
    """λ = c · n / B^a: `certainty_weight` c times the mean coverage a pick adds at this budget (n/B), divided by
    B^(a − 1), so that the certainty term's share falls as 1/B^(a − 1) as the budget B grows (a = `decay`)."""
    return float(certainty_weight) * n / float(budget) ** float(decay)


def facility_value(sim: np.ndarray, certainty: np.ndarray, chosen: np.ndarray, lam: float) -> float:
    """F(S) for the rows `chosen` (empty: 0)."""
    chosen = np.asarray(chosen, dtype=np.int64)
    if len(chosen) == 0:
        return 0.0
    coverage = float(np.dot(certainty, sim[:, chosen].max(axis=1)))
    return coverage + lam * float(np.log(np.maximum(certainty[chosen], 1e-12)).sum())


def greedy_facility_location(
    sim: np.ndarray,
    certainty: np.ndarray,
    budget: int,
    lam: float = 0.0,
    groups: np.ndarray | None = None,
    quota: dict[int, int] | None = None,
) -> np.ndarray:
    """Rows chosen greedily for F (largest marginal gain first, ties to the lower row), at most quota[g] from group g
    where groups are given. Returns the rows in the order picked."""
    n = len(certainty)
    if budget > n:
        raise HistodistillError(f"facility location: budget {budget} for {n} images")
    p = np.asarray(certainty, dtype=np.float64)
    bonus = lam * np.log(np.maximum(p, 1e-12))
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups, dtype=np.int64)
    left = {int(g): n for g in np.unique(groups)} if quota is None else {int(g): int(q) for g, q in quota.items()}
    if sum(min(left.get(int(g), 0), int((groups == g).sum())) for g in np.unique(groups)) < budget:
        raise HistodistillError(f"facility location: the quotas {left} cannot fill a budget of {budget}")
    covered = np.zeros(n)
    free = np.ones(n, dtype=bool)
    chosen: list[int] = []
    for _ in range(budget):
        open_group = np.array([left.get(int(g), 0) > 0 for g in groups])
        gain = p @ np.maximum(sim - covered[:, None], 0.0) + bonus
        gain = np.where(free & open_group, gain, -np.inf)
        j = int(np.argmax(gain))
        chosen.append(j)
        free[j] = False
        left[int(groups[j])] -= 1
        covered = np.maximum(covered, sim[:, j])
    return np.asarray(chosen, dtype=np.int64)


def certainty_gate(certainty: np.ndarray, correct: np.ndarray, drop: float, at_least: int) -> np.ndarray:
    """Keep flags of one class: drop the images the embedder puts in another class, then the `drop` share of the
    rest that it is least sure of (ties: the later row goes first); never fewer than `at_least` (the budget), the
    surest of the dropped making up the difference."""
    if not 0.0 <= drop < 1.0:
        raise HistodistillError(f"select.infodist_plus.certainty_gate: {drop:g} must lie in [0, 1)")
    order = np.lexsort((np.arange(len(certainty)), -np.asarray(certainty, dtype=np.float64)))  # surest first
    right = order[np.asarray(correct, dtype=bool)[order]]
    kept = right[: len(right) - int(np.floor(drop * len(right)))]
    if len(kept) < at_least:
        rest = order[~np.isin(order, kept)]
        kept = np.concatenate([kept, rest[: at_least - len(kept)]])
    out = np.zeros(len(certainty), dtype=bool)
    out[kept] = True
    return out


def gate_pool(
    certainty: np.ndarray, correct: np.ndarray, labels: np.ndarray, keep: np.ndarray, drop: float, at_least: int
) -> np.ndarray:
    """`certainty_gate` within each class's kept images (pool order); images already left out stay out."""
    out = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        rows = np.flatnonzero((labels == c) & keep)
        out[rows] = certainty_gate(certainty[rows], correct[rows], drop, min(at_least, len(rows)))
    return out
