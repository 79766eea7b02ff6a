"""Rule evaluate_subset: one classifier per seed trained only on the subset; metrics on the real test split."""

import logging

from histodistill.base import load_npz, resolve_precision, run_job, write_json
from histodistill.classifier import evaluate_subset, evaluation_config
from histodistill.data import validate_images
from histodistill.distill import distilled_under, load_zca, whiten
from histodistill.reporting import parse_subset
from histodistill.selection import load_subset, subset_init

log = logging.getLogger("histodistill")


def main(smk, device):
    real = load_npz(smk.input.real)
    test_images, val_images = real["test_images"], real["val_images"]
    n_classes = int(real["n_classes"])
    full_real = smk.wildcards.subset == "full_real_ipcall"
    method = parse_subset(smk.wildcards.subset)[0]
    init, learned_lr = "", None
    if full_real:
        images, labels = real["train_images"], real["train_labels"]
    else:
        subset = load_subset(smk.input.subset[0])
        init = subset_init(subset)
        if method == "mtt" and "learned_lr" in subset:
            learned_lr = float(subset["learned_lr"])
        images, labels = subset["images"], subset["labels"]
        size, channels = real["train_images"].shape[1], real["train_images"].shape[3]
        validate_images(smk.input.subset[0], images, labels, n_classes, size, channels)
        if "model_images" in subset:  # distilled under ZCA: train on it as distilled, test on whitened real images
            zca = load_zca(smk.input.zca)
            images = distilled_under(subset, zca, smk.input.subset[0])
            test_images, val_images = whiten(test_images, zca, device), whiten(val_images, zca, device)
            log.info("ZCA: trained on the whitened set as distilled, tested on whitened real images (%s)", zca.digest)
    params = smk.params.evaluate
    precision = resolve_precision(smk.params.precision, device)
    cfg, batch_seeds = evaluation_config(
        smk.wildcards.model, params, full_real, precision, device, len(labels), method, learned_lr
    )
    log.info(
        "%s: %s, protocol %s (lr %g, %d epochs, %s), seeds %s, %s, compiled: %s, seeds batched: %s",
        smk.wildcards.subset,
        cfg.net,
        params.get("protocol", "infodist"),
        cfg.lr,
        cfg.epochs,
        cfg.schedule,
        params["seeds"],
        cfg.precision,
        cfg.compile,
        batch_seeds,
    )
    results = evaluate_subset(
        images,
        labels,
        test_images,
        real["test_labels"],
        n_classes,
        cfg,
        params["seeds"],
        device,
        batch_seeds,
        val_images=val_images,
        val_labels=real["val_labels"],
    )
    for result, out in zip(results, smk.output):
        result["subset"] = smk.wildcards.subset
        result["init"] = init
        log.info("%s %s seed %d: %s", smk.wildcards.subset, cfg.net, result["seed"], result)
        write_json(out, result)


run_job(snakemake, main)  # noqa: F821
