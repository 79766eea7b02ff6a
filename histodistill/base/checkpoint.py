"""Checkpoint files: atomic writes, and loads that fail with a message naming the file."""

from __future__ import annotations

import io
import os
from typing import Any

import torch

from .errors import HistodistillError
from .io import atomic_write_bytes


def save_checkpoint(path: str | os.PathLike, obj: dict[str, Any]) -> None:
    """torch.save to a temporary file, then rename: a kill never leaves a truncated checkpoint."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Load a checkpoint on the CPU (weights only, no pickled code); corrupt or foreign files raise a clear error."""
    if not os.path.exists(path):
        raise HistodistillError(f"{path}: checkpoint not found")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise HistodistillError(
            f"{path}: corrupted or truncated checkpoint ({type(exc).__name__}). Delete it and rerun the rule that "
            "writes it (for a protected output: chmod u+w, rm, then snakemake)."
        ) from exc
    if not isinstance(obj, dict) or any(k not in obj for k in required):
        raise HistodistillError(f"{path}: not a histodistill checkpoint (expected keys {list(required)})")
    return obj
