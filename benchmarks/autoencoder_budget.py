"""The autoencoder's batch size and length against its reconstruction error, on a finished run's real data.

    .venv/bin/python benchmarks/autoencoder_budget.py --results results/digits_16 [--config config.yaml]
        [--runs 128:200 64:200 64:300] [--threads 2]

Trains the config's autoencoder (`generator.autoencoder`) with each batch:steps pair on the run's real train split
and prints the wall time and the reconstruction MSE over the whole split (model space, posterior mean), as the
workflow's `train_autoencoder` logs it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]

from common import record_output

from histodistill.base import config_with_defaults, load_npz
from histodistill.generator import AutoencoderConfig, train_autoencoder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--runs", nargs="+", default=["128:200", "64:200", "64:300"], help="batch:steps pairs")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    record_output(__file__)
    torch.set_num_threads(args.threads)
    cfg = config_with_defaults(args.config)
    images = load_npz(args.results / "data" / "real.npz", required=("train_images",))["train_images"]
    ae = cfg["generator"]["autoencoder"]
    for run in args.runs:
        batch, steps = (int(v) for v in run.split(":"))
        acfg = AutoencoderConfig(
            **{**ae, "block_out_channels": tuple(ae["block_out_channels"]), "batch_size": batch, "steps": steps}
        )
        start = time.perf_counter()
        ckpt = train_autoencoder(images, acfg, cfg["generator"]["seed"], torch.device("cpu"), progress=False)
        print(
            f"autoencoder batch {batch} steps {steps}: {time.perf_counter() - start:.0f} s ({args.threads} threads), "
            f"reconstruction MSE {ckpt['reconstruction_mse']:.5f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
