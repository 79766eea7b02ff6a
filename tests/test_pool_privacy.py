"""The pool-level non-inferiority test: its verdicts on pools with known excess, its cluster bootstrap, its power."""

from __future__ import annotations

import numpy as np
import pytest

from histodistill.privacy import cluster_means_bootstrap, non_inferiority_test


def _null(n, rng):
    return rng.uniform(size=n), np.arange(n)


def test_a_pool_like_the_null_passes_and_a_pool_with_excess_fails_when_there_is_power():
    rng = np.random.default_rng(0)
    p_null, c_null = _null(5000, rng)
    clean = non_inferiority_test(rng.uniform(size=5000), np.arange(5000), p_null, c_null, margin=0.03, n_boot=500)
    assert clean["verdict"] == "pass" and clean["power"] > 0.99 and clean["upper95"] < 0.03
    # every pool value moved up by 0.1: Δ = +0.1, far beyond the margin
    leaky = non_inferiority_test(rng.uniform(size=5000) + 0.1, np.arange(5000), p_null, c_null, margin=0.03, n_boot=500)
    assert leaky["verdict"] == "fail" and leaky["delta"] == pytest.approx(0.1, abs=0.01)


def test_too_small_a_holdout_reads_not_assessed_never_pass():
    rng = np.random.default_rng(1)
    p_null, c_null = _null(60, rng)
    t = non_inferiority_test(rng.uniform(size=60), np.arange(60), p_null, c_null, margin=0.03)
    assert t["power"] < 0.8 and t["verdict"] == "not assessed"


def test_the_bootstrap_resamples_clusters_not_images():
    """One training image reproduced 500 times is one draw: the interval must be as wide as for one value."""
    rng = np.random.default_rng(2)
    values = np.r_[np.full(500, 1.0), rng.uniform(size=500)]
    clusters = np.r_[np.zeros(500), np.arange(1, 501)]
    clustered = cluster_means_bootstrap(values, clusters, 2000, rng)
    naive = cluster_means_bootstrap(values, np.arange(1000), 2000, rng)
    # the big cluster enters each resample about Poisson(1) times, moving the mean between ~0.5 (absent) and ~0.8:
    # an sd of ~0.15, against ~0.01 when its 500 copies count as independent images
    assert np.std(clustered) > 10 * np.std(naive)
