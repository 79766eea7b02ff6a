"""Evaluation protocol pieces: contrastive term, metrics, DSA, LR schedule, determinism, bad subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from histodistill.augment import OPS, dsa

OPS_NAMES = tuple(OPS)
from histodistill.data import validate_images
from histodistill.errors import HistodistillError
from histodistill.train import (
    TrainConfig,
    boundary_contrastive_loss,
    classification_metrics,
    lr_at,
    train_classifier,
    train_classifiers,
)


def hand_contrastive(scores: np.ndarray, labels: np.ndarray, beta: float, tau: float) -> float:
    total = 0.0
    for c in np.unique(labels):
        pos = np.sort(scores[labels == c, c])[::-1]
        neg = scores[labels != c, c]
        k = max(1, int(np.floor(len(pos) * beta)))
        b = pos[k - 1]
        low = pos[pos < b]
        high = neg[neg > b - tau]
        total += (b - low).mean() if len(low) else 0.0
        total += (high - (b - tau)).mean() if len(high) else 0.0
    return total


def test_contrastive_term_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.1, -1.0], [0.5, 0.4, 0.3], [1.5, 1.4, 0.0], [0.0, 3.0, 0.1], [0.2, 0.1, 0.4]])
    labels = torch.tensor([0, 0, 0, 1, 2])  # class 1 and class 2 have |P| = 1
    scores = logits.softmax(1).numpy()
    got = boundary_contrastive_loss(logits, labels, beta=0.9, tau=0.3).item()
    assert got == pytest.approx(hand_contrastive(scores, labels.numpy(), 0.9, 0.3), abs=1e-6)
    assert got > 0


@pytest.mark.parametrize("seed", range(5))
def test_contrastive_term_matches_hand_computation_on_random_batches(seed):
    """Random batches where some classes are absent, some have one positive, and β·|P| lands on integers."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    labels = rng.integers(0, 7, n)
    logits = torch.from_numpy(rng.normal(scale=2.0, size=(n, 7)).astype(np.float32))
    beta, tau = float(rng.choice([0.9, 0.5, 0.75])), float(rng.choice([0.3, 0.1]))
    got = boundary_contrastive_loss(logits, torch.from_numpy(labels), beta, tau).item()
    assert got == pytest.approx(hand_contrastive(logits.softmax(1).numpy(), labels, beta, tau), abs=1e-5)


def test_contrastive_term_is_zero_without_qualifying_samples():
    # Confident, separated predictions: no positive below its boundary (|P| = 1), no negative above b - tau.
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    assert boundary_contrastive_loss(logits, torch.tensor([0, 1])).item() == pytest.approx(0.0, abs=1e-9)


def test_contrastive_boundary_is_detached():
    logits = torch.randn(8, 3, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 1, 1, 2, 2, 2])
    boundary_contrastive_loss(logits, labels).backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_metrics_equal_scikit_learn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, 4))
    labels = rng.integers(0, 4, 60)
    m = classification_metrics(logits, labels, 4)
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert m["acc"] == pytest.approx(accuracy_score(labels, logits.argmax(1)))
    assert m["f1"] == pytest.approx(f1_score(labels, logits.argmax(1), average="macro"))
    assert m["auc"] == pytest.approx(roc_auc_score(labels, probs, multi_class="ovr", average="macro"))


@pytest.mark.parametrize("name", list(OPS))
def test_each_dsa_op_keeps_shape_dtype_range_and_is_seeded(name):
    x = torch.rand(16, 3, 12, 12) * 2 - 1
    a = OPS[name](x, torch.Generator().manual_seed(5))
    b = OPS[name](x, torch.Generator().manual_seed(5))
    c = OPS[name](x, torch.Generator().manual_seed(6))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_dsa_chooses_one_group_per_batch_reproducibly():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.equal(dsa(x, torch.Generator().manual_seed(1)), dsa(x, torch.Generator().manual_seed(1)))


def test_a_separate_chooser_picks_the_group_and_the_op_draws_from_g():
    """On a GPU the group is picked by a CPU generator; the op's per-sample parameters still come from `g`."""
    from histodistill.augment import op_chooser

    x = torch.rand(6, 3, 8, 8) * 2 - 1
    g = torch.Generator().manual_seed(5)
    assert op_chooser(g, 5) is g  # on CPU nothing changes: g picks the group too
    for seed in range(6):
        name = OPS_NAMES[int(torch.randint(len(OPS_NAMES), (1,), generator=torch.Generator().manual_seed(seed)))]
        got = dsa(x, torch.Generator().manual_seed(9), choice=torch.Generator().manual_seed(seed))
        assert torch.equal(got, OPS[name](x, torch.Generator().manual_seed(9))), name


