"""The class-conditional denoiser (diffusers `UNet2DModel` or DiT) trained on the autoencoder's latents with label
dropout for classifier-free guidance; EMA weights are kept for sampling."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from histodistill.base.accel import autocast, compile_module
from histodistill.base.checkpoint import load_checkpoint, save_checkpoint
from histodistill.base.errors import HistodistillError
from histodistill.base.images import RESIDENT_LIMIT, batch_source
from histodistill.base.io import NpyRows

from .autoencoder import LATENT_LIMIT, LatentCodec, _chunks, _plain
from .dp import DPConfig, PrivateTraining

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DenoiserConfig:
    arch: str = "unet"
    block_out_channels: tuple[int, ...] = (64, 128)
    layers_per_block: int = 1
    attention: bool = False
    transformer_layers: int = 6
    transformer_heads: int = 4
    transformer_head_dim: int = 32
    patch_size: int = 2
    steps: int = 1000
    batch_size: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.0
    warmup_steps: int = 50
    label_dropout: float = 0.15
    ema_decay: float = 0.995
    train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    checkpoint_every: int = 200


def build_denoiser(cfg: DenoiserConfig, latent_channels: int, latent_size: int, n_classes: int) -> nn.Module:
    """A class-conditional denoiser with n_classes + 1 label embeddings (the last is the null label)."""
    if cfg.arch == "unet":
        from diffusers import UNet2DModel

        n = len(cfg.block_out_channels)
        down = ["DownBlock2D"] * n
        up = ["UpBlock2D"] * n
        if cfg.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        groups = min(32, min(cfg.block_out_channels))
        return UNet2DModel(
            sample_size=latent_size,
            in_channels=latent_channels,
            out_channels=latent_channels,
            block_out_channels=tuple(cfg.block_out_channels),
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            layers_per_block=cfg.layers_per_block,
            norm_num_groups=groups,
            num_class_embeds=n_classes + 1,
            add_attention=cfg.attention,
        )
    if cfg.arch == "dit":
        from diffusers import DiTTransformer2DModel

        if latent_size % cfg.patch_size:
            raise HistodistillError(
                f"generator.denoiser.patch_size {cfg.patch_size} does not divide the latent size {latent_size}"
            )
        model = DiTTransformer2DModel(
            num_attention_heads=cfg.transformer_heads,
            attention_head_dim=cfg.transformer_head_dim,
            in_channels=latent_channels,
            out_channels=latent_channels,
            num_layers=cfg.transformer_layers,
            sample_size=latent_size,
            patch_size=cfg.patch_size,
            num_embeds_ada_norm=n_classes,  # the table has n_classes + 1 rows; the last is the null label
        )
        for module in model.modules():  # label dropout is ours (seeded), not the model's internal one
            if hasattr(module, "dropout_prob") and hasattr(module, "embedding_table"):
                module.dropout_prob = 0.0
        return model
    raise HistodistillError(f"generator.denoiser.arch: unknown {cfg.arch!r}; use 'unet' or 'dit'")


def denoise(model: nn.Module, z: torch.Tensor, t: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Noise prediction of either architecture."""
    if t.ndim == 0:
        t = t.expand(len(z))
    return model(z, t, class_labels=y).sample


