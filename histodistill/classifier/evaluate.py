"""Evaluation: train a classifier only on a subset, test on the real test split."""

from __future__ import annotations

import math
import time
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from .train import TrainConfig, classification_metrics, predict_logits, train_classifiers

# torch.compile of the evaluation step pays once a job trains this many steps: about a minute of compilation (cold
# cache) over 4.1 ms saved per step, measured on an H200 (benchmarks/eval_speed.py, ConvNet d5 w128, 64 px, batch
# 256, bf16: 27.1 against 43.5 s per 1000 epochs of 4 steps). The paper preset's IPC 100 (5 seeds x 1000 epochs x 4
# steps) and full-real evaluations pass it; IPC 1 to 50 do not.
COMPILE_MIN_STEPS = 15_000


def training_steps(n_images: int, batch_size: int, epochs: int, seeds: int) -> int:
    """Optimiser steps of one evaluation job: seeds x epochs x batches per epoch (the last one may be partial)."""
    return seeds * epochs * math.ceil(n_images / max(1, min(batch_size, n_images)))


def evaluation_switches(params: dict[str, Any], device: torch.device | str, steps: int) -> tuple[bool, bool]:
    """(compile, batch_seeds) from `evaluate.compile` and `evaluate.batch_seeds` for a job of `steps` training steps.
    `auto` compiles on a GPU when the job is long enough to repay compiling (COMPILE_MIN_STEPS), never on CPU, and
    trains the seeds one by one everywhere: side by side was slower on an H200 (54.3 against 43.5 s per 1000 epochs
    per seed at 900 images) and 2.5x slower on CPU."""
    requested = params.get("compile", "auto")
    if requested == "auto":
        compiled = torch.device(device).type == "cuda" and steps >= COMPILE_MIN_STEPS
    else:
        compiled = bool(requested)
    batch_seeds = params.get("batch_seeds", "auto")
    return compiled, (False if batch_seeds == "auto" else bool(batch_seeds))


def train_config_for(
    model: str,
    params: dict[str, Any],
    full_real: bool,
    precision: str = "fp32",
    method: str = "",
    learned_lr: float | None = None,
) -> TrainConfig:
    """The evaluation protocol's TrainConfig for one network (full real data gets its own epoch count; ResNet18 its
    own width, so that a wide ConvNet does not turn it into a 45 M-parameter network).

    `evaluate.protocol: infodist` (the default): InfoDist's training (warm-up and cosine, EMA, the boundary
    contrastive term; every key of `evaluate`). `distillation`: the dataset-distillation reference's `evaluate_synset`
    (DC/DSA/DM and MTT), with `evaluate.distillation`'s settings: SGD lr 0.01 (MTT's set: its learned lr, as the
    reference sets lr_net = syn_lr), momentum 0.9, weight decay 5e-4, batch 256, Epoch + 1 epochs with the lr times
    0.1 and a new optimiser after epoch Epoch // 2 + 1, no warm-up, EMA or contrastive term; DSA for every `method`
    except those in `without_augmentation` (DC: 300 epochs without augmentation, the others 1000 with DSA)."""
    if params.get("protocol", "infodist") == "distillation":
        d = params["distillation"]
        augment = method not in d["without_augmentation"]
        epochs = params["full_real_epochs"] if full_real else d["epochs" if augment else "epochs_without_augmentation"]
        return TrainConfig(
            net=model,
            depth=params["depth"],
            width=params["resnet18_width"] if model == "resnet18" else params["width"],
            epochs=epochs + 1,
            batch_size=d["batch_size"],
            lr=float(learned_lr) if learned_lr is not None else d["lr"],
            momentum=0.9,
            weight_decay=5e-4,
            ema_decay=0.0,
            dsa=augment,
            contrastive_weight=0.0,
            schedule="step",
            precision=precision,
        )
    return TrainConfig(
        net=model,
        depth=params["depth"],
        width=params["resnet18_width"] if model == "resnet18" else params["width"],
        epochs=params["full_real_epochs"] if full_real else params["epochs"],
        batch_size=params["batch_size"],
        lr=params["lr"],
        momentum=params["momentum"],
        weight_decay=params["weight_decay"],
        ema_decay=params["ema_decay"],
        dsa=params["dsa"],
        contrastive_weight=params["contrastive_weight"],
        contrastive_beta=params["contrastive_beta"],
        contrastive_tau=params["contrastive_tau"],
        precision=precision,
    )


