"""Differential privacy (histodistill.generator.dp): the accountant against an independent one (Google's dp-accounting), the
clipping against a per-example loop, the noise's scale, resume, and the DP-mode refusals."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from histodistill.base import HistodistillError
from histodistill.generator import (
    DPConfig,
    PrivateTraining,
    dp_refusals,
    epsilon_spent,
    len_history,
    make_accountant,
    noise_multiplier_for,
    poisson_batch,
)

dp_accounting = pytest.importorskip("dp_accounting")


def pld_epsilon(sigma: float, q: float, steps: int, delta: float) -> float:
    """ε of `steps` Poisson-subsampled Gaussian steps by dp-accounting's privacy-loss-distribution accountant."""
    from dp_accounting import pld

    event = dp_accounting.SelfComposedDpEvent(
        dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
    )
    acc = pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(event)
    return float(acc.get_epsilon(delta))


def pld_composed(history: list[tuple[float, float, int]], delta: float) -> float:
    """ε of runs of (σ, q, steps) Poisson-subsampled Gaussian steps composed, by dp-accounting's PLD accountant."""
    from dp_accounting import pld

    events = [
        dp_accounting.SelfComposedDpEvent(
            (
                dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma))
                if q < 1
                else dp_accounting.GaussianDpEvent(sigma)
            ),
            steps,
        )
        for sigma, q, steps in history
    ]
    acc = pld.PLDAccountant(value_discretization_interval=1e-4)
    acc.compose(dp_accounting.ComposedDpEvent(events))
    return float(acc.get_epsilon(delta))


CASES = [(1.06, 0.0648, 600, 1e-5), (6.0, 0.0648, 600, 1e-5), (2.0, 0.26, 300, 1e-4), (0.8, 0.01, 1000, 1e-5)]


@pytest.mark.parametrize("sigma, q, steps, delta", CASES)
def test_prv_epsilon_equals_dp_accountings_pld_to_two_decimals(sigma, q, steps, delta):
    acc = make_accountant("prv")
    for _ in range(steps):
        acc.step(noise_multiplier=sigma, sample_rate=q)
    assert epsilon_spent(acc, delta) == pytest.approx(pld_epsilon(sigma, q, steps, delta), abs=0.01)


@pytest.mark.parametrize("sigma, q, steps, delta", CASES)
def test_rdp_curve_equals_dp_accountings_and_its_epsilon_bounds_the_tight_one(sigma, q, steps, delta):
    from dp_accounting import rdp
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    orders = RDPAccountant.DEFAULT_ALPHAS
    ours = np.asarray(compute_rdp(q=q, noise_multiplier=sigma, steps=steps, orders=orders))
    theirs = rdp.RdpAccountant(orders=orders)
    theirs.compose(
        dp_accounting.SelfComposedDpEvent(
            dp_accounting.PoissonSampledDpEvent(q, dp_accounting.GaussianDpEvent(sigma)), steps
        )
    )
    # integer orders: both evaluate the exact binomial expansion (Mironov et al. 2019, Sec. 3.3); at fractional orders
    # the two libraries use different bounds and differ by up to 30 % below order 2
    integer = np.array([float(a).is_integer() and a >= 2 for a in orders])
    np.testing.assert_allclose(ours[integer], np.asarray(theirs._rdp)[integer], rtol=1e-6)
    acc = make_accountant("rdp")
    acc.step(noise_multiplier=sigma, sample_rate=q)
    acc.history = [(sigma, q, steps)]
    assert epsilon_spent(acc, delta) >= pld_epsilon(sigma, q, steps, delta) - 0.01  # RDP is an upper bound


@pytest.mark.parametrize("epsilon", [1.0, 10.0])
def test_calibrated_noise_spends_the_target_epsilon_by_the_independent_accountant(epsilon):
    cfg, q, steps = DPConfig(epsilon=epsilon, delta=1e-5), 0.1, 200
    sigma = noise_multiplier_for(cfg, q, steps)
    spent = pld_epsilon(sigma, q, steps, cfg.delta)
    assert epsilon - 0.1 <= spent <= epsilon + 0.01


