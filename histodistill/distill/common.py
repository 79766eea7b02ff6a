"""What the distillers share: the synthetic set's start (real images, noise or a pool selection), the
result type, and seeded batches of real images per class."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from histodistill.base.errors import HistodistillError
from histodistill.base.images import normalise
from histodistill.selection.baselines import select_random

INITS = ("real", "noise")


@dataclass(frozen=True)
class Distilled:
    """A distilled set: uint8 NHWC images, int64 labels (class-major, IPC each), the real train indices the images
    started from (-1 for noise init), and the matching loss of every iteration."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    losses: np.ndarray
    model_images: np.ndarray | None = None  # float32 NHWC as distilled, where that is not pixels (ZCA)


def check_init(init: str, key: str) -> None:
    if init not in INITS:
        raise HistodistillError(f"{key}: unknown init {init!r}; use one of {list(INITS)}")


def initial_indices(labels: np.ndarray, n_classes: int, ipc: int, init: str, seed: int, key: str) -> np.ndarray:
    """Real train indices the synthetic images start from, class-major (IPC per class); -1 everywhere for noise.

    Real init draws per class with `select_random(rng([seed, c]))`, the `random_real` baseline's draw, so for the same
    seed a distiller starts from exactly the random real subset it is compared with."""
    check_init(init, key)
    if init == "noise":
        return np.full(n_classes * ipc, -1, dtype=np.int64)
    out = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < ipc:
            raise HistodistillError(
                f"{key}: real init needs IPC {ipc} real images per class but class {c} has {len(members)}; "
                f"lower select.ipc or set {key}: noise"
            )
        out.append(members[select_random(len(members), ipc, np.random.default_rng([seed, c]))])
    return np.concatenate(out).astype(np.int64)


def initial_images(real: torch.Tensor, indices: np.ndarray, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Starting synthetic images (model space, NCHW): the real images at `indices`, Gaussian noise (clipped to
    [-1, 1]) where the index is -1."""
    noise = torch.randn(shape, generator=g, device=g.device).to(real.device).clamp(-1, 1)
    idx = torch.from_numpy(indices).to(real.device)
    from_real = normalise(real[idx.clamp(min=0)])
    return torch.where((idx >= 0).view(-1, 1, 1, 1), from_real, noise).contiguous()


def start_images(
    images: np.ndarray, labels: np.ndarray, n_classes: int, ipc: int, shape: tuple[int, int, int], device: torch.device
) -> torch.Tensor:
    """Starting synthetic images (model space, NCHW, class-major) from a given set of IPC uint8 NHWC images per class
    (in any order; within a class their order is kept)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    if images.shape[1:] != shape or len(counts) != n_classes or (counts != ipc).any():
        raise HistodistillError(
            f"the start set has {counts.tolist()} images per class of shape {images.shape[1:]}; DM needs {ipc} per "
            f"class of shape {shape}"
        )
    order = np.argsort(labels, kind="stable")
    x = torch.from_numpy(np.ascontiguousarray(images[order])).to(device).permute(0, 3, 1, 2)
    return normalise(x).contiguous()


class RealBatches:
    """Random real batches of one class at a time, drawn on the device from a seeded generator.

    The train split stays uint8 on the device; a batch is normalised when drawn. Float NHWC images (whitened by
    `zca`) hold model-space values already."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, n_classes: int, device: torch.device):
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
        self.members = [torch.from_numpy(np.flatnonzero(labels == c)).to(device) for c in range(n_classes)]

    def draw(self, c: int, n: int, g: torch.Generator) -> torch.Tensor:
        members = self.members[c]
        pick = torch.randperm(len(members), generator=g, device=g.device)[: min(n, len(members))]
        return normalise(self.images[members[pick.to(members.device)]])
