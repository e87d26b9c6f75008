"""Drift: how far a feature's current values moved from a reference, feature by feature.

The reference needs only its profile (a saved training set carries one); the current side is
profiled *at* the reference, in one DuckDB scan for every numeric feature plus one GROUP BY
per categorical one: its CDF counted at the reference's percentiles and just below each, and its
counts of the reference's categories. Each statistic is then a small function of two profiles.

Distances decide, never p-values alone: at a million rows a KS p-value flags a shift nobody
cares about. P-values are shown, and used, only when the reference has fewer than
``p_value_below_rows`` rows: a breached threshold then also needs ``p < alpha``. Every rule and
default is written into the report's ``settings``; ``DriftConfig`` on a feature overrides them.

- numeric: PSI over the reference deciles (open outer bins, +0.5 count smoothing); the KS
  distance D from the two CDFs; the Wasserstein distance over the reference's standard
  deviation; mean, std and quantile shifts.
- categorical: L-infinity distance over the reference's top categories plus OTHER and NULL,
  naming the worst bucket; PSI over the same buckets; the share of current rows in categories
  the reference never saw.
- boolean: the change in the true rate.
- every kind: the null-rate change as its own check, row counts, Jensen-Shannon distance over
  the same bins or buckets (informational), and "insufficient data" below a minimum sample.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl
from scipy import stats as sps
from scipy.spatial.distance import jensenshannon

from featurestore._profiles import TOP_K, FeatureProfile, profile_frame
from featurestore.definitions._dtypes import dtype_name
from featurestore.definitions._monitoring import DriftConfig
from featurestore.errors import ReportError
from featurestore.monitoring._report import Report, Verdict

__all__ = [
    "DriftFeature",
    "DriftReport",
    "FeatureDrift",
    "compute_drift",
    "ks_distance",
    "psi",
    "wasserstein",
]

SMOOTHING = 0.5  # added to every bin count before PSI, so an empty bin has a finite log
QUANTILE_SHIFTS = (0.05, 0.25, 0.5, 0.75, 0.95)
OTHER, NULL = "OTHER", "NULL"

Sides = tuple[str, str]  # the reference's and the current side's labels


@dataclass(frozen=True)
class DriftFeature:
    """One feature to compare: its reference, column (in the profiles and the current frame),
    owner, dtype and thresholds."""

    ref: str
    column: str
    owner: str | None
    dtype: pl.DataType | str
    config: DriftConfig = field(default_factory=DriftConfig)


@dataclass
class FeatureDrift:
    """The outcome for one feature: verdict, reasons, statistics and histogram."""

    ref: str
    owner: str | None
    dtype: str
    kind: str
    verdict: Verdict
    reasons: list[str]
    stats: dict[str, Any]
    histogram: dict[str, Any] | None
    score: float = 0.0  # the worst statistic over its flag threshold; orders the report

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "owner": self.owner,
            "dtype": self.dtype,
            "kind": self.kind,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "stats": self.stats,
            "histogram": self.histogram,
            "examples": [],
        }


class DriftReport(Report):
    """Per-feature drift of ``current_label`` against ``reference_label``, worst first."""

    def __init__(
        self,
        features: list[FeatureDrift],
        *,
        reference_label: str,
        current_label: str,
        settings: dict[str, str],
        generated_at: dt.datetime | None = None,
    ) -> None:
        self.features = sorted(features, key=lambda f: (f.verdict.rank, -f.score, f.ref))
        self.reference_label = reference_label
        self.current_label = current_label
        self.settings = settings
        self.generated_at = generated_at or dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return f"DriftReport(features={len(self.features)}, flagged={self.flagged})"

    def to_dict(self) -> dict[str, Any]:
        verdicts = [f.verdict for f in self.features]
        return {
            "kind": "drift",
            "title": f"Drift of {self.current_label} against {self.reference_label}",
            "generated_at": self.generated_at.isoformat(),
            "summary": {
                "features": len(self.features),
                **{str(v): verdicts.count(v) for v in Verdict},
                "reference": self.reference_label,
                "current": self.current_label,
            },
            "settings": dict(self.settings),
            "features": [f.to_dict() for f in self.features],
        }


# ---------------------------------------------------------------- statistics on counts


def psi(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Population stability index over matching bins, each count smoothed by +0.5."""
    r = np.asarray(reference_counts, dtype=np.float64) + SMOOTHING
    c = np.asarray(current_counts, dtype=np.float64) + SMOOTHING
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the bins' shares."""
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    if not r.sum() or not c.sum():
        return math.nan
    return float(jensenshannon(r / r.sum(), c / c.sum(), base=2))


