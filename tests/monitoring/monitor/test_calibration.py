"""Calibrated thresholds on simulated features (a normal one; a skewed one with a point mass,
ties and nulls; a categorical one with 15 categories and nulls; a boolean one): on unchanged data
few feature-windows of any size are flagged, small shifts are caught at 100k rows per window, the
noise level follows its law in the window's size, is deterministic, and is None where the
statistic is not computed."""

from __future__ import annotations

import functools
import itertools
import time

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest
from scipy import stats

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._monitor import _calibration
from featurestore.monitoring._monitor._calibration import calibrated_threshold, noise_level
from featurestore.monitoring._monitor._statistics import (
    STATISTICS,
    Statistic,
    floor_of,
    window_statistics,
)

Profiles = dict[str, FeatureProfile]
Floats = npt.NDArray[np.float64]

FEATURES = ("normal", "skewed", "category", "flag")
CATEGORIES = np.array([f"c{i:02d}" for i in range(15)])
SHARES = 0.5 ** (np.arange(15) / 2) / np.sum(0.5 ** (np.arange(15) / 2))  # 29% down to 0.2%
NULLS = {"normal": 0.0, "skewed": 0.05, "category": 0.02, "flag": 0.01}
ZEROS, GEOMETRIC, TRUE_RATE = 0.3, 0.05, 0.2  # skewed: 0 or geometric(0.05); flag: true rate
REFERENCE_ROWS = 200_000
CFG = DriftConfig()


def _feature(
    rng: np.random.Generator, feature: str, rows: int, shift: float = 0.0, moved: float = 0.0
) -> pl.Series:
    """``rows`` values of ``feature`` with its share of nulls: the normal one shifted by
    ``shift`` standard deviations, ``moved`` of the commonest category's share moved to the
    second."""
    values: npt.NDArray[np.generic]
    if feature == "normal":
        values = rng.normal(shift, 1.0, rows)
    elif feature == "skewed":
        values = np.where(rng.random(rows) < ZEROS, 0.0, rng.geometric(GEOMETRIC, rows))
    elif feature == "category":
        shares = SHARES + np.r_[-moved, moved, np.zeros(SHARES.size - 2)]
        values = CATEGORIES[rng.choice(CATEGORIES.size, rows, p=shares)]
    else:
        values = rng.random(rows) < TRUE_RATE
    nulls = np.flatnonzero(rng.random(rows) < NULLS[feature])
    return pl.Series(feature, values).scatter(nulls, None)


def _frame(
    rng: np.random.Generator,
    rows: int,
    copies: int,
    features: tuple[str, ...] = FEATURES,
    **change: float,
) -> pl.DataFrame:
    """``copies`` independent windows of ``features`` side by side, as ``<feature>_<i>``."""
    return pl.DataFrame(
        [
            _feature(rng, f, rows, **change).alias(f"{f}_{i}")
            for i in range(copies)
            for f in features
        ]
    )


def _windows(
    rng: np.random.Generator, reference: Profiles, rows: int, copies: int, **change: float
) -> list[Profiles]:
    """Profiles of ``copies`` windows of ``rows`` rows, each taken at ``reference``."""
    frame = _frame(rng, rows, copies, **change)
    at = {f"{f}_{i}": reference[f] for f in FEATURES for i in range(copies)}
    profiles = profile_frame(frame, reference=at)
    return [{f: profiles[f"{f}_{i}"] for f in FEATURES} for i in range(copies)]


@pytest.fixture(scope="module")
def references() -> list[Profiles]:
    """Three references of 200,000 rows of every feature, from different seeds."""
    out = []
    for seed in range(3):
        frame = _frame(np.random.default_rng(100 + seed), REFERENCE_ROWS, 1)
        out.append(profile_frame(frame.rename({f"{f}_0": f for f in FEATURES})))
    return out


