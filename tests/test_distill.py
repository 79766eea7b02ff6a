"""Dataset distillers: differentiable Siamese DSA, DM's loss and optimisation, initialisation, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from histodistill.base import HistodistillError
from histodistill.classifier import OPS, ConvNet, dsa, dsa_siamese
from histodistill.data import load_digits_splits
from histodistill.distill import (
    DMConfig,
    ExpertConfig,
    GMConfig,
    MTTConfig,
    distribution_matching,
    dm_loss,
    gradient_distance,
    gradient_matching,
    gradient_matching_loops,
    initial_indices,
    train_expert,
    trajectory_matching,
)
from histodistill.selection import per_class_selection, select_random


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny networks: one intra-op thread (as the rules run them); two threads on a busy 2-core machine are 10x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _images(n: int, seed: int = 0, size: int = 8) -> torch.Tensor:
    # inside (-0.9, 0.9): no clamp saturates, so every op's gradient is its true, non-zero derivative
    return (torch.rand(n, 1, size, size, generator=torch.Generator().manual_seed(seed)) * 1.8 - 0.9).requires_grad_()


@pytest.mark.parametrize("name", list(OPS))
def test_each_dsa_op_passes_gradients_to_the_images(name):
    x = _images(6)
    g = torch.Generator().manual_seed(3)
    (OPS[name](x, g) * torch.arange(64.0).view(1, 1, 8, 8)).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # every image receives gradient (cutout blanks at most a quarter of each image)
    assert (x.grad.abs().flatten(1).sum(1) > 0).all()


@pytest.mark.parametrize("name", list(OPS))
def test_siamese_dsa_gives_both_batches_the_same_transformation(name):
    """Identical images in the two batches (of different sizes) come out identical: one parameter set for all."""
    real = _images(5, seed=1).detach()
    synthetic = real[:2].clone().requires_grad_()
    g = torch.Generator().manual_seed(7)
    out_real, out_syn = dsa_siamese([real, synthetic], g, ops=(name,))
    assert out_real.shape == real.shape and out_syn.shape == synthetic.shape
    torch.testing.assert_close(out_syn, out_real[:2])
    # ... and within a batch, too (the original's batch-wise parameters): copies of one image stay copies
    same = real[:1].expand(4, -1, -1, -1)
    out = dsa_siamese([same], torch.Generator().manual_seed(11), ops=(name,))[0]
    torch.testing.assert_close(out, out[:1].expand_as(out))
    out_syn.sum().backward()
    assert synthetic.grad is not None and synthetic.grad.abs().sum() > 0


def test_plain_dsa_still_draws_parameters_per_sample_after_a_siamese_call():
    dsa_siamese([_images(2).detach()], torch.Generator().manual_seed(0), ops=("rotate",))
    same = _images(1).detach().expand(6, -1, -1, -1)
    out = dsa(same, torch.Generator().manual_seed(0), ops=("rotate",))
    assert not torch.allclose(out[0], out[1])


class _Flatten:
    """A stand-in network whose embedding is the pixels themselves: DM's loss is then a hand computation."""

    @staticmethod
    def embed(x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def test_dm_loss_equals_hand_computation_and_is_zero_for_matching_means():
    rng = np.random.default_rng(0)
    real = [torch.from_numpy(rng.normal(size=(n, 1, 4, 4))).float() for n in (7, 3)]
    syn = [torch.from_numpy(rng.normal(size=(n, 1, 4, 4))).float() for n in (2, 1)]
    expected = sum(
        ((r.numpy().reshape(len(r), -1).mean(0) - s.numpy().reshape(len(s), -1).mean(0)) ** 2).sum()
        for r, s in zip(real, syn)
    )
    got = dm_loss(_Flatten(), real, syn, torch.device("cpu"))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # a synthetic set with each class's real mean matches exactly
    means = [r.mean(0, keepdim=True) for r in real]
    assert float(dm_loss(_Flatten(), real, means, torch.device("cpu"))) == pytest.approx(0.0, abs=1e-10)


@pytest.fixture(scope="module")
def digits8():
    return load_digits_splits(8, 0, 0.15, 0.3)


def test_dm_matching_loss_decreases_and_output_has_the_subset_format(digits8):
    cfg = DMConfig(iterations=25, lr_images=1.0, batch_real=16, depth=2, width=8, init="noise", seed=0)
    result = distribution_matching(digits8["train_images"], digits8["train_labels"], 10, 2, cfg, progress=False)
    losses = result.losses
    assert len(losses) == 25 and np.isfinite(losses).all() and (losses >= 0).all()
    assert losses[-5:].mean() < 0.5 * losses[:5].mean()
    assert result.images.shape == (20, 8, 8, 1) and result.images.dtype == np.uint8
    assert result.labels.dtype == np.int64 and result.labels.tolist() == np.repeat(np.arange(10), 2).tolist()
    assert (result.indices == -1).all()


def test_dm_is_reproducible_and_real_init_starts_from_the_random_real_draw(digits8):
    labels = digits8["train_labels"]
    # the random_real baseline's draw for the same seed (workflow_scripts/select_random_real.py)
    baseline = per_class_selection(labels, 3, lambda c, m: select_random(len(m), 3, np.random.default_rng([5, c])), "t")
    assert initial_indices(labels, 10, 3, "real", 5, "distill.dm.init").tolist() == baseline.tolist()
    # with zero iterations' worth of change (lr ~ 0) the set is the real images it started from
    frozen = DMConfig(iterations=1, lr_images=1e-12, batch_real=8, depth=2, width=8, init="real", seed=5)
    out = distribution_matching(digits8["train_images"], labels, 10, 3, frozen, progress=False)
    assert np.array_equal(out.images, digits8["train_images"][baseline]) and out.indices.tolist() == baseline.tolist()
    cfg = DMConfig(iterations=3, batch_real=8, depth=2, width=8, init="real", seed=1)
    a = distribution_matching(digits8["train_images"], labels, 10, 1, cfg, progress=False)
    b = distribution_matching(digits8["train_images"], labels, 10, 1, cfg, progress=False)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.losses, b.losses)


