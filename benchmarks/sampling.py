"""Sampling speed of the pool generator: images per second and fraction of the device's bf16 peak.

    .venv/bin/python benchmarks/sampling.py [--batch 512] [--steps 50] [--repeats 2]
        [--precision auto|fp32|bf16 ...] [--compile auto|on|off ...] [--only default|paper]

Measures the default denoiser (config.yaml) and the paper-scale one (configs/pathmnist_64.yaml) with random
weights (speed does not depend on the weights) through the workflow's own sampling loop
(histodistill.generator.guided_latents): classifier-free guidance (conditional and unconditional halves in one
batch), DDIM. Every combination of the given precisions and compile switches is measured (`auto` resolves as in the
workflow: bf16 and compiled on CUDA, fp32 and eager on CPU). FLOPs per forward are counted by torch's
FlopCounterMode; the fraction of peak is model FLOPs x images/s / the device's dense bf16 peak.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from common import bf16_peak_tflops, describe_device, generator_configs, record_output
from torch.utils.flop_counter import FlopCounterMode

from histodistill.base import autocast, compile_module, resolve_precision, resolve_switch
from histodistill.generator import DenoiserConfig, build_denoiser, denoise, guided_latents, make_sampler


def denoiser_from(config_path: Path) -> tuple[DenoiserConfig, int, int, int]:
    ae, den, _, _, latent_size, n_classes = generator_configs(config_path)
    return den, ae.latent_channels, latent_size, n_classes


@torch.no_grad()
def measure(
    name: str,
    config_path: Path,
    device: torch.device,
    batch: int,
    steps: int,
    repeats: int,
    precision: str,
    compiled: bool,
) -> dict:
    cfg, ch, size, n_classes = denoiser_from(config_path)
    model = build_denoiser(cfg, ch, size, n_classes).to(device).eval()
    params = sum(p.numel() for p in model.parameters()) / 1e6
    z = torch.randn(2, ch, size, size, device=device)
    y = torch.randint(n_classes + 1, (2,), device=device)
    t = torch.full((2,), 500, device=device)
    with FlopCounterMode(display=False) as counter, autocast(device, precision):
        denoise(model, z, t, y)
    flops_per_image_forward = counter.get_total_flops() / 2
    forward = compile_module(model, compiled, name)

    def run() -> None:
        sampler = make_sampler("ddim", 1000, "squaredcos_cap_v2")
        sampler.set_timesteps(steps, device=device)
        x = torch.randn(batch, ch, size, size, device=device)
        labels = torch.randint(n_classes, (batch,), device=device)
        guided_latents(forward, labels, n_classes, x, sampler, 2.0, precision)
        if device.type == "cuda":
            torch.cuda.synchronize()

    start = time.perf_counter()
    run()  # warm-up (and compilation)
    warmup = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    ips = batch / float(np.median(times))
    achieved = flops_per_image_forward * 2 * steps * ips  # two forwards (cond + uncond) per step
    peak = bf16_peak_tflops(device)
    return {
        "denoiser": name,
        "precision": precision,
        "compiled": compiled,
        "batch": batch,
        "steps": steps,
        "warmup_s": round(warmup, 1),
        "params_M": round(params, 2),
        "GFLOP_per_forward": round(flops_per_image_forward / 1e9, 3),
        "images_per_s": round(ips, 1),
        "TFLOP_per_s": round(achieved / 1e12, 3),
        "fraction_of_bf16_peak": None if peak is None else round(achieved / (peak * 1e12), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=None, help="default: 512 on CUDA, 16 on CPU")
    ap.add_argument("--steps", type=int, default=None, help="default: 50 on CUDA, 5 on CPU")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--only", choices=["default", "paper"], default=None)
    ap.add_argument("--precision", nargs="+", choices=["auto", "fp32", "bf16"], default=["auto"])
    ap.add_argument("--compile", nargs="+", choices=["auto", "on", "off"], default=["auto"])
    args = ap.parse_args()
    record_output(__file__)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    batch = args.batch or (512 if device.type == "cuda" else 16)
    steps = args.steps or (50 if device.type == "cuda" else 5)
    print(f"device: {describe_device(device)}; batch {batch}; {steps} DDIM steps with guidance")
    root = Path(__file__).resolve().parents[1]
    for name, path in (("default", root / "config.yaml"), ("paper", root / "configs" / "pathmnist_64.yaml")):
        if args.only and args.only != name:
            continue
        for precision in args.precision:
            for switch in args.compile:
                compiled = resolve_switch({"on": True, "off": False}.get(switch, switch), device)
                result = measure(
                    name, path, device, batch, steps, args.repeats, resolve_precision(precision, device), compiled
                )
                print(result, flush=True)


if __name__ == "__main__":
    main()