def _flagged(
    reference: FeatureProfile, window: FeatureProfile, cfg: DriftConfig = CFG
) -> list[str]:
    """The statistics of ``window`` above their calibrated threshold."""
    values = window_statistics(reference, window, cfg)
    out = []
    for name in STATISTICS:
        limit = calibrated_threshold(name, reference, window.count, cfg)
        value = values[name]
        if value is not None and limit is not None and value > limit:
            out.append(name)
    return out


# the finest cells of a feature at a reference: each CDF point (numeric), each category of the
# reference's vocabulary (categorical), false/true (boolean); then the nulls
def _true_shares(reference: FeatureProfile, feature: str) -> Floats:
    """The true probability of each finest cell, from the generator's distribution."""
    if reference.kind == "numeric":
        x = np.asarray(reference.cdf_points)
        if feature == "normal":
            cdf = stats.norm.cdf(x)
        else:  # 0 with probability ZEROS, else geometric on 1, 2, ...
            cdf = np.where(
                x < 0,
                0.0,
                ZEROS + (1 - ZEROS) * (1 - (1 - GEOMETRIC) ** np.floor(np.maximum(x, 0))),
            )
        # clipped: the CDF evaluated at a double and the one just below it may invert by 1e-17
        cells = np.clip(np.diff(np.concatenate([[0.0], cdf, [1.0]])), 0.0, None)
    elif reference.kind == "categorical":
        order = {v: i for i, v in enumerate(CATEGORIES)}
        cells = np.array([SHARES[order[v]] for v, _ in reference.categories or []])
    else:
        cells = np.array([1 - TRUE_RATE, TRUE_RATE])
    return np.append(cells * (1 - NULLS[feature]), NULLS[feature])


def _counted(profile: FeatureProfile) -> npt.NDArray[np.int64]:
    """A window profile's counts over the finest cells of ``_true_shares``."""
    if profile.kind == "numeric":
        cells = np.diff(np.concatenate([[0], profile.cdf_counts, [profile.non_null]]))
    elif profile.kind == "categorical":
        cells = np.array([n for _, n in profile.categories or []])
    else:
        known = dict(profile.top_categories)
        cells = np.array([known.get(False, 0), known.get(True, 0)])
    return np.append(cells, profile.null_count).astype(np.int64)


def _drawn(reference: FeatureProfile, counts: npt.NDArray[np.int64]) -> FeatureProfile:
    """The profile a window with ``counts`` over the finest cells has, taken at ``reference``."""
    rows, nulls = int(counts.sum()), int(counts[-1])
    base = FeatureProfile(
        dtype=reference.dtype, kind=reference.kind, count=rows, null_count=nulls, at_reference=True
    )
    if reference.kind == "numeric":
        return base.model_copy(
            update={
                "cdf_points": reference.cdf_points,
                "cdf_counts": np.cumsum(counts[:-2]).tolist(),
                "tail_points": reference.tail_points,
                "tail_sums": [0.0, 0.0],
                "bin_edges": reference.bin_edges,
            }
        )
    values = (
        [v for v, _ in reference.categories or []]
        if reference.kind == "categorical"
        else [False, True]
    )
    found = [(v, int(n)) for v, n in zip(values, counts[:-1], strict=True)]
    return base.model_copy(update={"categories": found, "top_categories": found, "unseen_count": 0})


def _drawn_windows(
    rng: np.random.Generator, reference: Profiles, rows: int, copies: int
) -> list[Profiles]:
    """``copies`` windows of ``rows`` rows drawn as counts over the finest cells (multinomial at
    the true shares), which is what profiling that many real rows counts."""
    return [
        {
            f: _drawn(reference[f], rng.multinomial(rows, _true_shares(reference[f], f)))
            for f in FEATURES
        }
        for _ in range(copies)
    ]


