"""Peak memory of the privacy audit at scale: a MedMNIST-format fixture at 224 px RGB with 20,000 train images.

    .venv/bin/python benchmarks/memory_privacy.py [--train 20000] [--size 224] [--holdout 100] [--keep DIR]

Builds the fixture in a temporary directory (real.npz in the workflow's layout, written chunk by chunk; a pool
shard; a subset; an untrained ConvNet embedder of depth 5, width 2: the width sets only the embedder's activation
memory and CPU time, not the audit's), then runs the four privacy steps of the workflow —
privacy_train_embeddings, privacy_reference, privacy_filter, privacy_audit — each in its own child process, calling the same functions as their workflow scripts, and prints
each child's peak resident memory (ru_maxrss from wait4) and wall time. Pixel rows are 150,528-d at 224 px RGB; the
train split alone is 3.0 GB of uint8, so a whole-split float copy would be 12-24 GB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from common import record_output

REPO = Path(__file__).resolve().parents[1]

N_CLASSES = 10
WIDTH = 2  # embedder width: sets only its activation memory and CPU time, not the audit's memory


def images(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Blocky random RGB images (8×8-pixel blocks), so that the compressed fixture stays small and fast to read."""
    small = rng.integers(0, 256, size=(n, size // 8, size // 8, 3), dtype=np.uint8)
    return np.repeat(np.repeat(small, 8, axis=1), 8, axis=2)


def write_real(path: Path, n_train: int, n_holdout: int, size: int, seed: int = 0) -> None:
    """real.npz (train/val/test images and labels, n_classes) written member by member, train in chunks."""
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:

        def member(name: str, shape: tuple[int, ...], dtype: str, chunks) -> None:
            with zf.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w", force_zip64=True) as fh:
                header = {"descr": np.dtype(dtype).str, "fortran_order": False, "shape": shape}
                np.lib.format.write_array_header_2_0(fh, header)
                for block in chunks:
                    fh.write(np.ascontiguousarray(block).tobytes())

        member(
            "train_images",
            (n_train, size, size, 3),
            "u1",
            (images(rng, min(500, n_train - s), size) for s in range(0, n_train, 500)),
        )
        for split, n in (("train", n_train), ("val", n_holdout), ("test", n_holdout)):
            if split != "train":
                member(f"{split}_images", (n, size, size, 3), "u1", [images(rng, n, size)])
            member(f"{split}_labels", (n,), "<i8", [np.arange(n, dtype=np.int64) % N_CLASSES])
        member("n_classes", (), "<i8", [np.array(N_CLASSES, dtype=np.int64)])


def build(d: Path, args: argparse.Namespace) -> None:
    import torch

    from histodistill.base import save_checkpoint, save_npz
    from histodistill.classifier import build_classifier
    from histodistill.selection import save_subset

    write_real(d / "real.npz", args.train, args.holdout, args.size)
    torch.manual_seed(0)
    net = build_classifier("convnet", 3, N_CLASSES, args.size, depth=5, width=WIDTH)
    save_checkpoint(
        d / "convnet.pt",
        {
            "net": "convnet",
            "depth": 5,
            "width": WIDTH,
            "n_classes": N_CLASSES,
            "channels": 3,
            "size": args.size,
            "state_dict": net.state_dict(),
        },
    )
    rng = np.random.default_rng(1)
    labels = np.arange(args.pool) % N_CLASSES
    save_npz(d / "shard_0.npz", images=images(rng, args.pool, args.size), labels=labels)
    idx = np.arange(args.subset)
    save_subset(d / "subset.npz", images(rng, args.subset, args.size), idx % N_CLASSES, idx, "pool")


def step(name: str, d: Path) -> None:
    """One workflow step, as its script calls it (run in a child process)."""
    import torch

    from histodistill.base import load_npz, save_npy, save_npz, write_json
    from histodistill.generator import load_pool
    from histodistill.privacy import (
        SPACES,
        audit_subset,
        embed_streamed,
        filter_distances,
        jsonable,
        npz_member_shape,
        npz_row_chunks,
        privacy_filter,
        privacy_reference,
    )
    from histodistill.selection import embed, load_embedder, load_subset

    torch.set_num_threads(2)
    device = torch.device("cpu")
    model = load_embedder(d / "convnet.pt", device)
    embed_fn = lambda x: embed(x, model, device)  # noqa: E731
    real = d / "real.npz"
    if name == "privacy_train_embeddings":
        shape, _ = npz_member_shape(real, "train_images")
        save_npy(d / "train_embeddings.npy", embed_streamed(npz_row_chunks(real, "train_images"), shape[1:], embed_fn))
    elif name == "privacy_reference":
        train_emb = np.load(d / "train_embeddings.npy")
        save_npz(d / "reference.npz", **privacy_reference(real, embed_fn, n_planted=50, train_emb=train_emb))
    elif name == "privacy_filter":
        pool, _ = load_pool([str(d / "shard_0.npz")])
        dist = filter_distances(pool, real, embed_fn, train_emb=np.load(d / "train_embeddings.npy"))
        keep = privacy_filter({s: dist[f"{s}_dcr"] for s in SPACES}, {s: dist[f"{s}_val_dcr"] for s in SPACES}, 0.05)
        save_npz(d / "keep.npz", keep=keep, **dist)
    elif name == "privacy_audit":
        report = audit_subset(
            load_subset(d / "subset.npz"), real, load_npz(d / "reference.npz"), embed_fn, n_bootstrap=200, power_reps=5
        )
        write_json(d / "audit.json", jsonable(report))
    else:
        raise SystemExit(f"unknown step {name}")


def run_child(name: str, d: Path) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one step in a fresh child process (ru_maxrss from wait4)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, "--step", name, "--dir", str(d)])
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{name} failed with exit code {proc.returncode}")
    return time.perf_counter() - t0, usage.ru_maxrss / 1024.0  # Linux: kilobytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", type=int, default=20000)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--holdout", type=int, default=100, help="validation and test images each")
    ap.add_argument("--pool", type=int, default=100)
    ap.add_argument("--subset", type=int, default=50)
    ap.add_argument("--keep", type=Path, help="build the fixture here and keep it (default: a temp dir)")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        step(args.step, args.dir)
        return
    record_output(__file__)
    with tempfile.TemporaryDirectory(prefix="histodistill-mem-") as tmp:
        d = args.keep or Path(tmp)
        d.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        build(d, args)
        print(
            f"fixture: {args.train} train images {args.size}x{args.size}x3, {args.holdout} val + {args.holdout} "
            f"test, real.npz {os.path.getsize(d / 'real.npz') / 2**30:.2f} GiB, built in {time.perf_counter() - t0:.0f} s"
        )
        rows = [
            (name, *run_child(name, d))
            for name in ("privacy_train_embeddings", "privacy_reference", "privacy_filter", "privacy_audit")
        ]
        print("| step | wall s | peak RSS MB |\n|---|---|---|")
        for name, wall, rss in rows:
            print(f"| {name} | {wall:.0f} | {rss:.0f} |")
        audit = json.loads((d / "audit.json").read_text())
        print(
            "audit DCR share (pixel):",
            round(audit["dcr"]["pixel"]["share"], 3),
            "peak over steps:",
            f"{max(r[2] for r in rows):.0f} MB",
        )


if __name__ == "__main__":
    main()
