"""The per-set audit: fidelity, distance to the closest record, membership attacks and the release test of one
shared set against the real data it was made from."""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import numpy as np
import torch
from scipy.linalg import LinAlgWarning

from histodistill.base.errors import HistodistillError
from histodistill.generator.pool import frechet_distance

from .attacks import balanced_indices, density_ratio_attack, density_ratio_scorer, membership_inference
from .dcr import _smallest_detectable, auc_detects, dcr_share_power, dcr_share_test, leak_counts
from .fidelity import prdc
from .neighbours import SATURATED, gather_rows, near_copies, npz_member_shape, npz_row_chunks, pixel_rows, tile_rows
from .reference import (
    _probabilities,
    _split_images,
    embed_batched,
    near_copy_threshold,
    random_features,
    release_distances,
)
from .release import RELEASE_SPACES, release_test
from .spaces import SCALE, SPACES


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
        raise HistodistillError(
            f"{real_path}: the privacy reference predates the release test; rerun privacy_reference"
        )
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