def test_lr_schedule_warms_up_then_decays():
    lrs = [lr_at(e, 100, 0.1) for e in range(100)]
    assert lrs[0] == pytest.approx(0.002) and lrs[49] == pytest.approx(0.1)
    assert all(a <= b for a, b in zip(lrs[:50], lrs[1:50]))
    assert all(a >= b for a, b in zip(lrs[50:], lrs[51:])) and lrs[-1] < 0.001


def test_training_is_reproducible_for_a_seed():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, size=(20, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(2), 10)
    cfg = TrainConfig(depth=2, width=8, epochs=3)
    a = train_classifier(images, labels, 2, cfg, seed=3, progress=False)
    b = train_classifier(images, labels, 2, cfg, seed=3, progress=False)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)


def test_subset_validation_names_the_file():
    images = np.zeros((4, 8, 8, 1), np.uint8)
    with pytest.raises(HistodistillError, match="subset.npz: labels must lie in 0..9"):
        validate_images("subset.npz", images, np.array([0, 1, 2, 10]), 10, 8, 1)
    with pytest.raises(HistodistillError, match="subset.npz: images have shape"):
        validate_images("subset.npz", images, np.arange(4), 10, 16, 1)


def test_streamed_training_equals_resident_training():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 255, size=(24, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 8)
    cfg = TrainConfig(depth=2, width=8, epochs=2, batch_size=10)
    resident = train_classifier(images, labels, 3, cfg, seed=0, progress=False)
    streamed = train_classifier(images, labels, 3, cfg, seed=0, progress=False, resident_limit=0)
    for a, b in zip(resident.state_dict().values(), streamed.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-6)


def test_resnet18_trains_and_separates_two_easy_classes():
    images = np.zeros((16, 16, 16, 3), np.uint8)
    images[8:] = 255
    labels = np.repeat(np.arange(2), 8)
    model = train_classifier(
        images, labels, 2, TrainConfig(net="resnet18", width=8, epochs=15, lr=0.05), 0, progress=False
    )
    from histodistill.train import predict_logits

    assert (predict_logits(model, images).argmax(1) == labels).all()


def _max_weight_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max((pa - pb).abs().max().item() for pa, pb in zip(a.state_dict().values(), b.state_dict().values()))


@pytest.mark.parametrize("resident_limit", [256 * 1024 * 1024, 0])
def test_seeds_trained_side_by_side_equal_seeds_trained_one_by_one(resident_limit):
    """The stacked (vmap) trainer gives each seed the weights train_classifier gives it (DSA, contrastive term,
    several batches per epoch, EMA), up to float rounding; and the seeds differ from one another."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 255, size=(30, 8, 8, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 10)
    cfg = TrainConfig(depth=2, width=8, epochs=4, batch_size=12)
    seeds = [0, 5, 7]
    one_by_one = [train_classifier(images, labels, 3, cfg, s, progress=False) for s in seeds]
    together = train_classifiers(
        images, labels, 3, cfg, seeds, batch_seeds=True, progress=False, resident_limit=resident_limit
    )
    assert len(together) == len(seeds)
    for a, b in zip(one_by_one, together):
        assert _max_weight_difference(a, b) < 1e-4
        assert not b.training and not any(p.requires_grad for p in b.parameters())
    assert _max_weight_difference(together[0], together[1]) > 1e-2


def test_bf16_precision_is_applied_and_reproducible():
    rng = np.random.default_rng(3)
    images = rng.integers(0, 255, size=(20, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(2), 10)
    fp32 = train_classifier(images, labels, 2, TrainConfig(depth=2, width=8, epochs=3), 1, progress=False)
    cfg = TrainConfig(depth=2, width=8, epochs=3, precision="bf16")
    a = train_classifier(images, labels, 2, cfg, 1, progress=False)
    b = train_classifier(images, labels, 2, cfg, 1, progress=False)
    assert _max_weight_difference(a, b) == 0.0
    assert _max_weight_difference(a, fp32) > 1e-5, "bf16 autocast changed nothing: it was not applied"
    assert all(p.dtype == torch.float32 for p in a.parameters()), "weights stay fp32 under autocast"
