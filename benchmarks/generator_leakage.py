"""How close the generator's pool comes to its training images, against training length (issue 17's curve).

    .venv/bin/python benchmarks/generator_leakage.py --results results/digits_16 [--config config.yaml]
        [--snapshots 300 600 900 1200] [--per-class 100] [--draws 3] [--seeds 0 1] [--ipc 1 10]
        [--threads 2] [--out results/digits_16/tables/generator_leakage]

Trains the config's denoiser (`generator.denoiser`, steps = the largest snapshot) on the run's real train split and
autoencoder (`generator/autoencoder.pt`); at each snapshot step it samples `per-class` images per class as the pool
does (the config's `pool:` sampler, steps and guidance) from the EMA weights at that step, and measures:

* leakage: the DCR share of the sampled pool (share closer to the train split than to an equally sized holdout, the
  test split; 0.5 = no leakage) in pixel and embedding space with its Wilson 95 % CI, beside the null (each audit-holdout
  image against the rest of the holdout, from the run's `privacy/reference.npz`): `privacy.pool_distances`, as the
  pool audit does;
* quality: label agreement of the run's real-trained embedder with the sampled labels, and the validation and test
  accuracy of ConvNets (the config's `evaluate:` protocol) trained on random synthetic subsets at each IPC
  (`draws` selections × `seeds` training seeds, the same draws at every snapshot).

The learning rate is constant after warm-up, so the EMA at step s of this run is what an s-step run would share.
Rows are written to
`{out}.csv` as they come; `{out}.md` holds the table. Choose on the validation column; report the test one.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]

from histodistill.base import config_with_defaults, load_npz
from histodistill.classifier import evaluate_subset, predict_logits, train_config_for
from histodistill.generator import DenoiserConfig, denoiser_from_checkpoint, load_codec, sample_images, train_denoiser
from histodistill.privacy import SPACES, dcr_share_test, pool_distances
from histodistill.selection import embed, load_embedder, select_random


def random_subset(labels: np.ndarray, ipc: int, draw: int) -> np.ndarray:
    return np.concatenate(
        [
            np.where(labels == c)[0][
                select_random(int((labels == c).sum()), ipc, np.random.default_rng([draw, int(c)]))
            ]
            for c in np.unique(labels)
        ]
    )


def markdown(rows: pd.DataFrame, title: str) -> str:
    lines = [
        title,
        "",
        "| step | pixel DCR share [95 % CI] | null | embedding DCR share [95 % CI] | null | label agreement "
        + "".join(f"| IPC {i} val ACC | IPC {i} test ACC " for i in sorted(rows["ipc"].dropna().unique()))
        + "|",
    ]
    ipcs = sorted(rows["ipc"].dropna().unique())
    lines.append("|" + "---|" * (6 + 2 * len(ipcs)))
    for step, grp in rows.groupby("step"):
        first = grp.iloc[0]
        cells = [
            f"{step}",
            f"{first.pixel_share:.3f} [{first.pixel_lo:.3f}, {first.pixel_hi:.3f}]",
            f"{first.pixel_null:.3f}",
            f"{first.embedding_share:.3f} [{first.embedding_lo:.3f}, {first.embedding_hi:.3f}]",
            f"{first.embedding_null:.3f}",
            f"{100 * first.agreement:.1f}",
        ]
        for ipc in ipcs:
            g = grp[grp["ipc"] == ipc]
            cells += [
                f"{100 * g.val_acc.mean():.1f} ± {100 * g.val_acc.std(ddof=1):.1f}",
                f"{100 * g.acc.mean():.1f} ± {100 * g.acc.std(ddof=1):.1f}",
            ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True, help="a finished run's dataset folder")
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--snapshots", type=int, nargs="+", default=[300, 600, 900, 1200])
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--draws", type=int, default=3)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = config_with_defaults(args.config)
    out = args.out or args.results / "tables" / "generator_leakage"
    out.parent.mkdir(parents=True, exist_ok=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    real_path = args.results / "data" / "real.npz"
    real = load_npz(real_path)
    n_classes = int(real["n_classes"])
    codec = load_codec(args.results / "generator" / "autoencoder.pt", device)
    embedder = load_embedder(args.results / "embedder" / f"{cfg['embed']['net']}.pt", device)
    train_emb = np.load(args.results / "privacy" / "train_embeddings.npy")
    reference = load_npz(args.results / "privacy" / "reference.npz")
    den = cfg["generator"]["denoiser"]
    dcfg = DenoiserConfig(
        **{**den, "block_out_channels": tuple(den["block_out_channels"]), "steps": max(args.snapshots)}
    )
    pool = cfg["pool"]
    tcfg = train_config_for(cfg["evaluate"]["models"][0], cfg["evaluate"], full_real=False)
    labels = np.repeat(np.arange(n_classes), args.per_class)
    rows: list[dict] = []
    title = (
        f"{args.results}: denoiser {list(dcfg.block_out_channels)} batch {dcfg.batch_size} lr {dcfg.lr}, "
        f"{len(real['train_labels'])} train images; pool {args.per_class}/class "
        f"({pool['scheduler']} {pool['steps']} steps, guidance {pool['guidance']}); "
        f"{cfg['evaluate']['models'][0]} {tcfg.epochs} epochs, {args.draws} draws x seeds {args.seeds}"
    )
    print(title, flush=True)
    started = time.perf_counter()

    def measure(done: int, snapshot) -> None:
        if done not in args.snapshots:
            return
        t0 = time.perf_counter()
        model, meta = denoiser_from_checkpoint(snapshot(), device)
        images = sample_images(
            codec, model, meta, labels, pool["scheduler"], pool["steps"], pool["guidance"], pool["base_seed"], 500,
            progress=False,
        )  # fmt: skip
        agreement = float((predict_logits(embedder, images, device).argmax(1) == labels).mean())
        d = pool_distances(images, real_path, lambda x: embed(x, embedder, device), 2048, device, train_emb)
        leak = {}
        for space in SPACES:
            t = dcr_share_test(d[f"{space}_p"], reference[f"{space}_null_p"])
            leak |= {
                f"{space}_share": t["share"],
                f"{space}_lo": t["ci95"][0],
                f"{space}_hi": t["ci95"][1],
                f"{space}_null": t["null_share"],
            }
        sampled = time.perf_counter() - t0
        for ipc in args.ipc:
            for draw in range(args.draws):
                idx = random_subset(labels, ipc, draw)
                for r in evaluate_subset(
                    images[idx], labels[idx], real["test_images"], real["test_labels"], n_classes, tcfg, args.seeds,
                    device, val_images=real["val_images"], val_labels=real["val_labels"],
                ):  # fmt: skip
                    rows.append(
                        {"step": done, "agreement": agreement, **leak, "ipc": ipc, "draw": draw, "seed": r["seed"],
                         "val_acc": r["val_acc"], "acc": r["acc"]}  # fmt: skip
                    )
                pd.DataFrame(rows).to_csv(f"{out}.csv", index=False, float_format="%.6f")
        print(
            f"step {done}: pixel DCR share {leak['pixel_share']:.3f} [{leak['pixel_lo']:.3f}, {leak['pixel_hi']:.3f}] "
            f"(null {leak['pixel_null']:.3f}), embedding {leak['embedding_share']:.3f} (null {leak['embedding_null']:.3f}), "
            f"agreement {agreement:.3f}; sampling+audit {sampled:.0f} s, evaluation {time.perf_counter() - t0 - sampled:.0f} s, "
            f"elapsed {time.perf_counter() - started:.0f} s",
            flush=True,
        )

    with tempfile.TemporaryDirectory() as tmp:
        train_denoiser(
            codec, real["train_images"], real["train_labels"], n_classes, dcfg, cfg["generator"]["seed"],
            Path(tmp) / "c.pt", progress=False, on_step=measure,
        )  # fmt: skip
    text = markdown(pd.DataFrame(rows), title)
    Path(f"{out}.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
