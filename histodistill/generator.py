"""Class-conditional latent diffusion from diffusers parts.

* Autoencoder: `AutoencoderKL` trained on the real train split (reconstruction + KL), or a local pretrained one.
  The latent shift and scale are computed from the data and stored with the checkpoint.
* Denoiser: `UNet2DModel` with class embeddings, or `DiTTransformer2DModel`; label dropout for classifier-free
  guidance (the null class is index `n_classes`); EMA copy used for sampling; AdamW with linear warm-up; bf16
  autocast where `precision` says so (histodistill.accel). Training is resumable from periodic checkpoints that
  hold weights, EMA, optimiser, LR scheduler, step and RNG state.
* Sampling: DDIM or DPM-Solver++ with a guidance scale, seeded, batched; the denoiser optionally torch.compile'd.
"""

from __future__ import annotations

import copy
import logging
import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from .accel import autocast, compile_module
from .checkpoint import load_checkpoint, save_checkpoint
from .dp import DPConfig, PrivateTraining
from .errors import HistodistillError
from .images import RESIDENT_LIMIT, batch_source, to_uint8
from .io import NpyRows

log = logging.getLogger(__name__)

SCHEDULERS = ("ddim", "dpmsolver++")
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


# --------------------------------------------------------------------------------------------- autoencoder


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
) -> dict[str, Any]:
    """Train (or load) the autoencoder; returns the checkpoint dict (config, weights, latent shift/scale).

    `latent_stats`: "data" computes the latent shift and scale from `images`; "pretrained" takes them from the
    pretrained autoencoder's own config (`shift_factor`, `scaling_factor`), so that DP mode never computes them from
    private images.

    Train splits above `resident_limit` bytes (uint8) are read batch by batch (images.batch_source); the latent
    statistics and the reconstruction error are accumulated chunk by chunk. From `NpyRows` (the rules read
    data/train_images.npy so) memory does not grow with the split at all; from an array, not beyond its uint8 copy."""
    from diffusers import AutoencoderKL

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
        bar = tqdm(range(cfg.steps), desc="autoencoder", disable=not progress, mininterval=10)
        for step in bar:
            idx = torch.randint(n, (min(cfg.batch_size, n),), generator=g, device=device)
            x = fetch(idx)
            with autocast(device, precision):
                dist = vae.encode(x).latent_dist
                z = dist.mean + dist.std * torch.randn(dist.mean.shape, generator=g, device=device)
                rec = vae.decode(z).sample
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


# ------------------------------------------------------------------------------------------------ denoiser


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
) -> dict[str, Any]:
    """Train the denoiser; resumes from `checkpoint_path` if it exists and matches the config; returns the
    final checkpoint dict (EMA weights) for sampling.

    `on_step(done, snapshot)`, if given, is called after every step with the steps done so far and a function that
    returns the sampling checkpoint (EMA weights) at that step; the learning rate is constant after warm-up, so the
    snapshot at step s of a longer run equals the final checkpoint of an s-step run (benchmarks/generator_leakage.py).

    The latent posterior (mean, std) of every train image is computed once and kept on the device when both fit in
    `latent_limit` bytes; otherwise each batch is encoded as it is drawn (images streamed as in train_autoencoder).

    `init`: a sampling checkpoint (e.g. pre-trained on public data) whose weights start both the model and its EMA.
    `dp`: train with DP-SGD (histodistill.dp: Poisson batches of expected size cfg.batch_size, per-example clipping
    instead of the global clip, calibrated noise, in fp32); the returned checkpoint's `dp` entry states the guarantee."""
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


# ------------------------------------------------------------------------------------------------ sampling


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
