"""Shareable packages of distilled sets: `results/{ds}/share/{method}_ipc{ipc}/` with one PNG per image,
`labels.csv`, `datasheet.md` and `SHA256SUMS`; `load` reads one back and verifies it.

Only sets that pass the privacy gate (`privacy.gate` on the audit) are packaged, and none when a planted control
was missed; the index lists every audited set with its verdict and, for the others, the reasons, per image.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from histodistill.base.errors import HistodistillError
from histodistill.base.io import atomic_write_bytes
from histodistill.privacy.gate import attack_clause_fails, dcr_clause_fails, gate_verdict
from histodistill.privacy.release import controls_missed

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


PRIVATE_SETTINGS = {"dataset": ("path", "data_dir")}  # local paths: never in a public datasheet


def public_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The run's settings without local paths (a datasheet travels; where the data lie on the hospital's disk does
    not)."""
    out = json.loads(json.dumps(settings, default=str))
    for section, keys in PRIVATE_SETTINGS.items():
        for key in keys:
            out.get(section, {}).pop(key, None)
    out.pop("results", None)
    if "set" in out and "file" in out["set"]:
        out["set"]["file"] = Path(str(out["set"]["file"])).name
    return out


def _leak_power(power: dict[str, Any] | None) -> tuple[str, bool]:
    """A power statement and whether the test can fail at this size."""
    leak = None if power is None else power["smallest_detectable_leak"]
    if leak is None:
        return "cannot detect even a set made wholly of near copies", False
    return f"detects near copies making up {100 * leak:.0f} % of the set (in ≥ 80 % of simulated sets)", True


def _test_row(test: str, result: str, power: dict[str, Any] | None, fails: bool) -> dict[str, str]:
    """One datasheet row of a simulated-power test: 'pass' only where it could have failed."""
    statement, can_fail = _leak_power(power)
    return {
        "test": test,
        "result": result,
        "power": statement,
        "verdict": "fail" if fails else ("pass" if can_fail else "not assessed"),
    }


def privacy_tests(audit: dict[str, Any], gate: dict[str, Any], controls: dict[str, Any] | None) -> list[dict[str, str]]:
    """Every privacy test of a set with its result, its power at this size and its verdict: 'pass' only where the
    test could have failed (power), 'not assessed' where it could not, 'fail'."""
    rows = []
    release, n = audit["release"], audit["n_shared"]
    by_kind: dict[str, str] = {}
    if controls is not None:
        for ipc_controls in controls["ipc"].values():
            for kind, c in ipc_controls.items():
                if c["n"] == n:
                    by_kind[kind] = "detected" if c["detected"] else ("void" if c.get("void") else "MISSED")
    failed = bool(release["flagged"] or release["exact_copies"])
    if by_kind:
        power = f"planted among {n} synthetic images: " + ", ".join(
            f"{k.replace('_', ' ')} {v}" for k, v in sorted(by_kind.items())
        )
        assessed = "MISSED" not in by_kind.values() and "detected" in by_kind.values()
    else:
        power, assessed = f"no planted control at {n} images", False
    rows.append(
        {
            "test": f"per image: closer to a training image than unseen real images (level {release['level']:.2g})",
            "result": f"{len(release['flagged'])} flagged, {len(release['exact_copies'])} exact copies",
            "power": power,
            "verdict": "fail" if failed else ("pass" if assessed else "not assessed"),
        }
    )
    for space, d in audit["dcr"].items():
        rows.append(
            _test_row(
                f"DCR share, {space} (fails when share − null > {gate['dcr_share_margin']})",
                f"{d['share']:.3f} [{d['ci95'][0]:.3f}, {d['ci95'][1]:.3f}], null {d['null_share']:.3f}",
                d.get("power"),
                dcr_clause_fails(d, gate),
            )
        )
    for space, a in audit["mia_distance"].items():
        ci = a.get("auc_ci95") or [float("nan")] * 2
        rows.append(
            _test_row(
                f"distance attack, {space} (fails when the AUC's CI lies above {gate['mia_auc']})",
                f"AUC {a['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]",
                a.get("power"),
                attack_clause_fails(a, gate),
            )
        )
    return rows


THREAT_MODEL = (
    "An attacker holds this package and any other data, including some of the training images, and wants to "
    "learn whether a given patient's image was used, or to recover one. The tests look for images that copy or "
    "nearly copy a training image (each image on its own, also mirrored or shifted by a few pixels) and for a set "
    "that sits closer to the training images than unseen real images do. They do not cover attribute inference or "
    "the generator's weights (not part of this package)."
)


