"""Training and testing of classifiers (embedders and evaluators), and the evaluation metrics.

Protocol (InfoDist, without the released code's defects): one normalisation for train and test; cross-entropy on
logits; SGD with momentum and weight decay; linear warm-up for the first half of the epochs, cosine decay for the
second; an EMA of the weights (updated once per epoch) is what gets tested; optional DSA augmentation and the
boundary-guided semi-push-pull contrastive term.
"""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from histodistill.base.accel import autocast, compile_module
from histodistill.base.images import RESIDENT_LIMIT, batch_source, to_model_space

from .augment import dsa, op_chooser
from .nets import build_classifier

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    net: str = "convnet"
    depth: int = 3
    width: int = 64
    epochs: int = 300
    batch_size: int = 256
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    ema_decay: float = 0.995
    dsa: bool = True
    contrastive_weight: float = 1.0
    contrastive_beta: float = 0.9
    contrastive_tau: float = 0.3
    schedule: str = "warmup_cosine"  # 'warmup_cosine' (InfoDist's protocol) or 'step' (the reference evaluate_synset)
    precision: str = "fp32"  # 'fp32' or 'bf16' (autocast of the network; weights, loss and EMA stay fp32)
    compile: bool = False  # torch.compile of the network's forward and the loss (one seed at a time only)
    compile_mode: str = "default"  # torch.compile's mode; "reduce-overhead" (CUDA graphs) is timed by benchmarks only