def test_drawn_counts_match_profiled_rows(references: list[Profiles]) -> None:
    """Counts drawn at the true shares fit what profiling real rows counts (a chi-square test
    per feature), and a profile built from counts gives the statistics the real one gives."""
    reference = references[0]
    (window,) = _windows(np.random.default_rng(1), reference, 200_000, 1)
    for f in FEATURES:
        observed = _counted(window[f])
        expected = observed.sum() * _true_shares(reference[f], f)
        assert observed[expected < 1e-9].sum() == 0, f
        fit = expected >= 1e-9
        chi2 = float(np.sum((observed[fit] - expected[fit]) ** 2 / expected[fit]))
        assert chi2 < stats.chi2.ppf(0.9999, fit.sum() - 1), f
        rebuilt = _drawn(reference[f], observed)
        assert window_statistics(reference[f], rebuilt, CFG) == window_statistics(
            reference[f], window[f], CFG
        )


def test_simulated_statistics_are_the_reports(references: list[Profiles]) -> None:
    """The statistic the noise level simulates, from counts per cell, is bit for bit the one
    window_statistics computes from profiles."""
    reference = references[1]
    rng = np.random.default_rng(2)
    for rows, change in ((1_000, {}), (20_000, {"shift": 0.05, "moved": 0.01})):
        for window in _windows(rng, reference, rows, 3, **change):
            for f in FEATURES:
                expected = window_statistics(reference[f], window[f], CFG)
                for name in STATISTICS:
                    model = _calibration._model(name, reference[f], CFG)
                    cells = _calibration._cells(name, reference[f], window[f], CFG)
                    if model is None or cells is None or expected[name] is None:
                        continue
                    got = _calibration._values(model, np.array([model.counts]), np.array([cells]))
                    assert float(got[0]) == expected[name], (f, name, rows)


SIZES = {1_000: 30, 10_000: 20, 100_000: 4}  # rows per window: windows per reference


def test_unchanged_data_rarely_flagged(references: list[Profiles]) -> None:
    """On unchanged data at most 1% of feature-windows are flagged at 1k, 10k, 100k (real
    profiles) and 1M rows (drawn counts); with the floors alone, far more are at 1k."""
    rng = np.random.default_rng(3)
    flagged: dict[int, list[bool]] = {}
    floors_only = []
    for reference in references:
        for rows, copies in SIZES.items():
            for window in _windows(rng, reference, rows, copies):
                flagged.setdefault(rows, []).extend(
                    bool(_flagged(reference[f], window[f])) for f in FEATURES
                )
                if rows == 1_000:
                    floors_only.extend(_above_floor(reference[f], window[f]) for f in FEATURES)
        for window in _drawn_windows(rng, reference, 1_000_000, 30):
            flagged.setdefault(1_000_000, []).extend(
                bool(_flagged(reference[f], window[f])) for f in FEATURES
            )
    rates = {rows: float(np.mean(f)) for rows, f in flagged.items()}
    assert all(rate <= 0.01 for rate in rates.values()), rates
    assert np.mean(floors_only) > 0.2  # the noise level is what keeps small windows quiet


def _above_floor(reference: FeatureProfile, window: FeatureProfile) -> bool:
    values = window_statistics(reference, window, CFG)
    return any(v is not None and v > floor_of(k, CFG) for k, v in values.items())


def _caught(
    references: list[FeatureProfile], windows: list[FeatureProfile], names: tuple[Statistic, ...]
) -> float:
    """The share of windows where one of ``names`` is flagged."""
    return float(
        np.mean(
            [
                bool(set(_flagged(r, w)) & set(names))
                for r, w in zip(references, windows, strict=True)
            ]
        )
    )


@functools.cache
def _seed_references(feature: str) -> Profiles:
    """20 references of 100,000 rows of ``feature``, as ``<feature>_<i>``."""
    return profile_frame(_frame(np.random.default_rng(4), 100_000, 20, (feature,)))


