"""Class-conditional latent diffusion from diffusers parts: the settings, and the autoencoder (diffusers
`AutoencoderKL`) with the latent codec that scales its latents."""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from histodistill.base.accel import autocast, compile_module
from histodistill.base.checkpoint import load_checkpoint
from histodistill.base.errors import HistodistillError
from histodistill.base.images import RESIDENT_LIMIT, batch_source
from histodistill.base.io import NpyRows

log = logging.getLogger(__name__)
LATENT_LIMIT = 1024**3  # bytes of precomputed latent means + stds kept on the device; above it, encode per batch
CHUNK_PIXELS = 512 * 64 * 64  # pixels per encoder/decoder call outside the training loop (512 images at 64 px)


@dataclass(frozen=True)
class AutoencoderConfig:
    block_out_channels: tuple[int, ...] = (32, 64)
    latent_channels: int = 4
    layers_per_block: int = 1
    norm_num_groups: int = 8
    steps: int = 1000
    batch_size: int = 128
    lr: float = 1e-3
    kl_weight: float = 1e-6
    pretrained: str | None = None


def build_autoencoder(cfg: AutoencoderConfig, channels: int, size: int) -> nn.Module:
    from diffusers import AutoencoderKL

    n = len(cfg.block_out_channels)
    return AutoencoderKL(
        in_channels=channels,
        out_channels=channels,
        down_block_types=("DownEncoderBlock2D",) * n,
        up_block_types=("UpDecoderBlock2D",) * n,
        block_out_channels=tuple(cfg.block_out_channels),
        layers_per_block=cfg.layers_per_block,
        latent_channels=cfg.latent_channels,
        norm_num_groups=cfg.norm_num_groups,
        sample_size=size,
    )


def _match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """Grey images into an RGB autoencoder (repeat) and back (mean)."""
    if x.shape[1] == channels:
        return x
    if channels == 3 and x.shape[1] == 1:
        return x.repeat(1, 3, 1, 1)
    if channels == 1 and x.shape[1] == 3:
        return x.mean(dim=1, keepdim=True)
    raise HistodistillError(f"cannot map {x.shape[1]}-channel images to a {channels}-channel autoencoder")


class LatentCodec:
    """An autoencoder plus the latent normalisation: z = (mean_or_sample − shift) · scale."""

    def __init__(self, vae: nn.Module, shift: float, scale: float, data_channels: int):
        self.vae = vae.eval().requires_grad_(False)
        self.shift, self.scale, self.data_channels = float(shift), float(scale), data_channels

    @property
    def device(self) -> torch.device:
        return next(self.vae.parameters()).device

    @torch.no_grad()
    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.vae.encode(_match_channels(x, self.vae.config.in_channels)).latent_dist
        return (d.mean - self.shift) * self.scale, d.std * self.scale

    @torch.no_grad()
    def decode(self, z: torch.Tensor) -> torch.Tensor:
        x = self.vae.decode(z / self.scale + self.shift).sample
        return _match_channels(x, self.data_channels).clamp(-1, 1)


