"""Gradient matching (DC, Zhao et al. 2021; DSA with Siamese augmentation, Zhao & Bilen 2021): match the
gradients a network gets from synthetic and real images, along the network's own training."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from histodistill.base.accel import autocast
from histodistill.base.images import to_uint8
from histodistill.classifier.augment import dsa, dsa_siamese, op_chooser
from histodistill.classifier.nets import ConvNet

from .common import Distilled, RealBatches, initial_images, initial_indices

log = logging.getLogger(__name__)


# The original's (outer loop, inner loop) per IPC (DatasetCondensation utils.get_loops).
ORIGINAL_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}


@dataclass(frozen=True)
class GMConfig:
    iterations: int = 1000
    lr_images: float = 0.1
    momentum: float = 0.5
    lr_net: float = 0.01
    batch_real: int = 256
    batch_train: int = 256
    outer_loop: int | None = None
    inner_loop: int | None = None
    depth: int = 3
    width: int = 128
    init: str = "noise"
    dsa: bool = False
    seed: int = 0
    precision: str = "fp32"


def gradient_matching_loops(ipc: int, outer: int | None = None, inner: int | None = None) -> tuple[int, int]:
    """(outer loop, inner loop): the original's values for IPC 1, 10, 20, ..., 50; otherwise IPC outer steps and
    min(50, 500 // IPC) inner epochs (the original's rule of thumb); explicit values override."""
    o, i = ORIGINAL_LOOPS.get(ipc, (ipc, 1 if ipc == 1 else min(50, max(1, 500 // ipc))))
    return (o if outer is None else outer), (i if inner is None else inner)


def gradient_distance(g_syn: list[torch.Tensor], g_real: list[torch.Tensor]) -> torch.Tensor:
    """The original's layer-wise distance: for every weight tensor, Σ over output units of (1 − cosine) between the
    real and synthetic gradients (flattened per output unit); 1-D tensors (biases, norm scales) are left out."""
    total = g_syn[0].new_zeros(())
    for gs, gr in zip(g_syn, g_real):
        if gs.dim() == 1:
            continue
        gs, gr = gs.flatten(1), gr.flatten(1)
        cos = (gs * gr).sum(1) / (gs.norm(dim=1) * gr.norm(dim=1) + 1e-6)
        total = total + (1 - cos).sum()
    return total


def gradient_matching(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    ipc: int,
    cfg: GMConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    key: str = "distill.dc.init",
) -> Distilled:
    """DC (Zhao et al., ICLR 2021) and, with `cfg.dsa`, DSA (Zhao & Bilen, ICML 2021) on the real train split.

    Every iteration draws a fresh ConvNet; `outer` times: per class, the synthetic images move to make the
    gradient of the cross-entropy on them (w.r.t. the network weights) point like the gradient on a real batch of
    the class (`gradient_distance`; with DSA both batches get the same transformation); then the network trains
    `inner` epochs on the current synthetic set (with DSA: augmented) with plain SGD at `lr_net` (the reference's
    optimizer_net: no momentum). The loss of an iteration is the mean over its outer steps."""
    device = torch.device(device)
    size, channels = images.shape[1], images.shape[3]
    outer, inner = gradient_matching_loops(ipc, cfg.outer_loop, cfg.inner_loop)
    indices = initial_indices(labels, n_classes, ipc, cfg.init, cfg.seed, key)
    torch.manual_seed(cfg.seed)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    chooser = op_chooser(g, cfg.seed)
    real = RealBatches(images, labels, n_classes, device)
    syn = initial_images(real.images, indices, (n_classes * ipc, channels, size, size), g).requires_grad_(True)
    syn_labels = torch.arange(n_classes, device=device).repeat_interleave(ipc)
    opt = torch.optim.SGD([syn], lr=cfg.lr_images, momentum=cfg.momentum)
    losses = torch.zeros(cfg.iterations, device=device)
    report_every = max(1, cfg.iterations // 10)
    name = "DSA" if cfg.dsa else "DC"
    for it in tqdm(range(cfg.iterations), desc=f"{name} IPC {ipc}", disable=not progress, mininterval=5, leave=False):
        with torch.device(device):
            net = ConvNet(channels, n_classes, size, depth=cfg.depth, width=cfg.width)
        params = list(net.parameters())
        opt_net = torch.optim.SGD(params, lr=cfg.lr_net)  # plain SGD, as the reference's optimizer_net
        for step in range(outer):
            loss = syn.new_zeros(())
            for c in range(n_classes):
                r, s = real.draw(c, cfg.batch_real, g), syn[c * ipc : (c + 1) * ipc]
                if cfg.dsa:
                    r, s = dsa_siamese([r, s], g, choice=chooser)
                with autocast(device, cfg.precision):
                    out_r, out_s = net(r).float(), net(s).float()
                g_real = torch.autograd.grad(F.cross_entropy(out_r, syn_labels[c * ipc].expand(len(r))), params)
                g_syn = torch.autograd.grad(
                    F.cross_entropy(out_s, syn_labels[c * ipc : (c + 1) * ipc]), params, create_graph=True
                )
                loss = loss + gradient_distance(list(g_syn), [t.detach() for t in g_real])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                syn.clamp_(-1, 1)
            losses[it] += loss.detach() / outer
            if step == outer - 1:
                break
            train_x, n = syn.detach(), len(syn)
            for _ in range(inner):
                perm = torch.randperm(n, generator=g, device=g.device).to(device)
                for start in range(0, n, cfg.batch_train):
                    idx = perm[start : start + cfg.batch_train]
                    x = dsa(train_x[idx], g, choice=chooser) if cfg.dsa else train_x[idx]
                    with autocast(device, cfg.precision):
                        out = net(x).float()
                    opt_net.zero_grad(set_to_none=True)
                    F.cross_entropy(out, syn_labels[idx]).backward()
                    opt_net.step()
        if (it + 1) % report_every == 0:
            recent = float(losses[it + 1 - report_every : it + 1].mean())
            log.info(
                "%s IPC %d iteration %d: mean loss over the last %d: %.4f", name, ipc, it + 1, report_every, recent
            )
    out_labels = np.repeat(np.arange(n_classes, dtype=np.int64), ipc)
    return Distilled(to_uint8(syn), out_labels, indices, losses.cpu().double().numpy())