class _PosteriorSource:
    """`source(idx) -> (mean, std)` of the latent posterior of train images idx; `shape` is one latent's shape."""

    def __init__(self, codec: LatentCodec, images: np.ndarray | NpyRows, resident_limit: int, latent_limit: int):
        self.codec, self.fetch = codec, batch_source(images, codec.device, resident_limit)
        chunks = _chunks(len(images), images.shape[1], codec.device)
        first = codec.posterior(self.fetch(chunks[0]))
        self.shape = tuple(first[0].shape[1:])
        self.resident = 2 * len(images) * first[0][0].numel() * 4 <= latent_limit
        if self.resident:
            parts = [first] + [codec.posterior(self.fetch(c)) for c in chunks[1:]]
            self.mean, self.std = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        log.info("latents %s: %s", self.shape, "precomputed" if self.resident else "encoded per batch (large split)")

    def __call__(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return (self.mean[idx], self.std[idx]) if self.resident else self.codec.posterior(self.fetch(idx))


def make_train_scheduler(cfg: DenoiserConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=cfg.train_timesteps, beta_schedule=cfg.beta_schedule, clip_sample=False)


def _warmup(step: int, warmup: int) -> float:
    return min(1.0, (step + 1) / max(1, warmup))


def train_denoiser(
    codec: LatentCodec,
    images: np.ndarray | NpyRows,
    labels: np.ndarray,
    n_classes: int,
    cfg: DenoiserConfig,
    seed: int,
    checkpoint_path: str | os.PathLike,
    progress: bool = True,
    precision: str = "fp32",
    resident_limit: int = RESIDENT_LIMIT,
    latent_limit: int = LATENT_LIMIT,
    on_step: Callable[[int, Callable[[], dict[str, Any]]], None] | None = None,
    dp: DPConfig | None = None,
    init: dict[str, Any] | None = None,
    compiled: bool = False,
) -> dict[str, Any]:
    """Train the denoiser; resumes from `checkpoint_path` if it exists and matches the config; returns the
    final checkpoint dict (EMA weights) for sampling.

    `on_step(done, snapshot)`, if given, is called after every step with the steps done so far and a function that
    returns the sampling checkpoint (EMA weights) at that step; the learning rate is constant after warm-up, so the
    snapshot at step s of a longer run equals the final checkpoint of an s-step run (benchmarks/generator_leakage.py).

    The latent posterior (mean, std) of every train image is computed once and kept on the device when both fit in
    `latent_limit` bytes; otherwise each batch is encoded as it is drawn (images streamed as in train_autoencoder).

    `init`: a sampling checkpoint (e.g. pre-trained on public data) whose weights start both the model and its EMA.
    `compiled`: torch.compile the model's forward for training (`generator.compile`; not with `dp`: Opacus's hooks).
    `dp`: train with DP-SGD (histodistill.generator.dp: Poisson batches of expected size cfg.batch_size, per-example clipping
    instead of the global clip, calibrated noise, in fp32); the returned checkpoint's `dp` entry states the guarantee.
    """
    import functools

    device = codec.device
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    posterior, n = _PosteriorSource(codec, images, resident_limit, latent_limit), len(images)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)
    latent_channels, latent_size = posterior.shape[0], posterior.shape[1]

    model = build_denoiser(cfg, latent_channels, latent_size, n_classes).to(device)
    if init is not None:
        model.load_state_dict(init["state_dict"])
        log.info("denoiser starts from pre-trained weights (%s steps)", init.get("steps_trained"))
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    private = PrivateTraining(model, opt, dp, n, cfg.batch_size, cfg.steps, seed, device) if dp else None
    if private is not None and precision != "fp32":
        log.info("DP-SGD trains in fp32 (per-example gradients); precision %s ignored for the denoiser", precision)
        precision = "fp32"
    forward, stepper = (private.module, private.optimizer) if private else (model, opt)
    if compiled and private is None:
        forward = compile_module(model, True, "the denoiser's training forward")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, functools.partial(_warmup, warmup=cfg.warmup_steps))
    noise_sched = make_train_scheduler(cfg)
    alphas = noise_sched.alphas_cumprod.to(device)
    fingerprint = {
        "config": _plain(asdict(cfg)),
        "n_classes": n_classes,
        "seed": seed,
        "n_train": len(images),
        "dp": _plain(asdict(dp)) if dp else None,
        "init_steps": None if init is None else init.get("steps_trained"),
    }

    start = 0
    checkpoint_path = Path(checkpoint_path)
    if checkpoint_path.exists():
        ckpt = load_checkpoint(
            checkpoint_path, required=("model", "ema", "optimizer", "lr_scheduler", "step", "rng", "fingerprint")
        )
        if ckpt["fingerprint"] == fingerprint:
            model.load_state_dict(ckpt["model"])
            ema.load_state_dict(ckpt["ema"])
            opt.load_state_dict(ckpt["optimizer"])
            sched.load_state_dict(ckpt["lr_scheduler"])
            g.set_state(ckpt["rng"]["generator"])
            torch.set_rng_state(ckpt["rng"]["torch"])
            if private is not None:
                private.load_state_dict(ckpt["dp"])
            start = int(ckpt["step"])
            log.info("resumed denoiser training from checkpoint %s at step %d of %d", checkpoint_path, start, cfg.steps)
        else:
            log.info("ignoring checkpoint %s: it was written for other settings; starting from step 0", checkpoint_path)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "denoiser %s: %.2fM parameters, latents %dx%dx%d, %d steps",
        cfg.arch,
        n_params / 1e6,
        latent_channels,
        latent_size,
        latent_size,
        cfg.steps,
    )

    model.train()
    bar = tqdm(
        range(start, cfg.steps), desc="denoiser", disable=not progress, mininterval=10, initial=start, total=cfg.steps
    )
    for step in bar:
        if private is not None:
            idx = private.batch(g, device)
        else:
            idx = torch.randint(n, (min(cfg.batch_size, n),), generator=g, device=device)
        z_mean, z_std = posterior(idx)
        z0 = z_mean + z_std * torch.randn(z_mean.shape, generator=g, device=device)
        drop = torch.rand(len(idx), generator=g, device=device) < cfg.label_dropout
        y = torch.where(drop, n_classes, y_all[idx])  # masked assignment would wait for the GPU
        t = torch.randint(cfg.train_timesteps, (len(y),), generator=g, device=device)
        noise = torch.randn(z0.shape, generator=g, device=device)
        a = alphas[t].view(-1, 1, 1, 1)
        zt = a.sqrt() * z0 + (1 - a).sqrt() * noise
        stepper.zero_grad(set_to_none=True)
        loss = torch.zeros(())  # an empty Poisson batch (DP only) has no loss
        # DP batches may be split into physical chunks (privacy.dp.max_physical_batch); their per-example gradients
        # accumulate until the one DP step. Everything else is one chunk.
        for part in private.chunks(len(idx)) if private is not None else [slice(None)]:
            with autocast(device, precision):
                pred = denoise(forward, zt[part], t[part], y[part])
            part_loss = F.mse_loss(pred.float(), noise[part])
            part_loss.backward()
            loss = loss + part_loss.detach() * (len(pred) / len(idx))
        if private is not None:
            private.step(len(idx))
        else:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
        sched.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - decay)
        done = step + 1
        if on_step is not None:
            on_step(done, lambda: _sampling_checkpoint(ema, cfg, n_classes, latent_channels, latent_size, done))
        if done % 100 == 0 or done == cfg.steps:
            log.info("denoiser step %d loss %.4f lr %.2e", done, loss.item(), sched.get_last_lr()[0])
        if cfg.checkpoint_every and done % cfg.checkpoint_every == 0 and done < cfg.steps:
            save_checkpoint(
                checkpoint_path,
                {
                    "model": model.state_dict(),
                    "ema": ema.state_dict(),
                    "optimizer": opt.state_dict(),
                    "lr_scheduler": sched.state_dict(),
                    "step": done,
                    "rng": {"generator": g.get_state(), "torch": torch.get_rng_state()},
                    "fingerprint": fingerprint,
                    "dp": private.state_dict() if private is not None else None,
                },
            )
            log.info("checkpoint at step %d -> %s", done, checkpoint_path)
    final = _sampling_checkpoint(ema, cfg, n_classes, latent_channels, latent_size, cfg.steps)
    if private is not None:
        final["dp"] = private.record()
        log.info("DP-SGD done: ε = %.3f at δ = %g (%s accountant)", final["dp"]["epsilon"], dp.delta, dp.accountant)
    return final


