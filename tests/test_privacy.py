"""Privacy and fidelity audit: exact neighbour search, hand-checked PRDC, and controls that must fail and pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from histodistill.base import HistodistillError, save_npz, to_model_space, write_json
from histodistill.data import load_real
from histodistill.generator import frechet_distance
from histodistill.privacy import (
    PIXEL_SCALE,
    TABLE_COLUMNS,
    attack_metrics,
    attack_power,
    audit_subset,
    closer_to_train_probability,
    dcr_share_power,
    gate_verdict,
    jsonable,
    knn_distances,
    mann_whitney_auc,
    mann_whitney_aucs,
    membership_inference,
    near_copies,
    nearest_distances,
    npz_row_chunks,
    pixel_rows,
    prdc,
    privacy_reference,
    privacy_table,
    scan_reference,
    tpr_at_fpr,
    tprs_at_fpr,
    wilson_ci,
)
from histodistill.reporting import closest_pairs_figure, dcr_histogram
from histodistill.selection import embed


@pytest.fixture(scope="module")
def digits() -> dict[str, np.ndarray]:
    return load_real("digits", 8)


def brute_force(q: np.ndarray, r: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    d = np.sqrt(((q[:, None, :].astype(np.float64) - r[None, :, :].astype(np.float64)) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d


# ----------------------------------------------------------------------------------------- nearest neighbours


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("chunk", [7, 64, 2048])
def test_nearest_distances_equal_brute_force(chunk, device):
    rng = np.random.default_rng(1)
    q, r = rng.normal(size=(150, 5)), rng.normal(size=(230, 5)) * 2.0 + 0.5
    d, i = nearest_distances(q, r, chunk=chunk, device=device)
    full = brute_force(q, r)
    np.testing.assert_array_equal(i, full.argmin(1))
    np.testing.assert_allclose(d, full.min(1), rtol=1e-12, atol=1e-12)


def test_exact_ties_give_the_first_index_across_tiles():
    rng = np.random.default_rng(4)
    r = rng.normal(size=(60, 3))
    r[50] = r[3]  # duplicate rows in different tiles of 16
    d, i = nearest_distances(r[[3, 50]] + 1e-3, r, chunk=16)
    np.testing.assert_array_equal(i, [3, 3])
    np.testing.assert_allclose(d, np.sqrt(3) * 1e-3)


@pytest.mark.parametrize("chunk", [13, 4096])
def test_exclude_self_and_knn_equal_brute_force(chunk):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(120, 3))
    full = brute_force(x, x, exclude_self=True)
    d, i = nearest_distances(x, x, chunk=chunk, exclude_self=True)
    assert (i != np.arange(len(x))).all()
    np.testing.assert_array_equal(i, full.argmin(1))
    np.testing.assert_allclose(d, full.min(1), rtol=1e-12)
    dk, ik = knn_distances(x, x, 4, chunk=chunk, exclude_self=True)
    np.testing.assert_array_equal(ik, np.argsort(full, axis=1, kind="stable")[:, :4])
    np.testing.assert_allclose(dk, np.sort(full, axis=1)[:, :4], rtol=1e-12)


def test_uint8_rows_exact_copy_distance_zero_and_pixel_scale(digits):
    train = digits["train_images"][:60]
    rows = pixel_rows(train)
    d, i = nearest_distances(rows[10:20], rows, chunk=16)
    np.testing.assert_array_equal(d, 0.0)  # exact copies, no uint8 wrap-around
    np.testing.assert_array_equal(i, np.arange(10, 20))
    # uint8 row distance × PIXEL_SCALE = distance between the model-space images [-1, 1]
    a, b = digits["test_images"][:5], train[:5]
    model_space = np.linalg.norm(
        (to_model_space(a) - to_model_space(b)).reshape(5, -1).double().numpy(), axis=1
    )  # image-by-image pairs
    rows_d = np.linalg.norm(pixel_rows(a).astype(float) - pixel_rows(b).astype(float), axis=1) * PIXEL_SCALE
    np.testing.assert_allclose(rows_d, model_space, rtol=1e-6)


def test_bad_shapes_raise():
    with pytest.raises(HistodistillError, match="feature dimensions"):
        nearest_distances(np.zeros((3, 2)), np.zeros((4, 3)))
    with pytest.raises(HistodistillError, match="NaN"):
        nearest_distances(np.full((3, 2), np.nan), np.zeros((4, 2)))
    with pytest.raises(HistodistillError, match="exclude_self"):
        nearest_distances(np.zeros((3, 2)), np.zeros((4, 2)), exclude_self=True)


# ----------------------------------------------------------------------------------------- PRDC by hand

# Real points A..E and fake points F1..F4 in the plane.
REAL = np.array([[0, 0], [2, 0], [0, 3], [10, 0], [11, 0]], dtype=float)  # A B C D E


def test_prdc_hand_computed_k1():
    # k = 1. Real radii (nearest other real): A 2 (B), B 2 (A), C 3 (A), D 1 (E), E 1 (D).
    # Fakes F1 (1,0), F2 (30,0), F3 (0,5), F4 (31,0); fake radii: F1 √26≈5.10 (F3), F2 1 (F4), F3 √26, F4 1.
    # d(real, fake):   F1     F2     F3     F4
    #            A     1      30     5      31
    #            B     1      28     √29≈5.39  29
    #            C     √10≈3.16 ≈30.15 2    ≈31.14
    #            D     9      20     ≈11.18 21
    #            E     10     19     ≈12.08 20
    # In a real ball (d < r_i): A→F1, B→F1, C→F3 (3.16 ≥ 3 so not F1), D, E none. Counts F1 2, F2 0, F3 1, F4 0.
    # precision = 2/4 (F1, F3); density = (1/1)·(2+0+1+0)/4 = 0.75.
    # coverage: nearest fake inside r_i for A (1<2), B (1<2), C (2<3); not D (9≥1), E (10≥1) → 3/5.
    # recall: real inside some fake ball (d < s_j): A, B (1 < 5.10 to F1), C (3.16 < 5.10); D, E none → 3/5.
    fake = np.array([[1, 0], [30, 0], [0, 5], [31, 0]], dtype=float)
    out = prdc(REAL, fake, k=1, chunk=2)
    assert out["precision"] == pytest.approx(0.5)
    assert out["density"] == pytest.approx(0.75)
    assert out["coverage"] == pytest.approx(0.6)
    assert out["recall"] == pytest.approx(0.6)


def test_prdc_hand_computed_k2():
    # k = 2. Real radii (2nd nearest other real): A {2,3,10,11}→3, B {2,√13,8,9}→√13≈3.61, C {3,√13,…}→3.61,
    # D {1,8,10,√109}→8, E {1,9,11,√130}→9.
    # Fakes F1 (1,0), F2 (30,0), F3 (0,5); fake radii (2nd nearest of two others): F1 29, F2 √925≈30.4, F3 √925.
    # In a real ball: A→F1 (1<3; F3 at 5 no), B→F1 (√29≈5.39 ≥ 3.61 for F3), C→F1 (3.16<3.61) and F3 (2<3.61),
    # D: F1 at 9 ≥ 8 no, E: F1 at 10 ≥ 9 no. Counts F1 3, F2 0, F3 1.
    # precision = 2/3; density = (1/2)·(3+0+1)/3 = 2/3; coverage = 3/5 (A, B, C; D's nearest fake 9 ≥ 8,
    # E's 10 ≥ 9); recall = 5/5 (every real is within 29 of F1).
    fake = np.array([[1, 0], [30, 0], [0, 5]], dtype=float)
    out = prdc(REAL, fake, k=2)
    assert out["precision"] == pytest.approx(2 / 3)
    assert out["density"] == pytest.approx(2 / 3)
    assert out["coverage"] == pytest.approx(0.6)
    assert out["recall"] == pytest.approx(1.0)


def test_prdc_recall_undefined_with_k_or_fewer_fakes():
    out = prdc(REAL, np.array([[1.0, 0.0], [0.0, 5.0]]), k=2)
    assert out["recall"] is None
    assert out["precision"] == pytest.approx(1.0)  # F1 in A's ball, (0,5) in C's ball (2 < 3.61)


# ----------------------------------------------------------------------------------------- attack metrics


def test_tpr_at_fpr_hand_computed():
    # members 0.9, 0.5; non-members 0.5, 0.1. ROC vertices: (0, 0), (0, 0.5) at threshold 0.9, (0.5, 1) at 0.5
    # (a member and a non-member tie), (1, 1). At FPR 0.01: 0.5 + (1 − 0.5)·0.01/0.5 = 0.51; at FPR 0.5: 1.
    y = np.array([1, 1, 0, 0])
    s = np.array([0.9, 0.5, 0.5, 0.1])
    assert tpr_at_fpr(y, s, 0.01) == pytest.approx(0.51)
    assert tpr_at_fpr(y, s, 0.5) == pytest.approx(1.0)
    assert tpr_at_fpr(y, -s, 0.01) == pytest.approx(0.0)


def test_membership_inference_balances_and_brackets():
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(20, 4))
    members = np.r_[shared + rng.normal(scale=0.05, size=shared.shape), rng.normal(size=(80, 4))]
    nonmembers = rng.normal(size=(40, 4))
    out = membership_inference(shared, members, nonmembers, n_bootstrap=100, seed=1)
    assert out["n_members"] == out["n_nonmembers"] == 40
    assert out["auc_ci95"][0] <= out["auc"] <= out["auc_ci95"][1]
    assert out["tpr_at_1pct_fpr_ci95"][0] <= out["tpr_at_1pct_fpr"] <= out["tpr_at_1pct_fpr_ci95"][1]
    assert out == membership_inference(shared, members, nonmembers, n_bootstrap=100, seed=1)  # deterministic


def test_planted_members_are_scored_as_members_auc_above_one_half():
    """Members that are near copies of the shared images must score higher than unrelated non-members: AUC near 1
    with its CI above 0.5 (a flipped score would give AUC near 0)."""
    rng = np.random.default_rng(4)
    shared = rng.normal(size=(40, 4))
    members = shared + rng.normal(scale=0.05, size=shared.shape)
    nonmembers = rng.normal(size=(40, 4))
    out = membership_inference(shared, members, nonmembers, n_bootstrap=100, seed=1)
    assert out["auc_ci95"][0] > 0.5 and out["auc"] > 0.95


def test_prdc_with_given_radii_equals_computed():
    fake = np.array([[1, 0], [30, 0], [0, 5]], dtype=float)
    radii = knn_distances(REAL, REAL, 2, exclude_self=True)[0][:, 1]
    assert prdc(REAL, fake, k=2, real_radii=radii) == prdc(REAL, fake, k=2)


# ----------------------------------------------------------------------------------------- Fréchet, bootstrap


def test_frechet_distance_hand_computed():
    # a: the corners of a 2×2 square (mean (1,1), unbiased covariance 4/3·I); b: of a 4×4 square at (10,10)
    # (mean (12,12), covariance 16/3·I). FD = |Δμ|² + tr Σa + tr Σb − 2 tr (Σa Σb)^½ = 242 + 40/3 − 2·16/3.
    a = np.array([[0, 0], [2, 0], [0, 2], [2, 2]], dtype=float)
    b = a * 2 + 10
    assert frechet_distance(a, b) == pytest.approx(242 + 40 / 3 - 32 / 3, rel=1e-9)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-9)


def test_bootstrap_ci_width_matches_the_auc_standard_error():
    """The bootstrap must resample: its 95 % CI is about ±1.96 × the Hanley–McNeil standard error of the AUC."""
    rng = np.random.default_rng(5)
    m, n = rng.normal(0.5, 1, 80), rng.normal(0, 1, 80)
    out = attack_metrics(m, n, n_bootstrap=400, seed=0)
    auc = out["auc"]
    assert auc == pytest.approx(mann_whitney_auc(m, n))
    q1, q2 = auc / (2 - auc), 2 * auc**2 / (1 + auc)
    se = np.sqrt((auc * (1 - auc) + 79 * (q1 - auc**2) + 79 * (q2 - auc**2)) / (80 * 80))
    lo, hi = out["auc_ci95"]
    assert 0.7 < (hi - lo) / (2 * 1.96 * se) < 1.3
    assert lo < auc < hi


def test_mann_whitney_auc_equals_sklearn_with_ties():
    from sklearn.metrics import roc_auc_score

    m, n = np.array([3, 1, 2, 2, 5.0]), np.array([2, 0, 1, 4.0])
    y = np.r_[np.ones(5), np.zeros(4)]
    assert mann_whitney_auc(m, n) == pytest.approx(roc_auc_score(y, np.r_[m, n]))


def test_bootstrap_metrics_at_once_equal_scikit_learn_one_resample_at_a_time():
    """The bootstrap scores its resamples together; each row must equal scikit-learn's AUC and the ROC-based TPR,
    with ties (integer scores) and at a target FPR that is itself a vertex (1/4 with 4 non-members)."""
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(11)
    for n1, n2, target in [(6, 4, 0.25), (6, 4, 0.01), (30, 50, 0.01), (50, 30, 0.1), (5, 5, 1.0)]:
        members = rng.integers(0, 6, (40, n1)).astype(float)
        nonmembers = rng.integers(0, 5, (40, n2)).astype(float)
        aucs, tprs = mann_whitney_aucs(members, nonmembers), tprs_at_fpr(members, nonmembers, target)
        y = np.r_[np.ones(n1), np.zeros(n2)]
        for k in range(40):
            scores = np.r_[members[k], nonmembers[k]]
            assert aucs[k] == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
            assert tprs[k] == pytest.approx(tpr_at_fpr(y, scores, target), abs=1e-12), (n1, n2, target, k)


# ----------------------------------------------------------------------------------------- streaming, DCR share


def test_scan_reference_streamed_from_npz_equals_brute_force(tmp_path):
    rng = np.random.default_rng(6)
    train = rng.integers(0, 256, size=(97, 4, 4, 3), dtype=np.uint8)
    train[50] = train[7]  # an exact tie across chunks
    save_npz(tmp_path / "r.npz", train_images=train)
    q = pixel_rows(np.r_[train[[7, 3]], rng.integers(0, 256, size=(9, 4, 4, 3), dtype=np.uint8)])
    full = ((q[:, None, :].astype(np.int64) - pixel_rows(train)[None].astype(np.int64)) ** 2).sum(-1)  # integers
    thr = np.sort(full, axis=1)[:, 4]  # the 5th smallest: 4 strictly closer (up to ties), ties counted apart
    for chunk in (5, 64):
        out = scan_reference(q, npz_row_chunks(tmp_path / "r.npz", "train_images"), thr, chunk=chunk)
        np.testing.assert_array_equal(out["d2"], full.min(1))  # exact: uint8 distances are integers
        np.testing.assert_array_equal(out["index"], full.argmin(1))
        np.testing.assert_array_equal(out["n_lt"], (full < thr[:, None]).sum(1))
        np.testing.assert_array_equal(out["n_eq"], (full == thr[:, None]).sum(1))
        assert out["n_reference"] == 97
    assert out["index"][0] == 7  # the first of the tied rows


def test_closer_to_train_probability_equals_enumerating_every_subsample():
    """Oracle: every h-subset of N train rows, nearest drawn row vs the holdout neighbour (ties one half)."""
    from itertools import combinations

    rng = np.random.default_rng(7)
    n_train, h = 9, 4
    d_train = rng.integers(0, 6, size=(12, n_train)).astype(float)  # many ties
    d_hold = rng.integers(0, 6, size=12).astype(float)
    subsets = list(combinations(range(n_train), h))
    oracle = [
        np.mean([(d[list(s)].min() < dh) + 0.5 * (d[list(s)].min() == dh) for s in subsets])
        for d, dh in zip(d_train, d_hold)
    ]
    got = closer_to_train_probability(
        (d_train < d_hold[:, None]).sum(1), (d_train == d_hold[:, None]).sum(1), n_train, h
    )
    np.testing.assert_allclose(got, oracle, rtol=1e-12, atol=1e-12)
    with pytest.raises(HistodistillError, match="holdout no larger"):
        closer_to_train_probability(np.zeros(1), np.zeros(1), 3, 4)


def test_wilson_interval_known_values():
    np.testing.assert_allclose(wilson_ci(0.5, 100), [0.40383, 0.59617], atol=1e-5)
    assert wilson_ci(1.0, 10)[0] == pytest.approx(0.72246, abs=1e-5)


def test_dcr_share_power_grows_with_set_size():
    p_null = np.full(500, 0.5)
    p_planted = np.full(100, 0.9)
    small = dcr_share_power(10, p_planted, p_null, seed=0)
    large = dcr_share_power(1000, p_planted, p_null, seed=0)
    # with the null's own error (500 images: ±0.044) a 10 % leak (share 0.54) stays inside; 25 % (0.60) does not
    assert large["smallest_detectable_leak"] == 0.25
    assert small["smallest_detectable_leak"] is None or small["smallest_detectable_leak"] > 0.5
    assert large["power_by_leaked"]["1000"] == 1.0


def test_attack_power_sees_copies_of_scored_members_and_not_unrelated_images():
    rng = np.random.default_rng(8)
    members, nonmembers, filler = rng.normal(size=(100, 5)), rng.normal(size=(100, 5)), rng.normal(size=(300, 5))
    leaked = np.stack([members[rng.choice(100, 50, replace=False)] for _ in range(5)])
    strong = attack_power(50, leaked, filler, members, nonmembers, None, seed=0)
    assert strong["smallest_detectable_leak"] is not None and strong["smallest_detectable_leak"] <= 0.5
    unrelated = np.stack([rng.normal(size=(50, 5)) for _ in range(5)])
    null = attack_power(50, unrelated, filler, members, nonmembers, None, seed=0)
    assert max(null["power_by_leaked"].values()) <= 0.4


# ----------------------------------------------------------------------------------------- controls on real digits

GATE = {"dcr_share_margin": 0.0, "mia_auc": 0.6, "release_alpha": 0.05, "share_real_init": False}


@pytest.fixture(scope="module")
def audit_setup(digits, tmp_path_factory):
    """real.npz with half of the validation split held back: the other half is the null, the held-back half an
    unseen set that must pass. Pixel 'embedder' so that the test needs no trained network."""
    tmp = tmp_path_factory.mktemp("audit")
    perm = np.random.default_rng(0).permutation(len(digits["val_images"]))
    null_half, unseen_half = np.sort(perm[: len(perm) // 2]), np.sort(perm[len(perm) // 2 :])
    real = {**digits, "val_images": digits["val_images"][null_half], "val_labels": digits["val_labels"][null_half]}
    path = tmp / "real.npz"
    save_npz(path, **real)
    ref = privacy_reference(path, _pixels, k=5, seed=0, n_planted=60, planted_noise=0.02)
    unseen = {k: digits[f"val_{k}"][unseen_half] for k in ("images", "labels")}
    return path, ref, unseen


def _audit(subset, setup, name):
    path, ref, _ = setup
    rep = audit_subset(subset, path, ref, _pixels, where=name, n_bootstrap=50, power_reps=5)
    return rep


def test_the_audits_power_simulation_runs_its_distances_on_the_jobs_device(audit_setup, monkeypatch):
    """Issue 34: every all-pairs distance of the audit (the distance attack's power simulation: trillions of FLOP at
    the paper's size) goes to the device the job holds, never the CPU by default. The spy records the device of
    each call and computes on the CPU."""
    import histodistill.privacy.audit as audit

    path, ref, unseen = audit_setup
    seen, real_pairwise = [], audit.pairwise_d2
    monkeypatch.setattr(
        audit, "pairwise_d2", lambda a, b, chunk=2048, device="cpu": seen.append(device) or real_pairwise(a, b, chunk)
    )
    subset = {"images": unseen["images"][:10], "labels": unseen["labels"][:10], "indices": np.full(10, -1)}
    subset["source"] = np.asarray("distilled")
    marker = torch.device("cpu", 0)  # what run_job hands the job; unequal to the default "cpu"
    audit_subset(subset, path, ref, _pixels, where="s.npz", n_bootstrap=20, power_reps=3, device=marker)
    assert seen and all(d == marker for d in seen), seen


def test_reference_null_is_the_holdout_against_itself_and_planted_copies_sit_above_it(audit_setup):
    _, ref, _ = audit_setup
    for space in ("pixel", "embedding"):
        # each holdout image against the rest of the holdout: exchangeable with it, so about one half
        assert abs(float(np.mean(ref[f"{space}_null_p"])) - 0.5) < 0.08
        # near copies: far above it, though below 1 (the train split is subsampled to the holdout's size)
        assert float(np.mean(ref[f"{space}_planted_p"])) > float(np.mean(ref[f"{space}_null_p"])) + 0.2


def test_planted_near_copies_fail_and_unseen_images_pass_under_one_member_definition(digits, audit_setup):
    _, _, unseen = audit_setup
    idx = np.random.default_rng(3).choice(len(digits["train_images"]), 100, replace=False)
    planted = near_copies(digits["train_images"][idx], 0.02, seed=9)
    bad = _audit(_subset(planted, digits["train_labels"][idx], idx, "pool"), audit_setup, "planted")
    good = _audit(
        _subset(unseen["images"], unseen["labels"], np.arange(len(unseen["labels"])), "pool"), audit_setup, "unseen"
    )
    real = _audit(_subset(digits["train_images"][idx], digits["train_labels"][idx], idx, "real"), audit_setup, "real")
    assert bad["members"] == good["members"] == real["members"]  # one definition: the train split
    for rep in (bad, real):
        ok, reasons = gate_verdict(rep, GATE)
        assert not ok and any("100 of 100 images closer to a training image" in r for r in reasons)
        for space in ("pixel", "embedding"):
            assert rep["dcr"][space]["near_copy_rate"] == 1.0
            assert rep["dcr"][space]["difference_ci95"][0] > 0
    assert real["dcr"]["pixel"]["exact_copies"] == 100 and len(real["release"]["exact_copies"]) == 100
    copies = sorted(real["release"]["exact_copies"], key=lambda c: c["image"])
    np.testing.assert_array_equal(
        digits["train_images"][[c["train_index"] for c in copies]], digits["train_images"][idx]
    )
    assert bad["release"]["exact_copies"] == []  # noisy copies are near, not exact
    ok, reasons = gate_verdict(good, GATE)
    assert ok, reasons
    for space in ("pixel", "embedding"):
        d = good["dcr"][space]
        assert d["difference_ci95"][0] <= 0 <= d["difference_ci95"][1]
        assert good["mia_distance"][space]["auc_ci95"][0] < 0.5 < good["mia_distance"][space]["auc_ci95"][1]
    # power is stated for every test; fidelity sits beside an n-matched unseen real baseline
    assert set(good["dcr"]["pixel"]["power"]) >= {"smallest_detectable_leak", "power_by_leaked"}
    assert good["fidelity"]["n_baseline"] == len(unseen["labels"])
    assert good["fidelity"]["coverage"]["baseline"] is not None


def test_audit_report_table_and_figures(digits, audit_setup, tmp_path):
    idx = per_class(digits["train_labels"], 1)
    real_sub = _subset(digits["train_images"][idx], digits["train_labels"][idx], idx, "real")
    rep = _audit(real_sub, audit_setup, "random_real_ipc1.npz")
    # at 10 images recall is trivially ~1 for unseen real images too: left out, with the reason
    assert rep["fidelity"]["recall"]["value"] is None and "left_out" in rep["fidelity"]["recall"]
    nn = rep["_arrays"]["embedding"]["shared_nn"]
    np.testing.assert_array_equal(digits["train_images"][nn], real_sub["images"])
    r = jsonable(rep)
    assert "_arrays" not in json.dumps(r)
    r["subset"] = "random_real_ipc1"
    write_json(tmp_path / "a.json", r)
    table = privacy_table([tmp_path / "a.json"], GATE)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table.loc[0, "gate"] == "fail" and table.loc[0, "near_copy_rate_pixel"] == 1.0
    assert table.loc[0, "release_exact_copies"] == 10
    arrays = rep["_arrays"]["pixel"]
    closest_pairs_figure(real_sub["images"], digits["train_images"], arrays["shared_dcr"], nn, tmp_path / "p.png")
    dcr_histogram([("pixel", arrays["shared_dcr"], arrays["reference_dcr"], 0.1)], tmp_path / "h.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "h.png").stat().st_size > 1000


def _subset(images, labels, indices, source):
    return {"images": images, "labels": labels, "indices": indices, "source": np.asarray(source)}


def _pixels(images: np.ndarray) -> np.ndarray:
    return embed(images, None, "cpu")  # the project's 'pixels' embedder


def per_class(labels: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.where(labels == c)[0][:n] for c in np.unique(labels)])


def test_audit_subset_bad_input_names_the_file(digits, audit_setup):
    imgs = digits["train_images"][:4]
    path, ref, _ = audit_setup
    with pytest.raises(HistodistillError, match="s.npz: indices"):
        audit_subset(_subset(imgs, np.zeros(4), np.array([0, 1, 2, 10**6]), "real"), path, ref, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: unknown source"):
        audit_subset(_subset(imgs, np.zeros(4), np.arange(4), "other"), path, ref, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: images"):
        audit_subset(_subset(imgs[:, :4], np.zeros(4), np.arange(4), "pool"), path, ref, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: missing array 'source'"):
        audit_subset({"images": imgs}, path, ref, _pixels, where="s.npz")