def train_autoencoder(
    images: np.ndarray | NpyRows,
    cfg: AutoencoderConfig,
    seed: int,
    device: torch.device,
    progress: bool = True,
    precision: str = "fp32",
    resident_limit: int = RESIDENT_LIMIT,
    latent_stats: str = "data",
    compiled: bool = False,
) -> dict[str, Any]:
    """Train (or load) the autoencoder; returns the checkpoint dict (config, weights, latent shift/scale).

    `latent_stats`: "data" computes the latent shift and scale from `images`; "pretrained" takes them from the
    pretrained autoencoder's own config (`shift_factor`, `scaling_factor`), so that DP mode never computes them from
    private images.

    Train splits above `resident_limit` bytes (uint8) are read batch by batch (images.batch_source); the latent
    statistics and the reconstruction error are accumulated chunk by chunk. From `NpyRows` (the rules read
    data/train_images.npy so) memory does not grow with the split at all; from an array, not beyond its uint8 copy.

    `compiled` (`generator.compile`): the encoder's and the decoder's forward run through torch.compile; the
    posterior's sampling and its KL term stay eager, on the moments the compiled encoder returns."""
    from diffusers import AutoencoderKL
    from diffusers.models.autoencoders.vae import DiagonalGaussianDistribution

    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    fetch = batch_source(images, device, resident_limit)
    n = len(images)
    channels, size = images.shape[3], images.shape[1]
    if cfg.pretrained:
        path = Path(cfg.pretrained).expanduser()
        if not path.is_dir():
            raise HistodistillError(
                f"generator.autoencoder.pretrained: {path} is not a directory with a diffusers AutoencoderKL"
            )
        vae = AutoencoderKL.from_pretrained(path, local_files_only=True).to(device)
        log.info("loaded pretrained autoencoder from %s", path)
    else:
        vae = build_autoencoder(cfg, channels, size).to(device)
        opt = torch.optim.Adam(vae.parameters(), lr=cfg.lr)
        vae.train()
        # the posterior's moments and the decoder are tensor functions torch.compile can take whole
        moments = compile_module(lambda x: vae.encode(x).latent_dist.parameters, compiled, "the autoencoder's encoder")
        decoded = compile_module(lambda z: vae.decode(z).sample, compiled, "the autoencoder's decoder")

        bar = tqdm(range(cfg.steps), desc="autoencoder", disable=not progress, mininterval=10)
        for step in bar:
            idx = torch.randint(n, (min(cfg.batch_size, n),), generator=g, device=device)
            x = fetch(idx)
            with autocast(device, precision):
                dist = DiagonalGaussianDistribution(moments(x))
                z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=g, device=device)
                rec = decoded(z)
            rec_loss = F.mse_loss(rec.float(), x)
            kl = dist.kl().mean() / x[0].numel()
            loss = rec_loss + cfg.kl_weight * kl
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 100 == 0 or step == cfg.steps - 1:
                log.info("autoencoder step %d rec %.5f kl %.3f", step, rec_loss.item(), kl.item())
    vae.eval()
    if latent_stats == "pretrained":  # no image is read: scaling from the pretrained model, no reconstruction error
        shift, scale = float(vae.config.get("shift_factor") or 0.0), float(vae.config.get("scaling_factor") or 1.0)
        rec_mse = float("nan")
        log.info("autoencoder: latent shift %.4f scale %.4f from the pretrained config", shift, scale)
    else:
        shift, scale, rec_mse = _latent_stats_and_error(vae, fetch, n, size, channels, images[0].size)
    return {
        "kind": "autoencoder",
        "vae_config": dict(vae.config),
        "state_dict": {k: v.cpu() for k, v in vae.state_dict().items()},
        "shift": shift,
        "scale": scale,
        "data_channels": channels,
        "size": size,
        "reconstruction_mse": rec_mse,
    }


def _latent_stats_and_error(
    vae: nn.Module, fetch: Callable[[torch.Tensor], torch.Tensor], n: int, size: int, channels: int, pixels: int
) -> tuple[float, float, float]:
    """Latent shift and scale (mean and 1/std of the posterior means over the images) and the reconstruction MSE."""
    device = next(vae.parameters()).device
    total, total_sq, count = 0.0, 0.0, 0
    with torch.no_grad():
        for chunk in _chunks(n, size, device):
            mean = vae.encode(_match_channels(fetch(chunk), vae.config.in_channels)).latent_dist.mean.double()
            total, total_sq, count = (
                total + float(mean.sum()),
                total_sq + float((mean * mean).sum()),
                count + mean.numel(),
            )
    shift = total / count
    std = math.sqrt(max(total_sq - count * shift * shift, 0.0) / max(count - 1, 1))  # unbiased, as torch.std
    scale = 1.0 / max(std, 1e-6)
    codec = LatentCodec(vae, shift, scale, channels)
    squared_error = 0.0
    for chunk in _chunks(n, size, device):
        x = fetch(chunk)
        squared_error += float(((codec.decode(codec.posterior(x)[0]) - x).double() ** 2).sum())
    rec_mse = squared_error / (n * pixels)
    log.info("autoencoder: latent shift %.4f scale %.4f, reconstruction MSE %.5f (model space)", shift, scale, rec_mse)
    return shift, scale, rec_mse


def _chunks(n: int, size: int, device: torch.device) -> list[torch.Tensor]:
    """Index ranges covering images 0..n-1 in order, each of at most CHUNK_PIXELS pixels (at most 512 images), so
    that activation memory outside the training loop does not grow with the image size."""
    step = max(1, min(512, CHUNK_PIXELS // (size * size)))
    return [torch.arange(i, min(i + step, n), device=device) for i in range(0, n, step)]


def _plain(obj: Any) -> Any:
    """Plain JSON-like values (tuples as lists, diffusers' private `_` keys dropped): checkpoints are loaded with
    weights_only=True, and fingerprints compare equal after a save/load round trip."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


AUTOENCODER_KEYS = ("vae_config", "state_dict", "shift", "scale")  # what an autoencoder checkpoint must hold


def load_codec(path: str | os.PathLike, device: torch.device) -> LatentCodec:
    return codec_from_checkpoint(load_checkpoint(path, required=AUTOENCODER_KEYS), device)


def codec_from_checkpoint(ckpt: dict[str, Any], device: torch.device) -> LatentCodec:
    """The LatentCodec of an autoencoder checkpoint dict (train_autoencoder's)."""
    from diffusers import AutoencoderKL

    vae = AutoencoderKL.from_config(ckpt["vae_config"])
    vae.load_state_dict(ckpt["state_dict"])
    return LatentCodec(vae.to(device), ckpt["shift"], ckpt["scale"], ckpt["data_channels"])
