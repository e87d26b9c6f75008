"""Calibrated thresholds of continuous monitoring: how far each drift statistic moves by chance
between the reference and a window of a given size drawn from the reference's own distribution
(its noise level), so that a window is flagged only beyond both that level and the statistic's
floor, whatever the window's size.

Both sides are samples: the reference of its own size, the window of ``rows`` rows, each drawn
from the reference's shares over the cells the statistic compares (the PSI bins or the category
buckets, the cells between consecutive CDF points, false/true, non-null/null; nulls always a
cell of their own). The noise level is the ``calibration_quantile`` of the statistic, computed
as the drift report computes it, over such pairs. Two methods, chosen per statistic and size:

- the large-sample limit, scaled: with ``s2 = 1/n_reference + 1/n_window`` (values compared),
  KS and L-infinity are ``sqrt(s2)`` times the maximum of a Gaussian process (a Brownian bridge
  at the reference's CDF values; the multinomial covariance over the buckets), simulated once
  per reference; PSI is ``s2`` times a chi-square quantile with one degree of freedom less than
  its non-empty bins, plus the PSI that +0.5 smoothing alone gives at the expected counts; a
  rate change is ``sqrt(s2 * p * (1 - p))`` times a normal quantile. Cached per reference and
  statistic (the first KS call of a reference with 200 CDF points takes about 0.1 s); a new size
  then costs a fraction of a millisecond.
- exact simulation, where a compared cell is expected to hold fewer than ``SPARSE`` values on
  either side (a rare category, a small null share), where the limit is off (by up to 50% for a
  rate, measured): ``DRAWS`` multinomial pairs at the two points of a geometric grid of sizes
  around ``rows``, interpolated in log(rows) and rescaled by the limit's law; cached per grid
  point (about 0.1 s each for PSI over 20 buckets, a few milliseconds for a rate).

Measured against exact simulation at 1k to 100k rows (references of 2k to 1M rows, point masses
and ties included), the limit is within about 3% once every cell holds ``SPARSE`` values; KS and
L-infinity always use it: their maximum is reached in the bulk of the distribution, where the
limit holds at any size the statistics are computed at (exact simulation of KS would take
seconds per size).
"""

from __future__ import annotations

import functools
import hashlib
import math
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from featurestore._profiles import TOP_K, FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._statistics import SMOOTHING
from featurestore.monitoring._monitor._statistics import Statistic, applies, floor_of

__all__ = ["calibrated_threshold", "noise_level"]

# 2**15 pairs put about 33 draws beyond the 0.999 quantile: its estimate then varies by about 2%
# from one seed to another (measured), below the spread of the limit's own approximation
DRAWS = 2**15
CHUNK = 2**12  # draws simulated at once, which bounds memory for features with many CDF points
SPARSE = 20.0  # fewer expected values than this in a cell, on either side: simulate exactly
STEPS = 8  # points per doubling of the grid of simulated sizes (9% apart)
_EXACT = ("psi", "true_rate_change", "null_rate_change")  # the others always take the limit
_NON_NULL = ("psi", "ks_d", "true_rate_change")  # compare non-null values (psi: numeric only)

Counts = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class _Model(NamedTuple):
    """What the noise of one statistic depends on: the reference's counts per cell (nulls last
    for the kinds whose statistic compares non-null values only)."""

    statistic: Statistic
    kind: str
    counts: tuple[int, ...]


def noise_level(
    statistic: Statistic, reference: FeatureProfile, rows: int, cfg: DriftConfig
) -> float | None:
    """The ``cfg.calibration_quantile`` quantile of ``statistic`` between the reference and a
    window of ``rows`` rows drawn from the reference's own distribution; None where the
    statistic does not apply to the kind or a side has fewer values than it needs (as
    :func:`window_statistics` returns None). Deterministic: its draws are seeded by its inputs."""
    model = _model(statistic, reference, cfg)
    if model is None:
        return None
    n_ref, n_win = _sizes(model, rows)
    needed = cfg.min_rows_ks if statistic == "ks_d" else cfg.min_rows_psi
    if min(n_ref, n_win) < needed:
        return None
    q = cfg.calibration_quantile
    if statistic in _EXACT and _sparse(model, n_win):
        return _between_grid_points(model, rows, q)
    limit = _limit(model, q) * _scale(model, rows)
    return limit + _smoothing_offset(model, n_win) if statistic == "psi" else limit


def calibrated_threshold(
    statistic: Statistic, reference: FeatureProfile, rows: int, cfg: DriftConfig
) -> float | None:
    """The value above which ``statistic`` flags a window of ``rows`` rows: the larger of its
    noise level and its floor in ``cfg``; None where :func:`noise_level` is None."""
    noise = noise_level(statistic, reference, rows, cfg)
    return None if noise is None else max(noise, floor_of(statistic, cfg))


