"""Differentiable Siamese Augmentation (DSA, Zhao & Bilen 2021), on the device, seeded.

Each batch gets one operation group, chosen by the generator; every sample gets its own parameters. Images are in
model space ([-1, 1], NCHW); every op returns the same shape and dtype. As in the reference (VICO-UoE/
DatasetCondensation utils.py, `DiffAugment`), the colour ops do not clamp (values may leave [-1, 1]), the crop shifts
by a uniform integer in [-s, s] with s = int(size · 0.125 + 0.5) and cutout blanks a square of exactly
int(size · 0.5 + 0.5) pixels a side (clipped at the border); padding and cutout fill black (-1).
"""

from __future__ import annotations

import contextlib
import contextvars
import math
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F

Op = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


# In a Siamese call (`dsa_siamese`) every random draw is one value shared by the whole batch (the original DSA's
# `batchmode`), so that real and synthetic images get the same transformation.
_SHARED_PARAMETERS = contextvars.ContextVar("dsa_shared_parameters", default=False)


def _rand(n: int, g: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    if _SHARED_PARAMETERS.get():
        return torch.rand(1, generator=g, device=g.device).to(x.device, x.dtype).expand(n)
    return torch.rand(n, generator=g, device=g.device).to(x.device, x.dtype)


@contextlib.contextmanager
def _shared_parameters() -> Iterator[None]:
    token = _SHARED_PARAMETERS.set(True)
    try:
        yield
    finally:
        _SHARED_PARAMETERS.reset(token)


def brightness(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Add a per-sample offset of up to ±ratio of the intensity range ([0, 1] units; twice that in model space)."""
    shift = (_rand(len(x), g, x) - 0.5) * 2 * ratio
    return x + 2 * shift.view(-1, 1, 1, 1)


def saturation(x: torch.Tensor, g: torch.Generator, ratio: float = 2.0) -> torch.Tensor:
    """Scale the distance from the per-pixel channel mean by U(0, ratio)."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_rand(len(x), g, x) * ratio).view(-1, 1, 1, 1) + mean


def contrast(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Scale the distance from the image mean by U(0.5, 1.5)."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(len(x), g, x) + ratio).view(-1, 1, 1, 1) + mean


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta, list(x.shape), align_corners=True)
    # Pad with -1 (black in model space) so the value range is kept.
    return F.grid_sample(x + 1, grid, align_corners=True, padding_mode="zeros") - 1


def crop_range(size: int, ratio: float = 0.125) -> int:
    """s: the largest crop shift in pixels, the reference's int(size · ratio + 0.5)."""
    return int(size * ratio + 0.5)


def crop_shifts(n: int, g: torch.Generator, x: torch.Tensor, size: int, ratio: float = 0.125) -> torch.Tensor:
    """n integer shifts, each uniform on [-s, s] (the reference's randint(-s, s + 1)), as x's dtype."""
    s = crop_range(size, ratio)
    return torch.floor(_rand(n, g, x) * (2 * s + 1)).clamp(max=2 * s) - s


def crop(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Translate by an integer number of pixels in [-s, s] along each axis (`crop_shifts`), filling with black."""
    n, _, h, w = x.shape
    # align_corners=True maps pixel centres 0..w-1 onto -1..1, so one pixel is 2 / (w - 1) in grid units
    sx = crop_shifts(n, g, x, w, ratio) * 2 / max(w - 1, 1)
    sy = crop_shifts(n, g, x, h, ratio) * 2 / max(h - 1, 1)
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, 0, 2] = sx
    theta[:, 1, 2] = sy
    return _affine(x, theta)


def cutout(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Black out one square of side int(ratio·size + 0.5) per sample at a random centre, clipped at the border."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = (_rand(n, g, x) * (h + 1 - ch % 2)).long().view(-1, 1, 1) if ch else None
    cx = (_rand(n, g, x) * (w + 1 - cw % 2)).long().view(-1, 1, 1) if cw else None
    if cy is None or cx is None:
        return x
    ys = torch.arange(h, device=x.device).view(1, -1, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, -1)
    top, left = cy - ch // 2, cx - cw // 2  # the reference's rows offset - size // 2 ... + size - 1
    inside = (ys >= top) & (ys < top + ch) & (xs >= left) & (xs < left + cw)
    return torch.where(inside.unsqueeze(1), torch.full_like(x, -1.0), x)


def flip(x: torch.Tensor, g: torch.Generator, prob: float = 0.5) -> torch.Tensor:
    """Horizontal flip with probability `prob` per sample."""
    do = (_rand(len(x), g, x) < prob).view(-1, 1, 1, 1)
    return torch.where(do, x.flip(3), x)


def scale(x: torch.Tensor, g: torch.Generator, ratio: float = 1.2) -> torch.Tensor:
    """Scale x and y independently by factors in [1/ratio, ratio]."""
    n = len(x)
    sx = _rand(n, g, x) * (ratio - 1.0 / ratio) + 1.0 / ratio
    sy = _rand(n, g, x) * (ratio - 1.0 / ratio) + 1.0 / ratio
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = sx
    theta[:, 1, 1] = sy
    return _affine(x, theta)


def rotate(x: torch.Tensor, g: torch.Generator, degrees: float = 15.0) -> torch.Tensor:
    """Rotate by an angle in ±degrees."""
    n = len(x)
    ang = (_rand(n, g, x) - 0.5) * 2 * degrees * math.pi / 180
    theta = torch.zeros(n, 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = torch.cos(ang)
    theta[:, 0, 1] = torch.sin(-ang)
    theta[:, 1, 0] = torch.sin(ang)
    theta[:, 1, 1] = torch.cos(ang)
    return _affine(x, theta)


def colour(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    return contrast(saturation(brightness(x, g), g), g)


# The DSA strategy 'color_crop_cutout_flip_scale_rotate': one group per batch.
OPS: dict[str, Op] = {
    "color": colour,
    "crop": crop,
    "cutout": cutout,
    "flip": flip,
    "scale": scale,
    "rotate": rotate,
}


def dsa(
    x: torch.Tensor, g: torch.Generator, ops: tuple[str, ...] = tuple(OPS), choice: torch.Generator | None = None
) -> torch.Tensor:
    """Apply one DSA operation group, chosen by `choice` (default: `g`), with per-sample parameters drawn from `g`.

    On a GPU, pass a CPU generator as `choice`: picking the group from a device generator would make every batch
    wait for the device (the pick decides which Python code runs)."""
    chooser = g if choice is None else choice
    name = ops[int(torch.randint(len(ops), (1,), generator=chooser, device=chooser.device).item())]
    return OPS[name](x, g)


def op_chooser(g: torch.Generator, seed: int) -> torch.Generator:
    """The generator that picks DSA groups for a training run seeded `seed` whose augmentation generator is `g`:
    `g` itself on CPU (no waiting there), a CPU generator seeded `seed` when `g` lives on a GPU."""
    return g if g.device.type == "cpu" else torch.Generator().manual_seed(seed)


def dsa_siamese(
    batches: Sequence[torch.Tensor],
    g: torch.Generator,
    ops: tuple[str, ...] = tuple(OPS),
    choice: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """Differentiable Siamese augmentation: one operation group and ONE set of parameters, drawn once, applied to
    every image of every batch (e.g. a real and a synthetic batch of one class, as in DC/DSA and DM matching).

    The ops are differentiable with respect to the images (gradients flow back to learnable synthetic images;
    pixels the crop shifts out or cutout blanks get zero gradient). Batches may differ in size but not in image
    shape."""
    chooser = g if choice is None else choice
    name = ops[int(torch.randint(len(ops), (1,), generator=chooser, device=chooser.device).item())]
    sizes = [len(b) for b in batches]
    with _shared_parameters():
        out = OPS[name](torch.cat(list(batches)), g)
    return list(out.split(sizes))
