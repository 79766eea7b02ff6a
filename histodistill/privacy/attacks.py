"""Membership-inference attacks on a shared set: distance and density-ratio scores, AUC and TPR at 1 % FPR."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from histodistill.base.errors import HistodistillError

from .dcr import mann_whitney_auc, mann_whitney_aucs
from .neighbours import _check_matrix, _same_width, nearest_distances

FPR_TARGET = 0.01
BOOTSTRAP_BLOCK = 4_000_000  # scores per block of bootstrap resamples ranked at once (about 100 MB of temporaries)


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


def tprs_at_fpr(member_scores: np.ndarray, nonmember_scores: np.ndarray, fpr_target: float = FPR_TARGET) -> np.ndarray:
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
