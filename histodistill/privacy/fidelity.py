"""Fidelity of a set to the real data: precision, recall, density and coverage (Naeem et al. 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from histodistill.base.errors import HistodistillError

from .neighbours import _check_matrix, _same_width, knn_distances


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