def _chi2_p(reference_counts: Sequence[float], current_counts: Sequence[float]) -> float:
    """P-value of a chi-square test that both sides share one distribution over the bins."""
    table = np.array([reference_counts, current_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not table.sum(axis=1).all():
        return 1.0
    return float(sps.chi2_contingency(table).pvalue)


# ---------------------------------------------------------------- statistics on CDFs


def _cdfs(reference: FeatureProfile, current: FeatureProfile) -> tuple[np.ndarray, ...]:
    x = np.asarray(reference.cdf_points, dtype=np.float64)
    f_ref = np.asarray(reference.cdf_counts, dtype=np.float64) / reference.non_null
    f_cur = np.asarray(current.cdf_counts, dtype=np.float64) / current.non_null
    return x, f_ref, f_cur


def ks_distance(reference: FeatureProfile, current: FeatureProfile) -> tuple[float, float]:
    """KS distance D = sup |F_ref - F_cur| and where it is reached.

    Both CDFs are exact at each reference percentile and just below it, so D is exact there;
    between two percentiles it can miss at most the reference mass strictly between them
    (under 1% + 2/n): ``D <= D_true <= D + 0.01 + 2 / n_reference``.
    """
    x, f_ref, f_cur = _cdfs(reference, current)
    gaps = np.abs(f_ref - f_cur)
    at = int(np.argmax(gaps))
    return float(gaps[at]), float(x[at])


def wasserstein(reference: FeatureProfile, current: FeatureProfile) -> float:
    """Wasserstein-1 distance, the integral of |F_ref - F_cur|.

    Between the reference's 1st and 99th percentiles both CDFs are taken as linear between
    the reference's percentiles; beyond them the tail integrals are exact (from the profiles'
    tail sums), so the result is exact there unless the two CDFs cross in a tail.
    """
    x, f_ref, f_cur = _cdfs(reference, current)
    lo, hi = reference.tail_points
    inside = (x >= lo) & (x <= hi)
    d, width = (f_ref - f_cur)[inside], np.diff(x[inside])
    a, b = np.abs(d[:-1]), np.abs(d[1:])
    crossing = d[:-1] * d[1:] < 0
    area = np.where(crossing, (a * a + b * b) / (2 * np.where(crossing, a + b, 1.0)), (a + b) / 2)
    below = reference.tail_sums[0] / reference.non_null - current.tail_sums[0] / current.non_null
    above = reference.tail_sums[1] / reference.non_null - current.tail_sums[1] / current.non_null
    return float(np.sum(area * width) + abs(below) + abs(above))


def _current_quantiles(current: FeatureProfile, probs: Sequence[float]) -> list[float]:
    """The current side's quantiles, linear between the points its CDF was counted at."""
    x = np.asarray(current.cdf_points, dtype=np.float64)
    f = np.asarray(current.cdf_counts, dtype=np.float64) / current.non_null
    if current.min is not None and current.min < x[0]:
        x, f = np.concatenate([[current.min], x]), np.concatenate([[0.0], f])
    if current.max is not None and current.max > x[-1]:
        x, f = np.concatenate([x, [current.max]]), np.concatenate([f, [1.0]])
    out = []
    for p in probs:
        hi = min(int(np.searchsorted(f, p, side="left")), len(f) - 1)
        lo = max(hi - 1, 0)
        share = 0.0 if f[hi] == f[lo] else (p - f[lo]) / (f[hi] - f[lo])
        out.append(float(x[lo] + min(max(share, 0.0), 1.0) * (x[hi] - x[lo])))
    return out


# ---------------------------------------------------------------- checks and verdicts


@dataclass
class _Check:
    """One thresholded statistic: its verdict and, unless OK, why."""

    verdict: Verdict
    reason: str | None = None
    score: float = 0.0


_Outcome = tuple[list[_Check], dict[str, Any], dict[str, Any] | None]  # checks, stats, histogram


def _grade(value: float, warn: float | None, flag: float) -> Verdict:
    if value >= flag:
        return Verdict.FLAGGED
    if warn is not None and value >= warn:
        return Verdict.WARN
    return Verdict.OK


def _threshold_check(
    what: str,
    value: float,
    warn: float | None,
    flag: float,
    detail: str,
    p_value: float | None,
    cfg: DriftConfig,
) -> _Check:
    """Grade ``value``; on a small reference a breach also needs ``p_value < alpha``."""
    verdict = _grade(value, warn, flag)
    score = value / flag if flag > 0 else math.inf
    if verdict is Verdict.OK:
        return _Check(Verdict.OK, score=score)
    limit = flag if verdict is Verdict.FLAGGED else warn
    reason = f"{what} {value:.3g} >= {limit:g} ({verdict}): {detail}"
    if p_value is not None and p_value >= cfg.alpha:
        return _Check(
            Verdict.OK,
            f"{what} {value:.3g} is past {limit:g} but not significant on a reference this "
            f"small (p = {p_value:.2g} >= {cfg.alpha:g}): {detail}",
            score=0.0,
        )
    return _Check(verdict, reason, score)


def _insufficient(what: str, n_ref: int, n_cur: int, needed: int, unit: str) -> _Check:
    return _Check(
        Verdict.INSUFFICIENT_DATA,
        f"insufficient data for {what}: {n_ref:,} reference and {n_cur:,} current {unit}, "
        f"needs {needed:,} per side",
    )


def _combine(checks: list[_Check]) -> tuple[Verdict, list[str], float]:
    """The worst verdict among checks with enough data (insufficient data if none had)."""
    decided = [c.verdict for c in checks if c.verdict is not Verdict.INSUFFICIENT_DATA]
    verdict = min(decided, key=lambda v: v.rank) if decided else Verdict.INSUFFICIENT_DATA
    ranked = sorted(checks, key=lambda c: (c.verdict.rank, -c.score))  # worst first
    reasons = [c.reason for c in ranked if c.reason]
    return verdict, reasons, max((c.score for c in checks), default=0.0)


def _pct(share: float) -> str:
    return f"{100 * share:.1f}%"


def _null_check(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, stats: dict[str, Any]
) -> _Check:
    r_rate = ref.null_count / ref.count if ref.count else math.nan
    c_rate = cur.null_count / cur.count if cur.count else math.nan
    change = c_rate - r_rate
    stats |= {
        "null_rate_reference": r_rate,
        "null_rate_current": c_rate,
        "null_rate_change": change,
    }
    if min(ref.count, cur.count) < cfg.min_rows_psi:
        return _insufficient("the null rate", ref.count, cur.count, cfg.min_rows_psi, "rows")
    p = None
    if small:
        p = _chi2_p([ref.null_count, ref.non_null], [cur.null_count, cur.non_null])
        stats["null_rate_p_value"] = p
    direction = "rose" if change > 0 else "fell"
    cause = (
        "likely an upstream source missing values, a failed join or entities without rows"
        if change > 0
        else "likely a new default or a fixed upstream gap"
    )
    detail = f"null rate {direction} from {_pct(r_rate)} to {_pct(c_rate)}; {cause}"
    return _threshold_check(
        "null-rate change",
        abs(change),
        cfg.null_rate_warn,
        cfg.null_rate_flag,
        detail,
        p,
        cfg,
    )


def _number(value: float) -> str:
    return f"{value:.4g}"


def _bin_labels(edges: Sequence[float]) -> list[str]:
    """Labels "(-inf, e1]", "(e1, e2]", ..., "(e_last, inf)" with enough digits to differ."""
    digits = 4
    while digits < 17 and len({f"{e:.{digits}g}" for e in edges}) < len(edges):
        digits += 1
    text = [f"{e:.{digits}g}" for e in edges]
    bounds = ["-inf", *text]
    uppers = [f"{t}]" for t in text] + ["inf)"]
    return [f"({lo}, {hi}" for lo, hi in zip(bounds, uppers, strict=True)]


def _histogram(
    labels: list[str],
    ref_counts: Sequence[float],
    cur_counts: Sequence[float],
    sides: Sides,
) -> dict[str, Any]:
    r = np.asarray(ref_counts, dtype=np.float64)
    c = np.asarray(cur_counts, dtype=np.float64)
    return {
        "labels": labels,
        "reference": (r / r.sum()).tolist() if r.sum() else [0.0] * len(labels),
        "current": (c / c.sum()).tolist() if c.sum() else [0.0] * len(labels),
        "reference_label": sides[0],
        "current_label": sides[1],
    }


# ---------------------------------------------------------------- per kind


def _psi_edges(ref: FeatureProfile, bins: int) -> list[float]:
    """Distinct reference quantiles at k/bins (to the nearest percentile), k = 1..bins-1."""
    positions = sorted({round(100 * k / bins) for k in range(1, bins)})
    return sorted({ref.quantiles[p] for p in positions})


def _numeric(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> _Outcome:
    stats: dict[str, Any] = {}
    checks: list[_Check] = []
    n_ref, n_cur = ref.non_null, cur.non_null
    histogram = None
    if n_ref and n_cur:
        edges = _psi_edges(ref, cfg.bins)
        cum_ref = [0, *ref.cdf(edges).tolist(), n_ref]
        cum_cur = [0, *cur.cdf(edges).tolist(), n_cur]
        r_bins = np.diff(cum_ref)
        c_bins = np.diff(cum_cur)
        d, at = ks_distance(ref, cur)
        std = ref.std if ref.std else None
        w = wasserstein(ref, cur)
        shift = (cur.mean or 0.0) - (ref.mean or 0.0)
        stats |= {
            "psi": psi(r_bins, c_bins),
            "ks_d": d,
            "wasserstein_std": w / std if std else None,
            "js_distance": js_distance(r_bins, c_bins),
        }
        moves = f"mean {_number(ref.mean or 0.0)} -> {_number(cur.mean or 0.0)}"
        if std:
            moves += f" ({shift / std:+.2f} reference std)"
        if n_ref >= cfg.min_rows_psi and n_cur >= cfg.min_rows_psi:
            p = _chi2_p(r_bins, c_bins) if small else None
            if p is not None:
                stats["psi_p_value"] = p
            checks.append(
                _threshold_check(
                    "PSI",
                    stats["psi"],
                    cfg.psi_warn,
                    cfg.psi_flag,
                    f"the distribution over the reference's {len(r_bins)} bins moved ({moves}); "
                    "likely a unit or scale change, a new population or an upstream bug",
                    p,
                    cfg,
                )
            )
        else:
            stats["psi"] = None
            checks.append(_insufficient("PSI", n_ref, n_cur, cfg.min_rows_psi, "values"))
        if n_ref >= cfg.min_rows_ks and n_cur >= cfg.min_rows_ks:
            p = float(sps.kstwo.sf(d, round(n_ref * n_cur / (n_ref + n_cur)))) if small else None
            if p is not None:
                stats["ks_p_value"] = p
            checks.append(
                _threshold_check(
                    "KS distance",
                    d,
                    None,
                    cfg.ks_flag,
                    f"the CDFs differ most at {_number(at)} ({moves})",
                    p,
                    cfg,
                )
            )
        else:
            stats["ks_d"] = None
            checks.append(_insufficient("KS distance", n_ref, n_cur, cfg.min_rows_ks, "values"))
        histogram = _histogram(_bin_labels(edges), r_bins, c_bins, sides)
    else:
        checks.append(_insufficient("PSI", n_ref, n_cur, cfg.min_rows_psi, "values"))
    checks.append(_null_check(ref, cur, cfg, small, stats))
    stats |= {
        "mean_reference": ref.mean,
        "mean_current": cur.mean,
        "mean_shift_std": ((cur.mean - ref.mean) / ref.std)
        if ref.std and cur.mean is not None and ref.mean is not None
        else None,
        "std_reference": ref.std,
        "std_current": cur.std,
        "std_ratio": cur.std / ref.std if ref.std and cur.std is not None else None,
    }
    if n_ref and n_cur and ref.quantiles:
        now = _current_quantiles(cur, QUANTILE_SHIFTS)
        for prob, q in zip(QUANTILE_SHIFTS, now, strict=True):
            stats[f"q{round(100 * prob):02d}_shift"] = q - ref.quantiles[round(100 * prob)]
    return checks, stats, histogram


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


def _categorical(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> _Outcome:
    labels, r, c = _buckets(ref, cur)
    stats: dict[str, Any] = {}
    checks: list[_Check] = []
    enough = min(ref.count, cur.count) >= cfg.min_rows_psi
    if ref.count and cur.count:
        r_share, c_share = r / r.sum(), c / c.sum()
        gaps = c_share - r_share
        worst = int(np.argmax(np.abs(gaps)))
        stats |= {
            "linf": float(abs(gaps[worst])),
            "linf_category": labels[worst],
            "psi": psi(r, c),
            "js_distance": js_distance(r, c),
        }
        unseen = cur.unseen_count / cur.count if cur.unseen_count is not None else None
        stats["unseen_share"] = unseen
        if enough:
            p = _chi2_p(r, c) if small else None
            if p is not None:
                stats["chi2_p_value"] = p
            direction = "rose" if gaps[worst] > 0 else "fell"
            detail = (
                f"the share of {labels[worst]!r} {direction} from {_pct(r_share[worst])} to "
                f"{_pct(c_share[worst])}"
            )
            checks.append(
                _threshold_check(
                    "L-inf distance", stats["linf"], cfg.linf_warn, cfg.linf_flag, detail, p, cfg
                )
            )
            checks.append(
                _threshold_check(
                    "PSI",
                    stats["psi"],
                    cfg.psi_warn,
                    cfg.psi_flag,
                    f"the mix of categories moved ({detail})",
                    p,
                    cfg,
                )
            )
            if unseen is not None:
                checks.append(_unseen_check(unseen, ref, cur, cfg))
        else:
            checks.append(
                _insufficient("categories", ref.count, cur.count, cfg.min_rows_psi, "rows")
            )
    else:
        checks.append(_insufficient("categories", ref.count, cur.count, cfg.min_rows_psi, "rows"))
    checks.append(_null_check(ref, cur, cfg, small, stats))
    stats |= {"categories_reference": ref.distinct_count, "categories_current": cur.distinct_count}
    histogram = _histogram(labels, r, c, sides) if ref.count and cur.count else None
    return checks, stats, histogram


def _unseen_check(
    unseen: float, ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig
) -> _Check:
    if unseen <= cfg.unseen_flag:
        return _Check(Verdict.OK, score=unseen / cfg.unseen_flag if cfg.unseen_flag else 0.0)
    known = {v for v, _ in ref.categories or []}
    new = [f"{v!r} ({_pct(n / cur.count)})" for v, n in cur.top_categories if v not in known][:3]
    examples = f", e.g. {', '.join(new)}" if new else ""
    return _Check(
        Verdict.FLAGGED,
        f"{_pct(unseen)} of current rows are categories the reference never saw (flag above "
        f"{_pct(cfg.unseen_flag)}){examples}; likely a new upstream value or a changed spelling",
        unseen / cfg.unseen_flag if cfg.unseen_flag else math.inf,
    )


def _boolean(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> _Outcome:
    def trues(p: FeatureProfile) -> int:
        return dict(p.top_categories).get(True, 0)  # its own counts, both values fit in the top

    rt, ct = trues(ref), trues(cur)
    r = np.array([ref.non_null - rt, rt, ref.null_count], dtype=np.float64)
    c = np.array([cur.non_null - ct, ct, cur.null_count], dtype=np.float64)
    stats: dict[str, Any] = {}
    checks: list[_Check] = []
    if ref.non_null and cur.non_null:
        r_rate, c_rate = rt / ref.non_null, ct / cur.non_null
        stats |= {
            "true_rate_reference": r_rate,
            "true_rate_current": c_rate,
            "true_rate_change": c_rate - r_rate,
            "js_distance": js_distance(r, c),
        }
        if min(ref.non_null, cur.non_null) >= cfg.min_rows_psi:
            p = _chi2_p(r[:2], c[:2]) if small else None
            if p is not None:
                stats["true_rate_p_value"] = p
            direction = "rose" if c_rate > r_rate else "fell"
            checks.append(
                _threshold_check(
                    "true-rate change",
                    abs(c_rate - r_rate),
                    cfg.true_rate_warn,
                    cfg.true_rate_flag,
                    f"the true rate {direction} from {_pct(r_rate)} to {_pct(c_rate)}",
                    p,
                    cfg,
                )
            )
        else:
            checks.append(
                _insufficient(
                    "the true rate", ref.non_null, cur.non_null, cfg.min_rows_psi, "values"
                )
            )
    else:
        checks.append(
            _insufficient("the true rate", ref.non_null, cur.non_null, cfg.min_rows_psi, "values")
        )
    checks.append(_null_check(ref, cur, cfg, small, stats))
    histogram = (
        _histogram(["false", "true", NULL], r, c, sides) if ref.count and cur.count else None
    )
    return checks, stats, histogram


def _temporal(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> _Outcome:
    stats: dict[str, Any] = {}
    checks = [_null_check(ref, cur, cfg, small, stats)]
    stats |= {
        "min_reference": None if ref.min is None else str(ref.min),
        "max_reference": None if ref.max is None else str(ref.max),
        "min_current": None if cur.min is None else str(cur.min),
        "max_current": None if cur.max is None else str(cur.max),
    }
    return checks, stats, None


_BY_KIND = {
    "numeric": _numeric,
    "categorical": _categorical,
    "boolean": _boolean,
    "temporal": _temporal,
}


def _feature_drift(
    feature: DriftFeature, ref: FeatureProfile, cur: FeatureProfile, sides: Sides
) -> FeatureDrift:
    cfg = feature.config
    small = ref.count < cfg.p_value_below_rows
    checks, stats, histogram = _BY_KIND[ref.kind](ref, cur, cfg, small, sides)
    verdict, reasons, score = _combine(checks)
    stats = {
        **{
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in stats.items()
        },
        "rows_reference": ref.count,
        "rows_current": cur.count,
    }
    dtype = feature.dtype if isinstance(feature.dtype, str) else dtype_name(feature.dtype)
    return FeatureDrift(
        ref=feature.ref,
        owner=feature.owner,
        dtype=dtype,
        kind=ref.kind,
        verdict=verdict,
        reasons=reasons,
        stats=stats,
        histogram=histogram,
        score=score,
    )


# ---------------------------------------------------------------- settings and entry point


def settings(features: Sequence[DriftFeature]) -> dict[str, str]:
    """Every rule and default the report applies, in words, plus per-feature overrides."""
    d = DriftConfig()
    out = {
        "decisions": (
            "distances decide; p-values are computed, shown and used only when the reference "
            f"has fewer than {d.p_value_below_rows:,} rows, where a breached threshold also "
            f"needs p < {d.alpha:g}"
        ),
        "numeric: PSI": (
            f"{d.bins} bins at the reference's quantiles k/{d.bins} (deciles), open outer bins, "
            f"+{SMOOTHING} added to every count; warn at {d.psi_warn:g}, flag at "
            f"{d.psi_flag:g}; needs {d.min_rows_psi:,} non-null values per side; p-value: "
            "chi-square over the bins"
        ),
        "numeric: KS distance D": (
            "max |F_ref - F_cur| over the reference's 101 percentiles and the values just "
            "below each (exact there; it can miss at most the reference mass between two "
            f"percentiles, about 1%); flag at {d.ks_flag:g}; needs {d.min_rows_ks:,} "
            "non-null values per side; p-value: asymptotic two-sample KS"
        ),
        "numeric: Wasserstein": (
            "integral of |F_ref - F_cur| (CDFs linear between the reference's percentiles, "
            "tails beyond its 1st and 99th percentile exact), divided by the reference's "
            "standard deviation; informational"
        ),
        "numeric: shifts": (
            "mean shift in reference standard deviations, std ratio, and quantile shifts at "
            f"{', '.join(f'{round(100 * p)}%' for p in QUANTILE_SHIFTS)} (current quantiles "
            "interpolated from its CDF at the reference percentiles); informational"
        ),
        "categorical: L-inf": (
            f"max |share change| over the reference's top {TOP_K} categories plus {OTHER} and "
            f"{NULL}, naming the worst; warn at {d.linf_warn:g}, flag at {d.linf_flag:g}; "
            f"needs {d.min_rows_psi:,} rows per side; p-value: chi-square over the buckets"
        ),
        "categorical: PSI": (
            f"over the same buckets, +{SMOOTHING} per count; warn at {d.psi_warn:g}, flag at "
            f"{d.psi_flag:g}"
        ),
        "categorical: unseen": (
            "share of current rows in categories the reference never saw (known when the "
            f"reference recorded all its categories); flag above {_pct(d.unseen_flag)}"
        ),
        "boolean: true rate": (
            f"change in the share of true among non-null values; warn at {d.true_rate_warn:g}, "
            f"flag at {d.true_rate_flag:g}; needs {d.min_rows_psi:,} values per side; "
            "p-value: chi-square"
        ),
        "null rate": (
            f"absolute change in the share of nulls, every kind; warn at {d.null_rate_warn:g}, "
            f"flag at {d.null_rate_flag:g}; needs {d.min_rows_psi:,} rows per side"
        ),
        "Jensen-Shannon": "distance (base 2) over the same bins or buckets; informational",
        "temporal": "null rate and row counts only; first and last values shown",
        "verdict": ("the worst check with enough data; insufficient data when no check had enough"),
    }
    overrides = [
        f"{f.ref}: "
        + ", ".join(f"{k}={v}" for k, v in f.config.model_dump().items() if getattr(d, k) != v)
        for f in features
        if f.config != d
    ]
    if overrides:
        out["overrides"] = "; ".join(overrides)
    return out


def compute_drift(
    reference: Mapping[str, FeatureProfile],
    current: pl.DataFrame | Mapping[str, FeatureProfile],
    features: Sequence[DriftFeature],
    *,
    reference_label: str,
    current_label: str,
) -> DriftReport:
    """Compare each feature's current values with its reference profile.

    ``reference`` and ``current`` are keyed by each feature's ``column``. ``current`` is a
    frame (profiled here, at the reference, in DuckDB) or profiles already taken at the
    reference with ``profile_frame(frame, reference=...)`` (and possibly merged).
    """
    if not features:
        raise ReportError("no features to compare; pass at least one DriftFeature")
    columns = [f.column for f in features]
    missing = [f.ref for f in features if f.column not in reference]
    if missing:
        raise ReportError(
            f"the reference has no profile for {missing}; it profiles: {', '.join(reference)}"
        )
    for f in features:
        ref = reference[f.column]
        if ref.kind == "numeric" and ref.non_null and not ref.cdf_counts:
            raise ReportError(
                f"the reference profile of {f.ref!r} has no CDF counts (it was saved by an "
                "older version); profile the reference rows again with profile_frame()"
            )
        if ref.kind == "numeric" and ref.non_null and not ref.quantiles:
            raise ReportError(
                f"the reference profile of {f.ref!r} has no quantiles of its own (it was taken "
                "at another reference or merged); profile the reference rows themselves"
            )
    if isinstance(current, pl.DataFrame):
        absent = [f.ref for f in features if f.column not in current.columns]
        if absent:
            raise ReportError(
                f"the current rows lack columns for {absent}; found columns: "
                f"{', '.join(current.columns)}"
            )
        current = profile_frame(current, columns, reference=reference)
    else:
        absent = [f.ref for f in features if f.column not in current]
        if absent:
            raise ReportError(f"no current profile for {absent}")
        for f in features:
            ref, cur = reference[f.column], current[f.column]
            if not cur.at_reference or cur.cdf_points != ref.cdf_points or cur.kind != ref.kind:
                raise ReportError(
                    f"the current profile of {f.ref!r} was not taken at its reference; use "
                    "profile_frame(frame, reference=...)"
                )
    sides = (reference_label, current_label)
    results = [_feature_drift(f, reference[f.column], current[f.column], sides) for f in features]
    return DriftReport(
        results,
        reference_label=reference_label,
        current_label=current_label,
        settings=settings(features),
    )
