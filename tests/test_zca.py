"""ZCA whitening for MTT (`distill.mtt.zca`): the transform against scikit-learn's PCA whitening (an independent
computation: an SVD of the data, not an eigendecomposition of the covariance), its inverse, and MTT distilling in
whitened space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.decomposition import PCA

from histodistill.base import HistodistillError, to_model_space
from histodistill.data import load_digits_splits
from histodistill.distill import (
    ExpertConfig,
    MTTConfig,
    distilled_under,
    fit_zca,
    train_expert,
    trajectory_matching,
    unwhiten,
    whiten,
    zca_arrays,
    zca_from_arrays,
)


@pytest.fixture(scope="module")
def images():
    """60 random 3x3 RGB uint8 images: 27 dimensions, full rank."""
    return np.random.default_rng(0).integers(0, 256, size=(60, 3, 3, 3), dtype=np.uint8)


def _rows(images):
    return to_model_space(images).double().reshape(len(images), -1).numpy()


@pytest.mark.parametrize("eps", [0.1, 1e-3])
def test_zca_is_pca_whitening_rotated_back_with_eps_added_to_the_variances(images, eps):
    """ZCA = V diag((λ + ε)^-½) Vᵀ with λ the unbiased variances along PCA's axes V (scikit-learn: SVD of the
    centred data, explained_variance_ = s² / (n − 1)); at ε → 0 it is PCA whitening followed by Vᵀ."""
    x = _rows(images)
    pca = PCA(svd_solver="full").fit(x)
    v, lam = pca.components_, pca.explained_variance_
    expected = (x - pca.mean_) @ (v.T / np.sqrt(lam + eps)) @ v
    zca = fit_zca(images, eps, chunk=7)  # several blocks: the covariance is accumulated block by block
    np.testing.assert_allclose(zca.mean, pca.mean_, atol=1e-12)
    z = whiten(images, zca, chunk=11)
    assert z.shape == (60, 3, 3, 3) and z.dtype == np.float32  # NHWC, as every image array
    rows = z.transpose(0, 3, 1, 2).reshape(60, -1)  # the networks' NCHW order, as the transform acts
    np.testing.assert_allclose(rows, expected, atol=2e-5)
    if eps == 1e-3:  # nearly white: unit covariance up to the small ε
        cov = np.cov(rows.astype(np.float64), rowvar=False)
        np.testing.assert_allclose(cov, np.eye(27), atol=0.05)


def test_unwhiten_inverts_whiten_and_the_file_round_trip_keeps_the_digest(images):
    zca = fit_zca(images, 0.1)
    z = to_model_space(whiten(images, zca))  # float NHWC -> NCHW, values kept
    np.testing.assert_allclose(unwhiten(z, zca).numpy(), to_model_space(images).numpy(), atol=1e-5)
    again = zca_from_arrays({k: np.asarray(v) for k, v in zca_arrays(zca).items()})
    assert again.digest == zca.digest and again.shape == (3, 3, 3)
    assert fit_zca(images, 0.2).digest != zca.digest and fit_zca(images[:50], 0.1).digest != zca.digest
    with pytest.raises(HistodistillError, match="distill.mtt.zca_eps"):
        fit_zca(images, 0.0)
    with pytest.raises(HistodistillError, match="fitted on"):
        whiten(images[:, :2, :2], zca)


def test_mtt_under_zca_starts_from_whitened_real_images_and_keeps_the_set_as_distilled():
    """With image steps of ~0, the distilled set is its start: the whitened real images it was drawn from (so the
    experts and the student saw whitened data), kept unclipped, and its pixels are those real images again."""
    digits = load_digits_splits(8, 0, 0.15, 0.3)
    images, labels = digits["train_images"], digits["train_labels"]
    torch.set_num_threads(1)
    zca = fit_zca(images, 0.1)
    ec = ExpertConfig(epochs=2, batch_size=128, depth=2, width=8)
    experts = [train_expert(images, labels, 10, ec, 0, progress=False, zca=zca)]
    assert not np.array_equal(experts[0], train_expert(images, labels, 10, ec, 0, progress=False))
    cfg = MTTConfig(iterations=2, syn_steps=2, expert_epochs=1, max_start_epoch=1, lr_images=1e-12, seed=0)
    result, _ = trajectory_matching(images, labels, 10, 2, experts, ec, cfg, progress=False, zca=zca)
    start = whiten(images[result.indices], zca)
    assert result.model_images.shape == (20, 8, 8, 1) and np.abs(result.model_images).max() > 1.0  # not clipped
    np.testing.assert_allclose(result.model_images, start, atol=1e-4)
    assert np.abs(result.images.astype(int) - images[result.indices].astype(int)).max() <= 1
    plain, _ = trajectory_matching(images, labels, 10, 2, experts, ec, cfg, progress=False)
    assert plain.model_images is None


def test_a_zca_set_is_used_only_under_the_transform_it_was_distilled_under(images):
    zca, other = fit_zca(images, 0.1), fit_zca(images, 0.2)
    subset = {"model_images": whiten(images[:4], zca), "zca": np.asarray(zca.digest)}
    np.testing.assert_array_equal(distilled_under(subset, zca, "s.npz"), subset["model_images"])
    with pytest.raises(HistodistillError, match=r"^s\.npz was distilled under ZCA transform .*rerun distill_mtt"):
        distilled_under(subset, other, "s.npz")
    with pytest.raises(HistodistillError, match="none \\(distill.mtt.zca is off\\)"):
        distilled_under(subset, None, "s.npz")
