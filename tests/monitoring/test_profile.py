"""Per-feature profiles checked against numpy and collections.Counter on random data: moments,
quantiles, CDF counts and tail sums, decile bins, categories, profiles taken at a reference,
and merges against the profile of all rows."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import polars as pl
import pytest

from featurestore._profiles import (
    MAX_CATEGORIES,
    QUANTILE_POINTS,
    TOP_K,
    FeatureProfile,
    merge_profiles,
    profile_frame,
)
from featurestore.errors import ReportError


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


def _cdf_oracle(x: np.ndarray, points: list[float]) -> list[int]:
    """Values at or below each point, by brute force."""
    return [int(np.sum(x <= p)) for p in points]


@pytest.mark.parametrize("seed", [0, 1])
def test_cdf_counts_and_tails_match_numpy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = 3000
    frame = pl.DataFrame(
        {
            "x": _with_nulls(rng.lognormal(0, 1, n).tolist(), rng, 0.1),
            # a point mass at the minimum, as in zero-inflated amounts
            "z": np.where(rng.random(n) < 0.3, 0.0, rng.exponential(2.0, n)),
            "i": rng.integers(-3, 4, n),
        }
    )
    for column, p in profile_frame(frame).items():
        x = frame[column].drop_nulls().cast(pl.Float64).to_numpy()
        distinct = sorted(set(p.quantiles))
        assert set(distinct) <= set(p.cdf_points)
        assert len(p.cdf_points) == 2 * len(distinct)  # each quantile and the double below it
        assert p.cdf_counts == _cdf_oracle(x, p.cdf_points)
        assert p.tail_points == [p.quantiles[1], p.quantiles[99]]
        lo, hi = p.tail_points
        assert p.tail_sums[0] == pytest.approx(np.maximum(lo - x, 0).sum(), rel=1e-9)
        assert p.tail_sums[1] == pytest.approx(np.maximum(x - hi, 0).sum(), rel=1e-9)
        assert p.cdf(distinct).tolist() == _cdf_oracle(x, distinct)


def test_profile_at_a_reference_matches_numpy() -> None:
    rng = np.random.default_rng(5)
    ref = pl.DataFrame({"x": rng.normal(0, 1, 2000), "i": rng.integers(0, 10, 2000)})
    cur = pl.DataFrame(
        {
            "x": _with_nulls(rng.normal(0.5, 2, 3000).tolist(), rng, 0.05),
            "i": rng.integers(-2, 14, 3000),
        }
    )
    reference = profile_frame(ref)
    at = profile_frame(cur, reference=reference)
    for column in cur.columns:
        r, p = reference[column], at[column]
        x = cur[column].drop_nulls().cast(pl.Float64).to_numpy()
        assert p.at_reference and not r.at_reference
        assert (p.count, p.null_count) == (cur.height, cur[column].null_count())
        assert p.quantiles == []  # no sort of its own
        assert p.cdf_points == r.cdf_points and p.bin_edges == r.bin_edges
        assert p.cdf_counts == _cdf_oracle(x, p.cdf_points)
        edges = np.asarray(r.bin_edges)
        expected_bins = np.bincount(np.searchsorted(edges, x, side="left"), minlength=10)
        assert p.bin_counts == expected_bins.tolist()
        lo, hi = r.tail_points
        assert p.tail_sums == pytest.approx(
            [np.maximum(lo - x, 0).sum(), np.maximum(x - hi, 0).sum()], rel=1e-9
        )
        assert p.mean == pytest.approx(float(np.mean(x)), rel=1e-9)
        assert p.std == pytest.approx(float(np.std(x, ddof=1)), rel=1e-9)
        assert (p.min, p.max) == (pytest.approx(x.min()), pytest.approx(x.max()))


def test_categories_at_a_reference() -> None:
    ref = pl.DataFrame({"c": ["a"] * 50 + ["b"] * 30 + ["c"] * 20})
    cur = pl.DataFrame({"c": ["a"] * 40 + ["c"] * 25 + ["new"] * 10 + ["other"] * 5 + [None] * 3})
    reference = profile_frame(ref)
    assert reference["c"].categories == [("a", 50), ("b", 30), ("c", 20)]
    p = profile_frame(cur, reference=reference)["c"]
    assert p.categories == [("a", 40), ("b", 0), ("c", 25)]  # the reference's, in its order
    assert p.unseen_count == 15
    assert [tuple(t) for t in p.top_categories] == [("a", 40), ("c", 25), ("new", 10), ("other", 5)]
    assert (p.null_count, p.distinct_count) == (3, 4)


def test_unseen_is_unknown_when_the_reference_has_too_many_categories() -> None:
    names = [f"k{i:04d}" for i in range(MAX_CATEGORIES + 1)]
    reference = profile_frame(pl.DataFrame({"c": names}))
    assert reference["c"].categories is None
    assert reference["c"].distinct_count == len(names)
    p = profile_frame(pl.DataFrame({"c": ["k0000", "zzz"]}), reference=reference)["c"]
    assert p.unseen_count is None
    assert dict(p.categories or [])["k0000"] == 1  # counted at the reference's top categories


def test_nan_counts_as_null() -> None:
    p = profile_frame(pl.DataFrame({"x": [1.0, float("nan"), 3.0, None]}))["x"]
    assert (p.count, p.null_count, p.mean) == (4, 2, 2.0)


def test_merged_profiles_equal_the_profile_of_all_rows() -> None:
    rng = np.random.default_rng(11)
    ref = pl.DataFrame(
        {
            "x": rng.normal(0, 1, 1000),
            "c": rng.choice(["a", "b", "c"], 1000),
            "b": rng.random(1000) < 0.4,
        }
    )
    cur = pl.DataFrame(
        {
            "x": _with_nulls(rng.normal(0.2, 1.3, 3000).tolist(), rng, 0.1),
            "c": rng.choice(["a", "b", "d"], 3000),
            "b": rng.random(3000) < 0.5,
        }
    )
    reference = profile_frame(ref)
    whole = profile_frame(cur, reference=reference)
    first = profile_frame(cur.head(1200), reference=reference)
    second = profile_frame(cur.tail(1800), reference=reference)
    for column in cur.columns:
        merged = merge_profiles(first[column], second[column])
        w = whole[column]
        exact = ("count", "null_count", "cdf_counts", "bin_counts", "categories", "unseen_count")
        for name in exact:
            assert getattr(merged, name) == getattr(w, name), (column, name)
        assert [tuple(t) for t in merged.top_categories] == [tuple(t) for t in w.top_categories]
        if column == "x":
            assert merged.mean == pytest.approx(w.mean, rel=1e-9)
            assert merged.std == pytest.approx(w.std, rel=1e-9)
            assert merged.tail_sums == pytest.approx(w.tail_sums, rel=1e-9)
            assert (merged.min, merged.max) == (w.min, w.max)


def test_merging_own_categorical_profiles_is_exact_while_complete() -> None:
    a = profile_frame(pl.DataFrame({"c": ["x", "y", "y", None]}))["c"]
    b = profile_frame(pl.DataFrame({"c": ["z", "z", "z", "y"]}))["c"]
    merged = merge_profiles(a, b)
    assert merged.categories == [("y", 3), ("z", 3), ("x", 1)]
    assert [tuple(t) for t in merged.top_categories] == [("y", 3), ("z", 3), ("x", 1)]
    assert (merged.count, merged.null_count, merged.distinct_count) == (8, 1, 3)


def test_merge_refuses_profiles_counted_at_different_points() -> None:
    rng = np.random.default_rng(2)
    a = profile_frame(pl.DataFrame({"x": rng.normal(size=100)}))["x"]
    b = profile_frame(pl.DataFrame({"x": rng.normal(size=100)}))["x"]
    with pytest.raises(ReportError, match="different points"):
        merge_profiles(a, b)
    s = profile_frame(pl.DataFrame({"x": ["a"]}))["x"]
    with pytest.raises(ReportError, match="categorical"):
        merge_profiles(a, s)
    at = profile_frame(pl.DataFrame({"x": [0.5]}), reference={"x": a})["x"]
    with pytest.raises(ReportError, match="own quantiles"):
        merge_profiles(a, at)


def test_profiling_at_a_reference_checks_kinds_and_old_profiles() -> None:
    reference = profile_frame(pl.DataFrame({"x": [1.0, 2.0, 3.0]}))
    with pytest.raises(
        ReportError, match="'x' is categorical but its reference profile is numeric"
    ):
        profile_frame(pl.DataFrame({"x": ["a"]}), reference=reference)
    old = reference["x"].model_copy(update={"cdf_points": [], "cdf_counts": []})
    with pytest.raises(ReportError, match="older version"):
        profile_frame(pl.DataFrame({"x": [1.0]}), reference={"x": old})
    nulls = profile_frame(pl.DataFrame({"x": [None, None]}), reference=reference)["x"]
    assert (nulls.kind, nulls.null_count, nulls.mean) == ("numeric", 2, None)
    assert nulls.cdf_counts == [0] * len(reference["x"].cdf_points)