def test_real_init_above_a_class_count_and_unknown_init_name_the_key(digits8):
    labels = digits8["train_labels"]
    too_many = int(np.bincount(labels).min()) + 1
    with pytest.raises(HistodistillError, match=r"^distill\.dm\.init: real init needs IPC .* class \d+ has") as err:
        initial_indices(labels, 10, too_many, "real", 0, "distill.dm.init")
    assert "\n" not in str(err.value)
    assert len(initial_indices(labels, 10, too_many, "noise", 0, "distill.dm.init")) == 10 * too_many
    with pytest.raises(HistodistillError, match=r"^distill\.dm\.init: unknown init 'zeros'"):
        initial_indices(labels, 10, 1, "zeros", 0, "distill.dm.init")


def test_gradient_distance_equals_hand_computation_and_skips_vectors():
    rng = np.random.default_rng(1)
    shapes = [(4, 2, 3, 3), (5,), (3, 6)]
    syn = [torch.from_numpy(rng.normal(size=s)) for s in shapes]
    real = [torch.from_numpy(rng.normal(size=s)) for s in shapes]
    expected = 0.0
    for a, b in zip(syn, real):
        if a.ndim == 1:
            continue
        a2, b2 = a.numpy().reshape(len(a), -1), b.numpy().reshape(len(b), -1)
        for u, v in zip(a2, b2):
            expected += 1 - u @ v / (np.linalg.norm(u) * np.linalg.norm(v) + 1e-6)
    assert float(gradient_distance(syn, real)) == pytest.approx(expected, rel=1e-6)
    assert float(gradient_distance(real, real)) == pytest.approx(0.0, abs=1e-5)
    assert float(gradient_distance([-t for t in real], real)) == pytest.approx(2 * (4 + 3), rel=1e-5)


