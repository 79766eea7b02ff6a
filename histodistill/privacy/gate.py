"""The share gate's verdict on an audit report: which clause (DCR share, attack) fails. No torch."""

from __future__ import annotations

from typing import Any

from .release import release_reasons
from .spaces import SPACES


def made_from_real_images(report: dict[str, Any]) -> bool:
    """True when the audited set's images are, or started from, real training images."""
    return report["source"] == "real" or report.get("init", "") == "real"


def dcr_clause_fails(dcr: dict[str, Any], gate: dict[str, Any]) -> bool:
    """The gate's DCR-share clause: the lower end of share − null's 95 % CI above `dcr_share_margin`."""
    return bool(dcr["difference_ci95"][0] > gate["dcr_share_margin"])


def attack_clause_fails(attack: dict[str, Any], gate: dict[str, Any]) -> bool:
    """The gate's distance-attack clause: the AUC's 95 % CI lying above `mia_auc`."""
    return bool(attack["auc_ci95"] is not None and attack["auc_ci95"][0] > gate["mia_auc"])


def gate_verdict(report: dict[str, Any], gate: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether an audited set may be shared, and every reason it may not: a set made from real training images
    (unless `share_real_init`); any exact copy or any image the per-image release test flags; a DCR share above the
    null by more than `dcr_share_margin` (lower end of the difference's 95 % CI); a distance attack whose AUC's CI
    lies above `mia_auc`."""
    reasons = []
    if made_from_real_images(report) and not gate.get("share_real_init", False):
        reasons.append("made from real training images (privacy.share_real_init is false)")
    reasons += release_reasons(report["release"])
    for space in SPACES:
        d = report["dcr"][space]
        if dcr_clause_fails(d, gate):
            reasons.append(
                f"{space} DCR share {d['share']:.3f} above the holdout null {d['null_share']:.3f} (difference CI low "
                f"{d['difference_ci95'][0]:+.3f} > {gate['dcr_share_margin']})"
            )
        a = report["mia_distance"][space]
        if attack_clause_fails(a, gate):
            reasons.append(
                f"{space} distance-attack AUC {a['auc']:.3f} (CI low {a['auc_ci95'][0]:.3f} > {gate['mia_auc']})"
            )
    return not reasons, reasons
