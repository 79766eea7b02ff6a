"""The job runner every rule script goes through: logging, thread count, GPU lease, device, and one-line errors."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

from .errors import HistodistillError


def configure_logging(log_path: str | None) -> logging.Logger:
    """Log to the rule's log file (and stderr); tqdm progress goes to the same stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="a"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    return logging.getLogger("histodistill")


def run_job(snakemake: Any, body: Callable[[Any, Any], None]) -> None:
    """Run a rule body with logging, thread count, GPU lease and clean error reporting.

    `body(snakemake, device)` does the work. A HistodistillError (bad input) is reported as one line — in the log
    and on stderr — and the job exits with status 1; other exceptions keep their traceback (they are bugs).
    """
    from .gpu import gpu_lease

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    log_path = snakemake.log[0] if len(snakemake.log) else None
    log = configure_logging(log_path)
    want_gpu = int(getattr(snakemake.resources, "gpu", 0) or 0)
    try:
        with gpu_lease(want_gpu) as gpus:
            threads = max(1, int(snakemake.threads))
            if want_gpu or "torch" in sys.modules:
                import torch

                torch.set_num_threads(threads)
                requested = snakemake.config.get("device", "auto")
                device = torch.device("cuda" if requested in ("auto", "cuda") and torch.cuda.is_available() else "cpu")
                if requested == "cuda" and device.type != "cuda":
                    raise HistodistillError(
                        "device: 'cuda' requested but no CUDA device is visible; use 'auto' or 'cpu'"
                    )
            else:  # a CPU job whose script did not import torch: start without it (about 2 s per job)
                os.environ["OMP_NUM_THREADS"] = str(threads)  # what torch takes if the body imports it after all
                device = "cpu"
            log.info("rule %s on %s (threads %s, leased GPUs %s)", snakemake.rule, device, snakemake.threads, gpus)
            if "SLURM_JOB_ID" in os.environ:  # the cluster harness (tests/cluster/) checks these lines
                log.info(
                    "SLURM job %s on %s, GPUs %s (CUDA_VISIBLE_DEVICES %s)",
                    os.environ["SLURM_JOB_ID"],
                    os.environ.get("SLURMD_NODENAME", "?"),
                    os.environ.get("SLURM_STEP_GPUS") or os.environ.get("SLURM_JOB_GPUS") or "none",
                    os.environ.get("CUDA_VISIBLE_DEVICES", "unset"),
                )
            body(snakemake, device)
    except HistodistillError as exc:
        log.error("%s", exc)
        print(f"histodistill error: {exc}", file=sys.stderr)
        sys.exit(1)
