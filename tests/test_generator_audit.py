"""The membership attack on the generator: a denoiser that remembers its members' latents must be caught, one that
cannot tell members apart must not, and the verdict reads 'pass' only where the overtrained control was caught."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histodistill.generator import AutoencoderConfig, LatentCodec, build_autoencoder
from histodistill.privacy import attack_detects, attack_timesteps, denoising_losses, generator_attack, generator_verdict

META = {"train_timesteps": 1000, "beta_schedule": "squaredcos_cap_v2"}


class _Out:
    def __init__(self, sample):
        self.sample = sample


class Remembering(torch.nn.Module):
    """A stub denoiser that knows its members' clean latents: for a noised latent near one of them it returns the
    exact noise (loss 0); otherwise it predicts zero noise (loss ≈ 1). It also records the labels it is given."""

    def __init__(self, member_latents: torch.Tensor, alphas: torch.Tensor):
        super().__init__()
        self.z, self.alphas, self.labels = member_latents, alphas, []

    def forward(self, zt, t, class_labels=None):
        self.labels.append(class_labels.clone())
        a = self.alphas[t[0]]
        out = torch.zeros_like(zt)
        for i in range(len(zt)):
            eps = (zt[i] - a.sqrt() * self.z) / (1 - a).sqrt()  # the noise if zt[i] came from member j
            j = int((eps.flatten(1) ** 2).mean(1).argmin())
            if float((eps[j] ** 2).mean()) < 5.0:  # a member explains zt with noise of about unit variance
                out[i] = eps[j]
        return _Out(out)


@pytest.fixture(scope="module")
def codec():
    torch.manual_seed(0)
    vae = build_autoencoder(AutoencoderConfig(block_out_channels=(8, 16), norm_num_groups=4), 1, 8)
    return LatentCodec(vae, 0.0, 30.0, 1)  # latents far apart relative to unit noise: the stub tells them apart


def _alphas():
    from diffusers import DDPMScheduler

    return DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2").alphas_cumprod


def test_a_denoiser_that_remembers_its_members_is_caught_and_the_score_sign_is_right(codec):
    rng = np.random.default_rng(0)
    members = rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    others = rng.integers(0, 256, (120, 8, 8, 1), dtype=np.uint8)
    labels_m, labels_o = np.arange(40) % 3, np.arange(120) % 3
    with torch.no_grad():
        from histodistill.base import to_model_space

        z = codec.posterior(to_model_space(members))[0]
    model = Remembering(z, _alphas())
    ts = attack_timesteps(1000)
    lm = denoising_losses(codec, model, META, members, labels_m, ts, seed=3, batch=16)
    ln = denoising_losses(codec, model, META, others, labels_o, ts, seed=3, batch=16)
    assert lm.shape == (40, len(ts)) and lm.max() < 1e-6 < 1e-2 < ln.min()
    report = generator_attack(lm, ln, n_bootstrap=50, seed=0)
    assert report["auc"] == 1.0 and report["tpr_at_1pct_fpr"] == 1.0 and attack_detects(report)
    # the labels reach the denoiser with their images (conditional loss), batch by batch
    seen = torch.cat(model.labels[-len(ts) * 8 :]).numpy()  # the last call covered the non-members
    assert set(np.unique(seen)) == {0, 1, 2}


def test_a_denoiser_blind_to_membership_gives_auc_one_half(codec):
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8), rng.integers(0, 256, (50, 8, 8, 1), dtype=np.uint8)

    class Zero(torch.nn.Module):
        def forward(self, zt, t, class_labels=None):
            return _Out(torch.zeros_like(zt))

    ts = attack_timesteps(1000)
    la = denoising_losses(codec, Zero(), META, a, np.zeros(50, np.int64), ts, seed=3)
    lb = denoising_losses(codec, Zero(), META, b, np.zeros(50, np.int64), ts, seed=3)
    np.testing.assert_array_equal(la, lb)  # loss = the noise alone, row by row the same noise for both sets
    report = generator_attack(la, lb, n_bootstrap=50)
    assert report["auc"] == 0.5 and not attack_detects(report)


def test_attack_timesteps_and_the_verdict_needs_a_caught_control():
    assert attack_timesteps(1000) == [20, 50, 100, 200, 300]
    assert attack_timesteps(10) == [1, 2, 3]
    weak = {"auc": 0.55, "auc_ci95": [0.51, 0.58]}
    assert generator_verdict(weak, {"detected": True}, 0.6)["verdict"] == "pass"
    assert generator_verdict(weak, {"detected": False}, 0.6)["verdict"] == "not assessed"
    assert generator_verdict(weak, None, 0.6)["verdict"] == "not assessed"
    assert generator_verdict({"auc": 0.8, "auc_ci95": [0.7, 0.9]}, {"detected": False}, 0.6)["verdict"] == "fail"


# ----------------------------------------------------------------------------------------- the training step


class _Codec:
    """Latents that carry their class: every image of class c encodes to 1000 · (c + 1) everywhere (std 0)."""

    device = torch.device("cpu")

    def posterior(self, x):
        c = torch.round((x[:, :1, :1, :1] + 1) * 127.5 / 10).clamp(min=0)  # the tests' pixel value 10 · c
        mean = (1000.0 * (c + 1)).expand(len(x), 2, 2, 2).clone()
        return mean, torch.zeros_like(mean)


class _Recorder(torch.nn.Module):
    """Records, per training step, the class each noised latent came from (read back from its magnitude at the
    step's timestep) and the label the step gave the denoiser."""

    def __init__(self, alphas):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))
        self.alphas, self.pairs = alphas, []
        self.config = {}

    def forward(self, zt, t, class_labels=None):
        a = self.alphas[t].view(-1, 1, 1, 1)
        came_from = torch.round((zt / a.sqrt()).mean((1, 2, 3)) / 1000.0 - 1).long()
        readable = (a.flatten() > 0.01).long()  # at the last timesteps the noise drowns the latent
        self.pairs.append(torch.stack([came_from, class_labels, readable]).T.detach().clone())
        return _Out(zt * 0 + self.w)


def test_the_training_step_pairs_each_latent_with_its_own_label_and_drops_about_the_configured_share(monkeypatch):
    import histodistill.generator.denoiser as gen

    labels = np.arange(60) % 3
    images = (10 * labels).astype(np.uint8)[:, None, None, None] * np.ones((1, 4, 4, 1), np.uint8)
    recorder = _Recorder(_alphas())
    monkeypatch.setattr(gen, "build_denoiser", lambda *a, **k: recorder)
    monkeypatch.setattr(gen, "_sampling_checkpoint", lambda *a, **k: {})
    cfg = gen.DenoiserConfig(steps=40, batch_size=32, label_dropout=0.25, warmup_steps=1, checkpoint_every=0)
    gen.train_denoiser(_Codec(), images, labels, 3, cfg, seed=0, checkpoint_path="/nonexistent/x.pt", progress=False)
    pairs = torch.cat(recorder.pairs).numpy()
    came_from, given, readable = pairs[:, 0], pairs[:, 1], pairs[:, 2].astype(bool)
    dropped = given == 3  # the null class (classifier-free guidance's unconditional label)
    kept = ~dropped & readable
    assert kept.sum() > 500 and np.array_equal(came_from[kept], given[kept])  # each label is its own latent's class
    # 1,280 draws at p = 0.25: the share lies within 0.25 ± 0.05 (over 4 binomial standard errors)
    assert abs(dropped.mean() - 0.25) < 0.05
