"""Membership attack on the generator itself: does the denoiser fit its training images better than unseen ones?

Diffusion models memorise small training sets (Carlini et al. 2023, "Extracting training data from diffusion
models"; Somepalli et al. 2023), and tests on a model's outputs can pass where an attack on the model succeeds. The
attack here is the loss attack of Matsumoto et al. 2023 / SecMI (Duan et al. 2023) in its simplest calibrated form:
for each real image, the denoiser's own training loss (noise-prediction MSE, conditional on the true label) at a few
fixed timesteps with fixed noise; the score is minus the mean log-loss over timesteps, so a member (lower loss)
scores higher. Members = a random sample of the train split, non-members = the audit holdout (the test split),
balanced. AUC and TPR at 1 % FPR with stratified bootstrap CIs.

Positive control: the same architecture trained on a few dozen training images for many steps must be caught
(members = those images, non-members = the holdout); otherwise the attack has no power and its verdict on the real
denoiser reads "not assessed".
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from histodistill.base.images import to_model_space
from histodistill.generator.autoencoder import LatentCodec
from histodistill.generator.denoiser import denoise, make_train_scheduler

log = logging.getLogger(__name__)

ATTACK_TIMESTEPS = (0.02, 0.05, 0.1, 0.2, 0.3)  # fractions of the training schedule (SecMI: small t tells most)


def attack_timesteps(train_timesteps: int, fractions: tuple[float, ...] = ATTACK_TIMESTEPS) -> list[int]:
    """The timesteps the loss is measured at: fixed fractions of the schedule, distinct, within [1, T − 1]."""
    return sorted({min(train_timesteps - 1, max(1, int(round(f * train_timesteps)))) for f in fractions})


@torch.no_grad()
def denoising_losses(
    codec: LatentCodec,
    model: torch.nn.Module,
    meta: dict[str, Any],
    images: np.ndarray,
    labels: np.ndarray,
    timesteps: list[int],
    seed: int,
    batch: int = 256,
) -> np.ndarray:
    """(N, T) noise-prediction MSE of every image at every timestep, conditional on its label, from the posterior
    mean latent. The noise of row i at timestep t depends only on (seed, i, t): two sets of images (members,
    non-members) see the same noise row by row, and a rerun gives the same numbers."""
    from types import SimpleNamespace

    device = codec.device
    sched = make_train_scheduler(
        SimpleNamespace(train_timesteps=meta["train_timesteps"], beta_schedule=meta["beta_schedule"])
    )
    alphas = sched.alphas_cumprod.to(device)
    z0 = torch.cat(
        [codec.posterior(to_model_space(images[s : s + batch], device))[0] for s in range(0, len(images), batch)]
    )
    y_all = torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    out = np.empty((len(images), len(timesteps)))
    for j, t in enumerate(timesteps):
        g = torch.Generator(device="cpu").manual_seed(int(seed) * 100_003 + int(t))
        noise_all = torch.randn(z0.shape, generator=g).to(device)
        a = alphas[t]
        for s in range(0, len(images), batch):
            noise = noise_all[s : s + batch]
            zt = a.sqrt() * z0[s : s + batch] + (1 - a).sqrt() * noise
            pred = denoise(model, zt, torch.tensor(t, device=device), y_all[s : s + batch]).float()
            out[s : s + len(noise), j] = ((pred - noise) ** 2).flatten(1).mean(1).cpu().numpy()
    return out


def loss_scores(losses: np.ndarray) -> np.ndarray:
    """Membership score from (N, T) losses: minus the mean log-loss over timesteps (higher = more member-like)."""
    return -np.log(np.maximum(np.asarray(losses, float), 1e-12)).mean(1)


def generator_attack(
    member_losses: np.ndarray, nonmember_losses: np.ndarray, n_bootstrap: int = 200, seed: int = 0
) -> dict[str, Any]:
    """AUC and TPR at 1 % FPR of the loss attack, with bootstrap CIs (privacy.attack_metrics)."""
    from .attacks import attack_metrics

    return {
        "attack": "denoising loss (mean log-MSE over fixed timesteps and noise)",
        **attack_metrics(loss_scores(member_losses), loss_scores(nonmember_losses), n_bootstrap, seed),
    }


def attack_detects(report: dict[str, Any], min_tpr: float = 0.5) -> bool:
    """The positive control's criterion: TPR at 1 % FPR at least `min_tpr`."""
    return bool(report["tpr_at_1pct_fpr"] >= min_tpr)


def generator_verdict(attack: dict[str, Any], control: dict[str, Any] | None, max_auc: float) -> dict[str, str]:
    """'fail' when the attack's AUC CI lies above `max_auc`; 'pass' only when the overtrained control was caught
    (the attack had power); otherwise 'not assessed'."""
    ci = attack.get("auc_ci95")
    if ci is not None and ci[0] > max_auc:
        return {"verdict": "fail", "why": f"AUC {attack['auc']:.3f} (CI low {ci[0]:.3f} > {max_auc})"}
    if control is None or not control.get("detected", False):
        return {"verdict": "not assessed", "why": "the overtrained control was not caught: the attack lacks power"}
    signal = (
        "a weak membership signal (the CI excludes 0.5)" if ci is not None and ci[0] > 0.5 else "no membership signal"
    )
    return {
        "verdict": "pass",
        "why": f"AUC {attack['auc']:.3f} [{ci[0]:.3f}, {ci[1]:.3f}] ≤ {max_auc}: {signal}; the overtrained control "
        "was caught",
    }
