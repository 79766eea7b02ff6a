"""Helpers for the benchmark scripts: device description, the dense bf16 peak of known accelerators, and the
record of a run's output (`benchmarks/results/{script}.md`)."""

from __future__ import annotations

import atexit
import datetime
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

# Dense (no sparsity) bf16 tensor-core peaks, TFLOP/s, from the vendors' data sheets.
BF16_PEAK_TFLOPS = {"H100 SXM": 989.0, "H100 PCIe": 756.0, "H100 NVL": 835.0, "H200": 989.0, "A100": 312.0}


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def bf16_peak_tflops(device: torch.device) -> float | None:
    """Known peak for the GPU, or None (CPU, unknown GPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peak in BF16_PEAK_TFLOPS.items():
        if all(part in name for part in key.split()):
            return peak
    if "H100" in name:
        return BF16_PEAK_TFLOPS["H100 SXM"]
    return None


class _Tee:
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def record_output(script: str) -> Path:
    """Copy everything the script prints to `benchmarks/results/{script name}.md` (replaced by each run), under a
    header naming the command, the date and the commit, so a result is the script's own file, never a copy by hand.
    `BENCHMARK_RESULTS` moves the folder (e.g. on a borrowed GPU machine: a folder that comes back)."""
    folder = Path(os.environ.get("BENCHMARK_RESULTS", Path(__file__).resolve().parent / "results"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{Path(script).stem}.md"
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(script).parent
        ).stdout.strip()
    except OSError:
        commit = ""
    fh = path.open("w")
    fh.write(f"# {Path(script).name}\n\nCommand: `{shlex.join(['python', *sys.argv])}`  \n")
    fh.write(f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}; commit: {commit or 'unknown'}\n\n")
    sys.stdout = _Tee(sys.__stdout__, fh)

    def close() -> None:
        sys.stdout = sys.__stdout__
        fh.close()

    atexit.register(close)
    return path


def generator_configs(config_path: Path) -> tuple[Any, Any, int, int, int, int]:
    """A config's generator as its rules build it: (AutoencoderConfig, DenoiserConfig, image channels, image size,
    latent size, classes)."""
    import yaml

    from histodistill.generator import AutoencoderConfig, DenoiserConfig

    cfg = yaml.safe_load(Path(config_path).read_text())
    embedded = cfg["dataset"]["name"] in ("digits", "mnist5k")
    settings = []
    for cls, block in (
        (AutoencoderConfig, cfg["generator"]["autoencoder"]),
        (DenoiserConfig, cfg["generator"]["denoiser"]),
    ):
        kwargs = {k: v for k, v in block.items() if k in cls.__dataclass_fields__}
        if "block_out_channels" in kwargs:
            kwargs["block_out_channels"] = tuple(kwargs["block_out_channels"])
        settings.append(cls(**kwargs))
    ae, den = settings
    size = cfg["dataset"]["size"]
    latent_size = size // 2 ** (len(ae.block_out_channels) - 1)
    return ae, den, 1 if embedded else 3, size, latent_size, 10 if embedded else 9
