"""What the selections of `selection_levers.py` look like in the embedding space, beside their accuracy (issue #13).

    .venv/bin/python benchmarks/selection_geometry.py --results results/digits_16 [--config config.yaml]
        [--ipc 1 10] [--variants NAME ...] [--accuracy levers.csv] [--out results/digits_16/tables/geometry]

Every variant of `selection_levers.VARIANTS` selects from the run's pool, embeddings and privacy filter exactly as
there (same graphs, communities and seeds), and each selection is described per class, then averaged over classes:

- `quantisation`: the mean squared embedding distance from each kept image of the class to its nearest selected image,
  over the class's mean squared distance to its own mean (k-means' objective, scaled: 1 for the class mean alone,
  0 when every image is selected). Low = the selection covers the class.
- `centrality`: the selected images' mean distance to the class mean, over the class images' mean distance to it.
  Low = the selection sits at the class's centre.
- `label_probability`: the mean softmax probability the run's embedder (a classifier trained on the real train split)
  gives the selected images' own label. High = images the real-data classifier finds easy.
- `other_class`: how many selected images (all classes together) the embedder puts in another class.

With `--accuracy` (a CSV of `selection_levers.py`: variant, ipc, seed, val_acc, acc; one pool) the table adds each
variant's mean validation and test accuracy, and prints, per IPC, the Spearman rank correlation over variants between
each measure and validation accuracy. Variants that select the same images count once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO = Path(__file__).resolve().parents[1]

from selection_levers import VARIANTS, variant_selections

from histodistill.base import config_with_defaults, load_npy, load_npz
from histodistill.generator import load_pool
from histodistill.selection import label_certainty, load_embedder

MEASURES = ("quantisation", "centrality", "label_probability")
COUNTS = ("other_class",)


def class_geometry(emb: np.ndarray, chosen: np.ndarray, label_probability: np.ndarray) -> dict[str, float]:
    """The three measures of one class's selection: `emb` the class's kept images, `chosen` rows of `emb`,
    `label_probability` the embedder's probability of the class for every row."""
    x = np.asarray(emb, dtype=np.float64)
    mean = x.mean(0)
    spread = ((x - mean) ** 2).sum(1)
    sel = x[chosen]
    nearest = ((x[:, None, :] - sel[None, :, :]) ** 2).sum(2).min(1)
    return {
        "quantisation": float(nearest.mean() / spread.mean()),
        "centrality": float(np.sqrt(((sel - mean) ** 2).sum(1)).mean() / np.sqrt(spread).mean()),
        "label_probability": float(np.mean(label_probability[chosen])),
    }


def selection_geometry(
    emb: np.ndarray,
    labels: np.ndarray,
    keep: np.ndarray,
    label_probability: np.ndarray,
    idx: np.ndarray,
    correct: np.ndarray,
) -> dict[str, float]:
    """The measures of a selection (global pool indices), averaged over classes, each class among its kept images;
    and the count of selected images the embedder puts in another class (`correct` false)."""
    rows = []
    for c in np.unique(labels):
        kept = np.where((labels == c) & keep)[0]
        local = np.searchsorted(kept, np.sort(idx[labels[idx] == c]))
        if len(local) == 0 or not np.array_equal(kept[local], np.sort(idx[labels[idx] == c])):
            raise ValueError(f"class {c}: the selection holds images outside the class's kept pool")
        rows.append(class_geometry(emb[kept], local, label_probability[kept]))
    return {
        **{m: float(np.mean([r[m] for r in rows])) for m in MEASURES},
        "other_class": int((~correct[idx]).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True, help="a finished run's dataset folder")
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml")
    ap.add_argument("--ipc", type=int, nargs="+", default=[1, 10])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--accuracy", type=Path, help="selection_levers.py's CSV of this pool")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    cfg = config_with_defaults(args.config)
    out = args.out or args.results / "tables" / "geometry"
    net = cfg["embed"]["net"]
    images, labels = load_pool(sorted(str(p) for p in (args.results / "pool").glob("shard_*.npz")))
    emb = np.asarray(load_npy(args.results / "embeddings" / f"{net}.npy"), dtype=np.float64)
    keep = load_npz(args.results / "pool" / "privacy_filter.npz", required=("keep",))["keep"].astype(bool)
    model = load_embedder(args.results / "embedder" / f"{net}.pt", torch.device("cpu"))
    label_probability, correct = label_certainty(model, images, labels, torch.device("cpu"))
    print(f"the embedder agrees with the label of {100 * correct[keep].mean():.1f} % of the kept pool")
    rows = []
    for name, ipc, idx in variant_selections(args.variants, args.ipc, emb, labels, keep, cfg, label_probability):
        rows.append(
            {
                "variant": name,
                "ipc": ipc,
                "images": " ".join(map(str, sorted(idx.tolist()))),
                **selection_geometry(emb, labels, keep, label_probability, idx, correct),
            }
        )
        shown = ", ".join(f"{m} {rows[-1][m]:.3f}" for m in MEASURES)
        print(f"{name} IPC {ipc}: {shown}, other_class {rows[-1]['other_class']}", flush=True)
    table = pd.DataFrame(rows)
    if args.accuracy:
        acc = pd.read_csv(args.accuracy).groupby(["variant", "ipc"])[["val_acc", "acc"]].mean().reset_index()
        table = table.merge(acc, on=["variant", "ipc"], how="left")
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(f"{out}.csv", index=False, float_format="%.6f")
    lines = [f"{args.results}: selections of `selection_levers.py`, measured in the `{net}` embedding", ""]
    for ipc, grp in table.groupby("ipc"):
        if args.accuracy:  # the same images count once, under a variant that was evaluated where one was
            grp = grp.sort_values("val_acc", key=lambda v: v.isna(), kind="stable")
        shown = grp.drop_duplicates("images")
        cols = ["variant", *MEASURES, *COUNTS] + (["val_acc", "acc"] if args.accuracy else [])
        order = shown.sort_values("val_acc" if args.accuracy else "quantisation", ascending=not args.accuracy)
        lines += [f"IPC {ipc} ({len(shown)} distinct selections)", "", "| " + " | ".join(cols) + " |"]
        lines.append("|" + "---|" * len(cols))
        for _, r in order.iterrows():
            vals = [r["variant"]] + [f"{r[m]:.3f}" for m in MEASURES] + [str(r[c]) for c in COUNTS]
            vals += [f"{100 * r['val_acc']:.1f}", f"{100 * r['acc']:.1f}"] if args.accuracy else []
            lines.append("| " + " | ".join(vals) + " |")
        if args.accuracy:
            from scipy.stats import spearmanr

            scored = shown.dropna(subset=["val_acc"])
            for m in (*MEASURES, *COUNTS):
                if scored[m].nunique() < 2:
                    lines.append(f"\nSpearman {m} vs val accuracy: none ({m} is the same for every selection)")
                    continue
                rho, p = spearmanr(scored[m], scored["val_acc"])
                lines.append(f"\nSpearman {m} vs val accuracy: {rho:+.2f} (p = {p:.3f}, {len(scored)} selections)")
        lines.append("")
    Path(f"{out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
