"""Distribution matching (DM, Zhao & Bilen 2023): match the mean embedding of synthetic and real images per class
under randomly initialised networks."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from histodistill.base.accel import autocast
from histodistill.base.images import to_uint8
from histodistill.classifier.augment import dsa_siamese, op_chooser
from histodistill.classifier.nets import ConvNet

from .common import Distilled, RealBatches, initial_images, initial_indices, start_images

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DMConfig:
    iterations: int = 20000
    lr_images: float = 1.0
    momentum: float = 0.5
    batch_real: int = 256
    depth: int = 3
    width: int = 128
    init: str = "real"
    dsa: bool = True
    seed: int = 0
    precision: str = "fp32"


def dm_loss(
    net: ConvNet,
    real: list[torch.Tensor],
    synthetic: list[torch.Tensor],
    device: torch.device,
    precision: str = "fp32",
) -> torch.Tensor:
    """Σ_c ‖mean embed(real_c) − mean embed(synthetic_c)‖² (one forward per side for all classes; instance norm
    keeps the samples independent). The real side carries no gradient."""
    with torch.no_grad(), autocast(device, precision):
        e_real = net.embed(torch.cat(real)).float()
    with autocast(device, precision):
        e_syn = net.embed(torch.cat(synthetic)).float()
    mean_real = torch.stack([e.mean(0) for e in e_real.split([len(r) for r in real])])
    mean_syn = torch.stack([e.mean(0) for e in e_syn.split([len(s) for s in synthetic])])
    return ((mean_real - mean_syn) ** 2).sum()


def distribution_matching(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    ipc: int,
    cfg: DMConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    key: str = "distill.dm.init",
    start: tuple[np.ndarray, np.ndarray] | None = None,
) -> Distilled:
    """DM on the real train split (uint8 NHWC `images`, int64 `labels`): IPC learnable images per class.

    `start` (uint8 NHWC images, int64 labels; IPC per class) replaces `cfg.init`: the synthetic images start from
    them, e.g. a selection from the synthetic pool (`dm_refine`), so that no real image is in the start and the real
    split serves only as the matching target; the returned indices are then -1."""
    device = torch.device(device)
    size, channels = images.shape[1], images.shape[3]
    torch.manual_seed(cfg.seed)  # the random networks
    g = torch.Generator(device=device).manual_seed(cfg.seed)  # real batches and augmentation parameters
    chooser = op_chooser(g, cfg.seed)
    real = RealBatches(images, labels, n_classes, device)
    if start is None:
        indices = initial_indices(labels, n_classes, ipc, cfg.init, cfg.seed, key)
        syn = initial_images(real.images, indices, (n_classes * ipc, channels, size, size), g)
    else:
        indices = np.full(n_classes * ipc, -1, dtype=np.int64)
        syn = start_images(start[0], start[1], n_classes, ipc, (size, size, channels), device)
    syn = syn.requires_grad_(True)
    opt = torch.optim.SGD([syn], lr=cfg.lr_images, momentum=cfg.momentum)
    losses = torch.zeros(cfg.iterations, device=device)  # kept on the device: no host round trip per step
    report_every = max(1, cfg.iterations // 10)
    for it in tqdm(range(cfg.iterations), desc=f"DM IPC {ipc}", disable=not progress, mininterval=5, leave=False):
        with torch.device(device):
            net = ConvNet(channels, n_classes, size, depth=cfg.depth, width=cfg.width).requires_grad_(False)
        real_batches, syn_batches = [], []
        for c in range(n_classes):
            r, s = real.draw(c, cfg.batch_real, g), syn[c * ipc : (c + 1) * ipc]
            if cfg.dsa:
                r, s = dsa_siamese([r, s], g, choice=chooser)
            real_batches.append(r)
            syn_batches.append(s)
        loss = dm_loss(net, real_batches, syn_batches, device, cfg.precision)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            syn.clamp_(-1, 1)
        losses[it] = loss.detach()
        if (it + 1) % report_every == 0:
            recent = float(losses[it + 1 - report_every : it + 1].mean())
            log.info("DM IPC %d iteration %d: mean loss over the last %d: %.4f", ipc, it + 1, report_every, recent)
    out_labels = np.repeat(np.arange(n_classes, dtype=np.int64), ipc)
    return Distilled(to_uint8(syn), out_labels, indices, losses.cpu().double().numpy())