@pytest.mark.parametrize("epsilon, q", [(1.0, 1.0), (10.0, 1.0), (10.0, 0.36)])
def test_the_vote_and_dp_sgd_together_spend_the_target_by_the_independent_accountant(epsilon, q):
    from histodistill.generator import composed_epsilon, vote_noise_multiplier

    cfg, steps = DPConfig(epsilon=epsilon, delta=1e-5, vote_share=0.5), 30
    vote, sgd = vote_noise_multiplier(cfg), noise_multiplier_for(cfg, q, steps)
    # the vote alone spends its share; both together the target (dp-accounting's PLD, not Opacus)
    assert pld_composed([(vote, 1.0, 1)], cfg.delta) == pytest.approx(0.5 * epsilon, abs=0.02 * epsilon)
    together = pld_composed([(sgd, q, steps), (vote, 1.0, 1)], cfg.delta)
    assert epsilon - 0.05 * epsilon <= together <= epsilon + 0.01
    assert composed_epsilon([(sgd, q, steps), (vote, 1.0, 1)], cfg.delta, "prv") == pytest.approx(together, abs=0.02)
    assert sgd > noise_multiplier_for(DPConfig(epsilon=epsilon, delta=1e-5), q, steps)  # DP-SGD gets less of ε


def test_each_private_image_votes_once_for_its_nearest_pool_image_of_its_own_class():
    from histodistill.privacy import nearest_pool_votes

    pool = np.array([[0.0], [10.0], [20.0], [0.5], [30.0]])
    pool_labels = np.array([0, 0, 0, 1, 1])
    private = np.array([[1.0], [2.0], [11.0], [19.0], [29.0], [1.0]])
    private_labels = np.array([0, 0, 0, 0, 1, 1])
    # class 0: 1 and 2 -> 0; 11 -> 10; 19 -> 20. class 1: 29 -> 30; 1 -> 0.5 (pool row 0 is nearer but of class 0)
    np.testing.assert_array_equal(nearest_pool_votes(private, private_labels, pool, pool_labels), [2, 1, 1, 1, 1])


def test_one_private_image_more_or_less_moves_one_count_by_one():
    from histodistill.privacy import nearest_pool_votes

    rng = np.random.default_rng(0)
    pool, pool_labels = rng.normal(size=(60, 5)), np.repeat(np.arange(3), 20)
    private, private_labels = rng.normal(size=(40, 5)), rng.integers(0, 3, 40)
    full = nearest_pool_votes(private, private_labels, pool, pool_labels)
    assert full.sum() == 40
    for i in range(40):
        without = nearest_pool_votes(np.delete(private, i, 0), np.delete(private_labels, i), pool, pool_labels)
        diff = full - without
        assert np.abs(diff).sum() == 1 and diff.max() == 1  # L2 sensitivity 1: the Gaussian mechanism's premise


