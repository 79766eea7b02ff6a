"""Sampler numerics with an exact denoiser: a class-conditional Gaussian mixture whose noise prediction is known in
closed form, so every error in the samples comes from the sampler (schedule, spacing, guidance), not from a network.

Data: class c is N(mu_c, s^2 I); the null label is the equal-weight mixture of all classes. For x_t = sqrt(a) x_0 +
sqrt(1 - a) eps, the class-c marginal is N(sqrt(a) mu_c, (a s^2 + 1 - a) I), and the exact noise prediction is
eps(x_t) = -sqrt(1 - a) * grad log p(x_t).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from histodistill.generator import SCHEDULERS, guided_latents, make_sampler

N_CLASSES, SHAPE, SIGMA = 3, (2, 4, 4), 0.05
MODES = torch.stack([torch.full(SHAPE, v) for v in (-1.0, 0.0, 1.0)]).double()


class ExactMixtureDenoiser(torch.nn.Module):
    """Noise prediction of the Gaussian mixture at timestep t of the training schedule `alphas_cumprod`, optionally
    perturbed by a relative error (as bf16 rounding would perturb a real network's output)."""

    def __init__(self, alphas_cumprod: torch.Tensor, rel_error: float = 0.0, seed: int = 0):
        super().__init__()
        self.alphas = alphas_cumprod.double()
        self.rel_error = rel_error
        self.g = torch.Generator().manual_seed(seed)

    def forward(self, z: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor) -> SimpleNamespace:
        a = self.alphas[t.long().cpu()].view(-1, 1, 1, 1).to(torch.float64)
        x = z.double()
        var = a * SIGMA**2 + (1 - a)
        means = a.sqrt().unsqueeze(1) * MODES.unsqueeze(0)  # n x K x C x H x W
        sq = ((x.unsqueeze(1) - means) ** 2).flatten(2).sum(-1)  # n x K
        logw = -sq / (2 * var.view(-1, 1))
        conditional = torch.nn.functional.one_hot(class_labels.clamp(max=N_CLASSES - 1), N_CLASSES).bool()
        null = (class_labels == N_CLASSES).view(-1, 1)
        logw = torch.where(null | conditional, logw, torch.full_like(logw, -torch.inf))
        w = logw.softmax(dim=1).view(*logw.shape, 1, 1, 1)
        score = -((x.unsqueeze(1) - means) * w).sum(1) / var
        eps = -(1 - a).sqrt() * score
        if self.rel_error:
            eps = eps * (1 + self.rel_error * torch.randn(eps.shape, generator=self.g, dtype=eps.dtype))
        return SimpleNamespace(sample=eps.to(z.dtype))


def _alphas(beta_schedule: str) -> torch.Tensor:
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule=beta_schedule).alphas_cumprod


def _sample(
    scheduler: str, beta_schedule: str, labels: torch.Tensor, guidance: float, rel_error: float = 0.0, steps: int = 25
) -> torch.Tensor:
    sampler = make_sampler(scheduler, 1000, beta_schedule)
    sampler.set_timesteps(steps)
    z = torch.randn((len(labels), *SHAPE), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = ExactMixtureDenoiser(_alphas(beta_schedule), rel_error)
    return guided_latents(model, labels, N_CLASSES, z, sampler, guidance)


LABELS = torch.arange(N_CLASSES).repeat_interleave(40)


@pytest.mark.parametrize("beta_schedule", ["squaredcos_cap_v2", "linear", "scaled_linear"])
@pytest.mark.parametrize("scheduler", SCHEDULERS)
@pytest.mark.parametrize("rel_error", [0.0, 0.005])
def test_samples_of_class_c_land_on_mode_c(scheduler, beta_schedule, rel_error):
    """Exact samples of N(mu_c, s^2 I) lie at distance ~ s * sqrt(d) from mu_c; allow 2x that (guidance 1 = the
    conditional model). A first step at alpha_bar ~ 1e-9 amplifies a 0.5 % error in the noise prediction many times."""
    x = _sample(scheduler, beta_schedule, LABELS, guidance=1.0, rel_error=rel_error)
    dist = ((x.unsqueeze(1) - MODES.unsqueeze(0)) ** 2).flatten(2).sum(-1).sqrt()  # n x K
    expected = SIGMA * np.sqrt(np.prod(SHAPE))
    assert (dist.argmin(1) == LABELS).all()
    own = dist[torch.arange(len(LABELS)), LABELS]
    assert float(own.mean()) < 2 * expected, (float(own.mean()), expected)
    assert float(own.max()) < 4 * expected


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_guidance_one_is_conditional_sampling_and_zero_is_the_null_label(scheduler):
    """eps_u + g (eps_c - eps_u): g = 1 gives the conditional prediction, g = 0 the unconditional (null label); equal
    up to the float32 rounding of the prediction in guided_latents."""
    beta = "squaredcos_cap_v2"
    with_guidance_1 = _sample(scheduler, beta, LABELS, guidance=1.0)
    with_guidance_0 = _sample(scheduler, beta, LABELS, guidance=0.0)

    def plain(labels: torch.Tensor) -> torch.Tensor:
        sampler = make_sampler(scheduler, 1000, beta)
        sampler.set_timesteps(25)
        model = ExactMixtureDenoiser(_alphas(beta))
        z = torch.randn((len(labels), *SHAPE), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        z = z * sampler.init_noise_sigma
        for t in sampler.timesteps:
            eps = model(sampler.scale_model_input(z, t), t.expand(len(z)), labels).sample
            z = sampler.step(eps, t, z).prev_sample
        return z

    torch.testing.assert_close(with_guidance_1, plain(LABELS), rtol=1e-5, atol=1e-6)
    null_only = plain(torch.full_like(LABELS, N_CLASSES))
    torch.testing.assert_close(with_guidance_0, null_only, rtol=1e-5, atol=1e-6)
    # the null label samples the mixture: every mode is reached, not only the requested class
    reached = ((null_only.unsqueeze(1) - MODES.unsqueeze(0)) ** 2).flatten(2).sum(-1).argmin(1)
    assert set(reached.tolist()) == set(range(N_CLASSES))
