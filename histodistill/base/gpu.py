"""A small lock-file lease that gives each concurrent job its own GPU(s).

Snakemake's `--resources gpu=N` bounds how many GPU jobs run at once but does not say *which* device each gets.
`gpu_lease(k)` takes k free devices out of the visible ones by holding an exclusive `flock` on one lock file per
device, and sets `CUDA_VISIBLE_DEVICES` before torch is imported. The kernel drops the locks when the holder exits,
however it exits (exception, SIGKILL), so a crashed job never strands a device.

No-op when no GPU is requested, when none is visible, and under SLURM (which sets CUDA_VISIBLE_DEVICES itself).
Environment: HISTODISTILL_GPUS (comma list of device ids, default: CUDA_VISIBLE_DEVICES or every `nvidia-smi -L`
device), HISTODISTILL_LEASE_DIR (default: /tmp/histodistill-gpu-lease-<uid>).

Sharing a device: an id listed k times in HISTODISTILL_GPUS is k slots, so k jobs run on that device at once (small
jobs, such as the smoke workflow's, leave most of a large GPU idle one at a time). Set snakemake's `gpu` resource to
the number of slots. A job that asks for several GPUs still gets distinct devices.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Iterator

log = logging.getLogger(__name__)


def visible_gpus() -> list[str]:
    """Device ids this process may lease, without importing torch."""
    for var in ("HISTODISTILL_GPUS", "CUDA_VISIBLE_DEVICES"):
        value = os.environ.get(var)
        if value is not None:
            return [v.strip() for v in value.split(",") if v.strip() and v.strip() != "-1"]
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [str(i) for i, line in enumerate(out.splitlines()) if line.startswith("GPU ")]
    return []


def lease_dir() -> Path:
    d = Path(
        os.environ.get("HISTODISTILL_LEASE_DIR", Path(tempfile.gettempdir()) / f"histodistill-gpu-lease-{os.getuid()}")
    )
    d.mkdir(parents=True, exist_ok=True)
    return d


@contextlib.contextmanager
def gpu_lease(count: int, poll_seconds: float = 0.5, timeout_seconds: float | None = None) -> Iterator[list[str]]:
    """Hold `count` distinct devices for the duration of the block; yields their ids ([] when a no-op)."""
    if count <= 0 or "SLURM_JOB_ID" in os.environ:
        yield []
        return
    devices = visible_gpus()
    if not devices:
        yield []
        return
    distinct = sorted(set(devices))
    if count > len(distinct):
        raise RuntimeError(f"a job asked for {count} GPUs but only {len(distinct)} are visible ({distinct})")
    slots = [(dev, devices[:i].count(dev)) for i, dev in enumerate(devices)]  # (device, its k-th slot)
    folder = lease_dir()
    held: list[tuple[str, IO]] = []
    start = time.monotonic()
    previous = os.environ.get("CUDA_VISIBLE_DEVICES")
    try:
        while len(held) < count:
            for dev, slot in slots:
                if len(held) == count or any(d == dev for d, _ in held):
                    continue
                fh = open(folder / (f"gpu{dev}.lock" if slot == 0 else f"gpu{dev}-{slot}.lock"), "a+")
                try:
                    fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    fh.close()
                    continue
                fh.seek(0)
                fh.truncate()
                fh.write(f"{os.getpid()}\n")
                fh.flush()
                held.append((dev, fh))
            if len(held) < count:
                if timeout_seconds is not None and time.monotonic() - start > timeout_seconds:
                    raise TimeoutError(f"no free GPU among {devices} after {timeout_seconds} s")
                time.sleep(poll_seconds)
        ids = [d for d, _ in held]
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(ids)
        log.info("leased GPU(s) %s", ids)
        yield ids
    finally:
        for _, fh in held:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
        if previous is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = previous