def _model(statistic: Statistic, ref: FeatureProfile, cfg: DriftConfig) -> _Model | None:
    """The reference's counts per cell of ``statistic`` (None where it does not apply or the
    reference has no values to compare)."""
    if not applies(statistic, ref.kind) or not ref.count:
        return None
    cells = _cells(statistic, ref, ref, cfg)
    return None if cells is None else _Model(statistic, ref.kind, cells)


def _cells(
    statistic: Statistic, ref: FeatureProfile, profile: FeatureProfile, cfg: DriftConfig
) -> tuple[int, ...] | None:
    """The counts of ``profile`` (the reference, or a window taken at it) over the cells of
    ``statistic``, as the drift report bins them; None for a numeric reference without values."""
    nulls = profile.null_count
    known = dict(profile.top_categories) | dict(profile.categories or [])
    if statistic == "null_rate_change":
        cells = [profile.non_null, nulls]
    elif ref.kind == "boolean":
        cells = [profile.non_null - known.get(True, 0), known.get(True, 0), nulls]
    elif ref.kind == "categorical":  # as _drift._categorical: top categories, OTHER, NULL
        top = [known.get(v, 0) for v, _ in ref.top_categories[:TOP_K]]
        cells = [*top, profile.non_null - sum(top), nulls]
    elif not ref.non_null or not ref.quantiles:
        return None
    elif statistic == "psi":  # as _drift._numeric: the decile bins, edges to the percentile
        positions = sorted({round(100 * k / cfg.bins) for k in range(1, cfg.bins)})
        edges = sorted({ref.quantiles[p] for p in positions})
        cells = [*np.diff([0, *profile.cdf(edges).tolist(), profile.non_null]).tolist(), nulls]
    else:  # ks_d: the values at or below each CDF point, above the last one, and the nulls
        at = np.asarray(profile.cdf_counts, dtype=np.int64)
        cells = [*np.diff(at, prepend=0).tolist(), profile.non_null - int(at[-1]), nulls]
    return tuple(int(n) for n in cells)


def _compares_non_null(model: _Model) -> bool:
    return model.statistic in _NON_NULL and model.kind != "categorical"


def _sizes(model: _Model, rows: int) -> tuple[float, float]:
    """How many values each side compares: the reference's, and the window's expected."""
    total = sum(model.counts)
    if not _compares_non_null(model):
        return float(total), float(rows)
    non_null = total - model.counts[-1]
    return float(non_null), rows * non_null / total


def _scale(model: _Model, rows: int) -> float:
    """How the noise grows with both sides' sampling variance: PSI as the variance, the
    distances and rate changes as its square root."""
    n_ref, n_win = _sizes(model, rows)
    variance = 1 / n_ref + 1 / n_win
    return variance if model.statistic == "psi" else math.sqrt(variance)


def _compared(model: _Model) -> Counts:
    """The reference's counts over the cells the statistic's values are drawn from."""
    counts = np.asarray(model.counts, dtype=np.int64)
    if model.statistic == "true_rate_change":
        return counts[:2]
    return counts[:-1] if _compares_non_null(model) else counts


def _sparse(model: _Model, n_win: float) -> bool:
    """Whether a compared cell holding values is expected to hold fewer than ``SPARSE`` of them
    in the reference or in the window."""
    counts = _compared(model)
    counts = counts[counts > 0]
    return bool(counts.size) and min(counts.min(), n_win * counts.min() / counts.sum()) < SPARSE


def _between_grid_points(model: _Model, rows: int, quantile: float) -> float:
    """The exactly simulated noise at ``rows``: its scaled quantile interpolated in log(rows)
    between the two grid points around it (each simulated once), times the scale at ``rows``;
    so the level is continuous in the size and falls as it grows."""
    step = math.floor(math.log2(rows) * STEPS)
    lo, hi = (max(1, round(2 ** (k / STEPS))) for k in (step, step + 1))
    at_lo, at_hi = (_simulated(model, n, quantile) / _scale(model, n) for n in (lo, hi))
    weight = min(max(math.log(rows / lo) / math.log(hi / lo), 0.0), 1.0) if hi > lo else 0.0
    return (at_lo + weight * (at_hi - at_lo)) * _scale(model, rows)


def _seed(*parts: object) -> int:
    """A seed fixed by ``parts``: the same inputs always draw the same numbers."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "big")


def _smoothing_offset(model: _Model, n_win: float) -> float:
    """The PSI that +0.5 smoothing alone gives between the reference's counts and the window's
    expected ones: what an empty bin adds on both sides, most of all."""
    r = _compared(model).astype(np.float64)
    c = r * (n_win / r.sum())
    return float(_psi_rows(r[None, :], c[None, :])[0])


def _psi_rows(r: Floats, c: Floats) -> Floats:
    """PSI of each row's bin counts, +0.5 smoothed, as ``_drift._statistics.psi``."""
    rs, cs = r + SMOOTHING, c + SMOOTHING
    rs, cs = rs / rs.sum(axis=1, keepdims=True), cs / cs.sum(axis=1, keepdims=True)
    out: Floats = np.sum((cs - rs) * np.log(cs / rs), axis=1)
    return out


