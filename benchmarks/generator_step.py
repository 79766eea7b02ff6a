"""Training step time of the paper preset's generator (configs/pathmnist_64.yaml): the autoencoder and the DiT
denoiser at the preset's sizes and batches, and what that makes of their training lengths (docs/paper_scale.md).

    .venv/bin/python benchmarks/generator_step.py [--config configs/pathmnist_64.yaml] [--parts autoencoder denoiser]
        [--precision auto|fp32|bf16] [--batch-scale 1.0] [--steps 20]

Random weights and data (a step's time does not depend on them). One step = forward, MSE loss, backward and an AdamW
step, as the workflow trains (the autoencoder's KL term and the denoiser's EMA are left out: element-wise, small).
FLOPs per step are counted by torch's FlopCounterMode; "of peak" divides the achieved rate by the device's dense bf16
peak. `--batch-scale` shrinks the batches for a quick run on a CPU (the projection then scales the steps' time back).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from common import bf16_peak_tflops, describe_device, generator_configs, record_output
from torch.utils.flop_counter import FlopCounterMode

from histodistill.base import autocast, resolve_precision
from histodistill.generator import build_autoencoder, build_denoiser, denoise


def _parts(config_path: Path, device: torch.device, scale: float):
    """(name, model, batch, one step's inputs, preset's steps) of each generator part."""
    ae_cfg, den_cfg, channels, size, latent, n_classes = generator_configs(config_path)
    ae_batch = max(1, round(ae_cfg.batch_size * scale))
    den_batch = max(1, round(den_cfg.batch_size * scale))

    def ae_inputs():
        x = torch.rand(ae_batch, channels, size, size, device=device) * 2 - 1
        return lambda model: torch.nn.functional.mse_loss(model(x).sample, x)

    def den_inputs():
        z = torch.randn(den_batch, ae_cfg.latent_channels, latent, latent, device=device)
        t = torch.randint(1000, (den_batch,), device=device)
        y = torch.randint(n_classes + 1, (den_batch,), device=device)
        return lambda model: torch.nn.functional.mse_loss(denoise(model, z, t, y), z)

    yield "autoencoder", lambda: build_autoencoder(
        ae_cfg, channels, size
    ), ae_batch, ae_cfg.batch_size, ae_inputs, ae_cfg.steps
    yield "denoiser", lambda: build_denoiser(
        den_cfg, ae_cfg.latent_channels, latent, n_classes
    ), den_batch, den_cfg.batch_size, den_inputs, den_cfg.steps


def measure(build, batch, full_batch, inputs, preset_steps, device, precision, steps) -> dict:
    model = build().to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    loss_of = inputs()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with autocast(device, precision):
            loss = loss_of(model)
        loss.float().backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        step()
    flops = counter.get_total_flops()
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_step = (time.perf_counter() - start) / steps
    full_step = per_step * full_batch / batch
    return {
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "batch": batch,
        "s_per_step": per_step,
        "tflops": flops / per_step / 1e12,
        "preset_hours": full_step * preset_steps / 3600,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/pathmnist_64.yaml"))
    parser.add_argument("--parts", nargs="+", default=["autoencoder", "denoiser"])
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--batch-scale", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    record_output(__file__)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(args.precision, device)
    peak = bf16_peak_tflops(device)
    print(describe_device(device), f"precision {precision}")
    print("| part | params (M) | batch | s / step | TFLOP/s | of bf16 peak | preset's steps at full batch (h) |")
    print("|---|---|---|---|---|---|---|")
    for name, build, batch, full_batch, inputs, preset_steps in _parts(args.config, device, args.batch_scale):
        if name not in args.parts:
            continue
        r = measure(build, batch, full_batch, inputs, preset_steps, device, precision, args.steps)
        share = f"{100 * r['tflops'] / peak:.1f} %" if peak else "–"
        print(
            f"| {name} | {r['params_M']:.1f} | {r['batch']} | {r['s_per_step']:.4f} | {r['tflops']:.3g} | {share} "
            f"| {r['preset_hours']:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
