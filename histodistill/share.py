"""Shareable packages of distilled sets: `results/{ds}/share/{method}_ipc{ipc}/` with one PNG per image,
`labels.csv`, `datasheet.md` and `SHA256SUMS`; `load` reads one back and verifies it.

Only sets that pass the privacy gate (`privacy.gate` thresholds on the audit) are packaged; the index lists every
audited set with its verdict and, for the others, the reasons.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .errors import HistodistillError
from .io import atomic_write_bytes
from .privacy import gate_verdict

CHECKSUMS = "SHA256SUMS"


def png_bytes(image: np.ndarray) -> bytes:
    """One uint8 HWC image (1 or 3 channels) as PNG bytes (no timestamps: the same image gives the same bytes)."""
    from PIL import Image

    image = np.asarray(image)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
        raise HistodistillError(f"png_bytes: expected a uint8 HxWx1 or HxWx3 image, got {image.dtype} {image.shape}")
    buf = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[2] == 1 else image).save(buf, format="PNG")
    return buf.getvalue()


def sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def accuracy_summary(eval_paths: Iterable[str | os.PathLike]) -> dict[str, dict[str, float]]:
    """Per model: mean and SD over seeds of test accuracy (and AUC, F1) from the evaluation JSONs."""
    by_model: dict[str, list[dict[str, Any]]] = {}
    for p in eval_paths:
        r = json.loads(Path(p).read_text())
        by_model.setdefault(r["model"], []).append(r)
    out = {}
    for model, runs in sorted(by_model.items()):
        out[model] = {"seeds": sorted(int(r["seed"]) for r in runs)}
        for key in ("acc", "auc", "f1"):
            vals = np.array([r[key] for r in runs], float)
            out[model][key] = float(vals.mean())
            out[model][f"{key}_sd"] = float(vals.std())
    return out


def real_image_initialised(subset: dict[str, np.ndarray]) -> bool:
    """True when the set's images are, or started from, real training images (source 'real' or init 'real')."""
    return str(np.asarray(subset.get("source", ""))) == "real" or str(np.asarray(subset.get("init", ""))) == "real"


