"""Privacy and fidelity audit of a shared (distilled) subset against the real data it was made from.

Privacy: distance to closest record (DCR) of every shared image to the real train split, compared with the DCR of
real holdout images (a shared image closer to a train image than 95 % of holdout images is a probable copy); a
distance membership-inference attack (a real image close to a shared image is guessed to be a training member);
a DOMIAS-style density-ratio attack. Fidelity: precision, recall, density and coverage (Naeem et al. 2020) and a
Fréchet distance, all in the embedder's feature space.

Every nearest-neighbour search is exact and chunked (memory O(chunk²) per tile), so 100k real images fit. Pixel
space means images in model space [-1, 1] (`histodistill.images.to_model_space`) flattened; its distances are computed
on the uint8 rows and scaled by 2/255, which is the same number without a float copy of the whole split.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from scipy.linalg import LinAlgWarning

from .errors import HistodistillError
from .pool import frechet_distance

COPY_PERCENTILE = 5.0
FPR_TARGET = 0.01
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


# ----------------------------------------------------------------------------------------- DCR


def dcr_summary(shared_dcr: np.ndarray, reference_dcr: np.ndarray) -> dict[str, Any]:
    """Copy rate and median ratio of shared DCRs against the holdout reference distribution.

    A shared image counts as a copy when its DCR is at most the 5th percentile of the reference DCRs (`<=` so that
    exact copies count even when that percentile is 0); a holdout-like subset has a copy rate near 0.05.
    """
    shared_dcr, reference_dcr = np.asarray(shared_dcr, float), np.asarray(reference_dcr, float)
    if not len(shared_dcr) or not len(reference_dcr):
        raise HistodistillError("dcr_summary: empty shared or reference distance list")
    threshold = float(np.percentile(reference_dcr, COPY_PERCENTILE))
    ref_median = float(np.median(reference_dcr))
    return {
        "copy_rate": float((shared_dcr <= threshold).mean()),
        "exact_copies": int((shared_dcr == 0).sum()),
        "threshold_p5": threshold,
        "median_shared": float(np.median(shared_dcr)),
        "median_reference": ref_median,
        "median_ratio": float(np.median(shared_dcr) / ref_median) if ref_median > 0 else None,
        "min_shared": float(shared_dcr.min()),
        "n_shared": int(len(shared_dcr)),
        "n_reference": int(len(reference_dcr)),
    }


def distance_to_closest_record(
    shared_emb: np.ndarray,
    train_emb: np.ndarray,
    holdout_emb: np.ndarray,
    chunk: int = 2048,
    device: torch.device | str = "cpu",
    scale: float = 1.0,
) -> dict[str, Any]:
    """DCR of every shared row to its nearest train row; reference = DCR of holdout rows to their nearest train row.

    Returns dcr_summary's JSON-able numbers plus, under "_arrays" (not for JSON; see `jsonable`), the raw
    `shared_dcr`, `shared_nn` (index of the nearest train row) and `reference_dcr`. `scale` multiplies every
    distance (PIXEL_SCALE for uint8 pixel rows).
    """
    _same_width(np.asarray(shared_emb), np.asarray(train_emb), "shared/train")
    _same_width(np.asarray(holdout_emb), np.asarray(train_emb), "holdout/train")
    shared_dcr, shared_nn = nearest_distances(shared_emb, train_emb, chunk, device=device)
    reference_dcr, _ = nearest_distances(holdout_emb, train_emb, chunk, device=device)
    shared_dcr, reference_dcr = shared_dcr * scale, reference_dcr * scale
    out = dcr_summary(shared_dcr, reference_dcr)
    out["_arrays"] = {"shared_dcr": shared_dcr, "shared_nn": shared_nn, "reference_dcr": reference_dcr}
    return out


def jsonable(report: Any) -> Any:
    """A copy of a report without the keys that start with '_' (raw arrays for figures), at every level."""
    if isinstance(report, dict):
        return {k: jsonable(v) for k, v in report.items() if not str(k).startswith("_")}
    if isinstance(report, (list, tuple)):
        return [jsonable(v) for v in report]
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


def attack_metrics(
    member_scores: np.ndarray, nonmember_scores: np.ndarray, n_bootstrap: int = 200, seed: int = 0
) -> dict[str, Any]:
    """AUC and TPR at 1 % FPR of an attack (higher score = member), with stratified bootstrap 95 % CIs."""
    from sklearn.metrics import roc_auc_score

    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)

    def metrics(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        y = np.r_[np.ones(len(a)), np.zeros(len(b))]
        s = np.r_[a, b]
        return float(roc_auc_score(y, s)), tpr_at_fpr(y, s)

    auc, tpr = metrics(m, n)
    rng = np.random.default_rng([seed, 95])
    boot = np.array(
        [metrics(rng.choice(m, len(m)), rng.choice(n, len(n))) for _ in range(n_bootstrap)], dtype=float
    ).reshape(-1, 2)

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
    from sklearn.neighbors import KernelDensity

    shared = _check_matrix(shared_emb, "shared")
    reference = _check_matrix(reference_emb, "reference", min_rows=2)
    members, nonmembers = _check_matrix(members_emb, "members"), _check_matrix(nonmembers_emb, "non-members")
    for other, name in ((reference, "reference"), (members, "members"), (nonmembers, "non-members")):
        _same_width(shared, other, f"shared/{name}")
    project = _whitened_pca(reference, n_components, seed)
    zs, zr = project(shared), project(reference)
    dims = zs.shape[1]
    kde_s = KernelDensity(kernel="gaussian", bandwidth=scott_bandwidth(len(zs), dims)).fit(zs)
    kde_r = KernelDensity(kernel="gaussian", bandwidth=scott_bandwidth(len(zr), dims)).fit(zr)
    mi, ni = balanced_indices(len(members), len(nonmembers), seed)

    def score(x: np.ndarray) -> np.ndarray:
        z = project(x)
        return kde_s.score_samples(z) - kde_r.score_samples(z)

    return {
        "attack": "density_ratio",
        "pca_dims": int(dims),
        "bandwidth_shared": scott_bandwidth(len(zs), dims),
        "bandwidth_reference": scott_bandwidth(len(zr), dims),
        "n_reference": int(len(reference)),
        **attack_metrics(score(members[mi]), score(nonmembers[ni]), n_bootstrap, seed),
    }


# ----------------------------------------------------------------------------------------- fidelity


def prdc(
    real_emb: np.ndarray, fake_emb: np.ndarray, k: int = 5, chunk: int = 2048, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """Precision, recall, density and coverage (Naeem et al. 2020, ICML), with their published definitions.

    r_i = distance of real i to its k-th nearest other real row, s_j likewise among the fakes, d_ij = ‖real_i − fake_j‖:
      precision = mean_j 1[∃i: d_ij < r_i]          recall   = mean_i 1[∃j: d_ij < s_j]
      density   = (1/k) mean_j Σ_i 1[d_ij < r_i]    coverage = mean_i 1[min_j d_ij < r_i]
    Recall is None when there are no more than k fakes (s_j undefined).
    """
    real = _check_matrix(real_emb, "real", min_rows=k + 1)
    fake = _check_matrix(fake_emb, "fake")
    _same_width(real, fake, "real/fake")
    r_real = knn_distances(real, real, k, chunk, exclude_self=True, device=device)[0][:, k - 1]
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


# ----------------------------------------------------------------------------------------- whole audit


def split_holdout(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded halves of the holdout (test) split: (reference half, non-member half)."""
    if n < 4:
        raise HistodistillError(f"the real test split has {n} images; the audit needs at least 4")
    perm = np.random.default_rng([seed, 2]).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def audit_subset(
    subset: dict[str, np.ndarray],
    real: dict[str, np.ndarray],
    embed_fn: Callable[[np.ndarray], np.ndarray],
    where: str = "subset",
    chunk: int = 2048,
    n_bootstrap: int = 200,
    k: int = 5,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """The full privacy and fidelity report of one shared subset (JSON-able after `jsonable`).

    `subset` holds images (uint8 NHWC), indices and source ('pool' or 'real'; a 'real' subset's indices point into
    the real train split); `real` the real splits; `embed_fn` maps uint8 images to feature rows. Members for the
    attacks are the real train images (for a 'real' subset: its own source images); non-members one seeded half of
    the test split, whose other half is the DOMIAS reference. DCR reference = the whole test split.
    Keys starting with '_' hold raw arrays for the figures.
    """
    for key in ("images", "source"):
        if key not in subset:
            raise HistodistillError(f"{where}: missing array {key!r}; rerun the rule that wrote it")
    images = np.asarray(subset["images"])
    train, test = np.asarray(real["train_images"]), np.asarray(real["test_images"])
    if images.ndim != 4 or images.shape[1:] != train.shape[1:] or images.dtype != np.uint8:
        raise HistodistillError(
            f"{where}: images are {images.dtype} {tuple(images.shape)}, expected uint8 (N, *{train.shape[1:]})"
        )
    if not len(images):
        raise HistodistillError(f"{where}: the subset is empty")
    source = str(np.asarray(subset["source"]))
    if source == "real":
        if "indices" not in subset:
            raise HistodistillError(f"{where}: a 'real' subset needs its train-split 'indices'")
        idx = np.asarray(subset["indices"], dtype=np.int64)
        if len(idx) != len(images) or (len(idx) and (idx.min() < 0 or idx.max() >= len(train))):
            raise HistodistillError(f"{where}: indices do not point into the {len(train)} real train images")
        members = idx
        members_note = "the subset's own source images (real train split)"
    elif source == "pool":
        members = np.arange(len(train))
        members_note = "the whole real train split (the generator's training data)"
    elif source == "distilled":
        members = np.arange(len(train))
        members_note = "the whole real train split (the distiller's training data)"
    else:
        raise HistodistillError(f"{where}: unknown source {source!r} (expected 'pool', 'real' or 'distilled')")
    ref_half, non_half = split_holdout(len(test), seed)

    e_shared, e_train, e_test = (np.asarray(embed_fn(x), np.float64) for x in (images, train, test))
    p_shared, p_train, p_test = pixel_rows(images), pixel_rows(train), pixel_rows(test)

    dcr = {
        "embedding": distance_to_closest_record(e_shared, e_train, e_test, chunk, device),
        "pixel": distance_to_closest_record(p_shared, p_train, p_test, chunk, device, scale=PIXEL_SCALE),
    }
    mia = {
        "embedding": membership_inference(
            e_shared, e_train[members], e_test[non_half], n_bootstrap, seed, chunk, device
        ),
        "pixel": membership_inference(p_shared, p_train[members], p_test[non_half], n_bootstrap, seed, chunk, device),
    }
    density = density_ratio_attack(
        e_shared, e_test[ref_half], e_train[members], e_test[non_half], seed, n_bootstrap=n_bootstrap
    )
    fidelity = prdc(e_train, e_shared, k, chunk, device)
    with warnings.catch_warnings():  # fewer shared images than features: singular covariance, handled by the eps path
        warnings.simplefilter("ignore", LinAlgWarning)
        fidelity["frechet_distance_embedder"] = (
            frechet_distance(e_shared, e_train) if len(e_shared) > 1 and len(e_train) > 1 else None
        )
    return {
        "source": source,
        "init": str(subset["init"]) if "init" in subset else "",
        "n_shared": int(len(images)),
        "n_train": int(len(train)),
        "n_test": int(len(test)),
        "members": members_note,
        "nonmembers": f"a seeded half of the real test split ({len(non_half)} images)",
        "dcr": dcr,
        "mia_distance": mia,
        "mia_density": density,
        "fidelity": fidelity,
        "settings": {"chunk": chunk, "bootstrap": n_bootstrap, "k": k, "seed": seed},
    }


# ----------------------------------------------------------------------------------------- table and figures

TABLE_COLUMNS = (
    "method",
    "ipc",
    "source",
    "init",
    "copy_rate",
    "copy_rate_pixel",
    "dcr_median_ratio",
    "mia_auc",
    "mia_auc_lo",
    "mia_auc_hi",
    "mia_tpr_at_1pct_fpr",
    "domias_auc",
    "precision",
    "recall",
    "density",
    "coverage",
    "frechet_distance_embedder",
)


def privacy_table(paths: Iterable[str | os.PathLike]) -> pd.DataFrame:
    """One row per audited subset (method, IPC) from the audit JSONs; the ones the summary table quotes."""
    from .report import parse_subset

    rows = []
    for p in paths:
        with open(p) as fh:
            r = json.load(fh)
        if "subset" not in r:
            raise HistodistillError(f"{p}: not a privacy audit report (no 'subset' key); rerun privacy_audit")
        method, ipc = parse_subset(r["subset"])
        mia, fid = r["mia_distance"]["embedding"], r["fidelity"]
        lo, hi = mia["auc_ci95"] or (None, None)
        rows.append(
            {
                "method": method,
                "ipc": ipc,
                "source": r["source"],
                "init": r.get("init", ""),
                "copy_rate": r["dcr"]["embedding"]["copy_rate"],
                "copy_rate_pixel": r["dcr"]["pixel"]["copy_rate"],
                "dcr_median_ratio": r["dcr"]["embedding"]["median_ratio"],
                "mia_auc": mia["auc"],
                "mia_auc_lo": lo,
                "mia_auc_hi": hi,
                "mia_tpr_at_1pct_fpr": mia["tpr_at_1pct_fpr"],
                "domias_auc": r["mia_density"]["auc"],
                "precision": fid["precision"],
                "recall": fid["recall"],
                "density": fid["density"],
                "coverage": fid["coverage"],
                "frechet_distance_embedder": fid["frechet_distance_embedder"],
            }
        )
    df = pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
    ipc_order = df["ipc"].map(lambda v: 10**9 if v == "all" else int(v))
    return df.assign(_o=ipc_order).sort_values(["_o", "method"]).drop(columns="_o").reset_index(drop=True)


def _show(ax: Any, img: np.ndarray) -> None:
    ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None, vmin=0, vmax=255)
    ax.set_xticks([])
    ax.set_yticks([])


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

    order = np.argsort(dcr, kind="stable")[:n]
    cols = max(1, len(order))
    fig, axes = plt.subplots(2, cols, figsize=(1.3 * cols + 0.6, 3.2), squeeze=False)
    for c in range(cols):
        for r in range(2):
            axes[r][c].axis("off")
    for c, i in enumerate(order):
        for r, img in enumerate((shared_images[i], real_images[nn[i]])):
            axes[r][c].axis("on")
            _show(axes[r][c], img)
        flag = " *" if threshold is not None and dcr[i] <= threshold else ""
        axes[0][c].set_title(f"d={dcr[i]:.3g}{flag}", fontsize=7)
    axes[0][0].set_ylabel("shared", fontsize=8)
    axes[1][0].set_ylabel("closest real", fontsize=8)
    fig.suptitle(
        (title + " — " if title else "") + "closest shared/real-train pairs, embedder distance d (* = copy by DCR)",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def dcr_histogram(
    panels: Sequence[tuple[str, np.ndarray, np.ndarray]], path: str | os.PathLike, title: str = ""
) -> None:
    """Per panel (name, shared DCR, reference DCR): normalised histograms and the 5th-percentile copy threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(4.8 * len(panels), 3.6), squeeze=False)
    for ax, (name, shared, ref) in zip(axes[0], panels):
        hi = float(max(np.max(shared), np.max(ref))) or 1.0
        bins = np.linspace(0.0, hi * 1.02, 40)
        ax.hist(ref, bins=bins, density=True, alpha=0.5, label=f"real holdout → train (n={len(ref)})")
        ax.hist(shared, bins=bins, density=True, alpha=0.6, label=f"shared → train (n={len(shared)})")
        ax.axvline(np.percentile(ref, COPY_PERCENTILE), color="k", ls="--", lw=1, label="holdout 5th percentile")
        ax.set_xlabel(f"distance to closest real train record ({name})")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