def evaluation_config(
    model: str,
    params: dict[str, Any],
    full_real: bool,
    precision: str,
    device: torch.device | str,
    n_images: int,
    method: str = "",
    learned_lr: float | None = None,
) -> tuple[TrainConfig, bool]:
    """What one evaluation job trains with: `train_config_for`'s config, compiled or not as `evaluation_switches`
    decides for the job's length (its `n_images` over the config's epochs and batch size, every seed), and whether
    the seeds train side by side."""
    cfg = train_config_for(model, params, full_real, precision, method, learned_lr)
    steps = training_steps(n_images, cfg.batch_size, cfg.epochs, len(params["seeds"]))
    compiled, batch_seeds = evaluation_switches(params, device, steps)
    return replace(cfg, compile=compiled), batch_seeds


def per_class_accuracy(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    """Share of each class's test images predicted as that class (recall per class); None for a class without
    test images."""
    pred = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels)
    return [float((pred[labels == c] == c).mean()) if (labels == c).any() else None for c in range(n_classes)]


def validation_metrics(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float | None]:
    """acc, auc and f1 on the validation split; auc is None where the split lacks a class (tiny custom datasets)."""
    if len(np.unique(labels)) == n_classes:
        return classification_metrics(logits, labels, n_classes)
    pred = np.asarray(logits).argmax(axis=1)
    from sklearn.metrics import f1_score

    f1 = f1_score(labels, pred, average="macro", labels=np.arange(n_classes), zero_division=0)
    return {"acc": float((pred == np.asarray(labels)).mean()), "auc": None, "f1": float(f1)}


def evaluate_subset(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    seeds: list[int],
    device: torch.device,
    batch_seeds: bool = False,
    val_images: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Metrics (acc, auc, f1) of one classifier per seed trained only on the subset, tested on real test images; with
    the real validation split given, also `val_acc`, `val_auc`, `val_f1` (what defaults are chosen on).

    With `batch_seeds` the seeds train side by side as one stacked model; `train_seconds` is then the shared time
    divided by the number of seeds."""
    start = time.perf_counter()
    models = train_classifiers(
        train_images, train_labels, n_classes, cfg, seeds, device, batch_seeds=batch_seeds, desc=cfg.net
    )
    seconds = (time.perf_counter() - start) / len(seeds)
    batched = bool(batch_seeds and len(seeds) > 1)
    results = []
    for seed, model in zip(seeds, models):
        logits = predict_logits(model, test_images, device, precision=cfg.precision)
        val = {}
        if val_images is not None and len(val_images):
            val_logits = predict_logits(model, val_images, device, precision=cfg.precision)
            val = {f"val_{k}": v for k, v in validation_metrics(val_logits, val_labels, n_classes).items()}
        results.append(
            {
                **classification_metrics(logits, test_labels, n_classes),
                **val,
                "per_class_acc": per_class_accuracy(logits, test_labels, n_classes),
                "seed": seed,
                "model": cfg.net,
                "n_train": int(len(train_labels)),
                "epochs": cfg.epochs,
                "lr": cfg.lr,
                "schedule": cfg.schedule,
                "dsa": cfg.dsa,
                "precision": cfg.precision,
                "batch_seeds": batched,
                "compiled": cfg.compile and not batched,
                "train_seconds": round(seconds, 3),
            }
        )
    return results