def _vote_statement(dp: dict[str, Any]) -> str:
    """The pool vote's part of the guarantee, where the run had one (rule dp_vote)."""
    vote = dp.get("vote")
    if not vote:
        return ""
    return (
        f" The pool was narrowed by a private vote (Private Evolution's histogram): each training image voted for its "
        f"nearest pool image of its class, the counts were released with Gaussian noise of σ = "
        f"{vote['noise_multiplier']:.4f} (sensitivity 1), and each class kept its {100 * vote['keep']:g} % most voted "
        f"images ({vote['kept']} of {vote['pool']}). ε above composes DP-SGD (alone {dp['epsilon_denoiser']:.3f}) "
        f"and the vote (alone {vote['epsilon_alone']:.3f})."
    )


def _dp_statement(dp: dict[str, Any]) -> list[str]:
    """The datasheet's statement of a DP run's guarantee and of what it does not cover."""
    public = dp.get("public_pretraining") or {}
    autoencoder = (dp.get("autoencoder") or {}).get("public", "?")
    claim = (
        f"**Differential privacy: (ε = {dp['epsilon']:.3f}, δ = {dp['delta']:g}) with respect to the real train split "
        f"({dp['n_private']} images).** Changing one training image changes the distribution of these images by at "
        "most that much, whatever an attacker knows."
        if math.isfinite(dp["epsilon"])
        else "**No formal privacy guarantee (ε = ∞).** The DP pipeline ran with clipping and no noise: the "
        "non-private reference of the utility-privacy curve."
    )
    return [
        claim,
        "",
        "| ε | δ | accountant | σ (noise multiplier) | steps | sampling rate q | clipping norm C | noise multiplicity |",
        "|---|---|---|---|---|---|---|---|",
        f"| {dp['epsilon']:.3f} (target {dp['epsilon_target']:g}) | {dp['delta']:g} | {dp['accountant'].upper()} "
        f"(Opacus) | {dp['noise_multiplier']:.4f} | {dp['steps']} | {dp['sample_rate']:.4f} (Poisson) | "
        f"{dp['max_grad_norm']:g} | {dp['noise_multiplicity']} |",
        "",
        "How: the denoiser was trained with DP-SGD (per-example clipping, Gaussian noise) on the train split. "
        f"Public data, outside the guarantee's scope: the autoencoder was trained on {autoencoder}"
        + (
            f", and the denoiser pre-trained on {public.get('dataset')} ({public.get('images')} images)"
            if public
            else ""
        )
        + ". The embedder that chose these images was trained on the synthetic pool only (post-processing: no "
        "budget). No filter or distiller read the train split." + _vote_statement(dp),
        "",
        "Not covered: the decision to share or withhold this set (one bit per set) reads real images through the "
        "tests below; the audit reads real images and releases only its numbers; the noise came from a seeded, "
        "reproducible generator, not a cryptographically secure one. The validation and test splits are not "
        "protected by ε (they chose defaults and judged the set). The empirical tests below remain as a check.",
    ]


