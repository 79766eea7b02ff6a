"""Evaluation protocol pieces: contrastive term, metrics, DSA, LR schedule, determinism, bad subsets."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from histodistill.classifier import OPS, dsa

OPS_NAMES = tuple(OPS)
from histodistill.base import HistodistillError
from histodistill.classifier import (
    TrainConfig,
    boundary_contrastive_loss,
    classification_metrics,
    lr_at,
    train_classifier,
    train_classifiers,
)
from histodistill.data import validate_images


def reference_contrastive(logits: torch.Tensor, labels: torch.Tensor, beta: float, tau: float, detach: bool = True):
    """A port of the InfoDist authors' boundary-guided semi-push-pull term (ZheLi2020/InfoDist, contrastive_loss.py:
    get_logp_boundary + calculate_bg_spp_loss, summed over the classes of the batch in utils_bound.epoch_contrastive):
    positives with s <= b_c and negatives with s >= b_non count (inclusive), b_c is detached. `detach=False` is the
    mutant a gradient test must tell apart."""
    output = logits.softmax(dim=1)
    total = torch.zeros(())
    for c in range(logits.shape[1]):
        mask = labels == c
        if mask.sum() == 0:
            continue
        logps = output[:, c]
        class_logps = logps[mask].detach() if detach else logps[mask]
        n_idx = int((mask.sum() * beta).item())
        b_c = class_logps[torch.sort(class_logps, descending=True)[1][n_idx - 1]]
        b_non = b_c - tau
        pos = logps[mask]
        loss_c = b_c - pos[pos <= b_c]
        non = logps[~mask]
        loss_non = non[non >= b_non] - b_non if (non >= b_non).sum() > 0 else torch.tensor(0.0)
        total = total + torch.mean(loss_c) + torch.mean(loss_non)
    return total


def test_contrastive_term_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.1, -1.0], [0.5, 0.4, 0.3], [1.5, 1.4, 0.0], [0.0, 3.0, 0.1], [0.2, 0.1, 0.4]])
    labels = torch.tensor([0, 0, 0, 1, 2])  # class 1 and class 2 have |P| = 1
    got = boundary_contrastive_loss(logits, labels, beta=0.9, tau=0.3).item()
    assert got == pytest.approx(reference_contrastive(logits, labels, 0.9, 0.3).item(), abs=1e-6)
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
    want = reference_contrastive(logits, torch.from_numpy(labels), beta, tau).item()
    assert got == pytest.approx(want, abs=1e-5)


def test_contrastive_term_counts_the_boundary_sample_as_the_reference_does():
    """|P| = 10, beta 0.9: b_c is the 9th largest positive score; the reference averages the pull over the two
    positives with s <= b_c (the boundary sample contributes 0 but counts), so a strict < would double the pull."""
    scores_c = torch.tensor([0.95, 0.94, 0.93, 0.92, 0.91, 0.9, 0.89, 0.88, 0.6, 0.2])
    logits = torch.stack([scores_c.log(), (1 - scores_c).log()], dim=1)  # softmax gives back scores_c
    labels = torch.zeros(10, dtype=torch.long)
    b = 0.6  # the 9th largest
    want_class0 = ((b - 0.6) + (b - 0.2)) / 2
    got = boundary_contrastive_loss(logits, labels, beta=0.9, tau=0.3).item()
    assert got == pytest.approx(want_class0, abs=1e-6)


def test_contrastive_term_is_zero_without_qualifying_samples():
    # Confident, separated predictions: no positive below its boundary (|P| = 1), no negative above b - tau.
    logits = torch.tensor([[10.0, 0.0], [0.0, 10.0]])
    assert boundary_contrastive_loss(logits, torch.tensor([0, 1])).item() == pytest.approx(0.0, abs=1e-9)


def test_contrastive_boundary_is_detached():
    """No gradient flows through b_c: the gradient equals the reference's (b_c detached) and differs from the one a
    boundary inside the graph would give (checked on the same batch, so the comparison has power). Where a class has
    negatives above b_non, the boundary's gradient cancels between pull and push; here class 0 has none."""
    base = torch.tensor(
        [[2.0, 0.0, 0.0], [1.0, 0.5, 0.0], [0.0, 0.5, 0.2], [-0.5, 1.0, 0.0], [-6.0, 2.0, 0.0], [-6.0, 0.0, 1.5]]
    )
    labels = torch.tensor([0, 0, 0, 0, 1, 2])

    def grad(fn) -> torch.Tensor:
        logits = base.clone().requires_grad_(True)
        fn(logits).backward()
        return logits.grad

    ours = grad(lambda x: boundary_contrastive_loss(x, labels, 0.9, 0.3))
    torch.testing.assert_close(ours, grad(lambda x: reference_contrastive(x, labels, 0.9, 0.3)))
    attached = grad(lambda x: reference_contrastive(x, labels, 0.9, 0.3, detach=False))
    assert not torch.allclose(ours, attached, atol=1e-4)


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
    if name == "color":  # the reference's colour ops do not clamp: brightness and contrast push values past ±1
        assert a.min() < -1 - 1e-3 or a.max() > 1 + 1e-3
    else:  # geometric ops move or blank pixels (black fill): the range is kept
        assert a.min() >= -1 - 1e-6 and a.max() <= 1 + 1e-6
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_dsa_chooses_one_group_per_batch_reproducibly():
    x = torch.rand(4, 1, 8, 8) * 2 - 1
    assert torch.equal(dsa(x, torch.Generator().manual_seed(1)), dsa(x, torch.Generator().manual_seed(1)))


