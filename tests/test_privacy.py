"""Privacy and fidelity audit: exact neighbour search, hand-checked PRDC, and controls that must fail and pass."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from histodistill.data import load_real
from histodistill.embed import embed
from histodistill.errors import HistodistillError
from histodistill.images import to_model_space
from histodistill.io import write_json
from histodistill.privacy import (
    PIXEL_SCALE,
    TABLE_COLUMNS,
    audit_subset,
    closest_pairs_figure,
    dcr_histogram,
    density_ratio_attack,
    distance_to_closest_record,
    jsonable,
    knn_distances,
    membership_inference,
    nearest_distances,
    pixel_rows,
    prdc,
    privacy_table,
    split_holdout,
    tpr_at_fpr,
)


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


# ----------------------------------------------------------------------------------------- controls on real digits


def test_control_training_subset_fails_the_audit(digits):
    """Shared = real TRAINING images: every one is a copy and its own source images are found as members."""
    train, test = pixel_rows(digits["train_images"]), pixel_rows(digits["test_images"])
    idx = np.random.default_rng(0).choice(len(train), 100, replace=False)
    dcr = distance_to_closest_record(train[idx], train, test, scale=PIXEL_SCALE)
    assert dcr["copy_rate"] > 0.9
    assert dcr["median_ratio"] < 0.1
    ref_half, non_half = split_holdout(len(test), 0)
    mia = membership_inference(train[idx], train[idx], test[non_half], n_bootstrap=50)
    assert mia["auc"] > 0.95
    assert mia["tpr_at_1pct_fpr"] > 0.9
    dom = density_ratio_attack(train[idx], test[ref_half], train[idx], test[non_half], n_bootstrap=50)
    assert dom["auc"] > 0.75


def test_control_holdout_subset_passes_the_audit(digits):
    """Shared = real HOLDOUT images (never trained on): copy rate near 5 %, attacks near chance.

    The test split is halved: one half is the DCR reference (and DOMIAS reference), the other the shared set; the
    attacks' non-members are the validation split, disjoint from both.
    """
    train, test, val = (pixel_rows(digits[f"{s}_images"]) for s in ("train", "test", "val"))
    ref_half, shared_half = split_holdout(len(test), 0)
    dcr = distance_to_closest_record(test[shared_half], train, test[ref_half], scale=PIXEL_SCALE)
    assert dcr["copy_rate"] < 0.2
    assert 0.8 < dcr["median_ratio"] < 1.25
    members = train[np.random.default_rng(1).choice(len(train), len(val), replace=False)]
    mia = membership_inference(test[shared_half], members, val, n_bootstrap=50)
    assert abs(mia["auc"] - 0.5) < 0.15
    dom = density_ratio_attack(test[shared_half], test[ref_half], members, val, n_bootstrap=50)
    assert abs(dom["auc"] - 0.5) < 0.15


def _subset(images, labels, indices, source):
    return {"images": images, "labels": labels, "indices": indices, "source": np.asarray(source)}


def _pixels(images: np.ndarray) -> np.ndarray:
    return embed(images, None, "cpu")  # the project's 'pixels' embedder


def per_class(labels: np.ndarray, n: int) -> np.ndarray:
    return np.concatenate([np.where(labels == c)[0][:n] for c in np.unique(labels)])


def test_audit_subset_real_vs_fresh(digits, tmp_path):
    """Whole report: a random-real subset is flagged, a 'pool' of fresh real images (validation split) is not."""
    idx = per_class(digits["train_labels"], 3)
    real_sub = _subset(digits["train_images"][idx], digits["train_labels"][idx], idx, "real")
    rep = audit_subset(real_sub, digits, _pixels, where="random_real_ipc3.npz", n_bootstrap=50)
    assert rep["dcr"]["embedding"]["copy_rate"] == 1.0 and rep["dcr"]["pixel"]["exact_copies"] == len(idx)
    assert rep["mia_distance"]["embedding"]["auc"] > 0.95
    assert rep["mia_distance"]["embedding"]["n_members"] == len(idx)
    assert rep["fidelity"]["precision"] == 1.0  # every shared image is a real train image
    nn = rep["dcr"]["embedding"]["_arrays"]["shared_nn"]
    np.testing.assert_array_equal(digits["train_images"][nn], real_sub["images"])

    vidx = per_class(digits["val_labels"], 3)
    fresh = _subset(digits["val_images"][vidx], digits["val_labels"][vidx], vidx, "pool")
    rep2 = audit_subset(fresh, digits, _pixels, where="fresh_ipc3.npz", n_bootstrap=50)
    assert rep2["dcr"]["pixel"]["copy_rate"] < 0.2
    assert abs(rep2["mia_distance"]["pixel"]["auc"] - 0.5) < 0.15
    assert rep2["mia_distance"]["pixel"]["n_members"] == rep2["mia_distance"]["pixel"]["n_nonmembers"]
    assert rep2["fidelity"]["frechet_distance_embedder"] > 0

    paths = []
    for name, r in (("random_real_ipc3", rep), ("random_synthetic_ipc3", rep2)):
        r = jsonable(r)
        assert "_arrays" not in json.dumps(r)
        r["subset"] = name
        paths.append(tmp_path / f"{name}.json")
        write_json(paths[-1], r)
    table = privacy_table(paths)
    assert list(table.columns) == list(TABLE_COLUMNS)
    assert table["method"].tolist() == ["random_real", "random_synthetic"]
    assert table.loc[0, "copy_rate"] == 1.0 and table.loc[1, "copy_rate"] < 0.2

    arrays = rep["dcr"]["embedding"]["_arrays"]
    closest_pairs_figure(real_sub["images"], digits["train_images"], arrays["shared_dcr"], nn, tmp_path / "p.png")
    dcr_histogram([("pixel", arrays["shared_dcr"], arrays["reference_dcr"])], tmp_path / "h.png")
    assert (tmp_path / "p.png").stat().st_size > 1000 and (tmp_path / "h.png").stat().st_size > 1000


def test_audit_subset_bad_input_names_the_file(digits):
    imgs = digits["train_images"][:4]
    with pytest.raises(HistodistillError, match="s.npz: indices"):
        audit_subset(_subset(imgs, np.zeros(4), np.array([0, 1, 2, 10**6]), "real"), digits, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: unknown source"):
        audit_subset(_subset(imgs, np.zeros(4), np.arange(4), "other"), digits, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: images"):
        audit_subset(_subset(imgs[:, :4], np.zeros(4), np.arange(4), "pool"), digits, _pixels, where="s.npz")
    with pytest.raises(HistodistillError, match="s.npz: missing array 'source'"):
        audit_subset({"images": imgs}, digits, _pixels, where="s.npz")