def pick_device(requested: str = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def boundary_contrastive_loss(
    logits: torch.Tensor, labels: torch.Tensor, beta: float = 0.9, tau: float = 0.3
) -> torch.Tensor:
    """Boundary-guided semi-push-pull term, summed over the classes present in the batch.

    Scores are softmax probabilities. For class c with positives P (samples labelled c): the boundary b_c is the
    k-th largest positive score, k = max(1, ⌊|P|·β⌋), detached; b_non = b_c − τ. The term is the mean of (b_c − s)
    over positives with s ≤ b_c plus the mean of (s − b_non) over negatives with s ≥ b_non, both inclusive as in the
    authors' code (so the boundary sample itself counts in the pull's mean; a mean over an empty set counts as 0).
    For ⌊|P|·β⌋ = 0 the authors index position −1 (the lowest positive); k = 1 here, which differs only for β < 1/|P|.

    All classes are handled at once with masks, without a host round trip (no `.item()`, `.any()` or
    `torch.unique`), so on a GPU the training step never waits for the device.
    """
    scores = logits.softmax(dim=1)
    n, n_classes = scores.shape
    pos = labels.view(-1, 1) == torch.arange(n_classes, device=labels.device).view(1, -1)  # n x C
    counts = pos.sum(dim=0)
    # k-th largest positive score per class: sort each column with the negatives pushed below every score; k is
    # computed in float64 so that ⌊|P|·β⌋ equals Python's float arithmetic exactly.
    ranked = torch.where(pos, scores.detach(), torch.full_like(scores, -1.0)).sort(dim=0, descending=True).values
    k = torch.floor(counts.double() * beta).long().clamp(min=1, max=n)
    boundary = ranked.gather(0, (k - 1).view(1, -1)).view(-1)  # C, detached
    low = pos & (scores <= boundary)
    high = ~pos & (scores >= boundary - tau)
    pull = ((boundary - scores) * low).sum(dim=0) / low.sum(dim=0).clamp(min=1)
    push = ((scores - (boundary - tau)) * high).sum(dim=0) / high.sum(dim=0).clamp(min=1)
    return ((pull + push) * (counts > 0)).sum()


def lr_at(epoch: int, epochs: int, base_lr: float) -> float:
    """Linear warm-up over the first half of the epochs, cosine decay over the second."""
    half = max(1, epochs // 2)
    if epoch < half:
        return base_lr * (epoch + 1) / half
    rest = max(1, epochs - half)
    return 0.5 * base_lr * (1 + math.cos(math.pi * (epoch - half) / rest))


SCHEDULES = ("warmup_cosine", "step")


def lr_for_epoch(epoch: int, cfg: TrainConfig) -> tuple[float, bool]:
    """(learning rate of this epoch, whether the optimiser starts afresh before it).

    `warmup_cosine`: `lr_at`. `step`: the dataset-distillation reference's `evaluate_synset` (VICO-UoE/
    DatasetCondensation utils.py; MTT's copy alike): cfg.epochs = Epoch + 1 epochs, and after epoch Epoch // 2 + 1 the
    lr is multiplied by 0.1 with a new SGD optimiser (its momentum buffers dropped)."""
    if cfg.schedule == "warmup_cosine":
        return lr_at(epoch, cfg.epochs, cfg.lr), False
    if cfg.schedule != "step":
        raise ValueError(f"unknown schedule {cfg.schedule!r}; use one of {SCHEDULES}")
    switch = (cfg.epochs - 1) // 2 + 1
    return (cfg.lr if epoch <= switch else 0.1 * cfg.lr), epoch == switch + 1


def _start_epoch(opt: torch.optim.Optimizer, epoch: int, cfg: TrainConfig) -> None:
    """Set this epoch's learning rate; drop the optimiser's state where the schedule starts a new one."""
    lr, fresh = lr_for_epoch(epoch, cfg)
    if fresh:
        opt.state.clear()
    for group in opt.param_groups:
        group["lr"] = lr


@torch.no_grad()
def _ema_update(ema: nn.Module, model: nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def _ema_decay(epoch: int, cfg: TrainConfig) -> float:
    """EMA warm-up of the authors' code (ema-pytorch's EMA(beta=decay, power=1, update_after_step=0, update_every=1),
    updated once per epoch): the first update copies the weights, update e (0-based) uses e / (e + 1), capped at
    cfg.ema_decay, which it reaches after decay / (1 − decay) epochs (199 for 0.995). With update_every = 1 this ramp
    is the same in every ema-pytorch release read (0.0.1 to 0.7.9, lucidrains/ema-pytorch `update` and
    `get_current_decay`; 0.7.0 changed only when the first copy happens for update_every > 1)."""
    return min(cfg.ema_decay, epoch / (epoch + 1))


def _seeded_start(
    seed: int, cfg: TrainConfig, images: np.ndarray, n_classes: int, device: torch.device
) -> tuple[nn.Module, torch.Generator, torch.Generator]:
    """What a seed decides at the start of training: the initial network (global RNG seeded `seed`), the generator of
    batch order and augmentation parameters, and the one that picks DSA groups (see `op_chooser`)."""
    torch.manual_seed(seed)
    g = torch.Generator(device=device).manual_seed(seed)
    size, channels = images.shape[1], images.shape[3]
    model = build_classifier(cfg.net, channels, n_classes, size, depth=cfg.depth, width=cfg.width).to(device)
    return model, g, op_chooser(g, seed)


def _batch_source(
    images: np.ndarray, labels: np.ndarray, device: torch.device, resident_limit: int
) -> Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """`fetch(idx) -> (images in model space, labels)` on `device`; images resident or streamed as
    `images.batch_source` decides (full real data is streamed)."""
    y_all = torch.from_numpy(labels.astype(np.int64)).to(device)
    fetch_images = batch_source(images, device, resident_limit)
    return lambda idx: (fetch_images(idx), y_all[idx])


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    seed: int,
    device: torch.device | str = "cpu",
    progress: bool = True,
    desc: str = "train",
    val: tuple[np.ndarray, np.ndarray] | None = None,
    val_every: int = 10,
    resident_limit: int = RESIDENT_LIMIT,
) -> nn.Module:
    """Train a classifier on uint8 NHWC `images`; returns the EMA model in eval mode.

    Sets up to `resident_limit` bytes (uint8) live on the device as one tensor; larger ones are streamed in batches.
    Batches are drawn by a seeded permutation each epoch. With `val` (images, labels), the EMA is scored on it every `val_every` epochs and the best-scoring weights are returned
    (validation-based model choice).
    """
    device = torch.device(device)
    model, g, chooser = _seeded_start(seed, cfg, images, n_classes, device)
    fetch = _batch_source(images, labels, device, resident_limit)
    ema = copy.deepcopy(model).requires_grad_(False)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    batch_loss = _training_loss(model, cfg, device)
    n = len(images)
    bs = min(cfg.batch_size, n)
    best_acc, best_state = -1.0, None
    for epoch in tqdm(range(cfg.epochs), desc=desc, disable=not progress, mininterval=5, leave=False):
        _start_epoch(opt, epoch, cfg)
        model.train()
        perm = torch.randperm(n, generator=g, device=device)
        for start in range(0, n, bs):
            x, y = fetch(perm[start : start + bs])
            if cfg.dsa:
                x = dsa(x, g, choice=chooser)
            loss = batch_loss(x, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _ema_update(ema, model, _ema_decay(epoch, cfg))
        if val is not None and ((epoch + 1) % val_every == 0 or epoch + 1 == cfg.epochs):
            acc = float((predict_logits(ema, val[0], device, precision=cfg.precision).argmax(1) == val[1]).mean())
            if acc > best_acc:
                best_acc, best_state = acc, copy.deepcopy(ema.state_dict())
            log.info("%s epoch %d validation accuracy %.4f", desc, epoch + 1, acc)
    if best_state is not None:
        ema.load_state_dict(best_state)
        log.info("%s: kept the weights with the best validation accuracy %.4f", desc, best_acc)
    return ema.eval()


def _training_loss(
    model: nn.Module, cfg: TrainConfig, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """`loss(x, y)`: the network's forward (autocast to cfg.precision) and the batch loss, compiled with inductor
    (static shapes: a full and a last, smaller batch) when cfg.compile. Compiling fuses each layer's norm, ReLU and
    pooling, whose memory traffic bounds small-network training on a GPU: 27.1 s per 1000 epochs per seed against
    43.5 eager on an H200 (benchmarks/eval_speed.py, ConvNet d5 w128, 64 px, 900 images, bf16). If compiling fails,
    training goes on uncompiled (`compile_module`)."""

    def loss(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with autocast(device, cfg.precision):
            logits = model(x).float()
        return _batch_loss(logits, y, cfg)

    if not cfg.compile:
        return loss
    compiled = compile_module(loss, True, "the evaluation network's forward and loss", cfg.compile_mode)
    # one memory layout for every batch (the DSA ops return different strides, each a recompile otherwise);
    # channels-last is also the layout cuDNN's bf16 convolutions prefer
    return lambda x, y: compiled(x.contiguous(memory_format=torch.channels_last), y)


def _batch_loss(logits: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> torch.Tensor:
    loss = F.cross_entropy(logits, y)
    if cfg.contrastive_weight > 0:
        loss = loss + cfg.contrastive_weight * boundary_contrastive_loss(
            logits, y, cfg.contrastive_beta, cfg.contrastive_tau
        )
    return loss


def train_classifiers(
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    cfg: TrainConfig,
    seeds: list[int],
    device: torch.device | str = "cpu",
    batch_seeds: bool = False,
    progress: bool = True,
    desc: str = "train",
    resident_limit: int = RESIDENT_LIMIT,
) -> list[nn.Module]:
    """One classifier per seed, each as `train_classifier` would train it (same initialisation, batch order and
    augmentation from the seed); returns the EMA models in eval mode.

    With `batch_seeds` the seeds train side by side as one stacked model (`torch.func.vmap` over the seeds' weights):
    one forward and backward per step for all seeds instead of one per seed, fewer launches per step. The result
    equals separate training up to float rounding. Measured slower than seed by seed on an H200 at 900 images (vmap
    makes the convolutions grouped ones) and on CPU, so it is an option (`evaluate.batch_seeds`), off by default.
    """
    if not batch_seeds or len(seeds) == 1:
        return [
            train_classifier(
                images, labels, n_classes, cfg, s, device, progress, f"{desc} seed {s}", resident_limit=resident_limit
            )
            for s in seeds
        ]
    from torch.func import functional_call, stack_module_state, vmap

    device = torch.device(device)
    models, gens, choosers = zip(*(_seeded_start(s, cfg, images, n_classes, device) for s in seeds))
    fetch = _batch_source(images, labels, device, resident_limit)
    params, buffers = stack_module_state(list(models))
    ema = {k: v.detach().clone() for k, v in params.items()}
    template = copy.deepcopy(models[0]).to("meta")
    forward = vmap(lambda p, b, x: functional_call(template, (p, b), (x,)))
    opt = torch.optim.SGD(params.values(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    n = len(images)
    bs = min(cfg.batch_size, n)
    for epoch in tqdm(
        range(cfg.epochs), desc=f"{desc} seeds {seeds}", disable=not progress, mininterval=5, leave=False
    ):
        _start_epoch(opt, epoch, cfg)
        perms = [torch.randperm(n, generator=g, device=device) for g in gens]
        for start in range(0, n, bs):
            xs, ys = [], []
            for perm, g, chooser in zip(perms, gens, choosers):
                x, y = fetch(perm[start : start + bs])
                xs.append(dsa(x, g, choice=chooser) if cfg.dsa else x)
                ys.append(y)
            with autocast(device, cfg.precision):
                logits = forward(params, buffers, torch.stack(xs)).float()
            loss = sum(_batch_loss(logits[i], ys[i], cfg) for i in range(len(seeds)))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            decay = _ema_decay(epoch, cfg)
            for k, v in ema.items():
                v.lerp_(params[k], 1.0 - decay)
    out = []
    for i in range(len(seeds)):
        model = models[i]
        model.load_state_dict({**{k: v[i] for k, v in ema.items()}, **{k: v[i] for k, v in buffers.items()}})
        out.append(model.requires_grad_(False).eval())
    return out


@torch.no_grad()
def _batched(
    fn, images: np.ndarray, device: torch.device | str, batch_size: int, precision: str = "fp32"
) -> np.ndarray:
    """Apply `fn` to uint8 NHWC images in batches (model space, on `device`); float32 numpy result."""
    out = []
    for i in range(0, len(images), batch_size):
        with autocast(device, precision):
            out.append(fn(to_model_space(images[i : i + batch_size], device)).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def predict_logits(
    model: nn.Module,
    images: np.ndarray,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    precision: str = "fp32",
) -> np.ndarray:
    """Logits of a trained classifier for uint8 NHWC images."""
    return _batched(model.eval(), images, device, batch_size, precision)


def embed_images(
    model: nn.Module, images: np.ndarray, device: torch.device | str = "cpu", batch_size: int = 1024
) -> np.ndarray:
    """Penultimate-layer features (float32) of uint8 NHWC images."""
    return _batched(model.eval().embed, images, device, batch_size)


def classification_metrics(logits: np.ndarray, labels: np.ndarray, n_classes: int) -> dict[str, float]:
    """Accuracy, macro one-vs-rest AUC and macro F1 (scikit-learn) from logits."""
    from scipy.special import softmax
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    probs = softmax(logits.astype(np.float64), axis=1)
    pred = probs.argmax(axis=1)
    if n_classes == 2:
        auc = roc_auc_score(labels, probs[:, 1])
    else:
        auc = roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=np.arange(n_classes))
    return {
        "acc": float(accuracy_score(labels, pred)),
        "auc": float(auc),
        "f1": float(f1_score(labels, pred, average="macro", labels=np.arange(n_classes), zero_division=0)),
    }
