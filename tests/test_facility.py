"""Certainty-weighted facility location (histodistill.selection.facility): the greedy step against brute force on small exact
cases, the partition-matroid quota, the objective against a direct computation, the kernel's bandwidth by hand, and
the certainty gate on a hand case."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from histodistill.base import HistodistillError
from histodistill.selection import (
    certainty_gate,
    certainty_weight_for,
    facility_value,
    gate_pool,
    greedy_facility_location,
    similarity,
)


def _direct(sim, p, chosen, lam):
    """F(S) by loops: every image's certainty times its best similarity to a chosen one, plus λ Σ log p_j."""
    total = 0.0
    for i in range(len(p)):
        total += p[i] * max(sim[i][j] for j in chosen)
    return total + lam * sum(math.log(p[j]) for j in chosen)


def _line_sim(points, h=1.0):
    x = np.asarray(points, dtype=float)
    return np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * h * h))


POINTS = [0.0, 0.1, 0.2, 5.0, 5.1, 10.0]


def test_greedy_picks_the_brute_force_optimum_on_two_clusters_and_an_outlier():
    sim, p = _line_sim(POINTS), np.ones(6)
    for budget in (1, 2, 3):
        best = max(itertools.combinations(range(6), budget), key=lambda s: _direct(sim, p, s, 0.0))
        chosen = greedy_facility_location(sim, p, budget)
        assert _direct(sim, p, chosen, 0.0) == pytest.approx(_direct(sim, p, best, 0.0), abs=1e-12)
    # budget 2: the middle of the large cluster and one of the pair (covering the outlier would leave the pair)
    assert sorted(greedy_facility_location(sim, p, 2).tolist())[0] == 1


def test_at_budget_one_certainty_moves_the_pick_to_the_certainty_weighted_density_peak():
    sim = _line_sim(POINTS)
    p = np.array([0.2, 0.2, 0.2, 0.95, 0.95, 0.9])  # the large cluster is uncertain
    for lam in (0.0, 0.5, 3.0):
        best = max(range(6), key=lambda j: _direct(sim, p, [j], lam))
        assert greedy_facility_location(sim, p, 1, lam).tolist() == [best]
    assert greedy_facility_location(sim, p, 1, 0.0).tolist() in ([3], [4])  # the sure pair, not the dense trio
    assert greedy_facility_location(sim, np.ones(6), 1, 0.0).tolist() == [1]  # p constant: the trio's middle


def test_the_certainty_term_falls_with_the_budget_by_its_decay_and_not_at_budget_one():
    """λ = c · n / B^a: at B = 1 the decay does not matter; at B = 2 with a large c, a = 2 still lets certainty pull
    a pick to the sure outlier while a = 12 leaves pure coverage (the λ = 0 optimum); the schema default a = 2 is the
    first round's λ = c · n / B²."""
    assert certainty_weight_for(6, 1, 3.0, 2.0) == certainty_weight_for(6, 1, 3.0, 4.0) == 18.0
    assert certainty_weight_for(6, 10, 3.0) == pytest.approx(6 * 3.0 / 100)
    sim = _line_sim(POINTS)
    p = np.array([0.9, 0.9, 0.9, 0.6, 0.6, 0.99])  # the pair covers more (1.2) than the sure outlier (0.99)
    coverage_only = sorted(greedy_facility_location(sim, p, 2, 0.0).tolist())
    assert 5 not in coverage_only
    slow = sorted(greedy_facility_location(sim, p, 2, certainty_weight_for(6, 2, 5.0, 2.0)).tolist())
    fast = sorted(greedy_facility_location(sim, p, 2, certainty_weight_for(6, 2, 5.0, 12.0)).tolist())
    assert 5 in slow and fast == coverage_only


def test_the_partition_matroid_quota_is_respected_and_greedy_reaches_the_constrained_optimum():
    sim, p = _line_sim(POINTS), np.ones(6)
    groups = np.array([0, 0, 0, 1, 1, 1])
    quota = {0: 2, 1: 1}
    chosen = greedy_facility_location(sim, p, 3, groups=groups, quota=quota)
    assert sum(groups[chosen] == 0) <= 2 and sum(groups[chosen] == 1) <= 1 and len(set(chosen.tolist())) == 3
    feasible = [
        s
        for s in itertools.combinations(range(6), 3)
        if sum(groups[list(s)] == 0) <= 2 and sum(groups[list(s)] == 1) <= 1
    ]
    best = max(feasible, key=lambda s: _direct(sim, p, s, 0.0))
    assert _direct(sim, p, chosen, 0.0) == pytest.approx(_direct(sim, p, best, 0.0), abs=1e-12)
    # unconstrained, greedy would take both of the far group's images (5.0/5.1 and 10.0): the quota forbids it
    free = greedy_facility_location(sim, p, 3)
    assert sum(groups[free] == 1) == 2
    with pytest.raises(HistodistillError, match="cannot fill"):
        greedy_facility_location(sim, p, 4, groups=groups, quota={0: 2, 1: 1})


def test_with_constant_certainty_and_no_certainty_term_every_set_scores_as_plain_facility_location():
    rng = np.random.default_rng(5)
    emb = rng.normal(size=(6, 3))
    sim = similarity(emb)
    for size in (1, 2, 3):
        for s in itertools.combinations(range(6), size):
            plain = sum(max(sim[i][j] for j in s) for i in range(6))
            assert facility_value(sim, np.full(6, 0.7), np.array(s), 0.0) == pytest.approx(0.7 * plain, rel=1e-12)