def test_the_vote_keeps_each_classs_most_voted_share_with_ties_to_the_lower_index_and_the_ipc_floor():
    from histodistill.privacy import keep_most_voted, noisy_votes

    noisy = np.array([5.0, 1.0, 3.0, 3.0, 0.0, 2.0])
    labels = np.array([0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(keep_most_voted(noisy, labels, 0.5, 1), [1, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(keep_most_voted(noisy, labels, 0.5, 3), [1, 0, 1, 1, 1, 1])
    with pytest.raises(HistodistillError, match="privacy.dp.vote_keep"):
        keep_most_voted(noisy, labels, 0.0, 1)
    counts = np.arange(20000) % 4
    np.testing.assert_array_equal(noisy_votes(counts, 0.0, 1), counts)
    assert np.std(noisy_votes(counts, 2.5, 1) - counts) == pytest.approx(2.5, rel=0.03)


class _Tiny(nn.Module):
    """Conv, GroupNorm, Embedding and Linear: the layer kinds of the UNet denoiser."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, padding=1)
        self.norm = nn.GroupNorm(2, 4)
        self.emb = nn.Embedding(3, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x, y):
        h = torch.relu(self.norm(self.conv(x))).mean(dim=(2, 3)) + self.emb(y)
        return self.out(h).squeeze(1)


def _private(model, cfg, n, batch, lr=0.0):
    return PrivateTraining(model, torch.optim.SGD(model.parameters(), lr=lr), cfg, n, batch, 10, 0, torch.device("cpu"))


def _rows(n_rows, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_rows, 2, 5, 5, generator=g) * 3, torch.randint(3, (n_rows,), generator=g)


def _per_example_oracle(model, x, y, k, clip):
    """A loop over examples: the gradient of each example's mean loss over its k rows, clipped to norm `clip`."""
    total = [torch.zeros_like(p) for p in model.parameters()]
    norms = []
    for i in range(len(x) // k):
        m = copy.deepcopy(model)
        rows = slice(i * k, (i + 1) * k)
        loss = (m(x[rows], y[rows]) ** 2).mean()
        grads = torch.autograd.grad(loss, list(m.parameters()))
        norm = torch.sqrt(sum((g**2).sum() for g in grads))
        factor = min(1.0, clip / float(norm))
        norms.append(float(norm) * factor)
        total = [t + factor * g for t, g in zip(total, grads)]
    return total, norms


@pytest.mark.parametrize("k, physical", [(1, 0), (3, 0), (3, 7)])
def test_each_example_is_clipped_to_C_after_averaging_its_noise_draws_as_a_per_example_loop_computes(k, physical):
    torch.manual_seed(0)
    model = _Tiny()
    x, y = _rows(8 * k, seed=1)
    reference = copy.deepcopy(model)
    _, raw = _per_example_oracle(reference, x, y, k, clip=float("inf"))
    clip = float(np.median(raw))  # half the examples above C, half below: clipping matters
    cfg = DPConfig(epsilon=10, delta=1e-5, max_grad_norm=clip, noise_multiplicity=k, max_physical_batch=physical)
    private = _private(model, cfg, n=8, batch=8)
    private.optimizer.noise_multiplier = 0.0  # isolate the clipping
    private.zero_grad()
    parts = private.chunks(len(x))
    assert len(parts) == (1 if physical == 0 else 4)  # 7 rows -> chunks of 6 (two whole examples of 3 rows)
    for part in parts:
        (private.module(x[part], y[part]) ** 2).mean().backward()
    private.step(len(x))
    expected, norms = _per_example_oracle(reference, x, y, k, clip)
    assert max(norms) <= clip * (1 + 1e-5)
    assert sum(n < clip * 0.999 for n in norms) >= 1 and sum(n >= clip * 0.999 for n in norms) >= 1
    for p, e in zip(model.parameters(), expected):
        # the step's gradient = sum of clipped per-example gradients / expected batch size (8)
        torch.testing.assert_close(p.grad * 8, e, rtol=1e-4, atol=1e-6)


def test_added_noise_has_std_sigma_times_C():
    torch.manual_seed(0)
    model = nn.Linear(400, 250, bias=False)
    cfg = DPConfig(epsilon=4, delta=1e-5, max_grad_norm=0.7)
    private = _private(model, cfg, n=100, batch=10)
    private.zero_grad()
    private.module(torch.zeros(10, 400)).sum().backward()  # d/dW of W·0 = 0: the step adds the noise alone
    private.step(10)
    noise = model.weight.grad.flatten() * private.optimizer.expected_batch_size
    assert float(noise.std()) == pytest.approx(private.noise_multiplier * 0.7, rel=0.02)
    assert abs(float(noise.mean())) < 0.02 * private.noise_multiplier * 0.7
    assert private.noise_multiplier > 0.5  # calibrated, not zero


def test_an_empty_poisson_batch_still_adds_noise_and_counts_as_a_step():
    model = nn.Linear(20, 5)
    private = _private(model, DPConfig(epsilon=4, delta=1e-5), n=100, batch=10)
    private.zero_grad()
    private.step(0)
    assert len_history(private.accountant) == 1
    assert float(model.weight.grad.abs().sum()) > 0


def test_poisson_batches_include_each_example_independently_at_rate_q():
    g = torch.Generator().manual_seed(0)
    sizes = [len(poisson_batch(1000, 0.05, g, torch.device("cpu"))) for _ in range(400)]
    assert np.mean(sizes) == pytest.approx(50, rel=0.03)
    assert np.std(sizes) == pytest.approx(np.sqrt(1000 * 0.05 * 0.95), rel=0.15)  # binomial, not fixed


def test_a_delta_not_below_one_over_n_is_refused():
    with pytest.raises(HistodistillError, match="privacy.dp.delta"):
        _private(nn.Linear(2, 1), DPConfig(epsilon=1, delta=1e-2), n=100, batch=10)


def _dp_config(**over):
    cfg = {
        "dataset": {"name": "digits"},
        "generator": {"autoencoder": {}, "denoiser": {"arch": "unet"}},
        "select": {"methods": ["infodist", "random_real"], "privacy_filter": {"enabled": False}},
        "privacy": {"dp": {"enabled": True, "public_dataset": "auto", "pretrain_denoiser": True}},
    }
    for key, value in over.items():
        section, _, name = key.partition(".")
        cfg[section][name] = value
    return cfg


def test_dp_mode_refuses_the_filter_and_the_distillers_naming_the_key():
    assert dp_refusals(_dp_config()) == []
    filt = dp_refusals(_dp_config(**{"select.privacy_filter": {"enabled": True}}))
    assert len(filt) == 1 and filt[0].startswith("select.privacy_filter.enabled:") and "\n" not in filt[0]
    dm = dp_refusals(_dp_config(**{"select.methods": ["infodist", "dm"]}))
    assert len(dm) == 1 and dm[0].startswith("select.methods: dm ")
    own = dp_refusals(_dp_config(**{"privacy.dp": {"enabled": True, "public_dataset": "digits"}}))
    assert own and "private dataset itself" in own[0]
    off = _dp_config(**{"select.methods": ["dm"], "select.privacy_filter": {"enabled": True}})
    off["privacy"]["dp"]["enabled"] = False
    assert dp_refusals(off) == []


def test_dp_training_resumes_from_its_checkpoint_to_the_same_weights_and_epsilon(tmp_path):
    from histodistill.base import save_checkpoint
    from histodistill.generator import AutoencoderConfig, DenoiserConfig, load_codec, train_autoencoder, train_denoiser

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images, labels = rng.integers(0, 255, (120, 8, 8, 1), dtype=np.uint8), rng.integers(0, 3, 120)
    ae = train_autoencoder(
        images,
        AutoencoderConfig(block_out_channels=(8, 8), norm_num_groups=4, steps=2, batch_size=8),
        0,
        torch.device("cpu"),
        progress=False,
    )
    save_checkpoint(tmp_path / "ae.pt", ae)
    codec = load_codec(tmp_path / "ae.pt", torch.device("cpu"))
    cfg = DenoiserConfig(block_out_channels=(16, 32), steps=6, batch_size=12, checkpoint_every=3, warmup_steps=2)
    dp = DPConfig(epsilon=8, delta=1e-4, noise_multiplicity=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        whole = train_denoiser(codec, images, labels, 3, cfg, 0, tmp_path / "a.pt", progress=False, dp=dp)

        def crash(done, _snapshot):
            if done == 4:
                raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            train_denoiser(codec, images, labels, 3, cfg, 0, tmp_path / "b.pt", progress=False, dp=dp, on_step=crash)
        resumed = train_denoiser(codec, images, labels, 3, cfg, 0, tmp_path / "b.pt", progress=False, dp=dp)
    assert whole["dp"]["steps"] == resumed["dp"]["steps"] == 6
    assert resumed["dp"]["epsilon"] == pytest.approx(whole["dp"]["epsilon"], abs=1e-9)
    assert whole["dp"]["epsilon"] <= 8 + 1e-6
    for key, value in whole["state_dict"].items():
        torch.testing.assert_close(resumed["state_dict"][key], value, rtol=0, atol=0)


BUDGET = {
    "enabled": True,
    "epsilon": 9.973,
    "epsilon_target": 10,
    "delta": 1e-5,
    "max_grad_norm": 1.0,
    "accountant": "prv",
    "noise_multiplicity": 1,
    "noise_multiplier": 1.06,
    "sample_rate": 0.1297,
    "steps": 300,
    "n_private": 987,
    "public_pretraining": {"dataset": "mnist5k", "images": 5000},
    "autoencoder": {"public": "mnist5k", "pretrained": False},
}


def test_dp_mode_never_shares_real_images_and_the_datasheet_states_the_guarantee():
    from test_share import _audit_report

    from histodistill.reporting import datasheet, release_decisions

    gate = {"dcr_share_margin": 0.0, "mia_auc": 0.6, "release_alpha": 0.05}
    controls = {"ipc": {"1": {"near_copy": {"n": 10, "detected": True}}}}
    pool, real = _audit_report(0.5), {**_audit_report(0.5), "source": "real"}
    audits = {"kmeans_ipc1": pool, "random_real_ipc1": real}
    plain = {r["set"]: r["shared"] for r in release_decisions(audits, gate, controls)}
    private = {r["set"]: r for r in release_decisions(audits, gate, controls, BUDGET)}
    assert plain["kmeans_ipc1"] and private["kmeans_ipc1"]["shared"]
    assert not private["random_real_ipc1"]["shared"] and "DP mode" in private["random_real_ipc1"]["reasons"]
    subset = {"images": np.zeros((10, 4, 4, 1), np.uint8), "labels": np.arange(10)}
    sheet = datasheet("kmeans_ipc1", subset, pool, {}, {}, gate, controls, dp=BUDGET)
    assert "No formal privacy guarantee" not in sheet
    for fact in ("ε = 9.973", "δ = 1e-05", "| 1.0600 |", "| 300 |", "0.1297 (Poisson)", "PRV", "mnist5k"):
        assert fact in sheet, fact
    assert "Not covered" in sheet


def test_the_summary_carries_the_budget_on_pool_rows_only():
    import pandas as pd

    from histodistill.reporting import privacy_budget_markdown, with_privacy_budget

    summary = pd.DataFrame({"method": ["infodist_plus", "random_real", "full_real"], "ipc": ["10", "1", "all"]})
    out = with_privacy_budget(summary, BUDGET, ("random_real", "full_real"))
    assert out.loc[0, "dp_epsilon"] == 9.973 and out.loc[0, "dp_sigma"] == 1.06 and out.loc[0, "dp_steps"] == 300
    assert out.loc[1:, "dp_epsilon"].isna().all()
    assert with_privacy_budget(summary, None, ()) is summary
    text = privacy_budget_markdown(BUDGET)
    assert "ε = 9.973" in text and "q = 0.1297" in text and "C = 1" in text


def test_the_pool_embedder_validates_on_a_seeded_stratified_tenth_of_the_pool():
    from histodistill.selection import pool_as_training_data

    labels = np.repeat(np.arange(3), 40)
    images = np.arange(120, dtype=np.uint8).reshape(120, 1, 1, 1)
    a = pool_as_training_data(images, labels, 3, seed=5)
    b = pool_as_training_data(images, labels, 3, seed=5)
    assert np.bincount(a["val_labels"]).tolist() == [4, 4, 4]
    assert len(a["train_labels"]) == 108
    assert not set(a["val_images"].ravel()) & set(a["train_images"].ravel())
    np.testing.assert_array_equal(a["val_images"], b["val_images"])


def test_dataset_id_names_the_dp_run_by_its_epsilon():
    from histodistill.workflow import dataset_id

    cfg = {"dataset": {"name": "digits", "size": 16}, "privacy": {"dp": {"enabled": True, "epsilon": 4}}}
    assert dataset_id(cfg) == "digits_16_dp4"
    cfg["privacy"]["dp"]["enabled"] = False
    assert dataset_id(cfg) == "digits_16"


def test_infinite_epsilon_clips_without_noise_and_claims_no_guarantee():
    model = nn.Linear(20, 5, bias=False)
    private = _private(model, DPConfig(epsilon=float("inf"), delta=1e-5), n=100, batch=10)
    assert private.noise_multiplier == 0.0
    private.zero_grad()
    private.module(torch.zeros(10, 20)).sum().backward()
    private.step(10)
    assert float(model.weight.grad.abs().sum()) == 0.0
    assert private.record()["epsilon"] == float("inf")


PRIVATE_FILES = ("/data/real.npz", "/data/train_images.npy", "/privacy/")


def _dp_smoke_config(tmp_path):
    from conftest import write_config

    return write_config(
        tmp_path,
        privacy={"dp": {"enabled": True, "epsilon": 10, "steps": 6, "batch_size": 32, "vote_share": 0.5}},
        select={
            "privacy_filter": {"enabled": False},
            "methods": ["infodist_plus", "random_synthetic", "random_real"],
            # the DP preset's selector, and the certainty gate: both read the pool embedder's certainty
            "infodist_plus": {"pick": "facility", "certainty_weight": 0.0, "certainty_gate": 0.2},
        },
    )


def test_dp_smoke_run_states_its_budget_shares_no_real_images_and_reads_the_train_split_only_in_dp_sgd(tmp_path):
    import json

    import pandas as pd
    from conftest import snakemake

    from histodistill.base import load_checkpoint

    config = _dp_smoke_config(tmp_path)
    results = tmp_path / "results" / "digits_8_dp10"
    # Every job upstream of a shared selection: only the DP-SGD training may read the private split.
    plan = snakemake(config, "--dry-run", "--forceall", str(results / "subsets" / "infodist_plus_ipc2.npz"), check=True)
    upstream, rule = {}, None
    for line in (plan.stdout + plan.stderr).splitlines():
        line = line.strip()
        if line.startswith(("rule ", "localrule ")) and line.endswith(":"):
            rule = line.split()[1].rstrip(":")
        elif line.startswith("input:") and rule:
            upstream[rule] = line
    assert {"train_denoiser_dp", "train_autoencoder_public", "train_embedder_on_pool", "dp_vote"} <= set(upstream)
    readers = {r for r, inputs in upstream.items() if any(f in inputs for f in PRIVATE_FILES)}
    assert readers == {"train_denoiser_dp", "dp_vote"}  # both counted by the accountant

    snakemake(config, check=True)
    budget = json.loads((results / "pool" / "dp_budget.json").read_text())
    denoiser = json.loads((results / "generator" / "dp_budget.json").read_text())
    # the run's ε composes DP-SGD and the vote, by the independent accountant too
    independent = pld_composed(
        [(denoiser["noise_multiplier"], denoiser["sample_rate"], 6), (budget["vote"]["noise_multiplier"], 1.0, 1)], 1e-5
    )
    assert budget["epsilon"] == pytest.approx(independent, abs=0.02) and budget["epsilon"] <= 10 + 0.01
    assert denoiser["epsilon"] < budget["epsilon"] and budget["steps"] == 6
    kept = np.load(results / "pool" / "privacy_filter.npz")["keep"]
    assert kept.sum() == budget["vote"]["kept"] < len(kept)
    assert budget["sample_rate"] == pytest.approx(32 / budget["n_private"])
    assert budget["autoencoder"]["public"] == "mnist5k" and budget["public_pretraining"]["dataset"] == "mnist5k"
    assert load_checkpoint(results / "embedder" / "convnet.pt")["trained_on"] == "synthetic pool"
    summary = pd.read_csv(results / "tables" / "summary.csv")
    pooled = summary["method"] != "random_real"
    np.testing.assert_allclose(summary.loc[pooled, "dp_epsilon"], budget["epsilon"], atol=1e-6)
    assert summary.loc[~pooled, "dp_epsilon"].isna().all()
    index = pd.read_csv(results / "share" / "index.csv")
    real = index[index["set"].str.startswith("random_real")]
    assert len(real) and not real["shared"].any() and real["reasons"].str.contains("DP mode").all()
    for package in (results / "share").glob("*/datasheet.md"):
        sheet = package.read_text()
        assert f"ε = {budget['epsilon']:.3f}" in sheet and "No formal privacy guarantee" not in sheet
        assert f"Gaussian noise of σ = {budget['vote']['noise_multiplier']:.4f}" in sheet  # the vote's share stated
    # the report's utility-privacy figure is among `snakemake figures`' targets in DP mode, and draws
    figure = results / "figures" / "privacy_budget.png"
    snakemake(config, str(figure), check=True)
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_figure_reads_this_runs_summary_and_the_shipped_curve_of_its_dataset(tmp_path):
    import pandas as pd

    from histodistill.generator import dp_curve_of
    from histodistill.reporting import reference_lines_of, run_point

    config = {"dataset": {"name": "digits", "size": 8}, "figures": {"dp_curve": "auto"}}
    assert dp_curve_of(config, tmp_path) == []  # nothing measured for digits at 8 px
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "dp_curve_digits_16.csv").write_text("epsilon_target\n10\n")
    assert dp_curve_of(config, tmp_path) == []  # another size's curve is not this run's
    (tmp_path / "docs" / "dp_curve_digits_8.csv").write_text("epsilon_target\n10\n")
    assert dp_curve_of(config, tmp_path) == [str(tmp_path / "docs" / "dp_curve_digits_8.csv")]
    assert dp_curve_of({**config, "figures": {"dp_curve": None}}, tmp_path) == []
    with pytest.raises(HistodistillError, match=r"^figures\.dp_curve: .*missing\.csv does not exist"):
        dp_curve_of({**config, "figures": {"dp_curve": str(tmp_path / "missing.csv")}}, tmp_path)

    summary = pd.DataFrame(
        [
            ("infodist_plus", "10", "convnet", 0.655, 0.025),
            ("infodist_plus", "10", "resnet18", 0.10, 0.0),  # another model: not this figure's
            ("random_real", "1", "convnet", 0.683, 0.026),
            ("random_real", "10", "convnet", 0.936, 0.009),
            ("random_real", "1", "resnet18", 0.20, 0.0),
        ],
        columns=["method", "ipc", "model", "acc_mean", "acc_std"],
    )
    point = run_point(summary, {"epsilon_target": 10.0, "epsilon": 9.99})
    assert point["epsilon"] == 9.99 and point["infodist_plus_ipc10_test"] == pytest.approx(65.5)
    assert point["infodist_plus_ipc10_test_sd"] == pytest.approx(2.5)
    assert reference_lines_of(summary) == {"random_real_ipc1": pytest.approx(68.3)}


def test_public_digits_are_framed_as_the_private_dataset_frames_its_digits():
    from histodistill.data import embedded_images, public_digits, resize_images

    mnist, labels = embedded_images("mnist5k")
    framed, framed_labels = public_digits("mnist5k", "digits", 16)
    # MNIST's digit box is the central 20x20 of 28x28 (pixels 4..23); scikit-learn's digits fill the frame
    np.testing.assert_array_equal(framed, resize_images(np.ascontiguousarray(mnist[:, 4:24, 4:24]), 16))
    np.testing.assert_array_equal(framed_labels, labels)
    digits, _ = public_digits("digits", "mnist5k", 16)
    # 8x8 digits into MNIST's frame at 16 px: a round(16 * 20 / 28) = 11 px box, 2 px above/left, 3 below/right
    assert digits.shape == (1797, 16, 16, 1)
    assert digits[:, :2].max() == 0 and digits[:, 13:].max() == 0 and digits[:, :, :2].max() == 0
    assert digits[:, :, 13:].max() == 0 and digits[:, 2:13, 2:13].max() > 0