def _sampling_checkpoint(
    ema: nn.Module, cfg: DenoiserConfig, n_classes: int, latent_channels: int, latent_size: int, steps: int
) -> dict[str, Any]:
    """What sampling needs: the EMA weights and the latent and noise-schedule facts (`load_denoiser`)."""
    return {
        "kind": "denoiser",
        "arch": cfg.arch,
        "model_config": _plain(dict(ema.config)),
        "state_dict": {k: v.detach().cpu().clone() for k, v in ema.state_dict().items()},
        "n_classes": n_classes,
        "latent_channels": latent_channels,
        "latent_size": latent_size,
        "train_timesteps": cfg.train_timesteps,
        "beta_schedule": cfg.beta_schedule,
        "steps_trained": steps,
    }


def load_denoiser(path: str | os.PathLike, device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    return denoiser_from_checkpoint(
        load_checkpoint(path, required=("arch", "model_config", "state_dict", "n_classes")), device
    )


def denoiser_from_checkpoint(ckpt: dict[str, Any], device: torch.device) -> tuple[nn.Module, dict[str, Any]]:
    """The sampling model (eval mode, no gradients) of a denoiser checkpoint dict, and the dict."""
    if ckpt["arch"] == "unet":
        from diffusers import UNet2DModel as cls
    else:
        from diffusers import DiTTransformer2DModel as cls
    model = cls.from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval().requires_grad_(False), ckpt
