"""Differential privacy for the denoiser: DP-SGD through Opacus, and the checks that keep a DP run private.

* Sampling: every training image enters a step's batch independently with probability q = batch_size / N (Poisson
  sampling, the assumption of the accountants' subsampling analysis), drawn from the run's seeded generator.
* Per-example gradients: Opacus' `GradSampleModule` (per-layer hooks). With noise multiplicity K (Dockhorn et al.
  2022, DPDM) each example enters the step K times with its own timestep, noise and label drop; its K per-row
  gradients are averaged *before* clipping, so the sensitivity stays one clipped gradient per example.
* Clipping and noise: Opacus' `DPOptimizer` clips each example's gradient to `max_grad_norm` (C), sums, adds
  Gaussian noise of std σ·C and divides by the expected batch size.
* Accounting: Opacus' PRV accountant (Gopi et al. 2021; numerically tight) or RDP accountant (Mironov 2017; an upper
  bound), `privacy.dp.accountant`. σ is calibrated so that the configured steps at rate q spend exactly the target ε
  at δ; the accountant's history travels in every resume checkpoint, and the ε actually spent is recomputed from it.
* Noise comes from a seeded torch generator (reproducible runs). That is not a cryptographically secure generator:
  the datasheet says so (Opacus' `secure_mode` needs torchcsprng, which is not on PyPI for current torch).
"""

from __future__ import annotations

import logging
import math
import os
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from histodistill.base.config import dataset_id
from histodistill.base.errors import HistodistillError

if TYPE_CHECKING:  # the Snakefile imports the config checks below: no torch at import time
    import torch
    from torch import nn

log = logging.getLogger(__name__)

ACCOUNTANTS = ("prv", "rdp")
PRV_EPS_ERROR = 0.001  # the reported ε (PRV's default 0.01 is what σ is calibrated with: ε may only come out lower)
# Methods whose released images are computed from the private train split (real images or their gradients).
DISTILLERS_READING_REAL = ("dm", "dc", "dsa", "mtt", "dm_refine")
# Rows computed from the private train split that a DP run may evaluate as references but never releases.
REAL_REFERENCES = ("random_real", "full_real")


@dataclass(frozen=True)
class DPConfig:
    epsilon: float
    delta: float
    max_grad_norm: float = 1.0
    accountant: str = "prv"
    noise_multiplicity: int = 1
    trainable: str = "all"
    max_physical_batch: int = 0  # rows per forward/backward pass; 0 = the whole Poisson batch at once
    vote_share: float = 0.0  # share of ε spent by the private nearest-neighbour vote on the pool (dp_vote); 0 = none


# DP-LDM (Lyu et al. 2023) fine-tunes only the conditioning parts of a pre-trained denoiser: fewer noised coordinates.
TRAINABLE = {
    "all": None,
    "conditioning": ("class_embedding", "time_embedding", "time_emb_proj", "norm", "conv_in", "conv_out"),
    "norms": ("class_embedding", "norm", "conv_in", "conv_out"),
}


def select_trainable(model: "nn.Module", which: str) -> int:
    """Freeze every parameter outside `which` (TRAINABLE); returns the number of trainable parameters."""
    if which not in TRAINABLE:
        raise HistodistillError(f"privacy.dp.trainable: unknown {which!r}; use one of {sorted(TRAINABLE)}")
    keys = TRAINABLE[which]
    for name, p in model.named_parameters():
        p.requires_grad_(keys is None or any(k in name for k in keys))
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def dp_config_from(block: dict[str, Any]) -> DPConfig | None:
    """The `privacy.dp` block as a DPConfig, or None where DP is off."""
    if not block.get("enabled", False):
        return None
    return DPConfig(
        epsilon=float(block["epsilon"]),
        delta=float(block["delta"]),
        max_grad_norm=float(block["max_grad_norm"]),
        accountant=str(block["accountant"]),
        noise_multiplicity=int(block["noise_multiplicity"]),
        trainable=str(block.get("trainable", "all")),
        max_physical_batch=int(block.get("max_physical_batch", 0)),
        vote_share=float(block.get("vote_share", 0.0)),
    )


