"""Peak resident memory of the real-scale steps on a MedMNIST-format fixture (default: 224 px RGB, 20,000 train images).

    .venv/bin/python benchmarks/memory.py [--size 224] [--train 20000] [--parts autoencoder denoiser kmeans]

Writes `pathmnist_{size}.npz` (uint8, 9 classes, official key layout; each class a few smooth prototypes plus noise)
to a temporary directory, then runs each part in a fresh process, the way the workflow's scripts call it, and prints
its peak resident memory (VmHWM). The generator parts read the train split as their rules do, batch by batch from
the uncompressed `train_images.npy` that rule `data` writes beside `real.npz` (`NpyRows`), so the split itself
(2.8 GiB of uint8 at 224 px x 20,000) is never in the process:
- autoencoder: `train_autoencoder` (2 steps, batch 8), including the full-split latent statistics and
  reconstruction error; a small autoencoder (5 blocks of 4 channels), since the data
  handling, not the network, is what grows with the split;
- denoiser: `train_denoiser` (2 steps, batch 8) on the latents of an untrained 3-block autoencoder (56x56x4 at 224 px:
  2 GB of means and stds for 20,000 images, above the 1 GiB latent limit, so they are encoded per batch);
- kmeans: `select_kmeans` at IPC 10 on one class's raw-pixel features (float32 rows read from a .npy with
  `NpyRows`, as select_pool_baseline reads embeddings/pixels.npy).
The privacy audit's memory is measured by benchmarks/memory_privacy.py.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from common import record_output

N_CLASSES = 9


def write_fixture(path: Path, size: int, n_train: int, n_other: int = 90, seed: int = 0) -> None:
    """A MedMNIST-format .npz: each class is 4 smooth random prototypes plus pixel noise (clusters that k-means finds)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(N_CLASSES, 4, 8, 8, 3)).astype(np.float32)
    reps = size // 8 + 1
    protos = np.repeat(np.repeat(coarse, reps, axis=2), reps, axis=3)[:, :, :size, :size]

    def split(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = np.arange(n) % N_CLASSES
        images = np.empty((n, size, size, 3), np.uint8)
        for start in range(0, n, 500):
            lab = labels[start : start + 500]
            base = protos[lab, rng.integers(0, 4, len(lab))]
            images[start : start + 500] = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
        return images, labels.reshape(-1, 1)

    from histodistill.base import save_npy

    arrays = {}
    for name, n in (("train", n_train), ("val", n_other), ("test", n_other)):
        arrays[f"{name}_images"], arrays[f"{name}_labels"] = split(n)
    np.savez(path, **arrays)
    save_npy(path.parent / "train_images.npy", arrays["train_images"])  # as rule data writes it


def part_autoencoder(fixture: Path, work: Path) -> dict:  # noqa: ARG001 (every part takes the work dir)
    import torch

    from histodistill.base import NpyRows
    from histodistill.generator import AutoencoderConfig, train_autoencoder

    images = NpyRows(work / "train_images.npy")  # as rule train_autoencoder reads it
    # 5 blocks (latents 1/16 of the side): the mid-block attention of an f = 4 autoencoder at 224 px (3,136 tokens)
    # would make this CPU benchmark take an hour, and the memory that grows with the split does not depend on it
    cfg = AutoencoderConfig(block_out_channels=(4,) * 5, latent_channels=4, norm_num_groups=2, steps=2, batch_size=8)
    ckpt = train_autoencoder(images, cfg, 0, torch.device("cpu"), progress=False)
    return {"train_images": list(images.shape), "reconstruction_mse": ckpt["reconstruction_mse"]}


def part_denoiser(fixture: Path, work: Path) -> dict:
    import torch

    from histodistill.base import NpyRows, load_npz
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, LatentCodec, build_autoencoder, train_denoiser

    real = load_npz(fixture, required=("train_labels",), only_required=True)
    images = NpyRows(work / "train_images.npy")  # as rule train_denoiser reads it
    # an (untrained) f = 4 autoencoder: 56x56x4 latents, whose means and stds (2 GB at 20,000 images) exceed the
    # latent limit, so the denoiser encodes each batch as it is drawn
    ae_cfg = AutoencoderConfig(block_out_channels=(4, 4, 4), latent_channels=4, norm_num_groups=2)
    torch.manual_seed(0)
    codec = LatentCodec(build_autoencoder(ae_cfg, 3, images.shape[1]), 0.0, 1.0, 3)
    cfg = DenoiserConfig(block_out_channels=(8, 16), steps=2, batch_size=8, checkpoint_every=0)
    out = train_denoiser(codec, images, real["train_labels"][:, 0], N_CLASSES, cfg, 0, work / "d.pt", progress=False)
    return {"latent": [out["latent_channels"], out["latent_size"], out["latent_size"]]}


def part_kmeans(fixture: Path, work: Path) -> dict:
    from histodistill.base import NpyRows
    from histodistill.selection import select_kmeans

    emb = NpyRows(work / "pixels.npy")  # as select_pool_baseline reads one class's rows
    chosen = select_kmeans(np.asarray(emb[:], dtype=np.float32), 10, seed=0)
    return {"class_images": int(len(emb)), "width": int(emb.shape[1]), "chosen": len(chosen)}


def write_pixel_embedding(fixture: Path, path: Path, label: int = 0) -> None:
    """One class's raw-pixel features (float32 rows), as embed_pool writes embeddings/pixels.npy for `net: pixels`."""
    with np.load(fixture) as data:
        images, labels = data["train_images"], data["train_labels"][:, 0]
    members = np.where(labels == label)[0]
    emb = np.lib.format.open_memmap(path, "w+", np.float32, (len(members), images[0].size))
    for start in range(0, len(members), 256):
        block = images[members[start : start + 256]]
        emb[start : start + len(block)] = block.reshape(len(block), -1)
    emb.flush()


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM). Not ru_maxrss: Linux carries the parent's peak over fork + exec
    into the child's ru_maxrss, so a child of a process that held the fixture would report the fixture."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


PARTS = {"autoencoder": part_autoencoder, "denoiser": part_denoiser, "kmeans": part_kmeans}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--parts", nargs="+", default=list(PARTS), choices=list(PARTS))
    ap.add_argument("--part", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if not args.part:  # the parent records; each child prints one line the parent reads
        record_output(__file__)
    if args.part:  # child process: one part, then its own peak RSS
        import torch

        torch.set_num_threads(2)
        start = time.perf_counter()
        info = PARTS[args.part](Path(args.work) / "fixture.npz", Path(args.work))
        peak = peak_rss_bytes()
        print(
            json.dumps(
                {
                    "part": args.part,
                    "peak_rss_gib": round(peak / 2**30, 2),
                    "seconds": round(time.perf_counter() - start, 1),
                    **info,
                }
            )
        )
        return
    with tempfile.TemporaryDirectory(prefix="histodistill-memory-") as work:
        t = time.perf_counter()
        write_fixture(Path(work) / "fixture.npz", args.size, args.train)
        if "kmeans" in args.parts:
            write_pixel_embedding(Path(work) / "fixture.npz", Path(work) / "pixels.npy")
        print(f"fixture: {args.train} train images at {args.size} px RGB ({time.perf_counter() - t:.0f} s)", flush=True)
        for part in args.parts:
            cmd = [sys.executable, __file__, "--part", part, "--work", work]
            out = subprocess.run(cmd, capture_output=True, text=True)
            if out.returncode:
                print(f"{part}: failed ({out.returncode})\n{out.stderr[-3000:]}", flush=True)
            else:
                print(out.stdout.strip().splitlines()[-1], flush=True)


if __name__ == "__main__":
    main()