def datasheet(
    name: str,
    subset: dict[str, np.ndarray],
    audit: dict[str, Any],
    accuracy: dict[str, dict[str, float]],
    settings: dict[str, Any],
    gate: dict[str, Any],
    controls: dict[str, Any] | None = None,
    generator: dict[str, Any] | None = None,
    pool: dict[str, Any] | None = None,
    dp: dict[str, Any] | None = None,
) -> str:
    """The package's datasheet (Markdown): what the set is, what its privacy tests show and with what power, how it
    was made (no local paths) and what it is good for."""
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
        "## Privacy",
        "",
        *(
            _dp_statement(dp)
            if dp is not None
            else [
                "**No formal privacy guarantee.** No step that read the training images was trained with differential "
                "privacy. The tests below are empirical: they can show a leak, never prove that there is none, and each "
                "sees only leaks of the size its power states.",
            ]
        ),
        "",
        f"Threat model: {THREAT_MODEL}",
        "",
        f"Splits: members = the real train split ({audit['n_train']} images); audit holdout = the real test split "
        f"({audit['n_test']} images), which no step that shaped this set read; "
        + (
            "no privacy filter ran (DP mode)."
            if dp
            else "the privacy filter's threshold came from the validation split."
        ),
        "",
        "| test | result | power at this size | verdict |",
        "|---|---|---|---|",
    ]
    for t in privacy_tests(audit, gate, controls):
        lines.append(f"| {t['test']} | {t['result']} | {t['power']} | {t['verdict']} |")
    ok, reasons = gate_verdict(audit, gate)
    if pool is not None and audit["source"] == "pool":
        lines += [
            "",
            "The whole synthetic pool this set was drawn from, before any filter (non-inferiority: pass only "
            "if the upper bound of Δ = pool DCR share − holdout null lies below the margin, with power):",
            "",
        ]
        for space in ("pixel", "embedding"):
            t = pool[space]["whole_pool"]["non_inferiority"]
            lines.append(
                f"- {space}: Δ {t['delta']:+.3f}, one-sided 95 % upper bound {t['upper95']:+.3f}, margin "
                f"{t['margin']}, power {t['power']:.2f} → **{t['verdict']}**"
            )
    if generator is not None:
        c = generator["control"]
        lines += [
            "",
            "The generator itself (not part of this package), attacked with its own training loss (members = "
            f"{generator['members']}, non-members = {generator['nonmembers']}): AUC {generator['auc']:.3f} "
            f"[{generator['auc_ci95'][0]:.3f}, {generator['auc_ci95'][1]:.3f}], TPR at 1 % FPR "
            f"{generator['tpr_at_1pct_fpr']:.3f} [{generator['tpr_at_1pct_fpr_ci95'][0]:.3f}, "
            f"{generator['tpr_at_1pct_fpr_ci95'][1]:.3f}]; positive control ({c['members']}): TPR at 1 % FPR "
            f"{c['tpr_at_1pct_fpr']:.3f}, {'caught' if c['detected'] else 'MISSED'}. Verdict: "
            f"**{generator['verdict']}** ({generator['why']}). Reported, not a gate clause.",
        ]
    lines += [
        "",
        f"Gate: **{'pass' if ok else 'fail'}**" + ("" if ok else " — " + "; ".join(reasons)),
        "",
        "## How it was made",
        "",
        "```json",
        json.dumps(public_settings(settings), indent=2, sort_keys=True, default=str),
        "```",
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
    """Check every file listed in SHA256SUMS, that nothing is missing and that nothing else is there; raises naming
    the first bad file."""
    pkg = Path(package_dir)
    sums = pkg / CHECKSUMS
    if not sums.exists():
        raise HistodistillError(f"{pkg}: no {CHECKSUMS}; not a histodistill share package")
    listed = {line.split("  ", 1)[1] for line in sums.read_text().splitlines() if "  " in line}
    present = {p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if p.is_file() or p.is_symlink()}
    extra = sorted(present - listed - {CHECKSUMS})
    if extra:
        raise HistodistillError(f"{pkg / extra[0]}: not listed in {CHECKSUMS}; the package was altered")
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


def release_decisions(
    audits: dict[str, dict[str, Any]],
    gate: dict[str, Any],
    controls: dict[str, Any] | None,
    dp: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Per audited set: shared or not, and every reason. Nothing is shared when a planted control was missed (or
    none ran): a gate that did not see a planted copy cannot vouch for any set. In DP mode (`dp` = the budget spent)
    a set not drawn from the DP generator's pool is never shared: ε does not cover it."""
    missed = controls_missed(controls) if controls else ["no planted controls ran (the run has no synthetic pool)"]
    rows = []
    for name, audit in audits.items():
        _, reasons = gate_verdict(audit, gate)
        if dp is not None and audit["source"] != "pool":
            reasons = [
                f"DP mode: its images come from the private train split ({audit['source']}), which the guarantee "
                f"(ε = {dp['epsilon']:.2f}) does not cover"
            ] + reasons
        if missed:
            reasons = [f"the gate missed a planted control ({'; '.join(missed)}), so it cannot be relied on"] + reasons
        rows.append(
            {
                "set": name,
                "shared": not reasons,
                "package": "" if reasons else f"{name}/",
                "reasons": "; ".join(reasons),
            }
        )
    return rows


def share_index(rows: list[dict[str, Any]]) -> tuple[pd.DataFrame, str]:
    """The index of every audited set: shared or not, and why (CSV table and Markdown)."""
    df = pd.DataFrame(rows, columns=["set", "shared", "package", "reasons"])
    md = ["| set | shared | package / reasons |", "|---|---|---|"]
    md += [
        f"| {r.set} | {'yes' if r.shared else 'no'} | {r.package if r.shared else r.reasons} |" for r in df.itertuples()
    ]
    return df, "\n".join(md) + "\n"