def _seeds(
    feature: str, rows: int, **change: float
) -> tuple[list[FeatureProfile], list[FeatureProfile]]:
    """20 seeds of a reference of 100,000 rows and a window of ``rows`` rows of ``feature``."""
    refs = _seed_references(feature)
    frame = _frame(np.random.default_rng(5), rows, 20, (feature,), **change)
    at = profile_frame(frame, reference=refs)
    return [refs[f"{feature}_{i}"] for i in range(20)], [at[f"{feature}_{i}"] for i in range(20)]


def test_small_mean_shift_caught_at_100k() -> None:
    """A shift of 0.1 reference standard deviations is caught by KS or PSI in >= 95% of 20
    seeds at 100k rows per window, and nothing is flagged in the same windows unshifted."""
    refs, shifted = _seeds("normal", 100_000, shift=0.1)
    assert _caught(refs, shifted, ("ks_d", "psi")) >= 0.95
    refs, same = _seeds("normal", 100_000)
    assert _caught(refs, same, STATISTICS) == 0.0


def test_category_share_shift_caught_at_100k() -> None:
    """Three points of share moved between the two commonest categories are caught by L-inf or
    PSI in >= 95% of 20 seeds at 100k rows per window."""
    refs, moved = _seeds("category", 100_000, moved=0.03)
    assert _caught(refs, moved, ("linf", "psi")) >= 0.95


@pytest.mark.parametrize("feature", FEATURES)
def test_noise_shrinks_with_rows_by_its_law(references: list[Profiles], feature: str) -> None:
    """The noise level falls as rows grow: as 1/sqrt(n) for distances and rate changes and as
    1/n for PSI, with the reference's own sampling noise (1/N) added."""
    reference = references[0][feature]
    n_ref = REFERENCE_ROWS * (1 - NULLS[feature])
    for name in STATISTICS:
        levels = {
            n: noise_level(name, reference, n, CFG) for n in (1_000, 4_000, 16_000, 64_000, 256_000)
        }
        known = {n: v for n, v in levels.items() if v is not None}
        if not known:
            continue
        values = list(known.values())
        if max(values) == 0:  # no nulls in the reference: none can appear by chance
            continue
        assert all(b < a for a, b in itertools.pairwise(values)), (name, known)
        power = 1.0 if name == "psi" else 0.5
        law = {n: (1 / n_ref + 1 / (n * (1 - NULLS[feature]))) ** power for n in known}
        first = min(known)
        for n, v in known.items():
            assert v / known[first] == pytest.approx(law[n] / law[first], rel=0.15), (name, n)


@pytest.mark.parametrize("feature", ["flag", "category"])
def test_noise_is_continuous_where_simulated(references: list[Profiles], feature: str) -> None:
    """Where small counts are simulated exactly (a 1% or 2% null share up to about 1,000 or
    2,000 rows), the level still falls steadily with the size, into the limit beyond."""
    reference = references[1][feature]
    rows = np.unique(np.geomspace(500, 4_000, 60).astype(int))
    levels = np.array([noise_level("null_rate_change", reference, int(n), CFG) for n in rows])
    assert np.all(levels[1:] / levels[:-1] < 1.01), levels


def test_noise_is_deterministic_and_fast(references: list[Profiles]) -> None:
    """The same inputs give the same noise level, across cache clears; once a reference's limit
    is known, a new size costs well under a few milliseconds."""
    reference = references[2]
    first = {
        (f, s, n): noise_level(s, reference[f], n, CFG)
        for f in FEATURES
        for s in STATISTICS
        for n in (1_500, 90_000)
    }
    _calibration._simulated.cache_clear()
    _calibration._limit.cache_clear()
    again = {
        (f, s, n): noise_level(s, reference[f], n, CFG)
        for f in FEATURES
        for s in STATISTICS
        for n in (1_500, 90_000)
    }
    assert first == again
    start = time.perf_counter()
    for n in range(120_000, 130_000, 100):
        noise_level("ks_d", reference["normal"], n, CFG)
    assert (time.perf_counter() - start) / 100 < 0.003