def _values(model: _Model, r: Counts, c: Counts) -> Floats:
    """The statistic of each pair of rows of cell counts, as the drift report computes it."""
    a, b = r.astype(np.float64), c.astype(np.float64)
    stat = model.statistic
    out: Floats
    if stat == "psi":
        out = _psi_rows(a[:, :-1], b[:, :-1]) if _compares_non_null(model) else _psi_rows(a, b)
    elif stat == "ks_d":  # the CDFs at the points: all cells but the last two (above, nulls)
        out = np.abs(_cdf(a) - _cdf(b)).max(axis=1)
    elif stat == "linf":
        out = np.abs(_shares(b) - _shares(a)).max(axis=1)
    elif stat == "true_rate_change":
        out = np.abs(_shares(b[:, :2])[:, 1] - _shares(a[:, :2])[:, 1])
    else:
        out = np.abs(_shares(b)[:, -1] - _shares(a)[:, -1])
    return out


def _cdf(counts: Floats) -> Floats:
    """Each row's CDF at the CDF points from its KS cells (per point, above the last, nulls)."""
    out: Floats = np.cumsum(counts[:, :-2], axis=1) / np.maximum(
        counts[:, :-1].sum(axis=1, keepdims=True), 1
    )
    return out


def _shares(counts: Floats) -> Floats:
    """Each row's counts over its total (an empty row stays zeros)."""
    out: Floats = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    return out


@functools.lru_cache(maxsize=4096)
def _simulated(model: _Model, rows: int, quantile: float) -> float:
    """The quantile of the statistic over ``DRAWS`` exactly simulated pairs: the reference
    (of its own size) and a window of ``rows`` rows, both multinomial over the cells."""
    rng = np.random.default_rng(_seed(model, rows))
    total = sum(model.counts)
    shares = np.asarray(model.counts, dtype=np.float64) / total
    values = [
        _values(
            model,
            rng.multinomial(total, shares, size=CHUNK),
            rng.multinomial(rows, shares, size=CHUNK),
        )
        for _ in range(DRAWS // CHUNK)
    ]
    return float(np.quantile(np.concatenate(values), quantile))


@functools.lru_cache(maxsize=1024)
def _limit(model: _Model, quantile: float) -> float:
    """The quantile of the statistic's large-sample limit, divided by its scale (``_scale``);
    0 when the reference's values all fall in one cell, where nothing can vary."""
    counts = _compared(model)
    shares = counts[counts > 0] / counts.sum()
    if shares.size < 2:
        return 0.0
    if model.statistic == "psi":
        from scipy.special import chdtri

        return float(chdtri(int(shares.size) - 1, 1 - quantile))
    if model.statistic in ("true_rate_change", "null_rate_change"):
        p = float(shares[-1])
        return NormalDist().inv_cdf((1 + quantile) / 2) * math.sqrt(p * (1 - p))
    rng = np.random.default_rng(_seed(model, "limit"))
    if model.statistic == "ks_d":
        at = np.cumsum(counts[:-1]) / counts.sum()
        times = np.unique(at[(at > 0) & (at < 1)])
        maxima = [_bridge_maxima(times, rng) for _ in range(DRAWS // CHUNK)]
    else:
        maxima = [_bucket_maxima(shares, rng) for _ in range(DRAWS // CHUNK)]
    return float(np.quantile(np.concatenate(maxima), quantile))


def _bridge_maxima(times: Floats, rng: np.random.Generator) -> Floats:
    """``CHUNK`` draws of max |B(t)| over ``times`` in (0, 1), B a Brownian bridge: the limit
    of the KS distance over the reference's CDF points, scaled by ``sqrt(1/n + 1/m)``."""
    steps = np.sqrt(np.diff(times, prepend=0.0))
    walk = np.cumsum(rng.standard_normal((CHUNK, times.size)) * steps, axis=1)
    end = walk[:, -1] + rng.standard_normal(CHUNK) * math.sqrt(1 - times[-1])
    out: Floats = np.abs(walk - end[:, None] * times).max(axis=1)
    return out


def _bucket_maxima(shares: Floats, rng: np.random.Generator) -> Floats:
    """``CHUNK`` draws of max |G| over the buckets, G Gaussian with the multinomial covariance
    ``diag(p) - p p'``: the limit of the L-infinity distance, scaled by ``sqrt(1/n + 1/m)``."""
    z = rng.standard_normal((CHUNK, shares.size)) * np.sqrt(shares)
    out: Floats = np.abs(z - z.sum(axis=1, keepdims=True) * shares).max(axis=1)
    return out
