"""Evaluation: train a classifier only on a subset, test on the real test split."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .train import TrainConfig, classification_metrics, predict_logits, train_classifiers


def train_config_for(model: str, params: dict[str, Any], full_real: bool, precision: str = "fp32") -> TrainConfig:
    """The evaluation protocol's TrainConfig for one network (full real data gets its own epoch count; ResNet18 its
    own width, so that a wide ConvNet does not turn it into a 45 M-parameter network)."""
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


def per_class_accuracy(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    """Share of each class's test images predicted as that class (recall per class); None for a class without
    test images."""
    pred = np.asarray(logits).argmax(axis=1)
    labels = np.asarray(labels)
    return [float((pred[labels == c] == c).mean()) if (labels == c).any() else None for c in range(n_classes)]


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
) -> list[dict[str, Any]]:
    """Metrics (acc, auc, f1) of one classifier per seed trained only on the subset, tested on real test images.

    With `batch_seeds` the seeds train side by side as one stacked model; `train_seconds` is then the shared time
    divided by the number of seeds."""
    start = time.perf_counter()
    models = train_classifiers(
        train_images, train_labels, n_classes, cfg, seeds, device, batch_seeds=batch_seeds, desc=cfg.net
    )
    seconds = (time.perf_counter() - start) / len(seeds)
    results = []
    for seed, model in zip(seeds, models):
        logits = predict_logits(model, test_images, device, precision=cfg.precision)
        results.append(
            {
                **classification_metrics(logits, test_labels, n_classes),
                "per_class_acc": per_class_accuracy(logits, test_labels, n_classes),
                "seed": seed,
                "model": cfg.net,
                "n_train": int(len(train_labels)),
                "epochs": cfg.epochs,
                "precision": cfg.precision,
                "batch_seeds": bool(batch_seeds and len(seeds) > 1),
                "train_seconds": round(seconds, 3),
            }
        )
    return results
