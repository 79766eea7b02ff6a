"""The private nearest-neighbour vote on the synthetic pool (DP mode, `privacy.dp.vote_share`).

Private Evolution's one DP step (Lin et al., ICLR 2024, "Differentially private synthetic data via foundation model
APIs 1: images"): every private training image votes for its nearest pool image of its own class, Gaussian noise of
σ is added to every count, and only the noisy histogram is used from then on. One image adds or removes exactly one
vote, so the histogram has L2 sensitivity 1 and the release is the Gaussian mechanism with noise multiplier σ,
composed with DP-SGD by the accountant (`dp.noise_multiplier_for`, `dp.composed_epsilon`). Keeping each class's
most voted images is post-processing of that release.

Distances are taken in the features of the embedder trained on the pool alone (post-processing of the DP
generator), so the vote reads the private split only through its counts. Torch-free."""

from __future__ import annotations

import math

import numpy as np

from histodistill.base.errors import HistodistillError


def nearest_pool_votes(
    private_emb: np.ndarray, private_labels: np.ndarray, pool_emb: np.ndarray, pool_labels: np.ndarray
) -> np.ndarray:
    """Votes per pool image: each private image votes for its nearest (Euclidean) pool image of its own class; ties to
    the lower pool index. A class with private images but no pool image is an error."""
    from sklearn.metrics import pairwise_distances_argmin

    votes = np.zeros(len(pool_labels), dtype=np.int64)
    for c in np.unique(private_labels):
        pool_rows = np.flatnonzero(pool_labels == c)
        if len(pool_rows) == 0:
            raise HistodistillError(f"dp_vote: class {c} has private images but no pool image to vote for")
        private = np.asarray(private_emb[private_labels == c], dtype=np.float64)
        nearest = pairwise_distances_argmin(private, np.asarray(pool_emb[pool_rows], dtype=np.float64))
        np.add.at(votes, pool_rows[nearest], 1)
    return votes


def noisy_votes(votes: np.ndarray, noise_multiplier: float, seed: int) -> np.ndarray:
    """The released histogram: every count plus N(0, σ²) from a seeded generator (σ = 0: the counts themselves)."""
    rng = np.random.default_rng(seed)
    return votes.astype(np.float64) + noise_multiplier * rng.standard_normal(len(votes))


def keep_most_voted(noisy: np.ndarray, labels: np.ndarray, keep: float, at_least: int) -> np.ndarray:
    """Keep flags: in each class the round(keep · n_c) images (at least `at_least`, the largest IPC; at most n_c) of
    highest noisy vote, ties to the lower index."""
    if not 0 < keep <= 1:
        raise HistodistillError(f"privacy.dp.vote_keep: {keep:g} must lie in (0, 1]")
    out = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        count = min(len(rows), max(int(at_least), int(math.floor(keep * len(rows) + 0.5))))
        order = np.argsort(-noisy[rows], kind="stable")  # stable: equal votes keep their pool order
        out[rows[order[:count]]] = True
    return out
