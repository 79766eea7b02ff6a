"""Matching training trajectories (MTT, Cazenavette et al. 2022): experts trained on real data, and a synthetic
set (with a learned learning rate) whose student steps follow an expert's trajectory."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from histodistill.base.accel import autocast
from histodistill.base.errors import HistodistillError
from histodistill.base.images import to_model_space, to_uint8
from histodistill.classifier.augment import dsa, op_chooser
from histodistill.classifier.nets import ConvNet

from .common import Distilled, RealBatches, initial_images, initial_indices
from .zca import Zca, unwhiten, whiten

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExpertConfig:
    epochs: int = 50
    lr: float = 0.01
    batch_size: int = 256
    depth: int = 3
    width: int = 128
    dsa: bool = True


@dataclass(frozen=True)
class MTTConfig:
    iterations: int = 5000
    syn_steps: int = 20
    expert_epochs: int = 3
    max_start_epoch: int = 20
    lr_images: float = 1000.0
    lr_lr: float = 1e-5
    lr_teacher: float = 0.01
    momentum: float = 0.5
    batch_syn: int | None = 256
    init: str = "real"
    dsa: bool = True
    seed: int = 0
    precision: str = "fp32"


def train_expert(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: ExpertConfig,
    seed: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
    zca: Zca | None = None,
) -> np.ndarray:
    """One expert trajectory (MTT's buffer.py): a ConvNet trained on the real train split with plain SGD (no
    momentum, no weight decay; DSA per sample if `cfg.dsa`; on ZCA-whitened images with `zca`); returns its
    flattened parameters at the start and after every epoch, shape (epochs + 1, n_parameters), float32."""
    device = torch.device(device)
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    chooser = op_chooser(g, seed)
    size, channels = images.shape[1], images.shape[3]
    with torch.device(device):
        net = ConvNet(channels, n_classes, size, depth=cfg.depth, width=cfg.width)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.0, weight_decay=0.0)
    x_all = to_model_space(images if zca is None else whiten(images, zca, device), device)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).float().cpu()

    snapshots = [flat()]
    for _ in tqdm(range(cfg.epochs), desc=f"expert {seed}", disable=not progress, mininterval=5, leave=False):
        perm = torch.randperm(len(y_all), generator=g, device=g.device).to(device)
        for start in range(0, len(perm), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            x = x_all[idx]
            if cfg.dsa:
                x = dsa(x, g, choice=chooser)
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y_all[idx]).backward()
            opt.step()
        snapshots.append(flat())
    return torch.stack(snapshots).numpy()


def mtt_unroll_bytes(batch: int, syn_steps: int, size: int, depth: int, width: int) -> int:
    """Estimated memory of MTT's unrolled student steps: every step keeps its ConvNet activations for the backward
    pass through all steps, about 5 float32 tensors per block (convolution, instance norm and its statistics, ReLU,
    pooling) of width × (size / 2^l)² values at block l, for each of `batch` images. Matches the costing of the paper
    preset's MTT (issue 34: about 250 GB at IPC 100 × 9 classes, 20 steps, width 128, 64 px; 63 GB at 10 steps and
    width 64)."""
    per_image = sum(5 * width * (size // 2**layer) ** 2 for layer in range(depth))
    return 4 * syn_steps * batch * per_image


def trajectory_matching(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    ipc: int,
    experts: list[np.ndarray],
    expert_cfg: ExpertConfig,
    cfg: MTTConfig,
    device: torch.device | str = "cpu",
    progress: bool = True,
    key: str = "distill.mtt.init",
    zca: Zca | None = None,
) -> tuple[Distilled, float]:
    """MTT (Cazenavette et al., CVPR 2022): synthetic images and a learnable learning rate such that `syn_steps` SGD
    steps on the synthetic set, from an expert's parameters at a random start epoch (< `max_start_epoch`), land near
    the same expert's parameters `expert_epochs` later. Loss: ‖θ_student − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖².
    With `zca` (the experts' transform) the real images are whitened and the set is distilled in whitened space,
    unclipped as in the reference; its images are then kept as distilled (`model_images`) beside their unwhitened
    pixels. Returns the distilled set and the learned learning rate."""
    device = torch.device(device)
    size, channels = images.shape[1], images.shape[3]
    for k, traj in enumerate(experts):
        if len(traj) < cfg.expert_epochs + 2:
            raise HistodistillError(
                f"distill.mtt.expert_epochs: {cfg.expert_epochs} needs experts trained for at least "
                f"{cfg.expert_epochs + 1} epochs, expert {k} has {len(traj) - 1}; raise distill.mtt.experts.epochs"
            )
    max_start = max(1, min(cfg.max_start_epoch, len(experts[0]) - 1 - cfg.expert_epochs))
    indices = initial_indices(labels, n_classes, ipc, cfg.init, cfg.seed, key)
    torch.manual_seed(cfg.seed)
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    chooser = op_chooser(g, cfg.seed)
    pick = np.random.default_rng(cfg.seed)
    real = RealBatches(images if zca is None else whiten(images, zca, device), labels, n_classes, device)
    syn = initial_images(real.images, indices, (n_classes * ipc, channels, size, size), g).requires_grad_(True)
    syn_labels = torch.arange(n_classes, device=device).repeat_interleave(ipc)
    syn_lr = torch.tensor(cfg.lr_teacher, device=device).requires_grad_(True)
    opt_img = torch.optim.SGD([syn], lr=cfg.lr_images, momentum=cfg.momentum)
    opt_lr = torch.optim.SGD([syn_lr], lr=cfg.lr_lr, momentum=cfg.momentum)
    with torch.device("meta"):
        template = ConvNet(channels, n_classes, size, depth=expert_cfg.depth, width=expert_cfg.width)
    names = [n for n, _ in template.named_parameters()]
    shapes = [p.shape for _, p in template.named_parameters()]
    sizes = [p.numel() for _, p in template.named_parameters()]
    if sum(sizes) != experts[0].shape[1]:
        raise HistodistillError(
            f"distill.mtt.experts: the expert files hold {experts[0].shape[1]} parameters but a depth "
            f"{expert_cfg.depth} width {expert_cfg.width} ConvNet has {sum(sizes)}; rerun train_expert"
        )

    def forward(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        params = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        with autocast(device, cfg.precision):
            return torch.func.functional_call(template, params, (x,)).float()

    batch = cfg.batch_syn or len(syn)
    losses = torch.zeros(cfg.iterations, device=device)
    report_every = max(1, cfg.iterations // 10)
    for it in tqdm(range(cfg.iterations), desc=f"MTT IPC {ipc}", disable=not progress, mininterval=5, leave=False):
        traj = experts[int(pick.integers(len(experts)))]
        start = int(pick.integers(max_start))
        theta0 = torch.from_numpy(np.array(traj[start])).to(device)  # two rows of a memory-mapped expert file
        target = torch.from_numpy(np.array(traj[start + cfg.expert_epochs])).to(device)
        student = theta0.clone().requires_grad_(True)
        order: list[torch.Tensor] = []
        for _ in range(cfg.syn_steps):
            if not order:
                order = list(torch.randperm(len(syn), generator=g, device=g.device).to(device).split(batch))
            idx = order.pop()
            x = syn[idx]
            if cfg.dsa:
                x = dsa(x, g, choice=chooser)
            ce = F.cross_entropy(forward(student, x), syn_labels[idx])
            grad = torch.autograd.grad(ce, student, create_graph=True)[0]
            student = student - syn_lr * grad
        loss = ((student - target) ** 2).sum() / ((theta0 - target) ** 2).sum()
        opt_img.zero_grad(set_to_none=True)
        opt_lr.zero_grad(set_to_none=True)
        loss.backward()
        opt_img.step()
        opt_lr.step()
        with torch.no_grad():
            if zca is None:
                syn.clamp_(-1, 1)
            syn_lr.clamp_(min=1e-6)  # a negative step size would turn descent into ascent
        losses[it] = loss.detach()
        if (it + 1) % report_every == 0:
            recent = float(losses[it + 1 - report_every : it + 1].mean())
            log.info(
                "MTT IPC %d iteration %d: mean loss %.4f, learned lr %.5f", ipc, it + 1, recent, float(syn_lr.detach())
            )
    out_labels = np.repeat(np.arange(n_classes, dtype=np.int64), ipc)
    losses_out = losses.cpu().double().numpy()
    if zca is None:
        return Distilled(to_uint8(syn), out_labels, indices, losses_out), float(syn_lr.detach())
    model_images = syn.detach().float().permute(0, 2, 3, 1).cpu().numpy()  # NHWC, as every image array
    pixels = to_uint8(unwhiten(syn, zca))
    return Distilled(pixels, out_labels, indices, losses_out, model_images), float(syn_lr.detach())
