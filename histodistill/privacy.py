"""Privacy and fidelity audit of a shared set against the real data it was made from.

One member definition for every set: members = the real train split (also for sets of real images). The primary
leakage test is the DCR share: the share of a set's images closer to the train split than to an equally sized
holdout (the test split; train subsampled to its size, averaged exactly over all draws), 0.5 = no leakage, with a
Wilson 95 % CI, against the same number for unseen validation images (the null), in pixel and embedding space. Its
power at the set's size (smallest share of planted near-copies it detects) is simulated from planted near-copies.
The near-copy rate counts images closer to a train image than the q-quantile of holdout → train distances.
Membership attacks (distance; DOMIAS-style density ratio) are reported with bootstrap CIs and their simulated power.
Fidelity (precision, recall, density, coverage of Naeem et al. 2020; a Fréchet distance in the embedder's space)
is reported beside n-matched unseen real images.

The real-side numbers are computed once per dataset (`privacy_reference`, the workflow's privacy/reference.npz).
Every nearest-neighbour search is exact and tiled; the train split is streamed from real.npz chunk by chunk, so
memory does not grow with it. Pixel space = images in model space [-1, 1] flattened; distances are computed on
uint8 rows (exact in float64) and scaled by 2/255.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.linalg import LinAlgWarning
from scipy.special import gammaln

from .errors import HistodistillError
from .io import read_npy_header
from .pool import frechet_distance
from .pool_privacy import non_inferiority_test
from .release import (
    RELEASE_SPACES,
    detection_radius,
    nearest_over_views,
    release_p_values,
    release_reasons,
    release_test,
    usable_shift,
)

FPR_TARGET = 0.01
BOOTSTRAP_BLOCK = 4_000_000  # scores per block of bootstrap resamples ranked at once (about 100 MB of temporaries)
PIXEL_SCALE = 2.0 / 255.0  # uint8 step -> model-space step ([0, 255] -> [-1, 1])
_REF_CACHE_BYTES = 1 << 30  # convert the reference once when its float copy fits in 1 GiB, else tile by tile


# ----------------------------------------------------------------------------------------- nearest neighbours


def _check_matrix(x: np.ndarray, name: str, min_rows: int = 1) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise HistodistillError(f"{name}: expected a 2-D matrix (rows = images), got shape {tuple(x.shape)}")
    if len(x) < min_rows:
        raise HistodistillError(f"{name}: needs at least {min_rows} rows, has {len(x)}")
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        raise HistodistillError(f"{name}: contains NaN or inf values")
    return x


def _same_width(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise HistodistillError(f"{names}: feature dimensions differ ({a.shape[1]} vs {b.shape[1]})")


def _work_dtype(device: torch.device) -> torch.dtype:
    return torch.float64 if device.type == "cpu" else torch.float32


def knn_distances(
    queries: np.ndarray,
    reference: np.ndarray,
    k: int,
    chunk: int = 2048,
    exclude_self: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Euclidean distances to and indices of the `k` nearest reference rows of every query row, nearest first.

    Tiles of `chunk` queries × `chunk` reference rows are searched with one matrix product each (float64 on CPU,
    float32 on a GPU), keeping a running top-k; the distances of the pairs found are then recomputed exactly in
    float64, so they equal brute force (for k = 1 the index too, the first one among exact ties; for k > 1 which of
    several exactly tied rows is returned is unspecified). With `exclude_self`, queries and reference are the same
    set and row i is never its own neighbour.
    """
    q = _check_matrix(queries, "queries")
    r = _check_matrix(reference, "reference", min_rows=k + int(exclude_self))
    _same_width(q, r, "queries/reference")
    if k < 1 or chunk < 1:
        raise HistodistillError(f"knn_distances: k ({k}) and chunk ({chunk}) must be positive")
    if exclude_self and len(q) != len(r):
        raise HistodistillError(f"exclude_self needs queries and reference to be one set ({len(q)} vs {len(r)} rows)")
    device = torch.device(device)
    dtype = _work_dtype(device)
    cache = r.size * torch.tensor([], dtype=dtype).element_size() <= _REF_CACHE_BYTES

    def to_t(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)

    r_all = to_t(r) if cache else None
    r_sq = (r_all * r_all).sum(1) if cache else None
    out_d = np.empty((len(q), k))
    out_i = np.empty((len(q), k), dtype=np.int64)
    for qs in range(0, len(q), chunk):
        qt = to_t(q[qs : qs + chunk])
        q_sq = (qt * qt).sum(1, keepdim=True)
        best_d = torch.full((len(qt), k), float("inf"), device=device, dtype=dtype)
        best_i = torch.zeros((len(qt), k), device=device, dtype=torch.int64)
        for rs in range(0, len(r), chunk):
            if cache:
                rt, rsq = r_all[rs : rs + chunk], r_sq[rs : rs + chunk]
            else:
                rt = to_t(r[rs : rs + chunk])
                rsq = (rt * rt).sum(1)
            d2 = (q_sq + rsq[None, :] - 2.0 * qt @ rt.T).clamp_(min=0.0)
            if exclude_self:
                rows = torch.arange(len(qt), device=device)
                cols = rows + qs - rs
                ok = (cols >= 0) & (cols < len(rt))
                d2[rows[ok], cols[ok]] = float("inf")
            if k == 1:  # min returns the first of tied minima, like brute-force argmin
                tile_d, tile_j = d2.min(1, keepdim=True)
            else:
                tile_d, tile_j = torch.topk(d2, min(k, d2.shape[1]), dim=1, largest=False)
            cand_d = torch.cat([best_d, tile_d], 1)
            cand_i = torch.cat([best_i, tile_j + rs], 1)
            # Stable merge: among exact ties the earlier tile (lower index) wins.
            order = torch.sort(cand_d, dim=1, stable=True).indices[:, :k]
            best_d, best_i = cand_d.gather(1, order), cand_i.gather(1, order)
        out_i[qs : qs + len(qt)] = best_i.cpu().numpy()
    # Exact float64 distances of the pairs found, in small row blocks (memory block × k × features).
    block = max(1, min(chunk, (1 << 24) // max(1, k * q.shape[1])))
    for s in range(0, len(q), block):
        qb = q[s : s + block].astype(np.float64)[:, None, :]
        out_d[s : s + block] = np.sqrt(((qb - r[out_i[s : s + block]].astype(np.float64)) ** 2).sum(-1))
    order = np.argsort(out_d, axis=1, kind="stable")
    return np.take_along_axis(out_d, order, 1), np.take_along_axis(out_i, order, 1)


def nearest_distances(
    queries: np.ndarray,
    reference: np.ndarray,
    chunk: int = 2048,
    exclude_self: bool = False,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, np.ndarray]:
    """Distance to and index of the nearest reference row of every query row (exact, chunked; see knn_distances)."""
    d, i = knn_distances(queries, reference, 1, chunk, exclude_self, device)
    return d[:, 0], i[:, 0]


def pixel_rows(images: np.ndarray) -> np.ndarray:
    """uint8 NHWC images as uint8 rows; distances between rows × PIXEL_SCALE = distances in model space [-1, 1]."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise HistodistillError(f"pixel_rows: expected uint8 NHWC images, got {images.dtype} {tuple(images.shape)}")
    return images.reshape(len(images), -1)


# ----------------------------------------------------------------------------------------- streamed rows

RowChunks = Callable[[int], Iterator[tuple[int, np.ndarray]]]
TILE_BYTES = 1 << 27  # one float64 tile of query or reference rows: at most 128 MiB
SATURATED = 0.95  # a fidelity score the n-matched real baseline reaches on average carries no information


def array_chunks(x: np.ndarray) -> RowChunks:
    """An in-memory matrix (or image array, flattened per row) as a source of row chunks."""
    rows = np.asarray(x).reshape(len(x), -1)
    return lambda n: ((s, rows[s : s + n]) for s in range(0, len(rows), n))


def _npy_header(fh: Any, where: str) -> tuple[tuple[int, ...], np.dtype]:
    shape, fortran, dtype = read_npy_header(fh)
    if fortran and len(shape) > 1:
        raise HistodistillError(f"{where}: Fortran-ordered array; rewrite it with the data rule")
    return tuple(shape), dtype


def npz_member_shape(path: str | os.PathLike, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of one array of an `.npz`, read from its header only."""
    try:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            return _npy_header(fh, f"{path}:{key}")
    except (FileNotFoundError, KeyError, zipfile.BadZipFile) as exc:
        raise HistodistillError(f"{path}: cannot read array {key!r} ({type(exc).__name__}); rerun the data rule")


def npz_row_chunks(path: str | os.PathLike, key: str) -> RowChunks:
    """Rows of one array of an `.npz`, read chunk by chunk from the (compressed) zip member: memory O(chunk)."""
    shape, dtype = npz_member_shape(path, key)
    row_bytes = int(np.prod(shape[1:], dtype=np.int64)) * dtype.itemsize

    def chunks(n: int) -> Iterator[tuple[int, np.ndarray]]:
        with zipfile.ZipFile(path) as zf, zf.open(f"{key}.npy") as fh:
            _npy_header(fh, f"{path}:{key}")
            for s in range(0, shape[0], n):
                rows = min(n, shape[0] - s)
                buf = fh.read(rows * row_bytes)
                if len(buf) != rows * row_bytes:
                    raise HistodistillError(f"{path}:{key}: truncated array; rerun the data rule")
                yield s, np.frombuffer(bytearray(buf), dtype=dtype).reshape(rows, -1)

    return chunks


def gather_rows(source: RowChunks, index: np.ndarray, chunk: int = 512) -> np.ndarray:
    """The rows `index` (any order, repeats allowed) of a chunked source, in the order of `index`."""
    index = np.asarray(index, dtype=np.int64)
    out: np.ndarray | None = None
    for s, block in source(chunk):
        hit = np.where((index >= s) & (index < s + len(block)))[0]
        if out is None:
            out = np.empty((len(index), block.shape[1]), dtype=block.dtype)
        out[hit] = block[index[hit] - s]
    if out is None:
        raise HistodistillError("gather_rows: empty source")
    return out


def tile_rows(dim: int, chunk: int) -> int:
    """Rows per float64 tile so that one tile stays within TILE_BYTES (and within `chunk`)."""
    return max(1, min(chunk, TILE_BYTES // (8 * max(1, dim))))


def scan_reference(
    queries: np.ndarray,
    reference: RowChunks | np.ndarray,
    thresholds_sq: np.ndarray | None = None,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
) -> dict[str, np.ndarray]:
    """One pass over the reference rows: per query row the squared distance to and index of its nearest reference
    row (the first among exact ties) and, given per-query squared thresholds t, how many reference rows lie at
    d² < t and at d² = t.

    Tiles are float64 whatever the device, so distances between uint8 rows are exact integers (every partial sum is
    an integer below 2^53); float rows carry the usual rounding. The reference may be streamed (`npz_row_chunks`), so
    memory is O(tile), independent of its length.
    """
    q = _check_matrix(np.asarray(queries).reshape(len(queries), -1), "queries")
    source = array_chunks(reference) if isinstance(reference, np.ndarray) else reference
    device = torch.device(device)
    rows = tile_rows(q.shape[1], chunk)
    thr = None if thresholds_sq is None else torch.as_tensor(np.asarray(thresholds_sq, np.float64), device=device)
    if thr is not None and thr.shape != (len(q),):
        raise HistodistillError(f"scan_reference: {tuple(thr.shape)} thresholds for {len(q)} queries")
    best = torch.full((len(q),), float("inf"), dtype=torch.float64, device=device)
    best_i = torch.full((len(q),), -1, dtype=torch.int64, device=device)
    n_lt = torch.zeros(len(q), dtype=torch.int64, device=device)
    n_eq = torch.zeros(len(q), dtype=torch.int64, device=device)
    cache = q.size * 8 <= TILE_BYTES * 2
    to_t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=torch.float64)  # noqa: E731
    q_all = to_t(q) if cache else None
    n_ref = 0
    for rs, block in source(rows):
        if block.shape[1] != q.shape[1]:
            raise HistodistillError(f"queries/reference: feature dimensions differ ({q.shape[1]} vs {block.shape[1]})")
        rt = to_t(block)
        r_sq = (rt * rt).sum(1)
        for qs in range(0, len(q), rows):
            qe = min(len(q), qs + rows)
            qt = q_all[qs:qe] if cache else to_t(q[qs:qe])
            d2 = ((qt * qt).sum(1, keepdim=True) + r_sq[None, :] - 2.0 * qt @ rt.T).clamp_(min=0.0)
            tile_d, tile_j = d2.min(1)
            better = tile_d < best[qs:qe]
            best[qs:qe] = torch.where(better, tile_d, best[qs:qe])
            best_i[qs:qe] = torch.where(better, tile_j + rs, best_i[qs:qe])
            if thr is not None:
                t = thr[qs:qe, None]
                n_lt[qs:qe] += (d2 < t).sum(1)
                n_eq[qs:qe] += (d2 == t).sum(1)
        n_ref += len(block)
    if n_ref == 0:
        raise HistodistillError("scan_reference: the reference has no rows")
    return {
        "d2": best.cpu().numpy(),
        "index": best_i.cpu().numpy(),
        "n_lt": n_lt.cpu().numpy(),
        "n_eq": n_eq.cpu().numpy(),
        "n_reference": np.int64(n_ref),
    }


def near_copies(images: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """Planted near-copies: uint8 images plus Gaussian noise of std `noise` × 255 (seeded), clipped to [0, 255]."""
    rng = np.random.default_rng([seed, 31])
    noisy = np.asarray(images, np.float32) + rng.normal(scale=noise * 255.0, size=images.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


# ----------------------------------------------------------------------------------------- DCR share


def closer_to_train_probability(n_lt: np.ndarray, n_eq: np.ndarray, n_train: int, n_holdout: int) -> np.ndarray:
    """Per query: the probability, over uniform draws of `n_holdout` of the `n_train` train rows, that the nearest
    drawn train row is closer than the query's nearest holdout row (exact ties count one half).

    With m train rows closer than the holdout neighbour, no closer row is drawn with probability
    C(N − m, h) / C(N, h); this is the limit of averaging over many subsample draws, computed exactly.
    """
    if n_holdout > n_train:
        raise HistodistillError(
            f"the DCR share needs a holdout no larger than the train split ({n_holdout} > {n_train} images)"
        )
    big_n, h = float(n_train), float(n_holdout)

    def none_drawn(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, np.float64)
        ok = big_n - m >= h
        rest = np.where(ok, big_n - m, h)
        logp = gammaln(rest + 1) - gammaln(rest - h + 1) - gammaln(big_n + 1) + gammaln(big_n - h + 1)
        return np.where(ok, np.exp(logp), 0.0)

    n_lt = np.asarray(n_lt)
    return 1.0 - 0.5 * (none_drawn(n_lt) + none_drawn(n_lt + np.asarray(n_eq)))


def wilson_ci(share: float, n: int, z: float = 1.959964) -> list[float]:
    """Wilson score 95 % interval of a proportion `share` of `n` (conservative for means of [0, 1] probabilities)."""
    if n < 1:
        raise HistodistillError("wilson_ci: needs at least one observation")
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def difference_ci(share: float, n: int, null: float, n_null: int) -> list[float]:
    """95 % interval of share − null from the two Wilson intervals (Newcombe 1998, method 10): the null's own error
    is part of it."""
    lo1, hi1 = wilson_ci(share, n)
    lo2, hi2 = wilson_ci(null, n_null)
    d = share - null
    return [float(d - np.hypot(share - lo1, hi2 - null)), float(d + np.hypot(hi1 - share, null - lo2))]


def dcr_share_test(p_shared: np.ndarray, p_null: np.ndarray) -> dict[str, Any]:
    """DCR share of a set (mean closer-to-train probability, 0.5 = no leakage) with its Wilson 95 % CI, beside the
    same number for the null (audit-holdout images, each against the rest of the holdout), and the difference
    share − null with a 95 % interval that includes the null's error."""
    p_shared, p_null = np.asarray(p_shared, float), np.asarray(p_null, float)
    share, null = float(p_shared.mean()), float(p_null.mean())
    ci = wilson_ci(share, len(p_shared))
    return {
        "share": share,
        "ci95": ci,
        "n": int(len(p_shared)),
        "null_share": null,
        "null_ci95": wilson_ci(null, len(p_null)),
        "n_null": int(len(p_null)),
        "ci_contains_null": bool(ci[0] <= null <= ci[1]),
        "difference": share - null,
        "difference_ci95": difference_ci(share, len(p_shared), null, len(p_null)),
    }


def leak_counts(n: int) -> list[int]:
    """Numbers of leaked images tried by the power simulations of a set of n images."""
    return sorted({min(n, max(1, int(round(f * n)))) for f in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)})


def _smallest_detectable(power: dict[int, float], n: int, target: float) -> float | None:
    hits = [m for m, p in sorted(power.items()) if p >= target]
    return hits[0] / n if hits else None


def dcr_share_power(
    n: int,
    p_planted: np.ndarray,
    p_null: np.ndarray,
    reps: int = 200,
    seed: int = 0,
    target: float = 0.8,
    margin: float = 0.0,
) -> dict[str, Any]:
    """Smallest share of planted near-copies that the gate's DCR criterion detects (lower end of the interval of
    share − null above `margin`) in at least `target` of simulated sets of n images (the rest unseen holdout
    images), by simulation."""
    rng = np.random.default_rng([seed, 41, n])
    null_mean = float(np.mean(p_null))
    power = {}
    for m in leak_counts(n):
        shares = (
            rng.choice(p_planted, (reps, m)).sum(1) + rng.choice(p_null, (reps, n - m)).sum(1)
        ) / n  # fmt: skip
        power[m] = float(np.mean([difference_ci(s, n, null_mean, len(p_null))[0] > margin for s in shares]))
    return {
        "smallest_detectable_leak": _smallest_detectable(power, n, target),
        "power_by_leaked": {str(m): p for m, p in power.items()},
        "target_power": target,
        "reps": reps,
    }


def mann_whitney_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """AUC of member vs non-member scores from mid-ranks (ties count one half)."""
    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    return float(mann_whitney_aucs(m[None], n[None])[0])


def mann_whitney_aucs(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> np.ndarray:
    """Row-wise `mann_whitney_auc` of (B, n1) member and (B, n2) non-member scores (bootstrap resamples at once)."""
    from scipy.stats import rankdata

    n1, n2 = member_scores.shape[1], nonmember_scores.shape[1]
    ranks = rankdata(np.concatenate([member_scores, nonmember_scores], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n2)


def auc_detects(member_scores: np.ndarray, nonmember_scores: np.ndarray, z: float = 1.644854) -> bool:
    """One-sided Mann–Whitney test at 5 % (normal approximation): is the attack's AUC above 0.5?"""
    n1, n2 = len(member_scores), len(nonmember_scores)
    auc = mann_whitney_auc(member_scores, nonmember_scores)
    return bool((auc - 0.5) / np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2)) > z)


def jsonable(report: Any) -> Any:
    """A copy of a report without the keys that start with '_' (raw arrays for figures), at every level."""
    if isinstance(report, dict):
        return {k: jsonable(v) for k, v in report.items() if not str(k).startswith("_")}
    if isinstance(report, (list, tuple)):
        return [jsonable(v) for v in report]
    if isinstance(report, np.generic):
        return report.item()
    if isinstance(report, np.ndarray):
        return report.tolist()
    return report


# ----------------------------------------------------------------------------------------- membership inference


def balanced_indices(n_members: int, n_nonmembers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of equally many members and non-members: the larger group is subsampled (seeded) to the smaller."""
    if n_members < 1 or n_nonmembers < 1:
        raise HistodistillError(f"membership inference needs members and non-members ({n_members}, {n_nonmembers})")
    n = min(n_members, n_nonmembers)
    rng = np.random.default_rng([seed, 8])

    def pick(total: int) -> np.ndarray:
        return np.sort(rng.choice(total, n, replace=False)) if total > n else np.arange(total)

    return pick(n_members), pick(n_nonmembers)


def tpr_at_fpr(labels: np.ndarray, scores: np.ndarray, fpr_target: float = FPR_TARGET) -> float:
    """True-positive rate at `fpr_target` on the ROC curve, linearly interpolated between its vertices.

    At an FPR that is a vertex, the highest TPR reached there is returned (the top of a vertical segment).
    """
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores, drop_intermediate=False)
    i = int(np.searchsorted(fpr, fpr_target, side="right")) - 1  # last vertex with fpr <= target
    if fpr[i] == fpr_target or i == len(fpr) - 1:
        return float(tpr[i])
    j = i + 1
    return float(tpr[i] + (tpr[j] - tpr[i]) * (fpr_target - fpr[i]) / (fpr[j] - fpr[i]))


def tprs_at_fpr(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr_target: float = FPR_TARGET
) -> np.ndarray:
    """Row-wise `tpr_at_fpr` of (B, n1) member and (B, n2) non-member scores: a bootstrap's resamples at once.

    The ROC is scikit-learn's `roc_curve(drop_intermediate=False)`: the origin, then one vertex at the end of each
    run of tied scores, from the highest score down.
    """
    n1, n2 = member_scores.shape[1], nonmember_scores.shape[1]
    scores = np.concatenate([member_scores, nonmember_scores], axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    ranked = np.take_along_axis(scores, order, axis=1)
    is_member = order < n1
    tpr, fpr = np.cumsum(is_member, axis=1) / n1, np.cumsum(~is_member, axis=1) / n2
    vertex = np.ones(ranked.shape, bool)
    vertex[:, :-1] = ranked[:, :-1] != ranked[:, 1:]
    position, end = np.arange(ranked.shape[1]), ranked.shape[1]
    i = np.where(vertex & (fpr <= fpr_target), position, -1).max(axis=1)  # last vertex within target; -1: origin
    j = np.where(vertex & (position > i[:, None]), position, end).min(axis=1)  # the next vertex; end: none
    rows = np.arange(len(ranked))
    at_i = i >= 0
    tpr_i = np.where(at_i, tpr[rows, np.maximum(i, 0)], 0.0)
    fpr_i = np.where(at_i, fpr[rows, np.maximum(i, 0)], 0.0)
    tpr_j, fpr_j = tpr[rows, np.minimum(j, end - 1)], fpr[rows, np.minimum(j, end - 1)]
    with np.errstate(divide="ignore", invalid="ignore"):
        between = tpr_i + (tpr_j - tpr_i) * (fpr_target - fpr_i) / (fpr_j - fpr_i)
    return np.where((fpr_i == fpr_target) | (j == end), tpr_i, between)


def attack_metrics(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, n_bootstrap: int = 200, seed: int = 0
) -> dict[str, Any]:
    """AUC and TPR at 1 % FPR of an attack (higher score = member), with stratified bootstrap 95 % CIs."""
    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)

    auc, tpr = mann_whitney_auc(m, n), tpr_at_fpr(np.r_[np.ones(len(m)), np.zeros(len(n))], np.r_[m, n])
    rng = np.random.default_rng([seed, 95])
    draws = [(rng.choice(m, len(m)), rng.choice(n, len(n))) for _ in range(n_bootstrap)]
    boot = np.empty((n_bootstrap, 2))
    rows = max(1, BOOTSTRAP_BLOCK // (len(m) + len(n)))  # resamples scored together, in bounded memory
    for start in range(0, n_bootstrap, rows):
        a = np.stack([d[0] for d in draws[start : start + rows]])
        b = np.stack([d[1] for d in draws[start : start + rows]])
        boot[start : start + rows] = np.c_[mann_whitney_aucs(a, b), tprs_at_fpr(a, b)]

    def ci(col: int) -> list[float] | None:
        return (
            [float(np.percentile(boot[:, col], 2.5)), float(np.percentile(boot[:, col], 97.5))] if len(boot) else None
        )

    return {
        "auc": auc,
        "auc_ci95": ci(0),
        "tpr_at_1pct_fpr": tpr,
        "tpr_at_1pct_fpr_ci95": ci(1),
        "n_members": int(len(m)),
        "n_nonmembers": int(len(n)),
        "n_bootstrap": int(n_bootstrap),
    }


def membership_inference(
    shared_emb: np.ndarray,
    members_emb: np.ndarray,
    nonmembers_emb: np.ndarray,
    n_bootstrap: int = 200,
    seed: int = 0,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Distance attack: a real record's score is minus its distance to the nearest shared image.

    Members and non-members are balanced (the larger group subsampled, seeded); AUC 0.5 = no leak, 1 = every
    member identified.
    """
    members_emb, nonmembers_emb = _check_matrix(members_emb, "members"), _check_matrix(nonmembers_emb, "non-members")
    mi, ni = balanced_indices(len(members_emb), len(nonmembers_emb), seed)
    dm, _ = nearest_distances(members_emb[mi], shared_emb, chunk, device=device)
    dn, _ = nearest_distances(nonmembers_emb[ni], shared_emb, chunk, device=device)
    return {"attack": "distance", **attack_metrics(-dm, -dn, n_bootstrap, seed)}


def _whitened_pca(reference: np.ndarray, n_components: int, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """Standardise on the reference, project on its top principal components, whiten (unit variance each)."""
    from sklearn.decomposition import PCA
    from sklearn.preprocessing import StandardScaler

    reference = np.asarray(reference, np.float64)
    scaler = StandardScaler().fit(reference)
    z = scaler.transform(reference)
    dims = max(1, min(n_components, len(reference) - 1, reference.shape[1]))
    pca = PCA(n_components=dims, random_state=seed).fit(z)
    var = pca.explained_variance_
    keep = var > 1e-12 * max(var.max(), 1e-300)
    if not keep.any():
        raise HistodistillError("density_ratio_attack: the reference set has no variance")
    comps, std = pca.components_[keep], np.sqrt(var[keep])
    return lambda x: ((scaler.transform(np.asarray(x, np.float64)) - pca.mean_) @ comps.T) / std


def scott_bandwidth(n: int, dims: int) -> float:
    """Scott's rule for data of unit variance per dimension: n^(-1/(d+4))."""
    return float(n ** (-1.0 / (dims + 4)))


def density_ratio_scorer(
    reference_emb: np.ndarray,
    members_emb: np.ndarray,
    nonmembers_emb: np.ndarray,
    seed: int = 0,
    n_components: int = 10,
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """shared rows -> DOMIAS scores log p_shared(x) − log p_reference(x) of the balanced members and non-members
    (see density_ratio_attack); everything that does not depend on the shared set is fitted once."""
    from sklearn.neighbors import KernelDensity

    reference = _check_matrix(reference_emb, "reference", min_rows=2)
    members, nonmembers = _check_matrix(members_emb, "members"), _check_matrix(nonmembers_emb, "non-members")
    for other, name in ((members, "members"), (nonmembers, "non-members")):
        _same_width(reference, other, f"reference/{name}")
    project = _whitened_pca(reference, n_components, seed)
    zr = project(reference)
    dims = zr.shape[1]
    kde_r = KernelDensity(kernel="gaussian", bandwidth=scott_bandwidth(len(zr), dims)).fit(zr)
    mi, ni = balanced_indices(len(members), len(nonmembers), seed)
    zm, zn = project(members[mi]), project(nonmembers[ni])
    log_r_m, log_r_n = kde_r.score_samples(zm), kde_r.score_samples(zn)

    def scores(shared_emb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        shared = _check_matrix(shared_emb, "shared")
        _same_width(shared, reference, "shared/reference")
        kde_s = KernelDensity(kernel="gaussian", bandwidth=scott_bandwidth(len(shared), dims)).fit(project(shared))
        return kde_s.score_samples(zm) - log_r_m, kde_s.score_samples(zn) - log_r_n

    return scores


def density_ratio_attack(
    shared_emb: np.ndarray,
    reference_emb: np.ndarray,
    members_emb: np.ndarray,
    nonmembers_emb: np.ndarray,
    seed: int = 0,
    n_components: int = 10,
    n_bootstrap: int = 200,
) -> dict[str, Any]:
    """DOMIAS-style attack: score = log p_shared(x) − log p_reference(x), Gaussian KDEs in a whitened PCA space.

    The PCA (≤ `n_components` dims) and standardisation are fitted on the reference set (real holdout images that
    are neither members nor the non-members scored); each KDE's bandwidth is Scott's rule for its own size.
    Members and non-members are balanced as in `membership_inference`.
    """
    ms, ns = density_ratio_scorer(reference_emb, members_emb, nonmembers_emb, seed, n_components)(shared_emb)
    return {
        "attack": "density_ratio",
        "n_reference": int(len(reference_emb)),
        **attack_metrics(ms, ns, n_bootstrap, seed),
    }


# ----------------------------------------------------------------------------------------- fidelity


def prdc(
    real_emb: np.ndarray,
    fake_emb: np.ndarray,
    k: int = 5,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
    real_radii: np.ndarray | None = None,
) -> dict[str, Any]:
    """Precision, recall, density and coverage (Naeem et al. 2020, ICML), with their published definitions.

    r_i = distance of real i to its k-th nearest other real row, s_j likewise among the fakes, d_ij = ‖real_i − fake_j‖:
      precision = mean_j 1[∃i: d_ij < r_i]          recall   = mean_i 1[∃j: d_ij < s_j]
      density   = (1/k) mean_j Σ_i 1[d_ij < r_i]    coverage = mean_i 1[min_j d_ij < r_i]
    Recall is None when there are no more than k fakes (s_j undefined). `real_radii` (the r_i) may be given.
    """
    real = _check_matrix(real_emb, "real", min_rows=k + 1)
    fake = _check_matrix(fake_emb, "fake")
    _same_width(real, fake, "real/fake")
    if real_radii is None:  # the O(N²) part; the workflow reads it from privacy/reference.npz
        real_radii = knn_distances(real, real, k, chunk, exclude_self=True, device=device)[0][:, k - 1]
    r_real = np.asarray(real_radii, np.float64)
    if r_real.shape != (len(real),):
        raise HistodistillError(f"prdc: {r_real.shape} radii for {len(real)} real rows")
    s_fake = knn_distances(fake, fake, k, chunk, exclude_self=True)[0][:, k - 1] if len(fake) > k else None
    fake_t = torch.from_numpy(np.ascontiguousarray(fake, np.float64))
    inside_count = np.zeros(len(fake), dtype=np.int64)  # Σ_i 1[d_ij < r_i] per fake
    recall_hit = np.zeros(len(real), dtype=bool)
    covered = np.zeros(len(real), dtype=bool)
    for s in range(0, len(real), chunk):
        d = torch.cdist(
            torch.from_numpy(np.ascontiguousarray(real[s : s + chunk], np.float64)),
            fake_t,
            compute_mode="donot_use_mm_for_euclid_dist",
        ).numpy()
        r = r_real[s : s + chunk, None]
        inside_count += (d < r).sum(0)
        covered[s : s + chunk] = d.min(1) < r[:, 0]
        if s_fake is not None:
            recall_hit[s : s + chunk] = (d < s_fake[None, :]).any(1)
    return {
        "precision": float((inside_count > 0).mean()),
        "recall": float(recall_hit.mean()) if s_fake is not None else None,
        "density": float(inside_count.mean() / k),
        "coverage": float(covered.mean()),
        "k": int(k),
        "n_real": int(len(real)),
        "n_fake": int(len(fake)),
    }


# ----------------------------------------------------------------------------------------- real-side reference

SPACES = ("pixel", "embedding")
SCALE = {"pixel": PIXEL_SCALE, "embedding": 1.0}


def _split_images(real_path: str | os.PathLike, key: str) -> np.ndarray:
    with np.load(real_path, allow_pickle=False) as z:
        if key not in z.files:
            raise HistodistillError(f"{real_path}: missing array {key!r}; rerun the data rule")
        return z[key]


def embed_rows(image_shape: tuple[int, ...]) -> int:
    """Images embedded at a time when the train split is streamed: 256 up to 64 px, fewer for larger images so that
    one activation map of a 128-wide network stays near 0.5 GB."""
    return max(8, min(256, (1 << 20) // max(1, image_shape[0] * image_shape[1])))


def embed_streamed(source: RowChunks, image_shape: tuple[int, ...], embed_fn: Callable[[np.ndarray], np.ndarray]):
    """Embeddings (float32) of a streamed image array, `embed_rows` images at a time."""
    rows = embed_rows(image_shape)
    parts = [np.asarray(embed_fn(b.reshape(-1, *image_shape)), np.float32) for _, b in source(rows)]
    return np.concatenate(parts)


def _check_train_emb(train_emb: np.ndarray, n_train: int, real_path: Any) -> None:
    if train_emb.ndim != 2 or len(train_emb) != n_train or not np.isfinite(train_emb).all():
        raise HistodistillError(
            f"train embeddings {train_emb.shape} do not match the {n_train} train images of {real_path} (or are not "
            "finite); rerun privacy_train_embeddings"
        )


def embed_batched(images: np.ndarray, embed_fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Embeddings (float32) of in-memory images, `embed_rows` at a time."""
    return embed_streamed(array_chunks(images), images.shape[1:], embed_fn)


def _probabilities(
    queries: np.ndarray, train: RowChunks | np.ndarray, holdout: np.ndarray, n_train: int, chunk: int, device: Any
) -> dict[str, np.ndarray]:
    """DCR (unscaled), nearest train index and closer-to-train probability of every query row."""
    hold = scan_reference(queries, holdout, chunk=chunk, device=device)
    scan = scan_reference(queries, train, hold["d2"], chunk=chunk, device=device)
    return {
        "dcr": np.sqrt(scan["d2"]),
        "nn": scan["index"],
        "p": closer_to_train_probability(scan["n_lt"], scan["n_eq"], n_train, len(holdout)),
    }


def random_features(image_shape: tuple[int, ...], seed: int, device: Any) -> Callable[[np.ndarray], np.ndarray]:
    """The release test's second space: features of a seeded, untrained ConvNet (see embed.random_feature_net)."""
    from .embed import embed, random_feature_net

    net = random_feature_net(int(image_shape[2]), int(image_shape[0]), seed, torch.device(device))
    return lambda images: embed(images, net, torch.device(device))


def windowed_rows(source: RowChunks, image_shape: tuple[int, ...], corner: tuple[int, int], window: tuple[int, int]):
    """Row chunks of a streamed uint8 image array cut to the `window` (height, width) at `corner` (top, left)."""
    (top, left), (hh, ww) = corner, window

    def chunks(rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for start, block in source(rows):
            cut = block.reshape(-1, *image_shape)[:, top : top + hh, left : left + ww]
            yield start, np.ascontiguousarray(cut).reshape(len(block), -1)

    return chunks


def release_nearest(
    space: str,
    train_px: RowChunks,
    image_shape: tuple[int, ...],
    random_train: np.ndarray,
    random_fn: Callable[[np.ndarray], np.ndarray],
    chunk: int,
    device: Any,
) -> Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, np.ndarray]]:
    """`nearest(uint8 windows, corner) -> (distance, train index)` in one of the release test's spaces: pixel
    windows against the train split's windows at `corner` (model-space units); random features of whole images."""

    def nearest(windows: np.ndarray, corner: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        if space == "pixel":
            train = windowed_rows(train_px, image_shape, corner, windows.shape[1:3])
            scan = scan_reference(pixel_rows(windows), train, chunk=chunk, device=device)
            return np.sqrt(scan["d2"]) * PIXEL_SCALE, scan["index"]
        scan = scan_reference(embed_batched(windows, random_fn), random_train, chunk=chunk, device=device)
        return np.sqrt(scan["d2"]), scan["index"]

    return nearest


def release_distances(
    images: np.ndarray,
    train_px: RowChunks,
    image_shape: tuple[int, ...],
    random_train: np.ndarray,
    random_fn: Callable[[np.ndarray], np.ndarray],
    shift: int,
    chunk: int,
    device: Any,
) -> dict[str, dict[str, np.ndarray]]:
    """The release test's statistic of every image in both spaces (pixel windows moved by up to `shift` px;
    random features of the whole image and its mirror)."""
    return {
        space: nearest_over_views(
            images,
            shift if space == "pixel" else 0,
            release_nearest(space, train_px, image_shape, random_train, random_fn, chunk, device),
        )
        for space in RELEASE_SPACES
    }


def leave_one_out_d2(rows: np.ndarray, chunk: int, device: Any) -> np.ndarray:
    """Per row: the squared distance to the nearest other row of the same set (float64; exact for uint8 rows)."""
    _, idx = nearest_distances(rows, rows, chunk, exclude_self=True, device=device)
    a = rows.astype(np.float64)
    return ((a - a[idx]) ** 2).sum(1)


def privacy_reference(
    real_path: str | os.PathLike,
    embed_fn: Callable[[np.ndarray], np.ndarray],
    k: int = 5,
    seed: int = 0,
    chunk: int = 2048,
    n_planted: int = 100,
    planted_noise: float = 0.02,
    device: torch.device | str = "cpu",
    train_emb: np.ndarray | None = None,
    shift: int = 2,
) -> dict[str, np.ndarray]:
    """Everything about the real data that every per-subset audit needs, computed once per dataset.

    Split roles: members = the train split (streamed from `real_path`, never held in memory as a whole); the audit
    holdout = the test split, which nothing that shapes a set reads; the validation split only as the fidelity
    baseline and the release test's calibration check. Per space (pixel, embedding): holdout → train DCR, the null
    (each holdout image's closer-to-train probability against the rest of the holdout) and the same for
    `n_planted` planted near-copies of training images (the DCR share's power). For the per-image release test
    (`release.py`): the holdout's and the validation images' nearest-train distances over views, in pixels and in
    random features (`shift` capped by `usable_shift` for small images). Embedding space also keeps the train/test/validation embeddings and the train rows' k-th
    neighbour radii (PRDC).
    """
    shape, _ = npz_member_shape(real_path, "train_images")
    train_px = npz_row_chunks(real_path, "train_images")
    test, val = _split_images(real_path, "test_images"), _split_images(real_path, "val_images")
    n_train = shape[0]
    if n_train < k + 1 or len(test) < 3 or len(val) < 2:
        raise HistodistillError(f"{real_path}: the audit needs > {k} train, ≥ 3 test and ≥ 2 validation images")
    if len(test) - 1 > n_train:
        raise HistodistillError(f"{real_path}: the audit holdout (test split) is larger than the train split")
    rng = np.random.default_rng([seed, 17])
    planted_idx = np.sort(rng.choice(n_train, min(n_planted, n_train), replace=False))
    planted = near_copies(gather_rows(train_px, planted_idx).reshape(-1, *shape[1:]), planted_noise, seed)
    if train_emb is None:
        train_emb = embed_streamed(train_px, shape[1:], embed_fn)
    _check_train_emb(train_emb, n_train, real_path)
    emb = {name: embed_batched(x, embed_fn) for name, x in (("test", test), ("val", val), ("planted", planted))}
    shift = usable_shift(shift, shape[1:])
    random_seed = int(np.random.default_rng([seed, 59]).integers(2**31))
    random_fn = random_features(shape[1:], random_seed, device)
    random_train = embed_streamed(train_px, shape[1:], random_fn)
    out: dict[str, np.ndarray] = {
        "train_emb": train_emb,
        "test_emb": emb["test"],
        "val_emb": emb["val"],
        "train_radii": knn_distances(train_emb, train_emb, k, chunk, exclude_self=True, device=device)[0][:, k - 1],
        "planted_index": planted_idx,
        "n_train": np.int64(n_train),
        "k": np.int64(k),
        "planted_noise": np.float64(planted_noise),
        "random_seed": np.int64(random_seed),
        "random_train_emb": random_train,
        "release_shift": np.int64(shift),
    }
    for space in SPACES:
        train = train_px if space == "pixel" else train_emb
        test_rows = pixel_rows(test) if space == "pixel" else emb["test"]
        planted_rows = pixel_rows(planted) if space == "pixel" else emb["planted"]
        thr = np.r_[leave_one_out_d2(test_rows, chunk, device), scan_reference(planted_rows, test_rows, chunk=chunk,
                                                                                  device=device)["d2"]]
        scan = scan_reference(np.concatenate([test_rows, planted_rows]), train, thr, chunk=chunk, device=device)
        dcr = np.sqrt(scan["d2"]) * SCALE[space]
        nt = len(test)
        out[f"{space}_test_dcr"] = dcr[:nt]
        out[f"{space}_test_nn"] = scan["index"][:nt]
        out[f"{space}_null_p"] = closer_to_train_probability(scan["n_lt"][:nt], scan["n_eq"][:nt], n_train, nt - 1)
        out[f"{space}_planted_dcr"] = dcr[nt:]
        out[f"{space}_planted_p"] = closer_to_train_probability(scan["n_lt"][nt:], scan["n_eq"][nt:], n_train, nt)
    for name, images in (("holdout", test), ("val", val)):
        found = release_distances(images, train_px, shape[1:], random_train, random_fn, shift, chunk, device)
        for space in RELEASE_SPACES:
            out[f"release_{space}_{name}"] = found[space]["distance"]
    return out


def near_copy_threshold(reference: dict[str, np.ndarray], space: str, quantile: float) -> float:
    """The `quantile` of real holdout (test) → train distances in `space`."""
    return float(np.quantile(reference[f"{space}_test_dcr"], quantile))


def release_calibration_check(reference: dict[str, np.ndarray], alpha: float, sizes: Iterable[int], tail: int):
    """The release test on unseen real images (the validation split, not part of its calibration): how many the
    test flags at the level it uses for a set of each size (expected: about alpha / spaces of a set of that size
    are flagged, so almost never one), and the detection radius beside the holdout's distances."""
    n_val = len(reference[f"release_{RELEASE_SPACES[0]}_val"])
    out: dict[str, Any] = {"n_validation": n_val, "alpha": alpha, "sizes": {}}
    for n in sizes:
        level = alpha / (n * len(RELEASE_SPACES))
        entry = {"level": level}
        for space in RELEASE_SPACES:
            cal = reference[f"release_{space}_holdout"]
            p = release_p_values(reference[f"release_{space}_val"], cal, tail)
            entry[space] = {
                "validation_flagged": int((p < level).sum()),
                "detection_radius": detection_radius(cal, level, tail),
                "holdout_min": float(np.min(cal)),
                "holdout_median": float(np.median(cal)),
            }
        out["sizes"][str(n)] = entry
    return out


# ----------------------------------------------------------------------------------------- per-set audit


def pairwise_d2(a: np.ndarray, b: np.ndarray, chunk: int = 2048, device: torch.device | str = "cpu") -> np.ndarray:
    """All squared distances between rows of a and rows of b (float64 tiles on `device`; exact for uint8 rows)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    rows = tile_rows(a.shape[1], chunk)
    out = np.empty((len(a), len(b)))
    for s in range(0, len(a), rows):
        at = torch.from_numpy(np.ascontiguousarray(a[s : s + rows], np.float64)).to(device)
        for t in range(0, len(b), rows):
            bt = torch.from_numpy(np.ascontiguousarray(b[t : t + rows], np.float64)).to(device)
            d2 = (at * at).sum(1, keepdim=True) + (bt * bt).sum(1)[None] - 2.0 * at @ bt.T
            out[s : s + len(at), t : t + len(bt)] = d2.clamp_(min=0.0).cpu().numpy()
    return out


def attack_power(
    n: int,
    planted: np.ndarray,
    filler: np.ndarray,
    members: np.ndarray,
    nonmembers: np.ndarray,
    score_fn: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None,
    seed: int = 0,
    target: float = 0.8,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Smallest leak an attack detects (one-sided Mann–Whitney at 5 %) in ≥ `target` of simulated shared sets of n
    images: m near-copies of random training images (`planted`, reps × n rows) plus n − m unseen images (`filler`).

    `score_fn(shared_rows) -> (member scores, non-member scores)`; None = the distance attack, computed from one
    precomputed distance matrix.
    """
    reps = len(planted)
    flat = planted.reshape(reps * n, -1)
    rng = np.random.default_rng([seed, 43, n])
    if score_fn is None:
        cand = np.concatenate([flat, filler.reshape(len(filler), -1)])
        d_m, d_n = pairwise_d2(members, cand, chunk, device), pairwise_d2(nonmembers, cand, chunk, device)
    power = {}
    for m in leak_counts(n):
        hits = 0
        for r in range(reps):
            fill = rng.choice(len(filler), n - m, replace=len(filler) < n - m)
            if score_fn is None:
                cols = np.r_[r * n + np.arange(m), reps * n + fill]
                ms, ns = -d_m[:, cols].min(1), -d_n[:, cols].min(1)
            else:
                ms, ns = score_fn(np.concatenate([flat[r * n : r * n + m], filler[fill].reshape(n - m, flat.shape[1])]))
            hits += auc_detects(ms, ns)
        power[m] = hits / reps
    return {
        "smallest_detectable_leak": _smallest_detectable(power, n, target),
        "power_by_leaked": {str(m): p for m, p in power.items()},
        "target_power": target,
        "reps": reps,
    }


def fidelity_with_baseline(
    e_shared: np.ndarray,
    e_train: np.ndarray,
    radii: np.ndarray,
    e_unseen: np.ndarray,
    k: int,
    seed: int,
    draws: int = 5,
    chunk: int = 2048,
) -> dict[str, Any]:
    """PRDC and Fréchet distance of the shared set against the train split, beside the same numbers for n-matched
    sets of unseen real images (mean and SD over `draws` seeded draws). A metric is left out (value None, reason
    given) where it is undefined, and recall where the real baseline averages ≥ SATURATED (with few images the
    fakes' k-NN radii are so large that recall is near 1 for any set)."""
    n = len(e_shared)
    nb = min(n, len(e_unseen))
    rng = np.random.default_rng([seed, 53, n])

    def metrics(e: np.ndarray) -> dict[str, float | None]:
        out = prdc(e_train, e, k, chunk, real_radii=radii)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LinAlgWarning)
            out["frechet_distance"] = frechet_distance(e, e_train) if len(e) > 1 else None
        return out

    shared = metrics(e_shared)
    base = [metrics(e_unseen[np.sort(rng.choice(len(e_unseen), nb, replace=False))]) for _ in range(draws)]
    report: dict[str, Any] = {"k": k, "n": n, "n_baseline": nb, "baseline_draws": draws}
    for key in ("precision", "recall", "density", "coverage", "frechet_distance"):
        vals = [b[key] for b in base if b[key] is not None]
        entry: dict[str, Any] = {
            "value": shared[key],
            "baseline": float(np.mean(vals)) if vals else None,
            "baseline_sd": float(np.std(vals)) if vals else None,
        }
        if shared[key] is None or not vals:
            entry.update(value=None, left_out="undefined at this set size")
        elif key == "recall" and np.mean(vals) >= SATURATED:  # small n inflates the fake radii
            entry.update(value=None, left_out=f"saturated: n-matched unseen real images score ≥ {SATURATED}")
        report[key] = entry
    return report


def _validated_subset(subset: dict[str, np.ndarray], image_shape: tuple[int, ...], n_train: int, where: str):
    for key in ("images", "source"):
        if key not in subset:
            raise HistodistillError(f"{where}: missing array {key!r}; rerun the rule that wrote it")
    images = np.asarray(subset["images"])
    if images.ndim != 4 or images.shape[1:] != tuple(image_shape) or images.dtype != np.uint8:
        raise HistodistillError(
            f"{where}: images are {images.dtype} {tuple(images.shape)}, expected uint8 (N, *{tuple(image_shape)})"
        )
    if not len(images):
        raise HistodistillError(f"{where}: the subset is empty")
    source = str(np.asarray(subset["source"]))
    if source == "real":
        idx = np.asarray(subset.get("indices", []), dtype=np.int64)
        if len(idx) != len(images) or idx.min() < 0 or idx.max() >= n_train:
            raise HistodistillError(f"{where}: indices do not point into the {n_train} real train images")
    elif source not in ("pool", "distilled"):
        raise HistodistillError(f"{where}: unknown source {source!r} (expected 'pool', 'real' or 'distilled')")
    return images, source


def audit_subset(
    subset: dict[str, np.ndarray],
    real_path: str | os.PathLike,
    reference: dict[str, np.ndarray],
    embed_fn: Callable[[np.ndarray], np.ndarray],
    where: str = "subset",
    chunk: int = 2048,
    n_bootstrap: int = 200,
    seed: int = 0,
    near_copy_quantile: float = 0.05,
    power_reps: int = 10,
    device: torch.device | str = "cpu",
    alpha: float = 0.05,
    tail: int = 50,
    margin: float = 0.0,
    gate_only: bool = False,
) -> dict[str, Any]:
    """The privacy and fidelity report of one shared set (JSON-able after `jsonable`), under one member definition
    for every set: members = the real train split, whatever the set's source; the audit holdout = the test split.

    The per-image release test (`release.py`: every image against the holdout, pixels and random features,
    Bonferroni at `alpha`). Per space (pixel, embedding): the DCR share with its CI and its difference to the null
    (holdout images against the rest of the holdout) and that criterion's power at this size (`margin`); the
    near-copy rate (share of images closer to a train image than the `near_copy_quantile` of holdout → train
    distances; reported, not a gate clause). The distance attack (members = a random sample of the train split,
    non-members = the holdout, balanced) with bootstrap CIs. With `gate_only` (the planted controls) that is all;
    otherwise also the attacks' power, DOMIAS, and fidelity beside an n-matched unseen-real baseline. Keys starting
    with '_' hold raw arrays for the figures.
    """
    shape, _ = npz_member_shape(real_path, "train_images")
    n_train = int(reference["n_train"])
    if shape[0] != n_train:
        raise HistodistillError(f"{real_path}: {shape[0]} train images but the reference has {n_train}; rerun it")
    if "release_pixel_holdout" not in reference:
        raise HistodistillError(f"{real_path}: the privacy reference predates the release test; rerun privacy_reference")
    images, source = _validated_subset(subset, shape[1:], n_train, where)
    n = len(images)
    train_px = npz_row_chunks(real_path, "train_images")
    test, val = _split_images(real_path, "test_images"), _split_images(real_path, "val_images")
    e_shared = embed_batched(images, embed_fn)
    rows = {
        "pixel": (pixel_rows(images), pixel_rows(test), train_px),
        "embedding": (e_shared, reference["test_emb"], reference["train_emb"]),
    }
    random_fn = random_features(shape[1:], int(reference["random_seed"]), device)
    shift = int(reference["release_shift"])
    per_space = release_distances(
        images, train_px, shape[1:], reference["random_train_emb"], random_fn, shift, chunk, device
    )
    # Attack members: a seeded sample of the train split balanced with the holdout non-members; planted leaks
    # for the power simulations: near-copies of random train images (any train image, as a real leak would be).
    mi, ni = balanced_indices(n_train, len(test), seed)
    rng = np.random.default_rng([seed, 47])
    leak_idx = (
        np.concatenate([rng.choice(n_train, n, replace=n > n_train) for _ in range(power_reps)])
        if not gate_only
        else np.zeros(0, np.int64)
    )
    gathered = gather_rows(train_px, np.r_[mi, leak_idx])
    members_px = gathered[: len(mi)]
    if not gate_only:
        leaks = near_copies(gathered[len(mi) :].reshape(-1, *shape[1:]), float(reference["planted_noise"]), seed)
        e_leaks = embed_batched(leaks, embed_fn)
        planted_rows = {"pixel": leaks.reshape(power_reps, n, -1), "embedding": e_leaks.reshape(power_reps, n, -1)}
    report: dict[str, Any] = {
        "source": source,
        "init": str(subset["init"]) if "init" in subset else "",
        "n_shared": n,
        "n_train": n_train,
        "n_test": int(len(test)),
        "n_val": int(len(val)),
        "members": "the real train split (every set, whatever its source)",
        "holdout": f"the real test split ({len(test)} images), the audit holdout: nothing that shapes a set reads it",
        "null": "each holdout image against the rest of the holdout (train subsampled to the same size)",
        "dcr": {},
        "mia_distance": {},
        "gate_only": gate_only,
        "_arrays": {},
    }
    for space in SPACES:
        q, hold, train = rows[space]
        pr = _probabilities(q, train, hold, n_train, chunk, device)
        dcr = pr["dcr"] * SCALE[space]
        thr = near_copy_threshold(reference, space, near_copy_quantile)
        entry = dcr_share_test(pr["p"], reference[f"{space}_null_p"])
        entry.update(
            near_copy_threshold=thr,
            near_copy_quantile=near_copy_quantile,
            near_copy_rate=float((dcr <= thr).mean()),
            near_copies=int((dcr <= thr).sum()),
            exact_copies=int((pr["dcr"] == 0).sum()),
            median_dcr=float(np.median(dcr)),
            median_dcr_holdout=float(np.median(reference[f"{space}_test_dcr"])),
            power=dcr_share_power(
                n, reference[f"{space}_planted_p"], reference[f"{space}_null_p"], seed=seed, margin=margin
            ),
        )
        report["dcr"][space] = entry
        report["_arrays"][space] = {
            "shared_dcr": dcr,
            "shared_nn": pr["nn"],
            "reference_dcr": reference[f"{space}_test_dcr"],
        }
        if space == "pixel":  # uint8 rows: distance 0 is an exact copy (the first of tied train images)
            exact_index = np.where(pr["dcr"] == 0, pr["nn"], -1)
        mem, non = (members_px, pixel_rows(test)) if space == "pixel" else (reference["train_emb"][mi], hold)
        attack = membership_inference(q, mem, non, n_bootstrap, seed, chunk, device)
        if not gate_only:
            attack["power"] = attack_power(
                n, planted_rows[space], hold, mem, non, None, seed, chunk=chunk, device=device
            )
        report["mia_distance"][space] = attack
    labels = np.asarray(subset.get("labels", np.zeros(n, np.int64)))
    report["release"] = release_test(
        per_space, {s: reference[f"release_{s}_holdout"] for s in RELEASE_SPACES}, labels, exact_index, alpha, tail
    )
    report["settings"] = {
        "chunk": chunk,
        "bootstrap": n_bootstrap,
        "seed": seed,
        "near_copy_quantile": near_copy_quantile,
        "power_reps": power_reps,
        "alpha": alpha,
        "tail": tail,
        "margin": margin,
        "release_shift": shift,
    }
    if gate_only:
        return report
    # DOMIAS needs a reference set apart from the non-members it scores: holdout as reference, validation scored
    e_ref, e_mem, e_non = reference["test_emb"], reference["train_emb"][mi], reference["val_emb"]
    report["mia_density"] = density_ratio_attack(e_shared, e_ref, e_mem, e_non, seed, n_bootstrap=n_bootstrap)
    report["mia_density"]["power"] = attack_power(
        n,
        planted_rows["embedding"],
        e_ref,
        e_mem,
        e_non,
        density_ratio_scorer(e_ref, e_mem, e_non, seed),
        seed,
    )
    report["fidelity"] = fidelity_with_baseline(
        e_shared, reference["train_emb"], reference["train_radii"], reference["val_emb"], int(reference["k"]), seed
    )
    return report


# ----------------------------------------------------------------------------------------- pool and gate


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
                "non_inferiority": non_inferiority_test(p[mask], nn[mask], null, null_nn, margin, n_boot, seed, min_power),
            }

        out[space] = {"whole_pool": part(np.ones(len(keep), bool)), "kept": part(keep) if keep.any() else None}
    return out


def made_from_real_images(report: dict[str, Any]) -> bool:
    """True when the audited set's images are, or started from, real training images."""
    return report["source"] == "real" or report.get("init", "") == "real"


def dcr_clause_fails(dcr: dict[str, Any], gate: dict[str, Any]) -> bool:
    """The gate's DCR-share clause: the lower end of share − null's 95 % CI above `dcr_share_margin`."""
    return bool(dcr["difference_ci95"][0] > gate["dcr_share_margin"])


def attack_clause_fails(attack: dict[str, Any], gate: dict[str, Any]) -> bool:
    """The gate's distance-attack clause: the AUC's 95 % CI lying above `mia_auc`."""
    return bool(attack["auc_ci95"] is not None and attack["auc_ci95"][0] > gate["mia_auc"])


def gate_verdict(report: dict[str, Any], gate: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether an audited set may be shared, and every reason it may not: a set made from real training images
    (unless `share_real_init`); any exact copy or any image the per-image release test flags; a DCR share above the
    null by more than `dcr_share_margin` (lower end of the difference's 95 % CI); a distance attack whose AUC's CI
    lies above `mia_auc`."""
    reasons = []
    if made_from_real_images(report) and not gate.get("share_real_init", False):
        reasons.append("made from real training images (privacy.share_real_init is false)")
    reasons += release_reasons(report["release"])
    for space in SPACES:
        d = report["dcr"][space]
        if dcr_clause_fails(d, gate):
            reasons.append(
                f"{space} DCR share {d['share']:.3f} above the holdout null {d['null_share']:.3f} (difference CI low "
                f"{d['difference_ci95'][0]:+.3f} > {gate['dcr_share_margin']})"
            )
        a = report["mia_distance"][space]
        if attack_clause_fails(a, gate):
            reasons.append(
                f"{space} distance-attack AUC {a['auc']:.3f} (CI low {a['auc_ci95'][0]:.3f} > {gate['mia_auc']})"
            )
    return not reasons, reasons


# ----------------------------------------------------------------------------------------- tables

TABLE_COLUMNS = (
    "method",
    "ipc",
    "source",
    "init",
    "n",
    "release_level",
    "release_flagged",
    "release_exact_copies",
    "release_min_p_pixel",
    "release_min_p_random_features",
    "dcr_share_pixel",
    "dcr_share_pixel_lo",
    "dcr_share_pixel_hi",
    "null_share_pixel",
    "dcr_difference_pixel_lo",
    "dcr_share_min_leak_pixel",
    "dcr_share_embedding",
    "dcr_share_embedding_lo",
    "dcr_share_embedding_hi",
    "null_share_embedding",
    "dcr_difference_embedding_lo",
    "dcr_share_min_leak_embedding",
    "near_copy_rate_pixel",
    "near_copy_rate_embedding",
    "mia_auc",
    "mia_auc_lo",
    "mia_auc_hi",
    "mia_min_leak",
    "domias_auc",
    "domias_min_leak",
    "precision",
    "precision_baseline",
    "recall",
    "recall_baseline",
    "coverage",
    "coverage_baseline",
    "frechet_distance",
    "frechet_distance_baseline",
    "gate",
    "gate_reasons",
)


def privacy_row(report: dict[str, Any], gate: dict[str, float]) -> dict[str, Any]:
    """One table row of an audit report (method and IPC from its 'subset' name)."""
    from .report import parse_subset

    method, ipc = parse_subset(report["subset"])
    ok, reasons = gate_verdict(report, gate)
    row: dict[str, Any] = {
        "method": method,
        "ipc": ipc,
        "source": report["source"],
        "init": report.get("init", ""),
        "n": report["n_shared"],
        "release_level": report["release"]["level"],
        "release_flagged": len(report["release"]["flagged"]),
        "release_exact_copies": len(report["release"]["exact_copies"]),
    }
    for space in RELEASE_SPACES:
        row[f"release_min_p_{space}"] = report["release"]["spaces"][space]["min_p"]
    for space in SPACES:
        d = report["dcr"][space]
        row[f"dcr_share_{space}"] = d["share"]
        row[f"dcr_share_{space}_lo"], row[f"dcr_share_{space}_hi"] = d["ci95"]
        row[f"null_share_{space}"] = d["null_share"]
        row[f"dcr_difference_{space}_lo"] = d["difference_ci95"][0]
        row[f"dcr_share_min_leak_{space}"] = d["power"]["smallest_detectable_leak"]
        row[f"near_copy_rate_{space}"] = d["near_copy_rate"]
    mia = report["mia_distance"]["embedding"]
    row["mia_auc"] = mia["auc"]
    row["mia_auc_lo"], row["mia_auc_hi"] = mia["auc_ci95"] or (None, None)
    row["mia_min_leak"] = mia["power"]["smallest_detectable_leak"]
    row["domias_auc"] = report["mia_density"]["auc"]
    row["domias_min_leak"] = report["mia_density"]["power"]["smallest_detectable_leak"]
    for key in ("precision", "recall", "coverage", "frechet_distance"):
        row[key] = report["fidelity"][key]["value"]
        row[f"{key}_baseline"] = report["fidelity"][key]["baseline"]
    row["gate"] = "pass" if ok else "fail"
    row["gate_reasons"] = "; ".join(reasons)
    return row


def privacy_table(paths: Iterable[str | os.PathLike], gate: dict[str, float]) -> pd.DataFrame:
    """One row per audited set (method, IPC) from the audit JSONs."""
    rows = []
    for p in paths:
        with open(p) as fh:
            r = json.load(fh)
        if "subset" not in r or "release" not in r or "power" not in r["dcr"].get("pixel", {}):
            raise HistodistillError(f"{p}: not a privacy audit report of this version; rerun privacy_audit")
        rows.append(privacy_row(r, gate))
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    ipc_order = df["ipc"].map(lambda v: 10**9 if v == "all" else int(v))
    return df.assign(_o=ipc_order).sort_values(["_o", "method"]).drop(columns="_o").reset_index(drop=True)


def pool_table(report: dict[str, Any]) -> pd.DataFrame:
    """The whole pool's and the kept pool's DCR share per space, beside the holdout null, and the non-inferiority
    test (Δ = share − null, its one-sided upper bound, the margin, the criterion's power, the verdict)."""
    rows = []
    for space in SPACES:
        for part in ("whole_pool", "kept"):
            d = report[space][part]
            if d is None:
                continue
            rows.append(
                {
                    "space": space,
                    "images": part,
                    "n": d["n"],
                    "dcr_share": d["share"],
                    "lo": d["ci95"][0],
                    "hi": d["ci95"][1],
                    "null_share": d["null_share"],
                    "null_lo": d["null_ci95"][0],
                    "null_hi": d["null_ci95"][1],
                    "near_copy_rate": d["near_copy_rate"],
                    "delta": d["non_inferiority"]["delta"],
                    "delta_upper95": d["non_inferiority"]["upper95"],
                    "margin": d["non_inferiority"]["margin"],
                    "power": d["non_inferiority"]["power"],
                    "verdict": d["non_inferiority"]["verdict"],
                }
            )
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------- figures


def closest_pairs_figure(
    shared_images: np.ndarray,
    real_images: np.ndarray,
    dcr: np.ndarray,
    nn: np.ndarray,
    path: str | os.PathLike,
    n: int = 8,
    title: str = "",
    threshold: float | None = None,
) -> None:
    """The `n` shared images closest to a real train image (top row) above that real image (bottom row)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .figures import show_image

    order = np.argsort(dcr, kind="stable")[:n]
    cols = max(1, len(order))
    fig, axes = plt.subplots(2, cols, figsize=(1.3 * cols + 0.6, 3.2), squeeze=False)
    for c in range(cols):
        for r in range(2):
            axes[r][c].axis("off")
    for c, i in enumerate(order):
        for r, img in enumerate((shared_images[i], real_images[nn[i]])):
            axes[r][c].axis("on")
            show_image(axes[r][c], img)
        flag = " *" if threshold is not None and dcr[i] <= threshold else ""
        axes[0][c].set_title(f"d={dcr[i]:.3g}{flag}", fontsize=7)
    axes[0][0].set_ylabel("shared", fontsize=8)
    axes[1][0].set_ylabel("closest real", fontsize=8)
    fig.suptitle(
        (title + " — " if title else "") + "closest shared/real-train pairs, embedder distance d (* = near copy)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dcr_histogram(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray, float]], path: str | os.PathLike, title: str = ""
) -> None:
    """Per panel (name, shared DCR, reference DCR, near-copy threshold): normalised histograms and the threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), squeeze=False)
    for ax, (name, shared, ref, threshold) in zip(axes[0], panels):
        hi = float(max(np.max(shared), np.max(ref))) or 1.0
        bins = np.linspace(0.0, hi * 1.02, 40)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"real holdout → train (n={len(ref)})")
        ax.hist(shared, bins=bins, density=True, alpha=0.6, label=f"shared → train (n={len(shared)})")
        ax.axvline(threshold, color="k", ls="--", lw=1, label="near-copy threshold")
        ax.set_xlabel(f"distance to closest real train record ({name})")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
