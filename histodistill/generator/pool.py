"""The synthetic pool: shards concatenated in shard order (pool index = position), and its quality."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import linalg

from histodistill.base.io import load_npz


def load_pool(shard_paths: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """All shards as one (images, labels) pair; index i is the i-th image in shard order."""
    images, labels = [], []
    for path in shard_paths:
        shard = load_npz(path, required=("images", "labels"))
        images.append(shard["images"])
        labels.append(shard["labels"])
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (as FID, but in the embedder's space)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # no `disp=`: SciPy 1.16 deprecated it and 1.18 removed it (the GPU machine's SciPy failed on it)
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():
        eps = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + eps) @ (s2 + eps))
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def pool_quality(
    pool_labels: np.ndarray, pool_pred: np.ndarray, pool_emb: np.ndarray, real_labels: np.ndarray, real_emb: np.ndarray
) -> dict:
    """Per class: agreement of a real-trained classifier with the pool labels; Fréchet distances in its feature space."""
    classes = sorted(set(pool_labels.tolist()))
    per_class = {}
    for c in classes:
        pm, rm = pool_labels == c, real_labels == c
        per_class[str(c)] = {
            "n": int(pm.sum()),
            "agreement": float((pool_pred[pm] == c).mean()),
            "frechet_distance": frechet_distance(pool_emb[pm], real_emb[rm]) if pm.sum() > 1 and rm.sum() > 1 else None,
        }
    return {
        "agreement_mean": float(np.mean([v["agreement"] for v in per_class.values()])),
        "agreement_overall": float((pool_pred == pool_labels).mean()),
        "frechet_distance": frechet_distance(pool_emb, real_emb),
        "per_class": per_class,
    }
