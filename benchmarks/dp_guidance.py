"""The DP preset's classifier-free guidance, chosen from public data alone (issue 31).

    .venv/bin/python benchmarks/dp_guidance.py --results results/digits_16_dp10 --out docs/dp_guidance_digits
    .venv/bin/python benchmarks/dp_guidance.py --results results/mnist5k_16_dp10 --out docs/dp_guidance_mnist5k

Guidance is a sampling setting: changing it is post-processing of the DP denoiser and spends no ε. Choosing it on
the private validation split would, though (hyperparameter search on private data is not covered by ε; Papernot &
Steinke, ICLR 2022). So the choice reads only what a DP run already holds from public data:

* a classifier (the embedder's recipe from `config.yaml`) trained on the public images (`public/`), its epoch chosen
  on a seeded 10 % of them;
* the public-pretrained denoiser (`generator/public_denoiser.pt`) with the public autoencoder, sampled at each
  guidance of the grid (30 images per class, one fixed seed);
* the rule, fixed before it ran: the smallest guidance whose public label agreement is within 1 point of the grid's
  best.

As a check, not as the chooser, the table also gives the agreement of the run's *DP* denoiser's samples with the
non-private run's real-trained embedder (`results/{dataset}_{size}/embedder/convnet.pt`), as in `dp_curve.py`.
Rows go to `{out}.csv` and `{out}.md`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]

GRID = (1.0, 2.0, 3.0, 4.0, 5.0, 7.0, 10.0)
PER_CLASS = 30
SEED = 7
TOLERANCE = 0.01


def choose_guidance(agreement: dict[float, float], tolerance: float = TOLERANCE) -> float:
    """The smallest guidance whose agreement is within `tolerance` of the best one."""
    best = max(agreement.values())
    return min(g for g, a in agreement.items() if a >= best - tolerance)


def main() -> None:
    import torch

    from histodistill.base import config_with_defaults
    from histodistill.classifier import predict_logits
    from histodistill.generator import load_codec, load_denoiser, sample_images
    from histodistill.selection import load_embedder, pool_as_training_data, train_embedder

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", required=True, help="a finished DP run's results folder")
    ap.add_argument("--reference", default=None, help="non-private real-trained embedder (check column only)")
    ap.add_argument("--config", default="config.yaml", help="whose `embed:` recipe trains the public classifier")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device("cpu")
    results = REPO / args.results
    name = results.name.rsplit("_dp", 1)[0]
    reference = Path(args.reference) if args.reference else REPO / "results" / name / "embedder" / "convnet.pt"

    images = np.load(results / "public" / "images.npy")
    labels = np.load(results / "public" / "labels.npy")
    n_classes = int(labels.max()) + 1
    embed_cfg = config_with_defaults(str(REPO / args.config))["embed"]
    t0 = time.time()
    ckpt = train_embedder(pool_as_training_data(images, labels, n_classes), embed_cfg["net"], embed_cfg, device)
    path = Path("/tmp") / f"public_classifier_{name}.pt"
    torch.save(ckpt, path)
    public_classifier = load_embedder(path, device)
    print(f"public classifier: {len(images)} public images, val acc {ckpt['val_acc']:.3f} ({time.time() - t0:.0f} s)")

    codec = load_codec(results / "generator" / "autoencoder.pt", device)
    models = {
        "public": load_denoiser(results / "generator" / "public_denoiser.pt", device),
        "dp": load_denoiser(results / "generator" / "denoiser.pt", device),
    }
    checker = load_embedder(reference, device) if reference.exists() else None
    y = np.repeat(np.arange(n_classes), PER_CLASS)
    rows = []
    for g in GRID:
        row = {"guidance": g}
        for key, (model, meta) in models.items():
            imgs = sample_images(codec, model, meta, y, "ddim", 15, g, SEED, len(y), progress=False)
            row[f"{key}_public_agreement"] = float(
                (predict_logits(public_classifier, imgs, device).argmax(1) == y).mean()
            )
            if checker is not None:
                row[f"{key}_private_check"] = float((predict_logits(checker, imgs, device).argmax(1) == y).mean())
        rows.append(row)
        print(row, flush=True)
    table = pd.DataFrame(rows)
    chosen = choose_guidance(dict(zip(table["guidance"], table["public_public_agreement"])))
    out = REPO / args.out
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.4f")
    lines = [
        f"# DP preset's guidance from public data, {name}",
        "",
        f"Command: `python benchmarks/dp_guidance.py --results {args.results} --out {args.out}`",
        "",
        f"Public classifier: {embed_cfg['net']} on {len(images)} public images (val acc {ckpt['val_acc']:.3f}). "
        f"{PER_CLASS} images per class per guidance, DDIM 15 steps, seed {SEED}. Rule: the smallest guidance within "
        f"{100 * TOLERANCE:g} point of the best public agreement of the public-pretrained denoiser. "
        f"**Chosen: {chosen:g}.** The check columns read the private data and did not choose.",
        "",
        "| guidance | public denoiser, public classifier | DP denoiser, public classifier | "
        "public denoiser, private check | DP denoiser, private check |",
        "|---|---|---|---|---|",
    ]
    for _, r in table.iterrows():
        cells = [
            r.public_public_agreement,
            r.dp_public_agreement,
            r.get("public_private_check", np.nan),
            r.get("dp_private_check", np.nan),
        ]
        lines.append(f"| {r.guidance:g} | " + " | ".join(f"{100 * c:.1f} %" for c in cells) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(yaml.safe_dump({"chosen_guidance": float(chosen)}))


if __name__ == "__main__":
    main()
