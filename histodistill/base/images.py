"""The one normalisation used by every consumer (generator, embedder, evaluator, privacy audit).

uint8 NHWC in [0, 255]  <->  float32 NCHW in [-1, 1]. Train and test images always go through the same function
(float32 NHWC images hold model-space values already: the whitened images of `distill.mtt.zca`).
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

RESIDENT_LIMIT = 256 * 1024 * 1024  # uint8 bytes of images kept on the device as one normalised tensor (4x in float)


def normalise(images_nchw: torch.Tensor) -> torch.Tensor:
    """uint8 NCHW tensor -> float32 in [-1, 1]; a float tensor holds model-space values already (e.g. whitened by
    `distill.zca`) and is only made float32."""
    if images_nchw.is_floating_point():
        return images_nchw.float()
    return images_nchw.float().div_(127.5).sub_(1.0)


def to_model_space(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1] on `device`; float NHWC images are only moved and made NCHW."""
    return normalise(torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2))


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC (clipped, rounded)."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def batch_source(
    images: np.ndarray | Any, device: torch.device | str, resident_limit: int = RESIDENT_LIMIT
) -> Callable[[torch.Tensor], torch.Tensor]:
    """`fetch(idx) -> images[idx]` in model space on `device`, for batches drawn by index.

    `images` is an array or any array-like that takes integer-array indexing (`io.NpyRows`, rows read from disk).
    Sets up to `resident_limit` bytes (uint8) live on the device as one tensor, normalised once; larger ones (a real
    train split at 64-224 px) are indexed batch by batch and normalised per batch, so neither a float32 copy of the
    whole split (4x its uint8 size) nor, from `NpyRows`, the uint8 split itself is ever held. Both give the same
    values for the same indices."""
    if images.size <= resident_limit:
        x_all = to_model_space(np.asarray(images), device)
        return lambda idx: x_all[idx]
    return lambda idx: to_model_space(images[idx.cpu().numpy()], device)
