"""The one normalisation used by every consumer (generator, embedder, evaluator, privacy audit).

uint8 NHWC in [0, 255]  <->  float32 NCHW in [-1, 1]. Train and test images always go through the same function.
"""

from __future__ import annotations

import numpy as np
import torch


def to_model_space(images: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 NHWC -> float32 NCHW in [-1, 1] on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """float NCHW in [-1, 1] -> uint8 NHWC (clipped, rounded)."""
    x = ((x.detach().float().clamp(-1, 1) + 1.0) * 127.5).round_().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()
