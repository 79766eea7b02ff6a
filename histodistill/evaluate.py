"""Evaluation: train a classifier only on a subset, test on the real test split."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from .train import TrainConfig, classification_metrics, predict_logits, train_classifier


def train_config_for(model: str, params: dict[str, Any], full_real: bool) -> TrainConfig:
    """The evaluation protocol's TrainConfig for one network (full real data gets its own epoch count)."""
    return TrainConfig(
        net=model,
        depth=params["depth"],
        width=params["width"],
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
    )


def evaluate_subset(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    seed: int,
    device: torch.device,
) -> dict[str, Any]:
    """Metrics (acc, auc, f1) of a classifier trained on the subset with `seed`, tested on real test images."""
    start = time.perf_counter()
    model = train_classifier(train_images, train_labels, n_classes, cfg, seed, device, desc=f"seed {seed}")
    metrics = classification_metrics(predict_logits(model, test_images, device), test_labels, n_classes)
    return {
        **metrics,
        "seed": seed,
        "model": cfg.net,
        "n_train": int(len(train_labels)),
        "epochs": cfg.epochs,
        "train_seconds": round(time.perf_counter() - start, 3),
    }
