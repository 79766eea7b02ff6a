"""The real-side reference of the audit: distances among real images (train, holdout) in each space, computed
once per run, and the release test's calibration."""

from __future__ import annotations

import os
from typing import Any, Callable, Iterable, Iterator

import numpy as np
import torch

from histodistill.base.errors import HistodistillError

from .dcr import closer_to_train_probability
from .neighbours import (
    RowChunks,
    array_chunks,
    gather_rows,
    knn_distances,
    near_copies,
    nearest_distances,
    npz_member_shape,
    npz_row_chunks,
    pixel_rows,
    scan_reference,
)
from .release import RELEASE_SPACES, detection_radius, nearest_over_views, release_p_values, usable_shift
from .spaces import PIXEL_SCALE, SCALE, SPACES


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
    from histodistill.selection.embedder import embed, random_feature_net

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
        thr = np.r_[
            leave_one_out_d2(test_rows, chunk, device),
            scan_reference(planted_rows, test_rows, chunk=chunk, device=device)["d2"],
        ]
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
