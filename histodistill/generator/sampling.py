"""Sampling images from the trained denoiser: the diffusers scheduler, classifier-free guidance, batched decoding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from histodistill.base.accel import autocast, compile_module
from histodistill.base.errors import HistodistillError
from histodistill.base.images import to_uint8

from .autoencoder import LatentCodec
from .denoiser import denoise

SCHEDULERS = ("ddim", "dpmsolver++")


def sampling_batch_size(requested: int | str, device: torch.device) -> int:
    """`auto`: 1024 images per batch on a GPU (conditional and unconditional halves make 2048 forwards), 500 on CPU."""
    if requested == "auto":
        return 1024 if device.type == "cuda" else 500
    return int(requested)


def make_sampler(name: str, train_timesteps: int, beta_schedule: str):
    """A diffusers inference scheduler matching the training noise schedule."""
    from diffusers import DDIMScheduler, DPMSolverMultistepScheduler

    common = dict(num_train_timesteps=train_timesteps, beta_schedule=beta_schedule)
    if name == "ddim":
        return DDIMScheduler(**common, clip_sample=False, set_alpha_to_one=False)
    if name == "dpmsolver++":
        # lambda_min_clipped: without it the first step of the cosine schedule is t = 999 (alpha_bar ~ 2e-9), where a
        # 0.5 % error of the noise prediction (bf16 rounding) throws samples far off the data (tests/test_sampler.py);
        # diffusers documents the clipping as critical for the cosine schedule but gives no value; -5.1 is the one of
        # the DeepFloyd IF scheduler configs. It only skips timesteps whose log-SNR lies below -5.1,
        # so it changes nothing for the linear schedules.
        return DPMSolverMultistepScheduler(
            **common, algorithm_type="dpmsolver++", solver_order=2, lambda_min_clipped=-5.1
        )
    raise HistodistillError(f"pool.scheduler: unknown {name!r}; use one of {SCHEDULERS}")


@torch.no_grad()
def guided_latents(
    forward: Any,
    y: torch.Tensor,
    null_label: int,
    z: torch.Tensor,
    sampler: Any,
    guidance: float,
    precision: str = "fp32",
) -> torch.Tensor:
    """Run `sampler` (timesteps already set) from noise `z` with classifier-free guidance: each step evaluates the
    conditional and the unconditional (`null_label`) half as one batch of 2 × len(y)."""
    z = z * sampler.init_noise_sigma
    y_in = torch.cat([y, torch.full_like(y, null_label)])
    for t in sampler.timesteps:
        z_in = sampler.scale_model_input(torch.cat([z, z]), t)
        with autocast(z.device, precision):
            eps = denoise(forward, z_in, t, y_in).float()
        eps_c, eps_u = eps.chunk(2)
        z = sampler.step(eps_u + guidance * (eps_c - eps_u), t, z).prev_sample
    return z


@torch.no_grad()
def sample_images(
    codec: LatentCodec,
    model: nn.Module,
    meta: dict[str, Any],
    labels: np.ndarray,
    scheduler: str,
    steps: int,
    guidance: float,
    seed: int,
    batch_size: int,
    progress: bool = True,
    precision: str = "fp32",
    compile_denoiser: bool = False,
) -> np.ndarray:
    """Sample one image per entry of `labels` with classifier-free guidance; returns uint8 NHWC.

    With `compile_denoiser` the denoiser's forward is torch.compile'd (eager if compiling fails)."""
    device = codec.device
    forward = compile_module(model, compile_denoiser, "the denoiser")
    g = torch.Generator(device=device).manual_seed(seed)
    shape = (meta["latent_channels"], meta["latent_size"], meta["latent_size"])
    out = []
    for start in tqdm(range(0, len(labels), batch_size), desc="sample", disable=not progress, mininterval=10):
        y = torch.from_numpy(labels[start : start + batch_size].astype(np.int64)).to(device)
        z = torch.randn((len(y), *shape), generator=g, device=device)
        sampler = make_sampler(scheduler, meta["train_timesteps"], meta["beta_schedule"])
        sampler.set_timesteps(steps, device=device)
        z = guided_latents(forward, y, meta["n_classes"], z, sampler, guidance, precision)
        out.append(to_uint8(codec.decode(z)))
    return np.concatenate(out) if out else np.zeros((0,), np.uint8)
