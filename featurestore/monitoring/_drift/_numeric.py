"""Drift of a numeric feature: PSI over the reference's quantile bins and the KS distance decide;
the Wasserstein distance, Jensen-Shannon, mean, std and quantile shifts inform."""

from __future__ import annotations

from typing import Any

import numpy as np

from featurestore._format import number
from featurestore._profiles import FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._grading import (
    Check,
    Outcome,
    Sides,
    insufficient,
    threshold_check,
)
from featurestore.monitoring._drift._histogram import bin_labels, histogram
from featurestore.monitoring._drift._null_rate import null_check
from featurestore.monitoring._drift._statistics import (
    chi2_p,
    current_quantiles,
    js_distance,
    ks_distance,
    ks_p,
    psi,
    wasserstein,
)

__all__ = ["QUANTILE_SHIFTS", "numeric"]

QUANTILE_SHIFTS = (0.05, 0.25, 0.5, 0.75, 0.95)


def numeric(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> Outcome:
    """Checks, statistics and histogram of a numeric feature."""
    stats: dict[str, Any] = {}
    both = bool(ref.non_null and cur.non_null)
    if both:
        checks, chart = _distribution(ref, cur, cfg, small, sides, stats)
    else:
        checks = [insufficient("PSI", ref.non_null, cur.non_null, cfg.min_rows_psi, "values")]
        chart = None
    checks.append(null_check(ref, cur, cfg, small, stats))
    stats |= _moments(ref, cur)
    if both and ref.quantiles:
        now = current_quantiles(cur, QUANTILE_SHIFTS)
        for prob, q in zip(QUANTILE_SHIFTS, now, strict=True):
            stats[f"q{round(100 * prob):02d}_shift"] = q - ref.quantiles[round(100 * prob)]
    return checks, stats, chart


def _psi_edges(ref: FeatureProfile, bins: int) -> list[float]:
    """Distinct reference quantiles at k/bins (to the nearest percentile), k = 1..bins-1."""
    positions = sorted({round(100 * k / bins) for k in range(1, bins)})
    return sorted({ref.quantiles[p] for p in positions})


def _distribution(
    ref: FeatureProfile,
    cur: FeatureProfile,
    cfg: DriftConfig,
    small: bool,
    sides: Sides,
    stats: dict[str, Any],
) -> tuple[list[Check], dict[str, Any]]:
    """The PSI and KS checks (adding the distances to ``stats``) and the histogram."""
    edges = _psi_edges(ref, cfg.bins)
    r_bins = np.diff([0, *ref.cdf(edges).tolist(), ref.non_null])
    c_bins = np.diff([0, *cur.cdf(edges).tolist(), cur.non_null])
    d, at = ks_distance(ref, cur)
    std = ref.std if ref.std else None
    w = wasserstein(ref, cur)
    stats |= {
        "psi": psi(r_bins, c_bins),
        "ks_d": d,
        "wasserstein_std": w / std if std else None,
        "js_distance": js_distance(r_bins, c_bins),
    }
    moves = f"mean {number(ref.mean or 0.0)} -> {number(cur.mean or 0.0)}"
    if std:
        moves += f" ({((cur.mean or 0.0) - (ref.mean or 0.0)) / std:+.2f} reference std)"
    checks = [
        _psi_check(r_bins, c_bins, ref, cur, cfg, small, moves, stats),
        _ks_check(d, at, ref, cur, cfg, small, moves, stats),
    ]
    return checks, histogram(bin_labels(edges), r_bins, c_bins, sides)


def _psi_check(
    r_bins: np.ndarray,
    c_bins: np.ndarray,
    ref: FeatureProfile,
    cur: FeatureProfile,
    cfg: DriftConfig,
    small: bool,
    moves: str,
    stats: dict[str, Any],
) -> Check:
    n_ref, n_cur = ref.non_null, cur.non_null
    if min(n_ref, n_cur) < cfg.min_rows_psi:
        stats["psi"] = None
        return insufficient("PSI", n_ref, n_cur, cfg.min_rows_psi, "values")
    p = chi2_p(r_bins, c_bins) if small else None
    if p is not None:
        stats["psi_p_value"] = p
    return threshold_check(
        "PSI",
        stats["psi"],
        cfg.psi_warn,
        cfg.psi_flag,
        f"the distribution over the reference's {len(r_bins)} bins moved ({moves}); "
        "likely a unit or scale change, a new population or an upstream bug",
        p,
        cfg,
    )


def _ks_check(
    d: float,
    at: float,
    ref: FeatureProfile,
    cur: FeatureProfile,
    cfg: DriftConfig,
    small: bool,
    moves: str,
    stats: dict[str, Any],
) -> Check:
    n_ref, n_cur = ref.non_null, cur.non_null
    if min(n_ref, n_cur) < cfg.min_rows_ks:
        stats["ks_d"] = None
        return insufficient("KS distance", n_ref, n_cur, cfg.min_rows_ks, "values")
    p = ks_p(d, n_ref, n_cur) if small else None
    if p is not None:
        stats["ks_p_value"] = p
    detail = f"the CDFs differ most at {number(at)} ({moves})"
    return threshold_check("KS distance", d, None, cfg.ks_flag, detail, p, cfg)


def _moments(ref: FeatureProfile, cur: FeatureProfile) -> dict[str, Any]:
    """Means and standard deviations of both sides, the mean shift and the std ratio."""
    return {
        "mean_reference": ref.mean,
        "mean_current": cur.mean,
        "mean_shift_std": ((cur.mean - ref.mean) / ref.std)
        if ref.std and cur.mean is not None and ref.mean is not None
        else None,
        "std_reference": ref.std,
        "std_current": cur.std,
        "std_ratio": cur.std / ref.std if ref.std and cur.std is not None else None,
    }
