"""Dataset distillers of the feasibility study (arXiv 2407.14429): learnable synthetic images, IPC per class.

DM, distribution matching (Zhao & Bilen, WACV 2023): every iteration draws a freshly initialised ConvNet (its
feature extractor, no classifier) and, per class, moves the synthetic images so that their mean embedding matches
the mean embedding of a random batch of the class's real images; both batches get the same DSA transformation
(`augment.dsa_siamese`). Loss per iteration: Σ_c ‖mean e(real_c) − mean e(syn_c)‖². SGD on the pixels
(momentum 0.5), as in the original.

Images live in model space ([-1, 1], the one normalisation of `images.py`) and are projected back into it after
every step, so the uint8 set that is written is what was optimised (up to rounding). Initialisation `real` starts
from a seeded random real subset (the same draw as the `random_real` baseline for the same seed), `noise` from
Gaussian noise clipped to the range.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .accel import autocast
from .augment import dsa, dsa_siamese, op_chooser
from .errors import HistodistillError
from .images import to_uint8
from .nets import ConvNet
from .select import select_random

log = logging.getLogger(__name__)

INITS = ("real", "noise")


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


@dataclass(frozen=True)
class Distilled:
    """A distilled set: uint8 NHWC images, int64 labels (class-major, IPC each), the real train indices the images
    started from (-1 for noise init), and the matching loss of every iteration."""

    images: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    losses: np.ndarray


def check_init(init: str, key: str) -> None:
    if init not in INITS:
        raise HistodistillError(f"{key}: unknown init {init!r}; use one of {list(INITS)}")


def initial_indices(labels: np.ndarray, n_classes: int, ipc: int, init: str, seed: int, key: str) -> np.ndarray:
    """Real train indices the synthetic images start from, class-major (IPC per class); -1 everywhere for noise.

    Real init draws per class with `select_random(rng([seed, c]))`, the `random_real` baseline's draw, so for the same
    seed a distiller starts from exactly the random real subset it is compared with."""
    check_init(init, key)
    if init == "noise":
        return np.full(n_classes * ipc, -1, dtype=np.int64)
    out = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < ipc:
            raise HistodistillError(
                f"{key}: real init needs IPC {ipc} real images per class but class {c} has {len(members)}; "
                f"lower select.ipc or set {key}: noise"
            )
        out.append(members[select_random(len(members), ipc, np.random.default_rng([seed, c]))])
    return np.concatenate(out).astype(np.int64)


def _model_space(images_nchw_uint8: torch.Tensor) -> torch.Tensor:
    return images_nchw_uint8.float().div(127.5).sub(1.0)


def initial_images(real: torch.Tensor, indices: np.ndarray, shape: tuple[int, ...], g: torch.Generator) -> torch.Tensor:
    """Starting synthetic images (model space, NCHW): the real images at `indices`, Gaussian noise (clipped to
    [-1, 1]) where the index is -1."""
    noise = torch.randn(shape, generator=g, device=g.device).to(real.device).clamp(-1, 1)
    idx = torch.from_numpy(indices).to(real.device)
    from_real = _model_space(real[idx.clamp(min=0)])
    return torch.where((idx >= 0).view(-1, 1, 1, 1), from_real, noise).contiguous()


def start_images(
    images: np.ndarray, labels: np.ndarray, n_classes: int, ipc: int, shape: tuple[int, int, int], device: torch.device
) -> torch.Tensor:
    """Starting synthetic images (model space, NCHW, class-major) from a given set of IPC uint8 NHWC images per class
    (in any order; within a class their order is kept)."""
    labels = np.asarray(labels, dtype=np.int64)
    counts = np.bincount(labels, minlength=n_classes)
    if images.shape[1:] != shape or len(counts) != n_classes or (counts != ipc).any():
        raise HistodistillError(
            f"the start set has {counts.tolist()} images per class of shape {images.shape[1:]}; DM needs {ipc} per "
            f"class of shape {shape}"
        )
    order = np.argsort(labels, kind="stable")
    x = torch.from_numpy(np.ascontiguousarray(images[order])).to(device).permute(0, 3, 1, 2)
    return _model_space(x).contiguous()


class RealBatches:
    """Random real batches of one class at a time, drawn on the device from a seeded generator.

    The train split stays uint8 on the device; a batch is normalised when drawn."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, n_classes: int, device: torch.device):
        self.images = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
        self.members = [torch.from_numpy(np.flatnonzero(labels == c)).to(device) for c in range(n_classes)]

    def draw(self, c: int, n: int, g: torch.Generator) -> torch.Tensor:
        members = self.members[c]
        pick = torch.randperm(len(members), generator=g, device=g.device)[: min(n, len(members))]
        return _model_space(self.images[members[pick.to(members.device)]])


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


# ------------------------------------------------------------------------------------- gradient matching (DC, DSA)

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


# --------------------------------------------------------------------------------------- trajectory matching (MTT)


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
) -> np.ndarray:
    """One expert trajectory (MTT's buffer.py): a ConvNet trained on the real train split with plain SGD (no
    momentum, no weight decay; DSA per sample if `cfg.dsa`); returns its flattened parameters at the start and after
    every epoch, shape (epochs + 1, n_parameters), float32."""
    device = torch.device(device)
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    chooser = op_chooser(g, seed)
    size, channels = images.shape[1], images.shape[3]
    with torch.device(device):
        net = ConvNet(channels, n_classes, size, depth=cfg.depth, width=cfg.width)
    opt = torch.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.0, weight_decay=0.0)
    x_all = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)

    def flat() -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in net.parameters()]).float().cpu()

    snapshots = [flat()]
    for _ in tqdm(range(cfg.epochs), desc=f"expert {seed}", disable=not progress, mininterval=5, leave=False):
        perm = torch.randperm(len(y_all), generator=g, device=g.device).to(device)
        for start in range(0, len(perm), cfg.batch_size):
            idx = perm[start : start + cfg.batch_size]
            x = _model_space(x_all[idx])
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
) -> tuple[Distilled, float]:
    """MTT (Cazenavette et al., CVPR 2022): synthetic images and a learnable learning rate such that `syn_steps` SGD
    steps on the synthetic set, from an expert's parameters at a random start epoch (< `max_start_epoch`), land near
    the same expert's parameters `expert_epochs` later. Loss: ‖θ_student − θ*_{t+M}‖² / ‖θ*_t − θ*_{t+M}‖².
    Returns the distilled set and the learned learning rate."""
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
    real = RealBatches(images, labels, n_classes, device)
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
            syn.clamp_(-1, 1)
            syn_lr.clamp_(min=1e-6)  # a negative step size would turn descent into ascent
        losses[it] = loss.detach()
        if (it + 1) % report_every == 0:
            recent = float(losses[it + 1 - report_every : it + 1].mean())
            log.info(
                "MTT IPC %d iteration %d: mean loss %.4f, learned lr %.5f", ipc, it + 1, recent, float(syn_lr.detach())
            )
    out_labels = np.repeat(np.arange(n_classes, dtype=np.int64), ipc)
    return Distilled(to_uint8(syn), out_labels, indices, losses.cpu().double().numpy()), float(syn_lr.detach())