def test_the_kernel_bandwidth_is_the_median_distance_to_the_kth_neighbour():
    emb = np.array([[0.0], [1.0], [3.0]])  # nearest other image: 1, 1, 2 -> h = 1
    sim = similarity(emb, "heat", k=1)
    assert sim[0, 1] == pytest.approx(math.exp(-0.5)) and sim[0, 2] == pytest.approx(math.exp(-4.5))
    assert np.allclose(np.diag(sim), 1.0)
    top = similarity(emb, "tophat", k=1)
    assert top.tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 1]]


def test_the_certainty_gate_drops_the_misclassified_then_the_least_sure_share_keeping_at_least_the_budget():
    certainty = np.array([0.9, 0.5, 0.8, 0.3, 0.95, 0.6])
    correct = np.array([True, True, False, True, True, True])
    # right, surest first: 4, 0, 5, 1, 3; a quarter of five rounds down to one: 3 goes
    assert certainty_gate(certainty, correct, 0.25, 2).tolist() == [True, True, False, False, True, True]
    # half of five: two go (1, 3), leaving three; the budget of five takes the surest of the rest: 2 (wrong), then 1
    assert certainty_gate(certainty, correct, 0.5, 5).tolist() == [True, True, True, False, True, True]
    assert certainty_gate(certainty, correct, 0.0, 1).tolist() == correct.tolist()
    with pytest.raises(HistodistillError, match="certainty_gate"):
        certainty_gate(certainty, correct, 1.0, 1)


def test_infodist_plus_facility_pick_takes_the_best_set_the_communities_quotas_allow_in_node_ids():
    import pandas as pd

    from histodistill.selection import community_prototypes

    # six images of one class, node ids 0..5 (rows of emb), two communities: {0, 1, 2, 3} and {4, 5}
    emb = np.array([[0.0], [0.1], [0.2], [5.0], [5.1], [10.0]])
    communities = pd.DataFrame(
        {
            "node": range(6),
            "module": [1, 1, 1, 1, 2, 2],
            "modular_centrality": 0.0,
            "flow": [0.2] * 4 + [0.1] * 2,
            "enter_flow": 0.0,
            "exit_flow": 0.0,
        }
    )
    p = np.array([0.9, 0.9, 0.9, 0.5, 0.9, 0.9])
    sim = similarity(emb)
    # size quota, budget 3: one each, the third to the larger community (D'Hondt 4/2 > 2/2)
    feasible = [
        s for s in itertools.combinations(range(6), 3) if sum(x < 4 for x in s) <= 2 and sum(x >= 4 for x in s) <= 1
    ]
    best = max(feasible, key=lambda s: _direct(sim, p, s, 0.0))
    chosen = community_prototypes(emb, communities, 3, pick="facility", certainty=p, certainty_weight=0.0)
    assert sorted(chosen.tolist()) == sorted(best)
    # only kept nodes are offered (rows of a filtered table keep their node ids)
    kept = communities[communities["node"] != 1]
    assert 1 not in community_prototypes(emb, kept, 3, pick="facility", certainty=p).tolist()
    with pytest.raises(HistodistillError, match="facility needs"):
        community_prototypes(emb, communities, 3, pick="facility")
    # quota free: the communities do not bind; with four of the six in one community of quota 1, the best set of
    # all takes two of them, which the size quota forbids
    one = np.ones(6)
    lopsided = communities.assign(module=[1, 2, 2, 2, 2, 1])  # sizes 2 and 4, budget 2: one each under `size`
    unbound = max(itertools.combinations(range(6), 2), key=lambda s: _direct(sim, one, s, 0.0))
    assert all(lopsided["module"][list(unbound)] == 2)  # the best pair lies in community 2
    free = community_prototypes(emb, lopsided, 2, pick="facility", quota="free", certainty=one, certainty_weight=0.0)
    assert all(lopsided["module"][free] == 2)
    assert _direct(sim, one, free, 0.0) >= (1 - 1 / math.e) * _direct(sim, one, unbound, 0.0)  # greedy's guarantee
    sized = community_prototypes(emb, lopsided, 2, pick="facility", certainty=one, certainty_weight=0.0)
    assert sorted((lopsided.set_index("node").loc[sized, "module"]).tolist()) == [1, 2]
    with pytest.raises(HistodistillError, match="free"):
        community_prototypes(emb, communities, 3, pick="medoid", quota="free")


def test_the_pool_gate_works_class_by_class_among_the_images_still_kept():
    certainty = np.array([0.9, 0.2, 0.8, 0.7, 0.6, 0.1, 0.95])
    correct = np.array([True, True, True, False, True, True, True])
    labels = np.array([0, 0, 0, 1, 1, 1, 0])
    keep = np.array([True, True, True, True, True, True, False])  # row 6 (class 0) was already left out
    # class 0 among rows 0-2: all right, a third of three drops one, the least sure (row 1)
    # class 1 among rows 3-5: row 3 wrong; a third of the two right rounds down to none
    out = gate_pool(certainty, correct, labels, keep, 1 / 3, 1)
    assert out.tolist() == [True, False, True, False, True, True, False]