def test_gradient_matching_loops_follow_the_original():
    assert gradient_matching_loops(1) == (1, 1) and gradient_matching_loops(10) == (10, 50)
    assert gradient_matching_loops(50) == (50, 10) and gradient_matching_loops(3) == (3, 50)
    assert gradient_matching_loops(10, outer=4, inner=2) == (4, 2)


@pytest.mark.parametrize("with_dsa", [False, True])
def test_dc_and_dsa_matching_losses_decrease_and_output_has_the_subset_format(digits8, with_dsa):
    cfg = GMConfig(
        iterations=10, batch_real=16, depth=2, width=8, outer_loop=2, inner_loop=1, dsa=with_dsa, init="noise"
    )
    result = gradient_matching(digits8["train_images"], digits8["train_labels"], 10, 2, cfg, progress=False)
    losses = result.losses
    assert len(losses) == 10 and np.isfinite(losses).all() and (losses >= 0).all()
    assert losses[-3:].mean() < 0.7 * losses[:2].mean()
    assert result.images.shape == (20, 8, 8, 1) and result.images.dtype == np.uint8
    assert result.labels.tolist() == np.repeat(np.arange(10), 2).tolist()


def test_gradient_matching_trains_the_network_between_matches_with_plain_sgd(digits8, monkeypatch):
    """The reference's optimizer_net is SGD(net.parameters(), lr=args.lr_net): no momentum, no weight decay (with
    momentum the gradients would be matched on other network states). The image optimiser keeps its momentum."""
    made = []
    real_sgd = torch.optim.SGD

    def spy(params, **kwargs):
        params = list(params)
        made.append((params, kwargs))
        return real_sgd(params, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", spy)
    cfg = GMConfig(iterations=2, batch_real=8, depth=2, width=8, outer_loop=2, inner_loop=1, dsa=False, init="noise")
    gradient_matching(digits8["train_images"], digits8["train_labels"], 10, 1, cfg, progress=False)
    (image_params, image_kw), net_opts = made[0], made[1:]
    assert len(image_params) == 1 and image_params[0].shape[0] == 10 and image_kw["momentum"] == cfg.momentum
    assert len(net_opts) == cfg.iterations  # a fresh network, and its optimiser, every iteration
    for _, kw in net_opts:
        assert kw.get("momentum", 0) == 0 and kw.get("weight_decay", 0) == 0 and kw["lr"] == cfg.lr_net


def test_experts_record_their_trajectory_and_mtt_matching_loss_decreases(digits8):
    images, labels = digits8["train_images"], digits8["train_labels"]
    ec = ExpertConfig(epochs=3, batch_size=128, depth=2, width=8)
    experts = [train_expert(images, labels, 10, ec, seed, progress=False) for seed in (0, 1)]
    n_params = sum(p.numel() for p in ConvNet(1, 10, 8, depth=2, width=8).parameters())
    assert experts[0].shape == (4, n_params) and experts[0].dtype == np.float32
    assert not np.array_equal(experts[0][0], experts[0][-1]) and not np.array_equal(experts[0][0], experts[1][0])
    cfg = MTTConfig(iterations=12, syn_steps=3, expert_epochs=1, max_start_epoch=1, lr_images=100.0, seed=0)
    result, lr = trajectory_matching(images, labels, 10, 2, experts, ec, cfg, progress=False)
    assert np.isfinite(result.losses).all() and (result.losses >= 0).all() and lr > 0
    assert result.losses[-4:].mean() < result.losses[:4].mean()
    assert result.images.shape == (20, 8, 8, 1) and result.labels.tolist() == np.repeat(np.arange(10), 2).tolist()
    with pytest.raises(HistodistillError, match=r"^distill\.mtt\.expert_epochs: 3 needs experts trained for"):
        trajectory_matching(
            images, labels, 10, 1, experts, ec, MTTConfig(iterations=1, expert_epochs=3), progress=False
        )
    wider = ExpertConfig(epochs=3, depth=2, width=16)
    with pytest.raises(HistodistillError, match=r"^distill\.mtt\.experts: the expert files hold"):
        trajectory_matching(
            images, labels, 10, 1, experts, wider, MTTConfig(iterations=1, expert_epochs=1), progress=False
        )


def test_mtt_matches_the_expert_expert_epochs_after_the_start(digits8):
    """Experts that stand still for `expert_epochs` − 1 epochs and then jump: only the right target (start +
    expert_epochs) is away from the start, so with a student that barely moves the loss is exactly about 1; a target
    taken one epoch too early is the start itself and the normalised loss is 0 / 0."""
    images, labels = digits8["train_images"], digits8["train_labels"]
    ec = ExpertConfig(epochs=3, depth=2, width=8)
    theta0 = torch.cat([p.detach().reshape(-1) for p in ConvNet(1, 10, 8, depth=2, width=8).parameters()]).numpy()
    traj = np.stack([theta0, theta0, theta0 + 10.0, theta0 + 20.0]).astype(np.float32)
    cfg = MTTConfig(
        iterations=3, syn_steps=2, expert_epochs=2, max_start_epoch=1, lr_teacher=1e-9, lr_lr=0.0, lr_images=1.0
    )
    result, _ = trajectory_matching(images, labels, 10, 1, [traj], ec, cfg, progress=False)
    assert np.isfinite(result.losses).all()
    np.testing.assert_allclose(result.losses, 1.0, atol=1e-3)


def test_dm_pulls_each_class_towards_its_own_real_images(digits8):
    """Two well separated classes (digits 0 and 1) from noise: after DM each class's images lie nearer its own real
    mean than the other class's (a real batch drawn from the wrong class would pull them across)."""
    keep = np.isin(digits8["train_labels"], [0, 1])
    images, labels = digits8["train_images"][keep], digits8["train_labels"][keep]
    cfg = DMConfig(iterations=60, lr_images=1.0, batch_real=32, depth=2, width=16, init="noise", dsa=False, seed=0)
    result = distribution_matching(images, labels, 2, 3, cfg, progress=False)
    means = [images[labels == c].reshape((labels == c).sum(), -1).astype(float).mean(0) for c in (0, 1)]
    for img, c in zip(result.images.reshape(len(result.images), -1).astype(float), result.labels):
        own, other = np.linalg.norm(img - means[c]), np.linalg.norm(img - means[1 - c])
        assert own < other, (c, own, other)


def test_dm_started_from_a_given_set_begins_at_its_images_in_class_order(digits8):
    """dm_refine's start: a set handed in (here out of class order) is where DM begins, class-major, with no real
    index recorded; a start with the wrong count per class is refused."""
    rng = np.random.default_rng(3)
    labels = np.repeat(np.arange(10), 2)[rng.permutation(20)]
    images = rng.integers(0, 256, size=(20, 8, 8, 1), dtype=np.uint8)
    frozen = DMConfig(iterations=1, lr_images=1e-12, batch_real=8, depth=2, width=8, init="real", seed=0)
    out = distribution_matching(
        digits8["train_images"], digits8["train_labels"], 10, 2, frozen, progress=False, start=(images, labels)
    )
    expected = np.concatenate([images[labels == c] for c in range(10)])
    assert np.array_equal(out.images, expected) and (out.indices == -1).all()
    assert out.labels.tolist() == np.repeat(np.arange(10), 2).tolist()
    moving = DMConfig(iterations=5, lr_images=1.0, batch_real=8, depth=2, width=8, seed=0)
    moved = distribution_matching(
        digits8["train_images"], digits8["train_labels"], 10, 2, moving, progress=False, start=(images, labels)
    )
    assert not np.array_equal(moved.images, expected)
    with pytest.raises(HistodistillError, match=r"start set has .* DM needs 3 per class"):
        distribution_matching(
            digits8["train_images"], digits8["train_labels"], 10, 3, frozen, progress=False, start=(images, labels)
        )
