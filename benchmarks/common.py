"""Helpers for the benchmark scripts: device description and the dense bf16 peak of known accelerators."""

from __future__ import annotations

import platform

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
