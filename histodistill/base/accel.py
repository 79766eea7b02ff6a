"""Speed settings shared by every training and sampling loop: numeric precision and compilation.

`precision: auto` means bf16 autocast on a CUDA device with bf16 support and fp32 elsewhere. On CPU, bf16 is a
choice to measure, not a default: on a 2-core AVX512-BF16 EPYC it made evaluation slower (full real digits at
16 px: 62 s against 50 s; benchmarks/eval_speed.py at 28 px: 5.3 against 6.7 epochs/s) and sampling faster
(benchmarks/sampling.py: 283 against 205 images/s). Weights, optimiser state, losses and EMA stay fp32 in every mode.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any, Callable

import torch

from .errors import HistodistillError

log = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")


def resolve_precision(requested: str, device: torch.device | str) -> str:
    """'auto' -> 'bf16' on a CUDA device with bf16 support, else 'fp32'; explicit values pass through."""
    if requested not in PRECISIONS:
        raise HistodistillError(f"precision: unknown {requested!r}; use one of {PRECISIONS}")
    if requested == "auto":
        cuda = torch.device(device).type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return "bf16" if cuda else "fp32"
    return requested


def resolve_switch(requested: bool | str, device: torch.device | str) -> bool:
    """A speed switch that is `auto` by default: on for CUDA, off on CPU; explicit booleans pass through."""
    if requested == "auto":
        return torch.device(device).type == "cuda"
    return bool(requested)


# torch.compile of the denoiser for sampling pays only for long shards: compiling costs 21-36 s per job, and it saves
# about 1.4 s of sampling per 900 images x 50 steps on an H200 (issue 34's costing from the README's H200 timings),
# i.e. about 3e-5 s per image-step, so a job needs about a million image-steps (class-conditional guidance included)
# to repay it. The paper preset's shards (900 images x 50 steps) do not.
SAMPLING_COMPILE_MIN_IMAGE_STEPS = 1_000_000


def sampling_compile(requested: bool | str, device: torch.device | str, n_images: int, steps: int) -> bool:
    """`pool.compile`: `auto` compiles on a GPU for a shard of at least SAMPLING_COMPILE_MIN_IMAGE_STEPS images x
    sampler steps, never on CPU; explicit booleans pass through."""
    if requested == "auto":
        return torch.device(device).type == "cuda" and n_images * steps >= SAMPLING_COMPILE_MIN_IMAGE_STEPS
    return bool(requested)


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` for precision 'bf16'; nothing for 'fp32'."""
    device = torch.device(device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def compile_module(fn: Callable[..., Any], enabled: bool, what: str, mode: str = "default") -> Callable[..., Any]:
    """`torch.compile(fn)` (inductor, static shapes) when enabled; if compiling fails, `fn` runs instead, with a
    warning in the log, so a compiler problem costs speed, never the run. Only for functions whose call changes no
    state (inference, or a network's forward and loss without running statistics): a failed compiled call is simply
    repeated uncompiled. `mode` is torch.compile's ("reduce-overhead" adds CUDA graphs)."""
    if not enabled:
        return fn
    compiled = torch.compile(fn, dynamic=False, mode=mode)
    state = {"fn": compiled}

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return state["fn"](*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - any compiler failure falls back to eager
            if state["fn"] is fn:
                raise
            log.warning("torch.compile of %s failed (%s: %s); running it uncompiled", what, type(exc).__name__, exc)
            state["fn"] = fn
            return fn(*args, **kwargs)

    return call
