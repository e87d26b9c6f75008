"""The skew report's comparison of values, on a view whose served and offline values the tests
set pair by pair: tolerance boundaries, null mismatches both ways, and statistics against
numpy."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.monitoring._report import Verdict
from tests.monitoring.skew_repo import (
    PAIRS_DEFINITIONS,
    T0,
    T1,
    D,
    mismatching_users,
    pairs_frame,
    run_pairs,
    serve,
    write,
)


def test_tolerance_boundaries_are_inclusive_and_relative_to_the_offline_value(
    open_store: Callable[..., FeatureStore],
) -> None:
    pairs = {
        # abs_tol 0.5, rel_tol 0: a difference of exactly 0.5 matches
        "a": [(10.0, 10.5), (10.0, 10.5000001), (10.5, 10.0), (-3.0, -2.5), (0.0, 0.50000001)],
        # abs_tol 0, rel_tol 0.25 of |offline|: 1 <= 0.25 * 4 matches; 1.1 > 1 does not,
        # although 1.1 <= 0.25 * 5.1 (the served value) would
        "r": [(5.0, 4.0), (5.1, 4.0), (4.0, 5.0), (3.0, 4.0), (2.9, 4.0), (0.0, 0.0)],
        # defaults: abs_tol 1e-9, rel_tol 1e-6
        "d": [
            (1e6 + 0.9, 1e6),
            (1e6 + 1.5, 1e6),
            (1e-10, 0.0),
            (2e-9, 0.0),
            (1.0, 1 + 5e-7),
            (1.0, 1 + 2e-6),
        ],
        # integers are exact, whatever their size
        "n": [(10**12, 10**12 + 1), (7, 7), (-1, 1)],
    }
    report, n = run_pairs(open_store, pairs)
    expected = {"a": {1, 4}, "r": {1, 4}, "d": {1, 3, 5}, "n": {0, 2}}
    for name, users in expected.items():
        r = report.result(f"m:{name}")
        assert r.rows_compared == n
        assert r.mismatches == len(users)
        assert r.null_mismatches == 0
        assert mismatching_users(report, f"m:{name}") == users
        assert r.verdict == Verdict.FLAGGED  # a real difference is flagged even on few rows
    assert report.result("m:c").verdict == Verdict.INSUFFICIENT_DATA


def test_null_mismatches_are_counted_in_each_direction(
    open_store: Callable[..., FeatureStore],
) -> None:
    pairs = {
        "d": [(None, 1.0), (None, 2.0), (3.0, None), (None, None), (4.0, 4.5)],
        "c": [("FR", "US")] * 3 + [(None, "DE")] * 2 + [("IT", None), (None, None), ("FR", "FR")],
    }
    report, n = run_pairs(open_store, pairs)
    d = report.result("m:d")
    assert (d.mismatches, d.served_null_offline_value, d.served_value_offline_null) == (1, 2, 1)
    assert mismatching_users(report, "m:d") == {0, 1, 2, 4}
    assert d.mismatch_rate == pytest.approx(4 / n)
    c = report.result("m:c")
    assert (c.mismatches, c.served_null_offline_value, c.served_value_offline_null) == (3, 2, 1)
    assert c.top_pairs == [("FR", "US", 3), (None, "DE", 2), ("IT", None, 1)]
    assert c.stats()["top_mismatch_pairs"] == "'FR' -> 'US' x3; null -> 'DE' x2; 'IT' -> null x1"
    served = Counter(p[0] for p in pairs["c"]) + Counter({"FR": n - len(pairs["c"])})
    offline = Counter(p[1] for p in pairs["c"]) + Counter({"FR": n - len(pairs["c"])})
    hist = c.histogram
    assert hist is not None
    for label, s_share, o_share in zip(
        hist["labels"], hist["current"], hist["reference"], strict=True
    ):
        key = None if label == "null" else label
        assert (s_share, o_share) == (served[key] / n, offline[key] / n)


def test_statistics_match_numpy_on_random_values(
    open_store: Callable[..., FeatureStore],
) -> None:
    rng = np.random.default_rng(7)
    n = 600
    a = rng.normal(0, 10, n)
    kind = rng.choice(["same", "tiny", "noisy", "zero", "a_null", "b_null", "stale"], n)
    b = np.where(kind == "tiny", a * (1 + 1e-8), a)
    b = np.where(kind == "noisy", a + rng.normal(0, 1, n), b)
    a = np.where(kind == "zero", 0.0, a)
    b = np.where(kind == "zero", 0.0, b)
    a = np.where(kind == "a_null", np.nan, a)
    b = np.where(kind == "b_null", np.nan, b)
    served = [None if np.isnan(x) else float(x) for x in a]
    offline = [None if np.isnan(x) else float(x) for x in b]
    stale = kind == "stale"
    pairs_served = pairs_frame({"d": served}).with_columns(
        pl.when(pl.Series(stale)).then(pl.lit(D(2023, 6, 1))).otherwise("ts").alias("ts")
    )
    store = open_store(PAIRS_DEFINITIONS, {"data/m.parquet": pairs_served})
    store.materialize(end=T0)
    write(store, "data/m.parquet", pairs_served.with_columns(d=pl.Series(offline)))
    serve(store, range(n), T1, ["m:d"])
    r = store.skew_report().result("m:d")

    # rows older than the 60-day ttl are withheld both online and offline: two nulls match
    a, b = np.where(stale, np.nan, a), np.where(stale, np.nan, b)
    both = ~np.isnan(a) & ~np.isnan(b)
    x, y = a[both], b[both]
    diff = np.abs(x - y)
    equal = diff <= 1e-9 + 1e-6 * np.abs(y)
    match = (np.isnan(a) & np.isnan(b)).sum() + equal.sum()
    denominator = np.abs(x) + np.abs(y)
    smape = np.mean(
        np.divide(200 * diff, denominator, out=np.zeros_like(diff), where=denominator > 0)
    )
    assert r.rows_compared == n
    assert r.match_rate == pytest.approx(match / n, rel=1e-12)
    assert r.mismatches == int((~equal).sum())
    assert r.served_null_offline_value == int((np.isnan(a) & ~np.isnan(b)).sum())
    assert r.served_value_offline_null == int((~np.isnan(a) & np.isnan(b)).sum())
    assert r.smape_pct == pytest.approx(float(smape), rel=1e-9)
    expected_q = np.quantile(diff, [0.5, 0.95, 0.99])
    assert list(r.abs_diff_quantiles.values()) == pytest.approx(expected_q.tolist(), rel=1e-9)
    assert r.served_status_shares["STALE"] == pytest.approx(stale.mean())
    hist = r.histogram
    assert hist is not None and hist["labels"][-1] == "null"
    assert sum(hist["current"]) == pytest.approx(1.0)
    assert hist["current"][-1] == pytest.approx(np.isnan(a).mean())
    assert hist["reference"][-1] == pytest.approx(np.isnan(b).mean())
