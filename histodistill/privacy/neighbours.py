"""Nearest-neighbour distances on the device (exact, tiled), and rows streamed from `.npz` members so a large real
split or pool never has to fit in memory."""

from __future__ import annotations

import os
import zipfile
from typing import Any, Callable, Iterator

import numpy as np
import torch

from histodistill.base.errors import HistodistillError
from histodistill.base.io import read_npy_header

_REF_CACHE_BYTES = 1 << 30  # convert the reference once when its float copy fits in 1 GiB, else tile by tile


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