def make_accountant(name: str):
    from opacus.accountants import PRVAccountant, RDPAccountant

    if name not in ACCOUNTANTS:
        raise HistodistillError(f"privacy.dp.accountant: unknown {name!r}; use one of {ACCOUNTANTS}")
    return PRVAccountant() if name == "prv" else RDPAccountant()


def _opacus_noise_multiplier(epsilon: float, delta: float, sample_rate: float, steps: int, accountant: str) -> float:
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # PRV's "optimal order" chatter
        return float(
            get_noise_multiplier(
                target_epsilon=epsilon,
                target_delta=delta,
                sample_rate=sample_rate,
                steps=steps,
                accountant=accountant,
                epsilon_tolerance=0.005,
            )
        )


def vote_noise_multiplier(cfg: DPConfig) -> float | None:
    """σ of the pool vote's Gaussian mechanism (one release of a histogram of L2 sensitivity 1): the σ that alone
    spends vote_share · ε at δ. None without a vote; 0 at ε = ∞."""
    if cfg.vote_share <= 0:
        return None
    if math.isinf(cfg.epsilon):
        return 0.0
    return _opacus_noise_multiplier(cfg.vote_share * cfg.epsilon, cfg.delta, 1.0, 1, cfg.accountant)


def composed_epsilon(history: list[tuple[float, float, int]], delta: float, accountant: str) -> float:
    """ε at δ of a sequence of (σ, q, steps) runs of the (Poisson-subsampled) Gaussian mechanism, by the accountant."""
    acc = make_accountant(accountant)
    acc.history = [(float(s), float(q), int(n)) for s, q, n in history]
    return epsilon_spent(acc, delta)


def noise_multiplier_for(cfg: DPConfig, sample_rate: float, steps: int) -> float:
    """σ such that `steps` Poisson-subsampled Gaussian steps at rate q spend cfg.epsilon at cfg.delta, composed with
    the pool vote where there is one (its σ fixed by `vote_noise_multiplier`; the DP-SGD σ is then found by bisection
    so that both together spend ε); ε = ∞ gives σ = 0 (clipping without noise: the curve's non-private end)."""
    if math.isinf(cfg.epsilon):
        return 0.0
    vote = vote_noise_multiplier(cfg)
    if vote is None:
        return _opacus_noise_multiplier(cfg.epsilon, cfg.delta, sample_rate, steps, cfg.accountant)

    def within(sigma: float) -> bool:  # DP-SGD at σ and the vote together spend at most ε
        return composed_epsilon([(sigma, sample_rate, steps), (vote, 1.0, 1)], cfg.delta, cfg.accountant) <= cfg.epsilon

    lo, hi = _opacus_noise_multiplier(cfg.epsilon, cfg.delta, sample_rate, steps, cfg.accountant), None
    step = lo
    while hi is None:  # the composition needs more noise than DP-SGD alone: find an upper bracket
        step *= 2
        if within(lo + step):
            hi = lo + step
        elif step > 1e4:
            raise HistodistillError(
                f"privacy.dp.vote_share: {cfg.vote_share:g} of ε = {cfg.epsilon:g} leaves DP-SGD no budget; lower it"
            )
    for _ in range(40):
        mid = (lo + hi) / 2
        if within(mid):
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-3 * hi:
            break
    return hi


def epsilon_spent(accountant: Any, delta: float) -> float:
    """The ε the accountant's history has spent at δ (0 before the first step)."""
    if not accountant.history:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in accountant.history):
        return math.inf
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if accountant.mechanism() == "prv":
            return float(accountant.get_epsilon(delta=delta, eps_error=PRV_EPS_ERROR))
        return float(accountant.get_epsilon(delta=delta))


def check_delta(cfg: DPConfig, n_private: int) -> None:
    """δ must be well below 1/N: at δ ≥ 1/N, 'release one random record in the clear' satisfies (ε, δ)-DP."""
    if cfg.delta >= 1.0 / n_private:
        raise HistodistillError(
            f"privacy.dp.delta: {cfg.delta:g} is not below 1/N = {1.0 / n_private:.2e} for the {n_private} private "
            "training images; such a δ allows one image to be published verbatim. Lower privacy.dp.delta."
        )


