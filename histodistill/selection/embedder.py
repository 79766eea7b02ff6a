"""Embedders: classifiers trained on the real train split whose penultimate features embed the pool; or raw pixels."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from histodistill.base.checkpoint import load_checkpoint
from histodistill.base.images import to_model_space
from histodistill.classifier.nets import build_classifier
from histodistill.classifier.train import TrainConfig, embed_images, predict_logits, train_classifier


def train_embedder(
    real: dict[str, np.ndarray], net: str, cfg: dict[str, Any], device: torch.device, precision: str = "fp32"
) -> dict[str, Any]:
    """Train `net` on the real train split (best validation epoch kept; `precision` of training); returns a
    checkpoint dict. Embeddings are always computed in fp32. The test split is not read: it is the privacy audit's
    holdout, which nothing that shapes a set may see."""
    n_classes = int(real["n_classes"])
    tcfg = TrainConfig(
        net=net,
        depth=cfg["depth"],
        width=cfg["width"],
        epochs=cfg["epochs"],
        batch_size=cfg["batch_size"],
        lr=cfg["lr"],
        dsa=True,
        contrastive_weight=0.0,
        precision=precision,
    )
    model = train_classifier(
        real["train_images"],
        real["train_labels"],
        n_classes,
        tcfg,
        cfg["seed"],
        device,
        desc=f"embedder {net}",
        val=(real["val_images"], real["val_labels"]),
        val_every=max(1, cfg["epochs"] // 10),
    )
    val_acc = float((predict_logits(model, real["val_images"], device).argmax(1) == real["val_labels"]).mean())
    return {
        "net": net,
        "depth": cfg["depth"],
        "width": cfg["width"],
        "n_classes": n_classes,
        "channels": int(real["train_images"].shape[3]),
        "size": int(real["train_images"].shape[1]),
        "state_dict": {k: v.cpu() for k, v in model.state_dict().items()},
        "val_acc": val_acc,
    }


def pool_as_training_data(
    images: np.ndarray, labels: np.ndarray, n_classes: int, val_fraction: float = 0.1, seed: int = 0
) -> dict[str, np.ndarray]:
    """The synthetic pool in the real data's layout (train_/val_ images and labels, n_classes): a seeded, stratified
    `val_fraction` of each class chooses the embedder's epoch. DP mode trains the embedder so: post-processing of
    the DP generator's output, no private image read."""
    rng = np.random.default_rng(seed)
    val = np.zeros(len(labels), bool)
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        val[rng.choice(idx, max(1, round(val_fraction * len(idx))), replace=False)] = True
    return {
        "train_images": images[~val],
        "train_labels": labels[~val],
        "val_images": images[val],
        "val_labels": labels[val],
        "n_classes": np.int64(n_classes),
    }


def load_embedder(path: str | os.PathLike, device: torch.device) -> nn.Module:
    ckpt = load_checkpoint(path, required=("net", "state_dict", "n_classes", "channels", "size"))
    model = build_classifier(
        ckpt["net"], ckpt["channels"], ckpt["n_classes"], ckpt["size"], ckpt["depth"], ckpt["width"]
    )
    model.load_state_dict(ckpt["state_dict"])
    return model.to(device).eval()


def label_certainty(
    model: nn.Module, images: np.ndarray, labels: np.ndarray, device: torch.device
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's softmax probability of each image's own label, and whether its top class is that label."""
    from scipy.special import softmax

    from histodistill.classifier.train import predict_logits

    prob = softmax(predict_logits(model, images, device).astype(np.float64), axis=1)
    return prob[np.arange(len(labels)), labels], prob.argmax(1) == labels


def embed(images: np.ndarray, model: nn.Module | None, device: torch.device) -> np.ndarray:
    """Embedding matrix (float32, one row per image): model features, or flattened pixels when `model` is None."""
    if model is None:
        return to_model_space(images).reshape(len(images), -1).numpy().astype(np.float32)
    return embed_images(model, images, device).astype(np.float32)


def random_feature_net(channels: int, size: int, seed: int, device: torch.device, depth: int = 3, width: int = 64):
    """A ConvNet with seeded random weights, never trained: a feature space that learnt nothing from the train split
    (the privacy release test's second space; the same seed gives the same features on every machine's CPU)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_classifier("convnet", channels, 2, size, depth, width)
    return model.to(device).eval()
