"""Per-feature profiles checked against numpy and collections.Counter on random data."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import polars as pl
import pytest

from featurestore.monitoring.profile import QUANTILE_POINTS, TOP_K, FeatureProfile, profile_frame


def _with_nulls(values: list[object], rng: np.random.Generator, share: float) -> list[object]:
    mask = rng.random(len(values)) < share
    return [None if m else v for v, m in zip(values, mask, strict=True)]


def _check_numeric(profile: FeatureProfile, column: pl.Series) -> None:
    x = column.drop_nulls().cast(pl.Float64).to_numpy()
    assert profile.kind == "numeric"
    assert profile.count == column.len()
    assert profile.null_count == column.null_count()
    assert profile.mean == pytest.approx(float(np.mean(x)), rel=1e-9)
    assert profile.std == pytest.approx(float(np.std(x, ddof=1)), rel=1e-9)
    assert profile.min == pytest.approx(float(np.min(x)))
    assert profile.max == pytest.approx(float(np.max(x)))
    expected_q = np.quantile(x, QUANTILE_POINTS)  # linear interpolation, as quantile_cont
    assert len(profile.quantiles) == 101
    assert profile.quantiles == pytest.approx(expected_q.tolist(), rel=1e-9, abs=1e-12)
    edges = np.asarray(profile.bin_edges)
    assert profile.bin_edges == pytest.approx(expected_q[10:100:10].tolist(), rel=1e-9, abs=1e-12)
    # bin i holds edges[i-1] < x <= edges[i]; the outer bins are open
    expected_bins = np.bincount(np.searchsorted(edges, x, side="left"), minlength=len(edges) + 1)
    assert profile.bin_counts == expected_bins.tolist()
    assert sum(profile.bin_counts) == len(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_numeric_profiles_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 2000
    frame = pl.DataFrame(
        {
            # rounded so that many values tie, and some quantile edges coincide
            "x": _with_nulls(np.round(rng.normal(10, 3, n), 1).tolist(), rng, 0.1),
            "small_int": _with_nulls(rng.integers(0, 5, n).tolist(), rng, 0.2),
            "skewed": _with_nulls(rng.exponential(2.0, n).tolist(), rng, 0.0),
            "u8": pl.Series(rng.integers(0, 255, n), dtype=pl.UInt8),
        }
    )
    profiles = profile_frame(frame)
    assert list(profiles) == frame.columns
    for column in frame.columns:
        _check_numeric(profiles[column], frame[column])
    assert profiles["small_int"].dtype == "Int64"
    assert profiles["u8"].dtype == "UInt8"


def test_constant_column() -> None:
    profile = profile_frame(pl.DataFrame({"c": [3.0] * 50 + [None] * 5}))["c"]
    assert (profile.count, profile.null_count) == (55, 5)
    assert (profile.mean, profile.std, profile.min, profile.max) == (3.0, 0.0, 3.0, 3.0)
    assert set(profile.quantiles) == {3.0}
    assert profile.bin_counts == [50] + [0] * 9


def test_single_value_has_no_std() -> None:
    profile = profile_frame(pl.DataFrame({"c": [7]}))["c"]
    assert (profile.count, profile.mean, profile.min, profile.max) == (1, 7.0, 7.0, 7.0)
    assert profile.std is None
    assert profile.bin_counts == [1] + [0] * 9


@pytest.mark.parametrize("n_categories", [5, 40])
def test_top_categories_match_counter(n_categories: int) -> None:
    rng = np.random.default_rng(n_categories)
    names = [f"cat_{i:02d}" for i in range(n_categories)]
    weights = 1.0 / np.arange(1, n_categories + 1)
    values = rng.choice(names, size=3000, p=weights / weights.sum()).tolist()
    values = _with_nulls(values, rng, 0.05)
    profile = profile_frame(pl.DataFrame({"c": values}))["c"]

    counter = Counter(v for v in values if v is not None)
    # most frequent first; ties by value, as the profile orders them
    expected = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_K]
    assert profile.kind == "categorical"
    assert profile.dtype == "String"
    assert [tuple(t) for t in profile.top_categories] == expected
    assert profile.null_count == values.count(None)
    assert profile.count == len(values)
    assert profile.other_count == sum(counter.values()) - sum(n for _, n in expected)
    assert profile.distinct_count == pytest.approx(len(counter), rel=0.05)
    assert profile.mean is None and profile.quantiles == [] and profile.bin_counts == []


def test_tied_categories_are_ordered_by_value() -> None:
    profile = profile_frame(pl.DataFrame({"c": ["b", "a", "c", "a", "b", "c", "d"]}))["c"]
    assert [tuple(t) for t in profile.top_categories] == [("a", 2), ("b", 2), ("c", 2), ("d", 1)]


def test_booleans() -> None:
    rng = np.random.default_rng(7)
    values = _with_nulls((rng.random(500) < 0.3).tolist(), rng, 0.1)
    profile = profile_frame(pl.DataFrame({"b": values}, schema={"b": pl.Boolean}))["b"]
    counter = Counter(v for v in values if v is not None)
    assert profile.kind == "boolean"
    assert profile.dtype == "Boolean"
    assert [tuple(t) for t in profile.top_categories] == [
        (False, counter[False]),
        (True, counter[True]),
    ]
    assert profile.null_count == values.count(None)
    assert profile.other_count == 0
    assert profile.distinct_count == 2
    assert profile.mean is None and profile.bin_counts == []


@pytest.mark.parametrize("dtype", [pl.Float64, pl.Int32, pl.String, pl.Boolean, pl.Null])
def test_all_null_column(dtype: pl.DataType) -> None:
    profile = profile_frame(pl.DataFrame({"c": [None] * 4}, schema={"c": dtype}))["c"]
    assert (profile.count, profile.null_count) == (4, 4)
    assert profile.mean is None and profile.std is None
    assert profile.min is None and profile.max is None
    assert profile.quantiles == [] and profile.bin_edges == [] and profile.bin_counts == []
    assert profile.top_categories == [] and profile.other_count == 0


def test_empty_frame() -> None:
    frame = pl.DataFrame(
        schema={"x": pl.Float64, "s": pl.String, "b": pl.Boolean, "t": pl.Datetime("us")}
    )
    profiles = profile_frame(frame)
    assert list(profiles) == ["x", "s", "b", "t"]
    for profile in profiles.values():
        assert (profile.count, profile.null_count) == (0, 0)
        assert profile.mean is None and profile.min is None and profile.max is None
        assert profile.quantiles == [] and profile.bin_counts == []
        assert profile.top_categories == [] and profile.other_count == 0
    assert [p.kind for p in profiles.values()] == ["numeric", "categorical", "boolean", "temporal"]


def test_no_columns() -> None:
    assert profile_frame(pl.DataFrame({"x": [1]}), []) == {}


def test_temporal_min_and_max() -> None:
    t = dt.datetime
    frame = pl.DataFrame(
        {
            "ts": [t(2024, 3, 1), None, t(2023, 12, 31, 23, 59), t(2024, 1, 1)],
            "d": [dt.date(2024, 1, 2), dt.date(2022, 5, 5), None, None],
        }
    )
    profiles = profile_frame(frame)
    ts, d = profiles["ts"], profiles["d"]
    assert ts.kind == d.kind == "temporal"
    assert (ts.min, ts.max, ts.null_count) == (t(2023, 12, 31, 23, 59), t(2024, 3, 1), 1)
    assert (d.min, d.max, d.null_count) == (dt.date(2022, 5, 5), dt.date(2024, 1, 2), 2)
    assert ts.quantiles == [] and ts.top_categories == []


def test_selected_columns_only() -> None:
    frame = pl.DataFrame({"a": [1, 2], "b": ["x", "y"], "c": [True, False]})
    assert list(profile_frame(frame, ["c", "a"])) == ["c", "a"]


def test_profiles_serialize_round_trip() -> None:
    rng = np.random.default_rng(3)
    frame = pl.DataFrame({"x": rng.normal(size=100), "s": rng.choice(["a", "b"], size=100)})
    for profile in profile_frame(frame).values():
        assert FeatureProfile.model_validate_json(profile.model_dump_json()) == profile
