"""The two spaces the audit measures distances in (pixels and the embedder's features), and their scales."""

from __future__ import annotations

PIXEL_SCALE = 2.0 / 255.0  # uint8 step -> model-space step ([0, 255] -> [-1, 1])
SPACES = ("pixel", "embedding")
SCALE = {"pixel": PIXEL_SCALE, "embedding": 1.0}
