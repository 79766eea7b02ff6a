"""The DCR share: the probability that a shared image is closer to a training image than to an unseen one, its
confidence intervals, its test against the holdout's null, and that test's power."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import gammaln

from histodistill.base.errors import HistodistillError


def closer_to_train_probability(n_lt: np.ndarray, n_eq: np.ndarray, n_train: int, n_holdout: int) -> np.ndarray:
    """Per query: the probability, over uniform draws of `n_holdout` of the `n_train` train rows, that the nearest
    drawn train row is closer than the query's nearest holdout row (exact ties count one half).

    With m train rows closer than the holdout neighbour, no closer row is drawn with probability
    C(N − m, h) / C(N, h); this is the limit of averaging over many subsample draws, computed exactly.
    """
    if n_holdout > n_train:
        raise HistodistillError(
            f"the DCR share needs a holdout no larger than the train split ({n_holdout} > {n_train} images)"
        )
    big_n, h = float(n_train), float(n_holdout)

    def none_drawn(m: np.ndarray) -> np.ndarray:
        m = np.asarray(m, np.float64)
        ok = big_n - m >= h
        rest = np.where(ok, big_n - m, h)
        logp = gammaln(rest + 1) - gammaln(rest - h + 1) - gammaln(big_n + 1) + gammaln(big_n - h + 1)
        return np.where(ok, np.exp(logp), 0.0)

    n_lt = np.asarray(n_lt)
    return 1.0 - 0.5 * (none_drawn(n_lt) + none_drawn(n_lt + np.asarray(n_eq)))


def wilson_ci(share: float, n: int, z: float = 1.959964) -> list[float]:
    """Wilson score 95 % interval of a proportion `share` of `n` (conservative for means of [0, 1] probabilities)."""
    if n < 1:
        raise HistodistillError("wilson_ci: needs at least one observation")
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [float(max(0.0, centre - half)), float(min(1.0, centre + half))]


def difference_ci(share: float, n: int, null: float, n_null: int) -> list[float]:
    """95 % interval of share − null from the two Wilson intervals (Newcombe 1998, method 10): the null's own error
    is part of it."""
    lo1, hi1 = wilson_ci(share, n)
    lo2, hi2 = wilson_ci(null, n_null)
    d = share - null
    return [float(d - np.hypot(share - lo1, hi2 - null)), float(d + np.hypot(hi1 - share, null - lo2))]


def dcr_share_test(p_shared: np.ndarray, p_null: np.ndarray) -> dict[str, Any]:
    """DCR share of a set (mean closer-to-train probability, 0.5 = no leakage) with its Wilson 95 % CI, beside the
    same number for the null (audit-holdout images, each against the rest of the holdout), and the difference
    share − null with a 95 % interval that includes the null's error."""
    p_shared, p_null = np.asarray(p_shared, float), np.asarray(p_null, float)
    share, null = float(p_shared.mean()), float(p_null.mean())
    ci = wilson_ci(share, len(p_shared))
    return {
        "share": share,
        "ci95": ci,
        "n": int(len(p_shared)),
        "null_share": null,
        "null_ci95": wilson_ci(null, len(p_null)),
        "n_null": int(len(p_null)),
        "ci_contains_null": bool(ci[0] <= null <= ci[1]),
        "difference": share - null,
        "difference_ci95": difference_ci(share, len(p_shared), null, len(p_null)),
    }


def leak_counts(n: int) -> list[int]:
    """Numbers of leaked images tried by the power simulations of a set of n images."""
    return sorted({min(n, max(1, int(round(f * n)))) for f in (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)})


def _smallest_detectable(power: dict[int, float], n: int, target: float) -> float | None:
    hits = [m for m, p in sorted(power.items()) if p >= target]
    return hits[0] / n if hits else None


def dcr_share_power(
    n: int,
    p_planted: np.ndarray,
    p_null: np.ndarray,
    reps: int = 200,
    seed: int = 0,
    target: float = 0.8,
    margin: float = 0.0,
) -> dict[str, Any]:
    """Smallest share of planted near-copies that the gate's DCR criterion detects (lower end of the interval of
    share − null above `margin`) in at least `target` of simulated sets of n images (the rest unseen holdout
    images), by simulation."""
    rng = np.random.default_rng([seed, 41, n])
    null_mean = float(np.mean(p_null))
    power = {}
    for m in leak_counts(n):
        shares = (
            rng.choice(p_planted, (reps, m)).sum(1) + rng.choice(p_null, (reps, n - m)).sum(1)
        ) / n  # fmt: skip
        power[m] = float(np.mean([difference_ci(s, n, null_mean, len(p_null))[0] > margin for s in shares]))
    return {
        "smallest_detectable_leak": _smallest_detectable(power, n, target),
        "power_by_leaked": {str(m): p for m, p in power.items()},
        "target_power": target,
        "reps": reps,
    }


def mann_whitney_auc(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> float:
    """AUC of member vs non-member scores from mid-ranks (ties count one half)."""
    m, n = np.asarray(member_scores, float), np.asarray(nonmember_scores, float)
    return float(mann_whitney_aucs(m[None], n[None])[0])


def mann_whitney_aucs(member_scores: np.ndarray, nonmember_scores: np.ndarray) -> np.ndarray:
    """Row-wise `mann_whitney_auc` of (B, n1) member and (B, n2) non-member scores (bootstrap resamples at once)."""
    from scipy.stats import rankdata

    n1, n2 = member_scores.shape[1], nonmember_scores.shape[1]
    ranks = rankdata(np.concatenate([member_scores, nonmember_scores], axis=1), axis=1)
    return (ranks[:, :n1].sum(axis=1) - n1 * (n1 + 1) / 2) / (n1 * n2)


def auc_detects(member_scores: np.ndarray, nonmember_scores: np.ndarray, z: float = 1.644854) -> bool:
    """One-sided Mann–Whitney test at 5 % (normal approximation): is the attack's AUC above 0.5?"""
    n1, n2 = len(member_scores), len(nonmember_scores)
    auc = mann_whitney_auc(member_scores, nonmember_scores)
    return bool((auc - 0.5) / np.sqrt((n1 + n2 + 1) / (12.0 * n1 * n2)) > z)


def jsonable(report: Any) -> Any:
    """A copy of a report without the keys that start with '_' (raw arrays for figures), at every level."""
    if isinstance(report, dict):
        return {k: jsonable(v) for k, v in report.items() if not str(k).startswith("_")}
    if isinstance(report, (list, tuple)):
        return [jsonable(v) for v in report]
    if isinstance(report, np.generic):
        return report.item()
    if isinstance(report, np.ndarray):
        return report.tolist()
    return report