def datasheet(
    name: str,
    subset: dict[str, np.ndarray],
    audit: dict[str, Any],
    accuracy: dict[str, dict[str, float]],
    settings: dict[str, Any],
    gate: dict[str, float],
) -> str:
    """The package's datasheet (Markdown): what the set is, how it was made, its audit and what it is good for."""
    n, classes = len(subset["labels"]), np.unique(subset["labels"])
    real_init = real_image_initialised(subset)
    lines = [
        f"# Datasheet: {name}",
        "",
        f"- images: {n} ({len(classes)} classes), {subset['images'].shape[1]}×{subset['images'].shape[2]} px, "
        f"{subset['images'].shape[3]} channel(s), one PNG each; labels in `labels.csv`",
        f"- source: {audit['source']}"
        + (
            " — **REAL-IMAGE INITIALISATION: these images are, or started from, real training images**"
            if real_init
            else ""
        ),
        "",
        "## How it was made",
        "",
        "```json",
        json.dumps(settings, indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Privacy audit (members = the real train split; null = unseen validation images)",
        "",
        "| space | DCR share [95 % CI] | null | smallest leak detected | near-copy rate |",
        "|---|---|---|---|---|",
    ]
    for space, d in audit["dcr"].items():
        leak = d["power"]["smallest_detectable_leak"]
        lines.append(
            f"| {space} | {d['share']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}] | {d['null_share']:.3f} | "
            f"{'none up to 100 %' if leak is None else f'{100 * leak:.0f} % of the set'} | {d['near_copy_rate']:.3f} |"
        )
    lines += ["", "| attack | AUC [95 % CI] | smallest leak detected |", "|---|---|---|"]
    attacks = [(f"distance ({s})", a) for s, a in audit["mia_distance"].items()] + [("DOMIAS", audit["mia_density"])]
    for label, a in attacks:
        ci = a.get("auc_ci95") or [float("nan")] * 2
        leak = a["power"]["smallest_detectable_leak"]
        lines.append(
            f"| {label} | {a['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] | "
            f"{'none up to 100 %' if leak is None else f'{100 * leak:.0f} % of the set'} |"
        )
    ok, reasons = gate_verdict(audit, gate)
    lines += [
        "",
        f"Gate ({', '.join(f'{k} {v}' for k, v in sorted(gate.items()))}): **{'pass' if ok else 'fail'}**"
        + ("" if ok else " — " + "; ".join(reasons)),
        "",
        "A passing audit means no test here detected a leak; at this set size the tests only detect leaks of the size "
        "given above.",
        "",
        "## Accuracy of a classifier trained only on this set (real test split)",
        "",
        "| model | seeds | accuracy | AUC | macro F1 |",
        "|---|---|---|---|---|",
    ]
    for model, a in accuracy.items():
        lines.append(
            f"| {model} | {a['seeds']} | {100 * a['acc']:.1f} ± {100 * a['acc_sd']:.1f} % | {a['auc']:.3f} | "
            f"{a['f1']:.3f} |"
        )
    return "\n".join(lines) + "\n"


def write_package(out_dir: str | os.PathLike, subset: dict[str, np.ndarray], datasheet_md: str) -> list[str]:
    """Write one package (PNGs, labels.csv, datasheet.md, SHA256SUMS) into a fresh `out_dir`; returns its files."""
    out = Path(out_dir)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    images, labels = np.asarray(subset["images"]), np.asarray(subset["labels"], np.int64)
    names = [f"image_{i:05d}_class{int(c)}.png" for i, c in enumerate(labels)]
    for name, img in zip(names, images):
        atomic_write_bytes(out / name, png_bytes(img))
    atomic_write_bytes(out / "labels.csv", pd.DataFrame({"file": names, "label": labels}).to_csv(index=False).encode())
    atomic_write_bytes(out / "datasheet.md", datasheet_md.encode())
    files = sorted(names + ["labels.csv", "datasheet.md"])
    atomic_write_bytes(out / CHECKSUMS, "".join(f"{sha256(out / f)}  {f}\n" for f in files).encode())
    return files + [CHECKSUMS]


def verify(package_dir: str | os.PathLike) -> None:
    """Check every file listed in SHA256SUMS (and that nothing is missing); raises naming the first bad file."""
    pkg = Path(package_dir)
    sums = pkg / CHECKSUMS
    if not sums.exists():
        raise HistodistillError(f"{pkg}: no {CHECKSUMS}; not a histodistill share package")
    for line in sums.read_text().splitlines():
        digest, name = line.split("  ", 1)
        if not (pkg / name).exists():
            raise HistodistillError(f"{pkg / name}: listed in {CHECKSUMS} but missing")
        if sha256(pkg / name) != digest:
            raise HistodistillError(f"{pkg / name}: checksum mismatch; the package was altered or damaged")


def load(package_dir: str | os.PathLike, check: bool = True) -> dict[str, np.ndarray]:
    """Read a share package back: uint8 NHWC images and int64 labels in labels.csv order (checksums verified)."""
    from PIL import Image

    pkg = Path(package_dir)
    if check:
        verify(pkg)
    table = pd.read_csv(pkg / "labels.csv")
    images = []
    for name in table["file"]:
        with Image.open(pkg / name) as im:
            a = np.asarray(im)
        images.append(a[..., None] if a.ndim == 2 else a)
    return {"images": np.stack(images).astype(np.uint8), "labels": table["label"].to_numpy(np.int64)}


def share_index(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, str]:
    """The index of every audited set: shared or not, and why (CSV table and Markdown)."""
    df = pd.DataFrame(rows, columns=["set", "shared", "package", "reasons"])
    md = ["| set | shared | package / reasons |", "|---|---|---|"]
    md += [
        f"| {r.set} | {'yes' if r.shared else 'no'} | {r.package if r.shared else r.reasons} |" for r in df.itertuples()
    ]
    return df, "\n".join(md) + "\n"
