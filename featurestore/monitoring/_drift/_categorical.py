"""Drift of features compared by their counts per category: a categorical feature (L-infinity
and PSI over the reference's top categories, OTHER and NULL; unseen categories) and a boolean
one (the change in its true rate)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from featurestore._format import percent
from featurestore._profiles import TOP_K, FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._grading import (
    Check,
    Outcome,
    Sides,
    insufficient,
    threshold_check,
)
from featurestore.monitoring._drift._histogram import histogram
from featurestore.monitoring._drift._null_rate import null_check
from featurestore.monitoring._drift._statistics import chi2_p, js_distance, psi
from featurestore.monitoring._report import Verdict

__all__ = ["NULL", "OTHER", "boolean", "categorical"]

OTHER, NULL = "OTHER", "NULL"


def _buckets(ref: FeatureProfile, cur: FeatureProfile) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Labels and counts over the reference's top categories, OTHER and NULL."""
    top = [v for v, _ in ref.top_categories[:TOP_K]]
    known = dict(cur.categories or [])
    r = [n for _, n in ref.top_categories[:TOP_K]]
    c = [known.get(v, 0) for v in top]
    r += [ref.non_null - sum(r), ref.null_count]
    c += [cur.non_null - sum(c), cur.null_count]
    labels = [str(v) for v in top] + [OTHER, NULL]
    return labels, np.asarray(r, dtype=np.float64), np.asarray(c, dtype=np.float64)


def categorical(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> Outcome:
    """Checks, statistics and histogram of a categorical feature."""
    labels, r, c = _buckets(ref, cur)
    stats: dict[str, Any] = {}
    both = bool(ref.count and cur.count)
    if both:
        checks = _category_checks(labels, r, c, ref, cur, cfg, small, stats)
    else:
        checks = [insufficient("categories", ref.count, cur.count, cfg.min_rows_psi, "rows")]
    checks.append(null_check(ref, cur, cfg, small, stats))
    stats |= {"categories_reference": ref.distinct_count, "categories_current": cur.distinct_count}
    return checks, stats, histogram(labels, r, c, sides) if both else None


def _category_checks(
    labels: list[str],
    r: np.ndarray,
    c: np.ndarray,
    ref: FeatureProfile,
    cur: FeatureProfile,
    cfg: DriftConfig,
    small: bool,
    stats: dict[str, Any],
) -> list[Check]:
    """The L-infinity, PSI and unseen checks, adding their statistics to ``stats``."""
    r_share, c_share = r / r.sum(), c / c.sum()
    gaps = c_share - r_share
    worst = int(np.argmax(np.abs(gaps)))
    unseen = cur.unseen_count / cur.count if cur.unseen_count is not None else None
    stats |= {
        "linf": float(abs(gaps[worst])),
        "linf_category": labels[worst],
        "psi": psi(r, c),
        "js_distance": js_distance(r, c),
        "unseen_share": unseen,
    }
    if min(ref.count, cur.count) < cfg.min_rows_psi:
        return [insufficient("categories", ref.count, cur.count, cfg.min_rows_psi, "rows")]
    p = chi2_p(r, c) if small else None
    if p is not None:
        stats["chi2_p_value"] = p
    direction = "rose" if gaps[worst] > 0 else "fell"
    detail = (
        f"the share of {labels[worst]!r} {direction} from {percent(r_share[worst])} to "
        f"{percent(c_share[worst])}"
    )
    mix = f"the mix of categories moved ({detail})"
    checks = [
        threshold_check(
            "L-inf distance", stats["linf"], cfg.linf_warn, cfg.linf_flag, detail, p, cfg
        ),
        threshold_check("PSI", stats["psi"], cfg.psi_warn, cfg.psi_flag, mix, p, cfg),
    ]
    if unseen is not None:
        checks.append(_unseen_check(unseen, ref, cur, cfg))
    return checks


def _unseen_check(
    unseen: float, ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig
) -> Check:
    """Flag a share of current rows in categories the reference never saw above the limit."""
    if unseen <= cfg.unseen_flag:
        return Check(Verdict.OK, score=unseen / cfg.unseen_flag if cfg.unseen_flag else 0.0)
    known = {v for v, _ in ref.categories or []}
    new = [f"{v!r} ({percent(n / cur.count)})" for v, n in cur.top_categories if v not in known]
    examples = f", e.g. {', '.join(new[:3])}" if new else ""
    return Check(
        Verdict.FLAGGED,
        f"{percent(unseen)} of current rows are categories the reference never saw (flag above "
        f"{percent(cfg.unseen_flag)}){examples}; likely a new upstream value or a changed "
        "spelling",
        unseen / cfg.unseen_flag if cfg.unseen_flag else math.inf,
    )


def boolean(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> Outcome:
    """Checks, statistics and histogram of a boolean feature."""

    def trues(p: FeatureProfile) -> int:
        counts: dict[Any, int] = dict(p.top_categories)  # both values fit in the top
        return counts.get(True, 0)

    rt, ct = trues(ref), trues(cur)
    r = np.array([ref.non_null - rt, rt, ref.null_count], dtype=np.float64)
    c = np.array([cur.non_null - ct, ct, cur.null_count], dtype=np.float64)
    stats: dict[str, Any] = {}
    n_ref, n_cur = ref.non_null, cur.non_null
    if n_ref and n_cur:
        r_rate, c_rate = rt / n_ref, ct / n_cur
        stats |= {
            "true_rate_reference": r_rate,
            "true_rate_current": c_rate,
            "true_rate_change": c_rate - r_rate,
            "js_distance": js_distance(r, c),
        }
    if min(n_ref, n_cur) >= cfg.min_rows_psi:
        checks = [_true_rate_check(rt / n_ref, ct / n_cur, r, c, cfg, small, stats)]
    else:
        checks = [insufficient("the true rate", n_ref, n_cur, cfg.min_rows_psi, "values")]
    checks.append(null_check(ref, cur, cfg, small, stats))
    chart = histogram(["false", "true", NULL], r, c, sides) if ref.count and cur.count else None
    return checks, stats, chart


def _true_rate_check(
    r_rate: float,
    c_rate: float,
    r: np.ndarray,
    c: np.ndarray,
    cfg: DriftConfig,
    small: bool,
    stats: dict[str, Any],
) -> Check:
    """Grade the change in the share of true among non-null values."""
    p = chi2_p(r[:2], c[:2]) if small else None
    if p is not None:
        stats["true_rate_p_value"] = p
    direction = "rose" if c_rate > r_rate else "fell"
    return threshold_check(
        "true-rate change",
        abs(c_rate - r_rate),
        cfg.true_rate_warn,
        cfg.true_rate_flag,
        f"the true rate {direction} from {percent(r_rate)} to {percent(c_rate)}",
        p,
        cfg,
    )
