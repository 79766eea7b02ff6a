"""The release decision: the per-image test against the audit holdout, planted controls, split roles, the gate's
clauses one by one, and what `share` does with them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from histodistill.base import save_npz
from histodistill.data import load_real
from histodistill.privacy import (
    audit_subset,
    control_detected,
    control_void,
    controls_missed,
    detection_radius,
    filter_distances,
    gate_verdict,
    hill_dimension,
    near_copies,
    nearest_over_views,
    planted_set,
    privacy_reference,
    release_p_values,
    shifted_mirror,
)
from histodistill.reporting import release_decisions
from histodistill.selection import embed

REPO = Path(__file__).resolve().parents[1]
GATE = {"dcr_share_margin": 0.0, "mia_auc": 0.6, "release_alpha": 0.05, "share_real_init": False}


# ----------------------------------------------------------------------------------------- p-values


def test_conformal_p_values_hand_case():
    cal = np.array([4.0, 1.0, 3.0, 2.0])  # sorted: 1 2 3 4; p = (1 + #{cal <= d}) / 5
    p = release_p_values(np.array([2.5, 4.0, 9.0, 1.0, 0.0]), cal, tail=50)
    np.testing.assert_allclose(p, [3 / 5, 1.0, 1.0, 2 / 5, 0.0])
    # below the smallest holdout distance and too few points for a tail: the rank floor 1 / (H + 1)
    assert release_p_values(np.array([0.5]), cal, tail=50)[0] == pytest.approx(1 / 5)


def test_tail_follows_a_known_power_law_beyond_the_holdout():
    """Holdout distances with P(D <= r) = r^m on [0, 1] exactly (their quantiles): below the smallest of them the
    p-value must follow r^m, the true probability that an unseen image comes that close (the oracle)."""
    m, h = 6.0, 999
    cal = (np.arange(1, h + 1) / (h + 1)) ** (1 / m)
    fit = hill_dimension(cal, 50)
    assert fit is not None and fit[0] == pytest.approx(m, rel=0.1)
    d = np.array([0.3, 0.2, 0.1])
    assert (d < cal.min()).all()
    np.testing.assert_allclose(release_p_values(d, cal, 50), d**m, rtol=0.5)
    # ranks alone would stop at 1 / (H + 1) = 1e-3; the tail resolves 1e-6 (two sets of 100 at alpha 0.05 need it)
    assert release_p_values(np.array([0.1]), cal, 50)[0] < 1e-5


def test_detection_radius_is_where_the_p_value_crosses_the_level():
    rng = np.random.default_rng(0)
    cal = rng.gamma(8.0, 1.0, 300)
    for level in (0.02, 0.001, 1e-6):  # inside the ranks, at the floor, deep in the tail
        r = detection_radius(cal, level, 50)
        assert release_p_values(np.array([r * (1 - 1e-9)]), cal, 50)[0] < level
        assert release_p_values(np.array([r * (1 + 1e-6)]), cal, 50)[0] >= level


def test_a_mirrored_shifted_copy_is_an_exact_match_of_windows_and_an_unrelated_image_is_not():
    rng = np.random.default_rng(1)
    train = rng.integers(0, 256, (20, 12, 12, 3), dtype=np.uint8)
    queries = np.concatenate([shifted_mirror(train[[7]], 2), rng.integers(0, 256, (1, 12, 12, 3), dtype=np.uint8)])

    def nearest(windows, corner):  # brute force over the train windows at `corner`
        top, left = corner
        t = train[:, top : top + windows.shape[1], left : left + windows.shape[2]].reshape(20, -1).astype(float)
        d = np.sqrt(((windows.reshape(len(windows), 1, -1).astype(float) - t[None]) ** 2).sum(-1))
        return d.min(1), d.argmin(1)

    found = nearest_over_views(queries, 2, nearest)
    assert found["distance"][0] == 0 and found["index"][0] == 7 and found["view"][0] != 0
    assert found["distance"][1] > 0
    assert nearest_over_views(queries, 0, nearest)["distance"][0] > 0  # without moves the disguise works


# ----------------------------------------------------------------------------------------- the gate's path


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    digits = load_real("digits", 8)
    path = tmp_path_factory.mktemp("release") / "real.npz"
    save_npz(path, **digits)
    ref = privacy_reference(path, _pixels, k=5, seed=0, n_planted=40, planted_noise=0.02)
    return digits, path, ref


def _pixels(images):
    return embed(images, None, "cpu")


def _audit(subset, setup):
    _, path, ref = setup
    return audit_subset(subset, path, ref, _pixels, n_bootstrap=50, power_reps=3, gate_only=True)


def _set(images, labels, source="distilled"):
    return {"images": images, "labels": labels, "indices": np.full(len(labels), -1), "source": np.asarray(source)}


def _unseen_per_class(digits, offset=0):
    idx = np.array([np.where(digits["val_labels"] == c)[0][offset] for c in range(10)])
    return digits["val_images"][idx], digits["val_labels"][idx]


def test_one_near_copy_among_ten_unseen_images_fails_the_gate_and_is_named(setup):
    digits, _, _ = setup
    images, labels = _unseen_per_class(digits)
    clean = _audit(_set(images, labels), setup)
    ok, reasons = gate_verdict(clean, GATE)
    assert ok, reasons  # the ten unseen real images alone pass: a failure below is the copy's doing
    source = int(np.where(digits["train_labels"] == 3)[0][0])
    planted = planted_set(images, labels, 3, near_copies(digits["train_images"][[source]], 0.02, 5)[0], 3)
    report = _audit(planted, setup)
    ok, reasons = gate_verdict(report, GATE)
    assert not ok and control_detected(report, 3)
    assert [f["image"] for f in report["release"]["flagged"]] == [3]
    assert any("image 3 (class 3)" in r and f"train image {source}" in r for r in reasons)


def test_verbatim_training_images_fail_at_ipc1_even_where_real_sets_may_be_shared(setup):
    digits, _, _ = setup
    idx = np.array([np.where(digits["train_labels"] == c)[0][0] for c in range(10)])
    report = _audit(_set(digits["train_images"][idx], digits["train_labels"][idx], "pool"), setup)
    ok, reasons = gate_verdict(report, {**GATE, "share_real_init": True})
    assert not ok and any(r.startswith("10 exact copies") for r in reasons)
    assert len(report["release"]["exact_copies"]) == 10


def test_the_release_level_is_corrected_for_the_set_size(setup):
    digits, _, _ = setup
    images, labels = _unseen_per_class(digits)
    report = _audit(_set(images, labels), setup)
    assert report["release"]["level"] == pytest.approx(0.05 / (10 * 2))  # images × spaces (pixel, random features)


def _report(**changes):
    """A hand-built audit report that passes every clause; `changes` break one."""
    dcr = {"share": 0.5, "null_share": 0.5, "difference_ci95": [-0.1, 0.1]}
    attack = {"auc": 0.5, "auc_ci95": [0.4, 0.6]}
    report = {
        "source": "pool",
        "init": "",
        "release": {"n": 10, "flagged": [], "exact_copies": []},
        "dcr": {"pixel": dict(dcr), "embedding": dict(dcr)},
        "mia_distance": {"pixel": dict(attack), "embedding": dict(attack)},
    }
    for key, value in changes.items():
        if key == "dcr_lo":
            report["dcr"]["embedding"]["difference_ci95"] = [value, 0.3]
        elif key == "auc_lo":
            report["mia_distance"]["pixel"]["auc_ci95"] = [value, 0.9]
        elif key == "flagged":
            report["release"]["flagged"] = [{"image": 4, "class": 1, "reasons": ["pixel p = 1e-09 < 0.0025"]}]
        else:
            report[key] = value
    return report


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({}, None),
        ({"dcr_lo": 0.01}, "embedding DCR share"),
        ({"dcr_lo": -0.01}, None),
        ({"auc_lo": 0.61}, "pixel distance-attack AUC"),
        ({"auc_lo": 0.6}, None),
        ({"flagged": True}, "image 4 (class 1)"),
        ({"init": "real"}, "made from real training images"),
        ({"source": "real"}, "made from real training images"),
    ],
)
def test_each_gate_clause_fails_alone(changes, reason):
    ok, reasons = gate_verdict(_report(**changes), GATE)
    if reason is None:
        assert ok and reasons == []
    else:
        assert not ok and len(reasons) == 1 and reason in reasons[0]


def test_a_missed_control_stops_share_and_a_detected_one_does_not():
    audits = {"good_ipc1": _report(), "bad_ipc1": _report(flagged=True)}
    detected = {"ipc": {"1": {"near_copy": {"n": 10, "detected": True}, "decoded_copy": {"n": 10, "detected": True}}}}
    rows = {r["set"]: r for r in release_decisions(audits, GATE, detected)}
    assert rows["good_ipc1"]["shared"] and not rows["bad_ipc1"]["shared"]
    missed = {"ipc": {"1": {"near_copy": {"n": 10, "detected": True}, "decoded_copy": {"n": 10, "detected": False}}}}
    assert controls_missed(missed) == ["decoded_copy among 10 images (IPC 1)"]
    rows = release_decisions(audits, GATE, missed)
    assert not any(r["shared"] for r in rows)
    assert all("missed a planted control (decoded_copy among 10 images" in r["reasons"] for r in rows)
    assert not any(r["shared"] for r in release_decisions(audits, GATE, None))  # no controls: nothing vouched for


# ----------------------------------------------------------------------------------------- split roles


def test_the_privacy_filter_reads_the_validation_split_and_never_the_audit_holdout(setup, tmp_path):
    digits, path, _ = setup
    pool = near_copies(digits["train_images"][:40], 0.1, 0)
    before = filter_distances(pool, path, _pixels)
    # the audit holdout replaced by copies of training images: a filter reading it would change
    altered = dict(digits, test_images=digits["train_images"][: len(digits["test_images"])])
    save_npz(tmp_path / "test_altered.npz", **altered)
    after = filter_distances(pool, tmp_path / "test_altered.npz", _pixels)
    for key in before:
        np.testing.assert_array_equal(before[key], after[key])
    # the validation split is what it reads: altering it changes the threshold's reference
    altered = dict(digits, val_images=digits["train_images"][: len(digits["val_images"])])
    save_npz(tmp_path / "val_altered.npz", **altered)
    assert not np.array_equal(
        before["pixel_val_dcr"], filter_distances(pool, tmp_path / "val_altered.npz", _pixels)["pixel_val_dcr"]
    )


AUDIT_HOLDOUT_READERS = {
    "data/real.py": "loads and splits the real data",
    "data/split.py": "splits the real data",
    "data/custom.py": "loads a user's own data",
    "data/custom_sources.py": "reads a user's own split folders",
    "classifier/evaluate.py": "final test accuracy (judges, never chooses: defaults are chosen on validation)",
    "privacy/reference.py": "the audit's real-side reference",
    "privacy/audit.py": "the audit",
    "privacy/pool.py": "the pool's audit",
    "reporting/share.py": "the datasheet states the audit holdout's size",
}


def test_only_the_audit_and_the_final_evaluation_read_the_audit_holdout():
    """The test split is the audit holdout. Any other module that names it (a filter, a selector, the generator,
    the embedder, a distiller) would let it shape what the audit then judges."""
    readers = {
        p.relative_to(REPO / "histodistill").as_posix()
        for p in (REPO / "histodistill").rglob("*.py")
        if re.search(r"test_images|test_labels|\"test\"|'test'|n_test", p.read_text())
    }
    scripts = {
        p.name
        for p in (REPO / "workflow_scripts").glob("*.py")
        if re.search(r"test_images|test_labels|\"test\"|'test'", p.read_text())
    }
    assert readers <= set(AUDIT_HOLDOUT_READERS), readers - set(AUDIT_HOLDOUT_READERS)
    audit_scripts = {f"privacy_{r}.py" for r in ("reference", "audit", "pool", "controls", "generator")}
    assert scripts <= {"evaluate_subset.py"} | audit_scripts, scripts - audit_scripts
    assert "privacy_filter.py" not in scripts


def test_a_void_disguise_is_not_a_miss_but_a_size_with_only_void_controls_is():
    controls = {
        "ipc": {
            "1": {
                "near_copy": {"n": 10, "detected": True, "void": False},
                "decoded_copy": {"n": 10, "detected": False, "void": True},
            },
            "10": {"decoded_copy": {"n": 100, "detected": False, "void": True}},
        }
    }
    assert controls_missed(controls) == ["every control among IPC 10's images was void"]
    assert control_void("decoded_copy", 2.0, 1.5) and not control_void("decoded_copy", 1.0, 1.5)
    assert not control_void("shifted_mirror", 9.0, 1.5)
