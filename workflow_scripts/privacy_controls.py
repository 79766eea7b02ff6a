"""Rule privacy_controls: at every released size (IPC × classes), one training image planted among synthetic pool
images - as a near copy, through the run's autoencoder, and mirrored and shifted - and audited through the very
function and gate the shared sets go through. `share` packages nothing when any control is missed."""

import logging

import numpy as np
import torch

from histodistill.base import load_npz, run_job, to_model_space, to_uint8, write_json
from histodistill.generator import load_codec, load_pool
from histodistill.privacy import (
    PIXEL_SCALE,
    audit_subset,
    control_detected,
    control_filler,
    control_void,
    gate_verdict,
    gather_rows,
    jsonable,
    near_copies,
    npz_member_shape,
    npz_row_chunks,
    planted_set,
    shifted_mirror,
)
from histodistill.selection import embed, load_embedder


def main(smk, device):
    p = smk.params
    pool_images, pool_labels = load_pool(smk.input.shards)
    reference = load_npz(smk.input.reference)
    model = load_embedder(smk.input.embedder, device)
    codec = load_codec(smk.input.autoencoder, device)
    shape, _ = npz_member_shape(smk.input.real, "train_images")
    with np.load(smk.input.real) as z:
        train_labels = z["train_labels"]
    rng = np.random.default_rng([p.seed, 67])
    log = logging.getLogger("histodistill")
    out = {"ipc": {}, "planted_noise": p.planted_noise, "shift": int(reference["release_shift"])}
    for ipc in p.ipc:
        filler = control_filler(pool_labels, ipc, p.seed)
        position = int(rng.integers(len(filler)))
        label = int(pool_labels[filler[position]])
        source = int(rng.choice(np.where(train_labels == label)[0]))
        original = gather_rows(npz_row_chunks(smk.input.real, "train_images"), np.array([source]))
        original = original.reshape(1, *shape[1:])
        with torch.no_grad():
            z, _ = codec.posterior(to_model_space(original, device))
            decoded = to_uint8(codec.decode(z))
        disguises = {
            "near_copy": near_copies(original, p.planted_noise, p.seed + ipc),
            "decoded_copy": decoded,
            "shifted_mirror": shifted_mirror(original, int(reference["release_shift"])),
        }
        closest_unseen = float(np.min(reference["pixel_test_dcr"]))
        out["ipc"][str(ipc)] = {}
        for kind, image in disguises.items():
            subset = planted_set(pool_images[filler], pool_labels[filler], position, image[0], label)
            report = audit_subset(
                subset,
                smk.input.real,
                reference,
                lambda x: embed(x, model, device),
                where=f"control {kind} IPC {ipc}",
                chunk=p.chunk,
                n_bootstrap=p.bootstrap,
                seed=p.seed,
                device=device,
                alpha=p.alpha,
                tail=p.tail,
                margin=p.margin,
                gate_only=True,
            )
            ok, reasons = gate_verdict(report, p.gate)
            detected = control_detected(report, position) and not ok
            to_source = float(np.linalg.norm(image[0].astype(float) - original[0].astype(float)) * PIXEL_SCALE)
            out["ipc"][str(ipc)][kind] = {
                "distance_to_source": to_source,
                "closest_unseen_distance": closest_unseen,
                "void": control_void(kind, to_source, closest_unseen),
                "n": len(filler),
                "position": position,
                "train_index": source,
                "detected": detected,
                "min_p": {s: v["p"][position] for s, v in report["release"]["spaces"].items()},
                "level": report["release"]["level"],
                "gate_reasons": reasons,
            }
            log.info(
                "control %s at IPC %d (%d images): %s (p %s, level %.2g)",
                kind,
                ipc,
                len(filler),
                "detected" if detected else ("void" if control_void(kind, to_source, closest_unseen) else "MISSED"),
                {s: f"{v['p'][position]:.2g}" for s, v in report["release"]["spaces"].items()},
                report["release"]["level"],
            )
    write_json(smk.output[0], jsonable(out))


run_job(snakemake, main)  # noqa: F821