def test_a_separate_chooser_picks_the_group_and_the_op_draws_from_g():
    """On a GPU the group is picked by a CPU generator; the op's per-sample parameters still come from `g`."""
    from histodistill.classifier import op_chooser

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
    from histodistill.classifier import predict_logits

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


def reference_ema_decays(updates: int, beta: float) -> list[float]:
    """The decay each of the authors' per-epoch `ema.update()` calls applies: a port of ema_pytorch's
    EMA(beta, power=1, update_after_step=0, update_every=1) step counter and get_current_decay (0 = copy)."""
    step, inv_gamma, power, out = 0, 1.0, 1.0, []
    for _ in range(updates):
        current = step
        step += 1
        if current <= 0:  # step <= update_after_step: copy the weights
            out.append(0.0)
            continue
        epoch = max(step - 0 - 1, 0)
        value = 1 - (1 + epoch / inv_gamma) ** -power
        out.append(0.0 if epoch <= 0 else min(max(value, 0.0), beta))
    return out


@pytest.mark.parametrize("decay", [0.995, 0.9])
def test_ema_ramp_is_the_reference_ramp_and_reaches_the_configured_decay(decay):
    from histodistill.classifier.train import _ema_decay

    cfg = TrainConfig(ema_decay=decay)
    ours = [_ema_decay(e, cfg) for e in range(300)]
    assert ours == pytest.approx(reference_ema_decays(300, decay), abs=1e-12)
    assert ours[-1] == decay  # 300 epochs (the default run) reach the configured decay


