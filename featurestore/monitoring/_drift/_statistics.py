"""The drift statistics, each a small function of bin counts or of two profiles: PSI,
Jensen-Shannon, chi-square and KS p-values, the KS distance, the Wasserstein distance and the
current side's quantiles. scipy is imported on first use: it takes most of a second, and every
command line run and server start would otherwise pay it."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from featurestore._profiles import FeatureProfile

__all__ = [
    "SMOOTHING",
    "chi2_p",
    "current_quantiles",
    "js_distance",
    "ks_distance",
    "ks_p",
    "psi",
    "wasserstein",
]

SMOOTHING = 0.5  # added to every bin count before PSI, so an empty bin has a finite log


def psi(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Population stability index over matching bins, each count smoothed by +0.5."""
    r = np.asarray(reference_counts, dtype=np.float64) + SMOOTHING
    c = np.asarray(current_counts, dtype=np.float64) + SMOOTHING
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


def js_distance(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """Jensen-Shannon distance (base 2, in [0, 1]) between the bins' shares."""
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(current_counts, dtype=np.float64)
    if not r.sum() or not c.sum():
        return math.nan
    from scipy.spatial.distance import jensenshannon

    return float(jensenshannon(r / r.sum(), c / c.sum(), base=2))


def chi2_p(reference_counts: npt.ArrayLike, current_counts: npt.ArrayLike) -> float:
    """P-value of a chi-square test that both sides share one distribution over the bins."""
    table = np.array([reference_counts, current_counts], dtype=np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or not table.sum(axis=1).all():
        return 1.0
    from scipy import stats

    return float(stats.chi2_contingency(table).pvalue)


def ks_p(d: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sample KS p-value of distance ``d``."""
    from scipy import stats

    return float(stats.kstwo.sf(d, round(n_reference * n_current / (n_reference + n_current))))


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


def current_quantiles(current: FeatureProfile, probs: Sequence[float]) -> list[float]:
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