def poisson_batch(n: int, sample_rate: float, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Indices of a Poisson-sampled batch: each of n examples independently with probability sample_rate."""
    import torch

    return torch.nonzero(torch.rand(n, generator=generator, device=device) < sample_rate).flatten()


class PrivateTraining:
    """DP-SGD around a model and its optimiser: `module` is what the training step calls (per-example gradients),
    `optimizer` what it steps (clip, noise, average), `accountant` what was spent."""

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        cfg: DPConfig,
        n_private: int,
        batch_size: int,
        steps: int,
        seed: int,
        device: torch.device,
    ):
        import torch
        from opacus import GradSampleModule
        from opacus.optimizers import DPOptimizer

        check_delta(cfg, n_private)
        self.cfg, self.n = cfg, n_private
        self.trainable = select_trainable(model, cfg.trainable)
        self.sample_rate = min(1.0, batch_size / n_private)
        self.steps = steps
        self.noise_multiplier = noise_multiplier_for(cfg, self.sample_rate, steps)
        self.vote_noise_multiplier = vote_noise_multiplier(cfg)  # the pool vote's σ, recorded for rule dp_vote
        self.noise_generator = torch.Generator(device=device).manual_seed(seed + 7919)
        # Opacus' hooks fire on module outputs; torch warns because the latents themselves need no gradient.
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.module = GradSampleModule(model, batch_first=True, loss_reduction="mean")
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = DPOptimizer(
            optimizer,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=cfg.max_grad_norm,
            expected_batch_size=max(1, round(self.sample_rate * n_private)),
            loss_reduction="mean",
            generator=self.noise_generator,
        )
        self.accountant = make_accountant(cfg.accountant)
        log.info(
            "DP-SGD: target (ε=%g, δ=%g), %s accountant, q=%.4f (batch %d of %d), %d steps -> σ=%.4f, C=%g, "
            "noise multiplicity %d, %d trainable parameters (%s)",
            cfg.epsilon,
            cfg.delta,
            cfg.accountant,
            self.sample_rate,
            batch_size,
            n_private,
            steps,
            self.noise_multiplier,
            cfg.max_grad_norm,
            cfg.noise_multiplicity,
            self.trainable,
            cfg.trainable,
        )

    def batch(self, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        """This step's examples, each repeated noise_multiplicity times (rows of one example are adjacent)."""
        idx = poisson_batch(self.n, self.sample_rate, generator, device)
        return idx.repeat_interleave(self.cfg.noise_multiplicity)

    def chunks(self, rows: int) -> list[slice]:
        """Row ranges of at most max_physical_batch rows (whole examples: multiples of noise_multiplicity)."""
        k, limit = self.cfg.noise_multiplicity, self.cfg.max_physical_batch
        if rows == 0:  # an empty Poisson batch: no forward pass
            return []
        size = rows if limit <= 0 else max(k, limit - limit % k)
        return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]

    def step(self, rows: int) -> None:
        """After loss.backward() on `rows` rows: average each example's K rows, clip, noise, step, account."""
        import torch

        k = self.cfg.noise_multiplicity
        for p in self.params:
            if rows == 0:  # an empty Poisson batch: the step still adds noise and still counts
                p.grad_sample = torch.zeros((0, *p.shape), device=p.device, dtype=p.dtype)
            elif k > 1:
                gs = torch.cat(p.grad_sample) if isinstance(p.grad_sample, list) else p.grad_sample
                p.grad_sample = gs.reshape(rows // k, k, *gs.shape[1:]).mean(dim=1)
        self.optimizer.step()
        self.accountant.step(noise_multiplier=self.noise_multiplier, sample_rate=self.sample_rate)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict[str, Any]:
        return {"accountant": self.accountant.state_dict(), "noise_generator": self.noise_generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.accountant.load_state_dict(state["accountant"])
        self.noise_generator.set_state(state["noise_generator"])

    def record(self) -> dict[str, Any]:
        """What the datasheet, the summary and the report state about the guarantee."""
        return {
            "enabled": True,
            **asdict(self.cfg),
            "epsilon_target": self.cfg.epsilon,
            "epsilon": epsilon_spent(self.accountant, self.cfg.delta),
            "noise_multiplier": self.noise_multiplier,
            "sample_rate": self.sample_rate,
            "steps": len_history(self.accountant),
            "n_private": self.n,
            "trainable_parameters": self.trainable,
            "sampling": "Poisson",
            "noise_rng": "seeded torch generator (not cryptographically secure)",
            "vote_noise_multiplier": self.vote_noise_multiplier,
        }


def len_history(accountant: Any) -> int:
    """Steps recorded by an Opacus accountant (its history holds (σ, q, steps) runs)."""
    return int(sum(entry[2] for entry in accountant.history))


def dp_refusals(config: dict[str, Any]) -> list[str]:
    """In DP mode, every setting that would let the private train split reach the released images, one line each
    naming the key; empty where DP is off or nothing is wrong."""
    dp = config.get("privacy", {}).get("dp", {})
    if not dp.get("enabled", False):
        return []
    problems = []
    if config["select"].get("privacy_filter", {}).get("enabled", True):
        problems.append(
            "select.privacy_filter.enabled: the privacy filter removes pool images by their distance to the private "
            "train split, so it is not covered by ε; set it to false in DP mode (privacy.dp.enabled)"
        )
    for method in config["select"]["methods"]:
        if method in DISTILLERS_READING_REAL:
            problems.append(
                f"select.methods: {method} computes its images from the private train split (real matching targets "
                "or a real start), which ε does not cover; remove it in DP mode (privacy.dp.enabled)"
            )
    if config.get("privacy", {}).get("share_real_init", False):
        problems.append("privacy.share_real_init: must be false in DP mode (privacy.dp.enabled)")
    name = config["dataset"]["name"]
    public = dp.get("public_dataset", "auto")
    pretrained = config["generator"]["autoencoder"].get("pretrained")
    if public == "auto" and name not in ("digits", "mnist5k") and not pretrained:
        problems.append(
            "privacy.dp.public_dataset: 'auto' pairs the embedded datasets (digits <-> mnist5k); for "
            f"{name!r} give generator.autoencoder.pretrained (a diffusers AutoencoderKL trained on public data)"
        )
    elif public not in (None, "auto") and public == name:
        problems.append(f"privacy.dp.public_dataset: {public!r} is the private dataset itself")
    elif public is None and not pretrained:
        problems.append(
            "privacy.dp.public_dataset: null needs generator.autoencoder.pretrained (an autoencoder trained on "
            "public data); an autoencoder trained on the private split without DP is not covered by ε"
        )
    if config["generator"]["denoiser"]["arch"] != "unet":
        problems.append("generator.denoiser.arch: DP-SGD is implemented and tested for the unet denoiser only")
    return problems


def public_dataset_of(config: dict[str, Any]) -> str | None:
    """The public dataset the autoencoder (and optionally the denoiser) are pre-trained on in DP mode, or None
    (a pretrained autoencoder from generator.autoencoder.pretrained)."""
    dp = config.get("privacy", {}).get("dp", {})
    if not dp.get("enabled", False):
        return None
    public = dp.get("public_dataset", "auto")
    if public == "auto":
        if config["generator"]["autoencoder"].get("pretrained"):
            return None
        return {"digits": "mnist5k", "mnist5k": "digits"}[config["dataset"]["name"]]
    return public


def dp_curve_of(config: dict[str, Any], basedir: str | os.PathLike) -> list[str]:
    """The utility-privacy curve drawn in a DP run's report figure (`figures.dp_curve`): `auto` = the workflow's
    `docs/dp_curve_{dataset}_{size}.csv` (measured by benchmarks/dp_curve.py) where one exists, else none; a path;
    or null. A list (empty or one path) so that it can serve as a rule's input."""
    curve = config["figures"].get("dp_curve", "auto")
    if curve is None:
        return []
    if curve == "auto":

        path = Path(basedir) / "docs" / f"dp_curve_{dataset_id({**config, 'privacy': {}})}.csv"
        return [str(path)] if path.exists() else []
    if not Path(curve).exists():
        raise HistodistillError(
            f"figures.dp_curve: {curve} does not exist; give a CSV of benchmarks/dp_curve.py, " "auto or null"
        )
    return [str(curve)]


def dp_denoiser_settings(denoiser: dict[str, Any], dp: dict[str, Any]) -> dict[str, Any]:
    """generator.denoiser with the DP-SGD run's own length, batch, learning rate and warm-up (privacy.dp)."""
    return {**denoiser, **{k: dp[k] for k in ("steps", "batch_size", "lr", "warmup_steps")}}

