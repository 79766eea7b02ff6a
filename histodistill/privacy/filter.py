"""The privacy filter: pool images nearer to a training image than the filter's quantile of real-to-real distances
are removed before selection."""

from __future__ import annotations

import os
from typing import Callable

import numpy as np
import pandas as pd
import torch

from histodistill.base.errors import HistodistillError

from .neighbours import pixel_rows, scan_reference
from .pool import _train_sources
from .reference import _split_images, embed_batched
from .spaces import SCALE


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


def filter_distances(
    images: np.ndarray,
    real_path: str | os.PathLike,
    embed_fn: Callable[[np.ndarray], np.ndarray],
    chunk: int = 2048,
    device: torch.device | str = "cpu",
    train_emb: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """What the privacy filter needs, per space: every pool image's distance to its closest train image and the
    validation images' (its threshold's reference). Reads the train and validation splits only: the test split is
    the audit holdout, which nothing that shapes a set may read."""
    _, train_px, train_emb = _train_sources(real_path, embed_fn, train_emb)
    train = {"pixel": train_px, "embedding": train_emb}
    out = {}
    for name, x in (("dcr", images), ("val_dcr", _split_images(real_path, "val_images"))):
        for space, rows in (("pixel", pixel_rows(x)), ("embedding", embed_batched(x, embed_fn))):
            d2 = scan_reference(rows, train[space], chunk=chunk, device=device)["d2"]
            out[f"{space}_{name}"] = np.sqrt(d2) * SCALE[space]
    return out
