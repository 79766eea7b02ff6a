"""Each reported number comes from its own split: a stub model that answers differently on the test and the
validation images shows where every metric was computed; the summary's std and the validation ranking by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import histodistill.classifier.evaluate as evaluate
from histodistill.classifier import TrainConfig
from histodistill.reporting import aggregate, validation_ranking_markdown

N_CLASSES = 3


def _split(value: int, n: int = 12):
    """n images whose every pixel is `value` (the split's mark), labels cycling 0, 1, 2."""
    return np.full((n, 4, 4, 1), value, np.uint8), np.arange(n) % N_CLASSES


TEST, VAL = _split(10), _split(200)


def _stub_logits(model, images, device, precision="fp32"):
    """Right on the test split (pixel 10), always class 0 on the validation split (pixel 200)."""
    n = len(images)
    labels = np.arange(n) % N_CLASSES
    pred = labels if int(images.reshape(n, -1)[0, 0]) == 10 else np.zeros(n, int)
    logits = np.full((n, N_CLASSES), -5.0)
    logits[np.arange(n), pred] = 5.0
    return logits


def test_test_and_validation_metrics_come_from_their_own_splits(monkeypatch):
    monkeypatch.setattr(evaluate, "train_classifiers", lambda *a, **k: [object(), object()])
    monkeypatch.setattr(evaluate, "predict_logits", _stub_logits)
    train = _split(99, 6)
    results = evaluate.evaluate_subset(
        *train, *TEST, N_CLASSES, TrainConfig(), [0, 1], "cpu", val_images=VAL[0], val_labels=VAL[1]
    )
    for r in results:
        assert r["acc"] == 1.0 and r["f1"] == 1.0 and r["auc"] == 1.0  # the test split: all right
        assert r["per_class_acc"] == [1.0, 1.0, 1.0]
        assert r["val_acc"] == pytest.approx(1 / 3)  # the validation split: class 0 only, a third right
        assert r["val_f1"] == pytest.approx((0.5 + 0 + 0) / 3)  # class 0: precision 1/3, recall 1 -> F1 0.5
    assert [r["seed"] for r in results] == [0, 1]


def test_aggregate_std_is_the_sample_std_and_the_ranking_follows_validation():
    rows = [
        # method, seed, test acc, val acc
        ("a", 0, 0.80, 0.60),
        ("a", 1, 0.90, 0.70),
        ("b", 0, 0.70, 0.90),
        ("b", 1, 0.70, 0.80),
    ]
    results = pd.DataFrame(
        [
            {"method": m, "ipc": "10", "model": "convnet", "seed": s, "acc": t, "auc": t, "f1": t}
            | {"val_acc": v, "val_auc": v, "val_f1": v}
            for m, s, t, v in rows
        ]
    )
    summary = aggregate(results)
    a = summary[summary["method"] == "a"].iloc[0]
    assert a["acc_mean"] == pytest.approx(0.85) and a["n_seeds"] == 2
    assert a["acc_std"] == pytest.approx(np.sqrt(2 * 0.05**2 / 1))  # ddof 1: 0.0707, not 0.05
    table = validation_ranking_markdown(summary)
    ranked = [line.split(" | ")[3] for line in table.splitlines()[2:]]
    assert ranked == ["b", "a"]  # b leads on validation (0.85 vs 0.65) though a leads on test
