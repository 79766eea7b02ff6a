"""Pool- and generator-level leakage: the pool's DCR share against the audit holdout's null (a non-inferiority
test), and the pool's distances to the real splits."""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np
import torch
from scipy.stats import norm

from histodistill.base.errors import HistodistillError

from .dcr import dcr_share_test
from .neighbours import RowChunks, npz_member_shape, npz_row_chunks, pixel_rows
from .reference import (
    _check_train_emb,
    _probabilities,
    _split_images,
    embed_batched,
    embed_streamed,
    near_copy_threshold,
)
from .spaces import SCALE, SPACES


def cluster_means_bootstrap(values: np.ndarray, clusters: np.ndarray, n_boot: int, rng: np.random.Generator):
    """`n_boot` bootstrap means of `values`, resampling whole clusters (with replacement, as many as there are)."""
    values, clusters = np.asarray(values, float), np.asarray(clusters)
    if len(values) != len(clusters) or not len(values):
        raise HistodistillError(f"cluster bootstrap: {len(values)} values for {len(clusters)} cluster labels")
    _, inverse = np.unique(clusters, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(float)
    k = len(sums)
    weights = rng.multinomial(k, np.full(k, 1.0 / k), size=n_boot).astype(float)
    return (weights @ sums) / (weights @ counts)


def non_inferiority_test(
    p_pool: np.ndarray,
    pool_clusters: np.ndarray,
    p_null: np.ndarray,
    null_clusters: np.ndarray,
    margin: float = 0.03,
    n_boot: int = 2000,
    seed: int = 0,
    min_power: float = 0.8,
) -> dict[str, Any]:
    """The pool-level test (see the module docstring): Δ, its one-sided 95 % upper bound, the criterion's power at
    this interval width, and the verdict ('pass', 'fail' or 'not assessed')."""
    rng = np.random.default_rng([seed, 73])
    share, null = float(np.mean(p_pool)), float(np.mean(p_null))
    boot = cluster_means_bootstrap(p_pool, pool_clusters, n_boot, rng) - cluster_means_bootstrap(
        p_null, null_clusters, n_boot, rng
    )
    delta = share - null
    upper = float(delta + np.quantile(boot - delta, 0.95))
    se = float(np.std(boot, ddof=1))
    power = float(norm.cdf(margin / se - norm.ppf(0.95))) if se > 0 else 1.0
    if upper < margin and power >= min_power:
        verdict = "pass"
    elif power < min_power:
        verdict = "not assessed"
    else:
        verdict = "fail"
    return {
        "share": share,
        "null_share": null,
        "delta": delta,
        "upper95": upper,
        "margin": margin,
        "se": se,
        "power": power,
        "min_power": min_power,
        "n": int(len(p_pool)),
        "n_clusters": int(len(np.unique(pool_clusters))),
        "n_null": int(len(p_null)),
        "n_boot": n_boot,
        "verdict": verdict,
    }


def _train_sources(
    real_path: str | os.PathLike, embed_fn: Callable[[np.ndarray], np.ndarray], train_emb: np.ndarray | None
) -> tuple[tuple[int, ...], RowChunks, np.ndarray]:
    """(train shape, streamed train pixel rows, checked train embeddings, computed when not given)."""
    shape, _ = npz_member_shape(real_path, "train_images")
    train_px = npz_row_chunks(real_path, "train_images")
    if train_emb is None:
        train_emb = embed_streamed(train_px, shape[1:], embed_fn)
    _check_train_emb(train_emb, shape[0], real_path)
    return shape, train_px, train_emb


def pool_distances(
    images: np.ndarray,
    real_path: str | os.PathLike,
    embed_fn: Callable[[np.ndarray], np.ndarray],
    chunk: int = 2048,
    device: torch.device | str = "cpu",
    train_emb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """The audit of a whole pool, per image and space: DCR to the train split (model-space units) and
    closer-to-train probability against the audit holdout (the test split)."""
    shape, train_px, train_emb = _train_sources(real_path, embed_fn, train_emb)
    test = _split_images(real_path, "test_images")
    rows = {
        "pixel": (pixel_rows(images), pixel_rows(test), train_px),
        "embedding": (embed_batched(images, embed_fn), embed_batched(test, embed_fn), train_emb),
    }
    out = {}
    for space, (q, hold, train) in rows.items():
        pr = _probabilities(q, train, hold, shape[0], chunk, device)
        out[f"{space}_dcr"], out[f"{space}_p"], out[f"{space}_nn"] = pr["dcr"] * SCALE[space], pr["p"], pr["nn"]
    return out


def pool_report(
    distances: dict[str, np.ndarray],
    keep: np.ndarray,
    reference: dict[str, np.ndarray],
    q: float,
    margin: float = 0.03,
    n_boot: int = 2000,
    seed: int = 0,
    min_power: float = 0.8,
):
    """DCR share (against the holdout null), near-copy rate and the non-inferiority test (`pool_privacy`) of the
    whole pool - before any filter, the generator's own verdict - and of the images the privacy filter keeps."""
    out: dict[str, Any] = {"n_pool": int(len(keep)), "n_kept": int(keep.sum())}
    for space in SPACES:
        thr = near_copy_threshold(reference, space, q)
        d, p, nn = distances[f"{space}_dcr"], distances[f"{space}_p"], distances[f"{space}_nn"]
        null, null_nn = reference[f"{space}_null_p"], reference[f"{space}_test_nn"]

        def part(mask: np.ndarray) -> dict[str, Any]:
            return {
                **dcr_share_test(p[mask], null),
                "near_copy_rate": float((d[mask] <= thr).mean()),
                "non_inferiority": non_inferiority_test(
                    p[mask], nn[mask], null, null_nn, margin, n_boot, seed, min_power
                ),
            }

        out[space] = {"whole_pool": part(np.ones(len(keep), bool)), "kept": part(keep) if keep.any() else None}
    return out