@pytest.mark.parametrize("size", [8, 16, 28])
def test_crop_translates_by_whole_pixels_and_fills_black(size):
    """DSA's crop is an integer translation: every output equals its input shifted by some (dx, dy) within
    ±ratio·size, with black (-1) where the shift uncovers pixels; no interpolation blurs the values."""
    from histodistill.classifier import crop

    x = torch.rand(16, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    out = crop(x, torch.Generator().manual_seed(1))
    limit = int(round(0.125 * size))

    def shifted(img: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
        res = torch.full_like(img, -1.0)
        h = w = size
        ys, xs = slice(max(0, -dy), min(h, h - dy)), slice(max(0, -dx), min(w, w - dx))
        src_y, src_x = slice(max(0, dy), min(h, h + dy)), slice(max(0, dx), min(w, w + dx))
        res[:, ys, xs] = img[:, src_y, src_x]
        return res

    moved = 0
    for i in range(len(x)):
        matches = [
            (dx, dy)
            for dx in range(-limit, limit + 1)
            for dy in range(-limit, limit + 1)
            if torch.allclose(out[i], shifted(x[i], dx, dy), atol=1e-5)
        ]
        assert matches, f"sample {i} is not a whole-pixel translation of its input"
        moved += matches[0] != (0, 0)
    assert moved > len(x) // 2


def test_compiled_training_equals_eager_training(monkeypatch):
    """`compile=True` (torch.compile of forward and loss, the GPU default) trains the same weights as eager training
    up to float rounding (DSA, contrastive term, EMA); and it does compile: torch.compile is called once. The test
    compiles with the aot_eager backend (the graph capture and its autograd, not inductor's code generation, which
    costs ~20 s on 2 cores); the GPU run of benchmarks/gpu_session.sh trains with inductor."""
    rng = np.random.default_rng(4)
    images = rng.integers(0, 255, size=(30, 8, 8, 3), dtype=np.uint8)
    labels = np.repeat(np.arange(3), 10)
    cfg = TrainConfig(depth=1, width=8, epochs=3, batch_size=15)
    eager = train_classifier(images, labels, 3, cfg, 3, progress=False)
    calls = []
    real_compile = torch.compile
    monkeypatch.setattr(
        torch, "compile", lambda fn, **kw: calls.append(kw) or real_compile(fn, backend="aot_eager", **kw)
    )
    compiled = train_classifier(images, labels, 3, TrainConfig(**{**cfg.__dict__, "compile": True}), 3, progress=False)
    assert calls == [{"dynamic": False, "mode": "default"}]
    assert _max_weight_difference(eager, compiled) < 1e-4


def test_evaluation_switches_auto_compiles_long_gpu_jobs_and_trains_seeds_one_by_one():
    from histodistill.classifier import COMPILE_MIN_STEPS, evaluation_switches, training_steps

    # the paper preset's IPC 100 (9 classes: 900 images, 4 batches of <= 256) and IPC 10, 5 seeds x 1000 epochs
    assert training_steps(900, 256, 1000, 5) == 20_000 and training_steps(90, 256, 1000, 5) == 5_000
    assert training_steps(512, 256, 1, 1) == 2 and training_steps(513, 256, 1, 1) == 3
    auto = {"compile": "auto", "batch_seeds": "auto"}
    assert evaluation_switches(auto, torch.device("cuda"), 20_000) == (True, False)
    assert evaluation_switches(auto, torch.device("cuda"), COMPILE_MIN_STEPS - 1) == (False, False)
    assert evaluation_switches(auto, torch.device("cpu"), 10**9) == (False, False)
    assert evaluation_switches({"compile": True, "batch_seeds": True}, torch.device("cpu"), 1) == (True, True)


def test_evaluation_config_compiles_the_paper_presets_ipc_100_on_a_gpu_and_not_its_ipc_10():
    from histodistill.base import config_with_defaults
    from histodistill.classifier import evaluation_config

    params = config_with_defaults("configs/pathmnist_64.yaml")["evaluate"]  # 1000 epochs, 5 seeds, batch 256, auto
    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    cfg, stacked = evaluation_config("convnet", params, False, "bf16", cuda, 900)  # 20,000 steps
    assert (cfg.compile, stacked, cfg.epochs, cfg.precision) == (True, False, 1000, "bf16")
    assert evaluation_config("convnet", params, False, "bf16", cuda, 90)[0].compile is False  # 5,000 steps
    assert evaluation_config("convnet", params, False, "fp32", cpu, 900)[0].compile is False
    # full real data trains its own 30 epochs: 89,996 images are 352 batches, 5 x 30 x 352 = 52,800 steps
    full, _ = evaluation_config("convnet", params, True, "bf16", cuda, 89_996)
    assert (full.epochs, full.compile) == (30, True)


@pytest.mark.parametrize("size, s", [(16, 2), (28, 4), (32, 4), (64, 8)])
def test_crop_draws_every_shift_in_the_reference_range_equally_often(size, s):
    """The reference draws randint(-s, s + 1) with s = int(size · 0.125 + 0.5): at 28 px ±4 (a rounded continuous
    draw gives ±3 there and the end values at half the rate). Chi-square on 10^5 draws against the uniform."""
    from scipy.stats import chisquare

    from histodistill.classifier import crop_range, crop_shifts

    assert crop_range(size) == s
    x = torch.zeros(1)
    shifts = crop_shifts(100_000, torch.Generator().manual_seed(size), x, size)
    assert shifts.min() == -s and shifts.max() == s and torch.equal(shifts, shifts.round())
    counts = torch.bincount((shifts + s).long(), minlength=2 * s + 1).numpy()
    assert chisquare(counts).pvalue > 1e-3, counts


@pytest.mark.parametrize("size", [8, 9, 16])
def test_cutout_blanks_a_square_of_the_reference_size(size):
    """int(size · 0.5 + 0.5) pixels a side (4 at 8 px, 5 at 9 px), fewer only where the square meets the border."""
    from histodistill.classifier import cutout

    side = int(size * 0.5 + 0.5)
    x = torch.ones(400, 1, size, size)
    out = cutout(x, torch.Generator().manual_seed(size))
    blank = out[:, 0] == -1.0
    rows, cols = blank.any(2).sum(1), blank.any(1).sum(1)
    assert torch.equal(blank.sum((1, 2)), rows * cols)  # a rectangle
    assert rows.max() == side and cols.max() == side and (rows == side).float().mean() > 0.3


def reference_evaluate_synset_lrs(epoch_eval_train: int, lr_net: float) -> list[tuple[float, bool]]:
    """Port of the reference's evaluate_synset loop (VICO-UoE/DatasetCondensation utils.py): the lr each epoch trains
    with, and whether a new optimiser was made before it."""
    lr, schedule, out, fresh = float(lr_net), [epoch_eval_train // 2 + 1], [], False
    for ep in range(epoch_eval_train + 1):
        out.append((lr, fresh))
        fresh = False
        if ep in schedule:
            lr *= 0.1
            fresh = True  # optimizer = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=0.0005)
    return out


@pytest.mark.parametrize("epoch_eval_train", [300, 1000, 7, 1])
def test_the_distillation_protocol_schedule_is_the_reference_evaluate_synset(epoch_eval_train):
    from histodistill.classifier import lr_for_epoch

    cfg = TrainConfig(epochs=epoch_eval_train + 1, lr=0.01, schedule="step")
    ours = [lr_for_epoch(e, cfg) for e in range(cfg.epochs)]
    ref = reference_evaluate_synset_lrs(epoch_eval_train, 0.01)
    assert [f for _, f in ours] == [f for _, f in ref]
    assert [lr for lr, _ in ours] == pytest.approx([lr for lr, _ in ref], rel=1e-12)


def test_distillation_protocol_training_equals_the_reference_loop_with_its_fresh_optimiser():
    """train_classifier under the step schedule (no DSA, EMA or contrastive term) ends at the weights of a port of
    evaluate_synset's loop: SGD(lr, momentum 0.9, wd 5e-4), Epoch + 1 full-batch epochs, lr × 0.1 and a new SGD
    after epoch Epoch // 2 + 1. Keeping the old momentum at the switch, or switching an epoch off, changes them."""
    from histodistill.base import to_model_space
    from histodistill.classifier import build_classifier

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(20, 8, 8, 1), dtype=np.uint8)
    labels = np.repeat(np.arange(4), 5)
    cfg = TrainConfig(
        depth=2,
        width=8,
        epochs=7 + 1,
        batch_size=64,
        lr=0.05,
        ema_decay=0.0,
        dsa=False,
        contrastive_weight=0.0,
        schedule="step",
    )
    ours = train_classifier(images, labels, 4, cfg, seed=3, progress=False)

    torch.manual_seed(3)  # as _seeded_start: the seed makes the initial network
    net = build_classifier("convnet", 1, 4, 8, depth=2, width=8)
    x, y = to_model_space(images, "cpu"), torch.from_numpy(labels)
    lr = cfg.lr
    opt = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=0.0005)
    epoch_eval_train = cfg.epochs - 1
    for ep in range(epoch_eval_train + 1):
        net.train()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if ep in [epoch_eval_train // 2 + 1]:
            lr *= 0.1
            opt = torch.optim.SGD(net.parameters(), lr, momentum=0.9, weight_decay=0.0005)
    for a, b in zip(ours.state_dict().values(), net.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_distillation_protocol_settings_per_method():
    from histodistill.classifier import train_config_for

    params = {
        "protocol": "distillation",
        "depth": 3,
        "width": 32,
        "resnet18_width": 64,
        "full_real_epochs": 60,
        "distillation": {
            "lr": 0.01,
            "epochs": 1000,
            "epochs_without_augmentation": 300,
            "without_augmentation": ["dc"],
            "batch_size": 256,
        },
    }
    dc = train_config_for("convnet", params, False, method="dc")
    dm = train_config_for("convnet", params, False, method="dm")
    mtt = train_config_for("convnet", params, False, method="mtt", learned_lr=0.0123)
    assert (dc.epochs, dc.dsa, dm.epochs, dm.dsa) == (301, False, 1001, True)
    assert mtt.lr == 0.0123 and dm.lr == dc.lr == 0.01
    for cfg in (dc, dm, mtt):
        assert cfg.schedule == "step" and cfg.ema_decay == 0 and cfg.contrastive_weight == 0
        assert cfg.momentum == 0.9 and cfg.weight_decay == 5e-4 and cfg.batch_size == 256
    infodist = train_config_for("convnet", {**params, **_INFODIST_KEYS, "protocol": "infodist"}, False, method="dc")
    assert infodist.schedule == "warmup_cosine" and infodist.ema_decay == 0.995 and infodist.dsa


_INFODIST_KEYS = {
    "epochs": 300,
    "batch_size": 256,
    "lr": 0.01,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "ema_decay": 0.995,
    "dsa": True,
    "contrastive_weight": 1.0,
    "contrastive_beta": 0.9,
    "contrastive_tau": 0.3,
}