def test_limit_matches_exact_simulation(references: list[Profiles]) -> None:
    """Where the large-sample limit is used (KS and L-inf at any size), it is within 6% of the
    exact simulation of the statistic at 2,000 rows."""
    reference = references[0]
    for feature, name in (("skewed", "ks_d"), ("category", "linf")):
        model = _calibration._model(name, reference[feature], CFG)
        assert model is not None
        exact = _calibration._simulated(model, 2_000, CFG.calibration_quantile)
        level = noise_level(name, reference[feature], 2_000, CFG)
        assert level == pytest.approx(exact, rel=0.06)


def test_sparse_cells_are_simulated_exactly(references: list[Profiles]) -> None:
    """A rare category (0.2%) at 1,000 rows takes exact simulation; the 1% null share of the flag
    at 500 rows too, whose noise is then above the normal approximation's."""
    reference = references[0]
    model = _calibration._model("psi", reference["category"], CFG)
    assert model is not None and _calibration._sparse(model, 1_000.0)
    assert not _calibration._sparse(model, 100_000.0)
    level = noise_level("null_rate_change", reference["flag"], 500, CFG)
    p = reference["flag"].null_count / reference["flag"].count
    normal = stats.norm.ppf(0.9995) * np.sqrt(p * (1 - p) * (1 / 500 + 1 / REFERENCE_ROWS))
    assert level is not None and level > 1.05 * normal


def test_none_where_not_computed(references: list[Profiles]) -> None:
    """None where the statistic does not apply to the kind or a side has too few values."""
    reference = references[0]
    expected = {
        "normal": {"psi", "ks_d", "null_rate_change"},
        "skewed": {"psi", "ks_d", "null_rate_change"},
        "category": {"psi", "linf", "null_rate_change"},
        "flag": {"true_rate_change", "null_rate_change"},
    }
    for f in FEATURES:
        computed = {s for s in STATISTICS if noise_level(s, reference[f], 5_000, CFG) is not None}
        assert computed == expected[f]
        assert {
            s for s in STATISTICS if calibrated_threshold(s, reference[f], 5_000, CFG) is not None
        } == computed
    assert noise_level("ks_d", reference["normal"], 999, CFG) is None
    assert noise_level("ks_d", reference["normal"], 1_000, CFG) is not None
    assert noise_level("psi", reference["normal"], 499, CFG) is None
    assert noise_level("ks_d", reference["skewed"], 1_000, CFG) is None  # 5% null: 950 values
    assert noise_level("null_rate_change", reference["category"], 499, CFG) is None
    when = profile_frame(
        pl.DataFrame({"t": pl.date_range(pl.date(2020, 1, 1), pl.date(2022, 1, 1), eager=True)})
    )["t"]
    assert [s for s in STATISTICS if noise_level(s, when, 5_000, CFG) is not None] == [
        "null_rate_change"
    ]
    empty = profile_frame(pl.DataFrame({"x": pl.Series([None] * 2_000, dtype=pl.Float64)}))["x"]
    assert noise_level("psi", empty, 5_000, CFG) is None
    assert noise_level("ks_d", empty, 5_000, CFG) is None


def test_threshold_is_noise_or_floor_and_configurable(references: list[Profiles]) -> None:
    """The threshold is the noise level in small windows and the floor in large ones; the
    quantile and the floors come from DriftConfig."""
    ref = references[0]["normal"]
    small, large = (
        calibrated_threshold("ks_d", ref, 1_000, CFG),
        calibrated_threshold("ks_d", ref, 1_000_000, CFG),
    )
    assert (
        small == noise_level("ks_d", ref, 1_000, CFG) and small is not None and small > CFG.ks_floor
    )
    assert large == CFG.ks_floor
    looser = DriftConfig(calibration_quantile=0.99)
    assert (noise_level("ks_d", ref, 1_000, looser) or 1.0) < small
    assert calibrated_threshold("psi", ref, 1_000_000, DriftConfig(psi_floor=0.2)) == 0.2
