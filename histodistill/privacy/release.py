"""The per-image release test: is any single image of a shared set closer to a training image than an unseen real
image would be?

Statistic (pixels): the distance between an image's central window (the image less a `shift`-px border) and the
same-sized window of its nearest training image, minimised over the training image's windows moved by up to `shift`
px along either axis or both and over the image's horizontal mirror, so a mirrored or shifted copy is still a
copy.
Calibration: the same statistic of every audit-holdout image (real images that no model and no selection step
saw), against the same, whole train split. The p-value of an image is its conformal rank among them,
(1 + #{holdout ≤ d}) / (H + 1). Ranks cannot go below 1 / (H + 1), which for a set of n images is often above the
corrected level, so below the holdout's smallest distance the p-value follows the lower tail of the holdout's
distances: small-ball probabilities scale as P(D ≤ r) ∝ r^m with m the local intrinsic dimension, estimated by
Hill's estimator from the `tail` smallest holdout distances (Hill 1975; Levina & Bickel 2004). An exact copy has
p = 0.

Two spaces: pixels, and the features of a fixed, randomly initialised ConvNet (seeded, never trained, so no
feature was learnt from the train split), whole images and their mirrors. A set fails when any image has p < alpha / (n · spaces) (Bonferroni over
the released images and the spaces) or when any image is an exact copy (distance 0 in pixels, any view). Counts,
not rates.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from histodistill.base.errors import HistodistillError

RELEASE_SPACES = ("pixel", "random_features")


def window_offsets(shift: int) -> list[tuple[int, int]]:
    """Top-left corners of the train windows a query's central window is compared with: every move by up to
    `shift` px along either axis or both; the first is the unmoved window."""
    steps = (shift, 0, 2 * shift) if shift else (0,)
    return [(oy, ox) for oy in steps for ox in steps]


def usable_shift(shift: int, image_shape: tuple[int, ...]) -> int:
    """The configured shift, capped so that the compared window keeps at least half of each side (8 px images: 1)."""
    if shift < 0:
        raise HistodistillError(f"privacy.release_shift: {shift} is negative")
    return min(int(shift), max(0, (min(image_shape[0], image_shape[1]) - 1) // 4))


def central_views(images: np.ndarray, shift: int) -> np.ndarray:
    """(2, N, H − 2·shift, W − 2·shift, C) uint8: the central window of each image and of its horizontal mirror."""
    images = np.asarray(images)
    if images.ndim != 4 or images.dtype != np.uint8:
        raise HistodistillError(f"release test: expected uint8 NHWC images, got {images.dtype} {tuple(images.shape)}")
    h, w = images.shape[1:3]
    if shift < 0 or 4 * shift >= min(h, w):
        raise HistodistillError(f"privacy.release_shift: {shift} px is too large for {h}×{w} images")
    core = images[:, shift : h - shift, shift : w - shift]
    return np.ascontiguousarray(np.stack([core, core[:, :, ::-1]]))


def shifted_mirror(images: np.ndarray, shift: int = 2) -> np.ndarray:
    """A copy an attacker might not recognise at first sight: mirrored left-right, then moved `shift` px right and
    down (edge pixels repeated). The third planted control."""
    images = np.asarray(images)[:, :, ::-1]
    h, w = images.shape[1:3]
    padded = np.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)), mode="edge")
    return np.ascontiguousarray(padded[:, :h, :w])


def nearest_over_views(
    images: np.ndarray,
    shift: int,
    nearest: Callable[[np.ndarray, tuple[int, int]], tuple[np.ndarray, np.ndarray]],
) -> dict[str, np.ndarray]:
    """Per image: the smallest distance between its central window (or its mirror's) and the same-sized window of
    a training image at any of the `window_offsets`, the train index and the view (offset × mirror) giving it.

    `nearest(windows uint8 (M, h, w, C), (top, left)) -> (distances, train indices)` searches the train split's
    windows at that corner in one space. With shift 0 the windows are the whole images."""
    q = central_views(images, shift)
    n = q.shape[1]
    flat = q.reshape(2 * n, *q.shape[2:])
    found = [nearest(flat, corner) for corner in window_offsets(shift)]
    d = np.stack([np.asarray(f[0], float).reshape(2, n) for f in found]).reshape(-1, n)
    idx = np.stack([np.asarray(f[1]).reshape(2, n) for f in found]).reshape(-1, n)
    best = d.argmin(0)  # the first view among ties: the unmoved, unmirrored window
    cols = np.arange(n)
    return {"distance": d[best, cols], "index": idx[best, cols], "view": best}


def hill_dimension(calibration: np.ndarray, tail: int) -> tuple[float, float] | None:
    """(m, r_k): Hill's estimate of the lower-tail exponent of the distances from their `tail` smallest values, and
    the (tail+1)-th smallest distance at which the tail starts; None when the tail cannot be estimated (too few
    distances, or zero distances among them)."""
    cal = np.sort(np.asarray(calibration, float))
    k = min(int(tail), len(cal) - 1)
    if k < 5 or cal[0] <= 0:
        return None
    r_k = cal[k]
    logs = np.log(r_k / cal[:k])
    if logs.sum() <= 0:
        return None
    return float(k / logs.sum()), float(r_k)


def release_p_values(distances: np.ndarray, calibration: np.ndarray, tail: int = 50) -> np.ndarray:
    """p-value of each distance under 'no closer to the train split than an unseen real image': the conformal rank
    among the calibration distances, and below the smallest of them the Hill tail, capped by the rank floor
    1 / (H + 1). Distance 0 gives p = 0."""
    d = np.asarray(distances, float)
    cal = np.sort(np.asarray(calibration, float))
    if len(cal) < 1:
        raise HistodistillError("release test: the audit holdout is empty")
    h = len(cal)
    p = (1.0 + np.searchsorted(cal, d, side="right")) / (h + 1.0)
    below = d < cal[0]
    fit = hill_dimension(cal, tail)
    if fit is not None and below.any():
        m, r_k = fit
        k = min(int(tail), h - 1)
        p[below] = np.minimum(1.0 / (h + 1.0), (k / (h + 1.0)) * (d[below] / r_k) ** m)
    p[d <= 0] = 0.0
    return p


def detection_radius(calibration: np.ndarray, level: float, tail: int = 50) -> float:
    """The distance below which an image gets p < `level`: what the test can see at this set size."""
    cal = np.sort(np.asarray(calibration, float))
    h = len(cal)
    j_max = int(np.ceil(level * (h + 1.0) - 1.0)) - 1  # most holdout distances at or below d that still give p < level
    if j_max >= 0:
        return float(cal[min(j_max, h - 1)]) if j_max < h else float("inf")
    fit = hill_dimension(cal, tail)
    if fit is None:
        return 0.0
    m, r_k = fit
    k = min(int(tail), h - 1)
    return float(min(cal[0], r_k * (level * (h + 1.0) / k) ** (1.0 / m)))


def release_test(
    per_space: dict[str, dict[str, np.ndarray]],
    calibration: dict[str, np.ndarray],
    labels: np.ndarray,
    exact_train_index: np.ndarray,
    alpha: float = 0.05,
    tail: int = 50,
) -> dict[str, Any]:
    """The per-image verdict of a set of n images.

    `per_space[space]` = `nearest_over_views` of the set in that space; `calibration[space]` = the audit holdout's
    distances in the same space; `exact_train_index[i]` = the training image that image i equals pixel for pixel,
    or −1. Returns the corrected level, per space the p-values and detection radius, the exact copies and every
    flagged image with its reason."""
    if set(per_space) != set(calibration) or not per_space:
        raise HistodistillError(f"release test: spaces differ ({sorted(per_space)} vs {sorted(calibration)})")
    labels = np.asarray(labels)
    n = len(labels)
    level = alpha / (n * len(per_space))
    out: dict[str, Any] = {"alpha": alpha, "n": n, "level": level, "spaces": {}, "flagged": [], "exact_copies": []}
    flagged: dict[int, list[str]] = {}
    for space, s in per_space.items():
        if len(s["distance"]) != n:
            raise HistodistillError(f"release test: {len(s['distance'])} {space} distances for {n} images")
        p = release_p_values(s["distance"], calibration[space], tail)
        out["spaces"][space] = {
            "p": p,
            "min_p": float(p.min()),
            "detection_radius": detection_radius(calibration[space], level, tail),
            "holdout_min_distance": float(np.min(calibration[space])),
            "holdout_size": int(len(calibration[space])),
            "tail_exponent": (hill_dimension(calibration[space], tail) or (None, None))[0],
        }
        for i in np.where(p < level)[0]:
            flagged.setdefault(int(i), []).append(
                f"{space} p = {p[i]:.2g} < {level:.2g} (train image {int(s['index'][i])} at {s['distance'][i]:.3g}"
                + ("" if int(s["view"][i]) == 0 else f", view {int(s['view'][i])}")
                + ")"
            )
    exact_train_index = np.asarray(exact_train_index)
    for i in np.where(exact_train_index >= 0)[0]:
        out["exact_copies"].append({"image": int(i), "class": int(labels[i]), "train_index": int(exact_train_index[i])})
    for i in sorted(flagged):
        out["flagged"].append({"image": i, "class": int(labels[i]), "reasons": flagged[i]})
    return out


def release_reasons(release: dict[str, Any], limit: int = 5) -> list[str]:
    """The gate's reasons from a release test: exact copies and flagged images, per image (the first `limit`)."""
    reasons = []
    copies = release["exact_copies"]
    if copies:
        shown = ", ".join(f"image {c['image']} = train image {c['train_index']}" for c in copies[:limit])
        more = f" and {len(copies) - limit} more" if len(copies) > limit else ""
        reasons.append(f"{len(copies)} exact copies of training images ({shown}{more})")
    flagged = release["flagged"]
    if flagged:
        shown = "; ".join(
            f"image {f['image']} (class {f['class']}): {', '.join(f['reasons'])}" for f in flagged[:limit]
        )
        more = f"; and {len(flagged) - limit} more" if len(flagged) > limit else ""
        reasons.append(
            f"{len(flagged)} of {release['n']} images closer to a training image than unseen real images "
            f"are ({shown}{more})"
        )
    return reasons


# ----------------------------------------------------------------------------------------- planted controls

CONTROL_KINDS = ("near_copy", "decoded_copy", "shifted_mirror")


def control_filler(pool_labels: np.ndarray, ipc: int, seed: int) -> np.ndarray:
    """Pool indices of a control set's synthetic images: `ipc` per class, drawn at random (seeded), class by class
    - a set of the released size and make-up."""
    rng = np.random.default_rng([seed, 61, ipc])
    out = []
    for c in np.unique(pool_labels):
        members = np.where(pool_labels == c)[0]
        if len(members) < ipc:
            raise HistodistillError(f"planted controls: class {c} has {len(members)} pool images, fewer than IPC {ipc}")
        out.append(np.sort(rng.choice(members, ipc, replace=False)))
    return np.concatenate(out)


def planted_set(
    filler_images: np.ndarray, filler_labels: np.ndarray, position: int, image: np.ndarray, label: int
) -> dict[str, np.ndarray]:
    """A control set: the synthetic filler with the image at `position` replaced by one planted image (a copy of a
    training image in some disguise), as a subset dict the audit reads."""
    images, labels = np.array(filler_images, copy=True), np.array(filler_labels, copy=True)
    images[position], labels[position] = image, label
    return {
        "images": images,
        "labels": labels.astype(np.int64),
        "indices": np.full(len(labels), -1, np.int64),
        "source": np.asarray("distilled"),
    }


def control_detected(report: dict[str, Any], position: int) -> bool:
    """Whether the release test caught the planted image itself (flagged or an exact copy), not merely the set."""
    release = report["release"]
    hits = {f["image"] for f in release["flagged"]} | {c["image"] for c in release["exact_copies"]}
    return position in hits


def control_void(kind: str, distance_to_source: float, closest_unseen: float) -> bool:
    """A disguise that left no copy: a near or decoded copy no closer to its training image (full-image pixel
    distance) than the closest unseen real image comes to any training image - an autoencoder that cannot
    reconstruct (a smoke run's) decodes no copy. A mirrored, shifted copy is always a copy."""
    return kind != "shifted_mirror" and distance_to_source >= closest_unseen


def controls_missed(controls: dict[str, Any]) -> list[str]:
    """Every planted control (kind and set size) that the gate's path did not detect, from a controls report; a
    void control (`control_void`) is no copy and not counted, but a size whose every control is void is."""
    missed = []
    for ipc, by_kind in sorted(controls["ipc"].items(), key=lambda kv: int(kv[0])):
        for kind, c in by_kind.items():
            if not c["detected"] and not c.get("void", False):
                missed.append(f"{kind} among {c['n']} images (IPC {ipc})")
        if by_kind and all(c.get("void", False) for c in by_kind.values()):
            missed.append(f"every control among IPC {ipc}'s images was void")
    return missed
