"""ZCA whitening for trajectory matching (`distill.mtt.zca`; MTT's `--zca`, which the feasibility study's MTT runs
use): kornia's `ZCAWhitening(eps=0.1)` as the reference fits it on the normalised train split.

With mean μ and the unbiased covariance C = U diag(s) Uᵀ of the flattened train images (model space, NCHW order),
whitening is z = (x − μ) W with W = U diag((s + ε)^−½) Uᵀ, and x = z W⁻¹ + μ with W⁻¹ = U diag((s + ε)^½) Uᵀ. The
experts train on whitened real images, MTT distils in whitened space, and the evaluation trains on the distilled
set as distilled and tests on whitened real images: the same transform everywhere, fitted once on the train split
(never on validation or test), and named in the subset file by its digest so an evaluation cannot pair a set with
another transform.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
import torch

from histodistill.base.errors import HistodistillError
from histodistill.base.images import to_model_space
from histodistill.base.io import load_npz

CHUNK = 4096  # rows per block when accumulating the covariance or whitening a split


@dataclass(frozen=True)
class Zca:
    """A fitted ZCA transform: `mean` (D,), `matrix` W and `inverse` W⁻¹ (D, D), float64; `shape` (C, H, W)."""

    mean: np.ndarray
    matrix: np.ndarray
    inverse: np.ndarray
    eps: float
    shape: tuple[int, int, int]

    @property
    def digest(self) -> str:
        """SHA-256 of the transform (mean, W, ε), which a subset file records."""
        h = hashlib.sha256()
        for part in (self.mean, self.matrix, np.asarray([self.eps], np.float64)):
            h.update(np.ascontiguousarray(part, np.float64).tobytes())
        return h.hexdigest()


def fit_zca(images: np.ndarray, eps: float, device: torch.device | str = "cpu", chunk: int = CHUNK) -> Zca:
    """Fit ZCA on uint8 NHWC images (the real train split), in float64 on `device`, a block of rows at a time."""
    if eps <= 0:
        raise HistodistillError(f"distill.mtt.zca_eps: {eps} must be positive (the reference uses 0.1)")
    n = len(images)
    if n < 2:
        raise HistodistillError(f"ZCA needs at least 2 training images, got {n}")
    dim = int(np.prod(images.shape[1:]))
    total = torch.zeros(dim, dtype=torch.float64, device=device)
    gram = torch.zeros(dim, dim, dtype=torch.float64, device=device)
    for start in range(0, n, chunk):
        x = to_model_space(images[start : start + chunk], device).double().reshape(-1, dim)
        total += x.sum(0)
        gram += x.T @ x
    mean = total / n
    cov = (gram - n * torch.outer(mean, mean)) / (n - 1)
    s, u = torch.linalg.eigh((cov + cov.T) / 2)
    s = s.clamp(min=0.0)
    matrix = (u * (s + eps).rsqrt()) @ u.T
    inverse = (u * (s + eps).sqrt()) @ u.T
    channels, size = images.shape[3], images.shape[1]
    return Zca(
        mean.cpu().numpy(), matrix.cpu().numpy(), inverse.cpu().numpy(), float(eps), (channels, size, images.shape[2])
    )


def whiten(images: np.ndarray, zca: Zca, device: torch.device | str = "cpu", chunk: int = CHUNK) -> np.ndarray:
    """uint8 NHWC images -> whitened float32 NHWC (what the networks see under ZCA; the transform itself acts on
    NCHW-flattened rows, as the networks' inputs are laid out)."""
    if tuple(images.shape[1:]) != (zca.shape[1], zca.shape[2], zca.shape[0]):
        raise HistodistillError(f"ZCA was fitted on {zca.shape} (C, H, W) images, got {images.shape[1:]} (H, W, C)")
    mean = torch.from_numpy(zca.mean).to(device)
    matrix = torch.from_numpy(zca.matrix).to(device)
    c, h, w = zca.shape
    out = np.empty((len(images), h, w, c), np.float32)
    for start in range(0, len(images), chunk):
        x = to_model_space(images[start : start + chunk], device).double().reshape(-1, len(mean))
        z = ((x - mean) @ matrix).float().reshape(-1, c, h, w).permute(0, 2, 3, 1)
        out[start : start + chunk] = z.cpu().numpy()
    return out


def unwhiten(z: torch.Tensor, zca: Zca) -> torch.Tensor:
    """Whitened NCHW -> model space NCHW (unclipped), for images people look at (figures, the audit)."""
    inverse = torch.from_numpy(zca.inverse).to(z.device)
    mean = torch.from_numpy(zca.mean).to(z.device)
    x = z.detach().double().reshape(len(z), -1) @ inverse + mean
    return x.float().reshape(z.shape)


def zca_arrays(zca: Zca) -> dict[str, np.ndarray]:
    """The arrays of a `zca.npz` file."""
    return {
        "mean": zca.mean,
        "matrix": zca.matrix,
        "inverse": zca.inverse,
        "eps": np.asarray(zca.eps),
        "shape": np.asarray(zca.shape),
    }


def zca_from_arrays(arrays: dict[str, np.ndarray]) -> Zca:
    return Zca(
        arrays["mean"],
        arrays["matrix"],
        arrays["inverse"],
        float(arrays["eps"]),
        tuple(int(v) for v in arrays["shape"]),
    )


def load_zca(paths: list[str]) -> Zca | None:
    """The run's transform from `zca.npz`, a rule's optional input (empty when `distill.mtt.zca` is off)."""
    return (
        zca_from_arrays(load_npz(paths[0], required=("mean", "matrix", "inverse", "eps", "shape"))) if paths else None
    )


def distilled_under(subset: dict[str, np.ndarray], zca: Zca | None, where: str) -> np.ndarray:
    """A ZCA set's images as distilled (`model_images`), once its recorded digest is checked against `zca`."""
    if zca is None or zca.digest != str(subset["zca"]):
        raise HistodistillError(
            f"{where} was distilled under ZCA transform {str(subset['zca'])[:12]}, but this run's is "
            f"{zca.digest[:12] if zca else 'none (distill.mtt.zca is off)'}; rerun distill_mtt"
        )
    return subset["model_images"]
