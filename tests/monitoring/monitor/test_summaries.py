"""``summarize_log`` against a brute-force oracle: for random serving logs, the summed hourly
rows of any window rebuild (``window_profile``) exactly the profile ``profile_frame`` takes of
that window's values at the reference, the status counts equal a direct count, and
summarizing in two batches then adding equals summarizing at once."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from typing import Any

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore._value_rules import FeatureStatus
from featurestore.monitoring._monitor._summaries import (
    STATUS_COLUMNS,
    sum_summaries,
    summarize_log,
    window_profile,
)
from featurestore.serving._serving_log import SERVING_LOG_SCHEMA

DTYPES: dict[str, pl.DataType] = {
    "v:x": pl.Float64(),
    "v:ties": pl.Float64(),
    "v:n": pl.Int64(),
    "v:c": pl.String(),
    "v:many": pl.String(),
    "w:b": pl.Boolean(),
    "w:d": pl.Date(),
    "w:empty": pl.Float64(),
}
LISTS = [list(DTYPES), ["v:x", "v:c", "w:b", "other:unmonitored"], ["w:d", "v:n", "v:ties"]]
START = dt.datetime(2026, 3, 1, 22, tzinfo=dt.UTC)  # six hours over midnight
HOURS = 6


def _value(ref: str, rng: random.Random, reference: bool) -> Any:
    """A value of ``ref``; served values have categories the reference never saw."""
    if ref == "v:x":
        return rng.gauss(3.0, 2.0)
    if ref == "v:ties":
        return float(rng.randint(0, 4))
    if ref == "v:n":
        return rng.randint(-5, 50)
    if ref == "v:c":
        return rng.choice("abcde" if reference else "abcdefg")
    if ref == "v:many":
        return f"k{rng.randint(0, 1500 if reference else 1600)}"
    if ref == "w:b":
        return rng.random() < 0.3
    if ref == "w:d":
        return (dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 90))).isoformat()
    return None if reference else rng.random()  # w:empty: a reference of nulls only


def references(rng: random.Random) -> dict[str, FeatureProfile]:
    rows = [{r: _value(r, rng, True) if rng.random() > 0.05 else None for r in DTYPES}]
    rows += [{r: _value(r, rng, True) for r in DTYPES} for _ in range(3000)]
    frame = pl.DataFrame(rows, schema={**DTYPES, "w:d": pl.String()})
    frame = frame.with_columns(pl.col("w:d").str.to_date())
    return profile_frame(frame, reference=None)


def random_log(rng: random.Random, n: int) -> tuple[pl.DataFrame, list[dict[str, Any]]]:
    """A serving log of ``n`` records and, per record, its hour, served list, values and
    statuses as Python objects (what the oracle counts)."""
    statuses = [s.value for s in FeatureStatus]
    records, truth = [], []
    for i in range(n):
        at = START + dt.timedelta(seconds=rng.randrange(HOURS * 3600), microseconds=i)
        refs = rng.choice(LISTS)
        values: dict[str, Any] = {}
        status: dict[str, Any] = {}
        for r in refs:
            status[r] = "PRESENT" if rng.random() < 0.85 else rng.choice(statuses)
            null = status[r] in ("NOT_FOUND", "STALE") or rng.random() < 0.1
            values[r] = None if null else _value(r, rng, False)
        text = json.dumps(status, separators=(",", ":"))
        if rng.random() < 0.05:
            text = json.dumps(status)  # not the writer's compact text: decoded
        records.append(
            {
                "request_id": f"r{i}",
                "row": 0,
                "request_time": at,
                "feature_service": None,
                "features": refs,
                "entity_keys": "{}",
                "request_data": "{}",
                "values": json.dumps(values, separators=(",", ":")),
                "statuses": text,
                "fingerprints": "{}",
                "event_times": "{}",
                "latency_us": 1,
                "applied_fingerprints": "{}",
            }
        )
        hour = at.replace(minute=0, second=0, microsecond=0)
        truth.append({"hour": hour, "refs": refs, "values": values, "statuses": status})
    return pl.DataFrame(records, schema=SERVING_LOG_SCHEMA), truth


def _oracle(truth: list[dict[str, Any]], ref: str, lo: dt.datetime, hi: dt.datetime) -> Any:
    served = [t for t in truth if lo <= t["hour"] < hi and ref in t["refs"]]
    values = pl.DataFrame(
        {ref: [t["values"].get(ref) for t in served]},
        schema={ref: pl.String() if ref == "w:d" else DTYPES[ref]},
    )
    if ref == "w:d":
        values = values.with_columns(pl.col(ref).str.to_date())
    counts = {s: sum(t["statuses"].get(ref) == s for t in served) for s in STATUS_COLUMNS}
    return values, counts


def _same(got: FeatureProfile, want: FeatureProfile) -> None:
    """Equal counts, categories and bounds, moments to 1e-9 (a window's top categories name
    only the reference's: summaries do not keep unseen values)."""
    exact = ("count", "null_count", "cdf_points", "cdf_counts", "bin_counts", "categories")
    for field in (*exact, "unseen_count", "tail_points", "bin_edges"):
        assert getattr(got, field) == getattr(want, field), field
    if want.kind == "numeric":
        assert got.min == want.min and got.max == want.max
        assert got.tail_sums == pytest.approx(want.tail_sums, rel=1e-9, abs=1e-9)
        for field in ("mean", "std"):
            a, b = getattr(got, field), getattr(want, field)
            assert (a is None) == (b is None), field
            assert a is None or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12), field


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_windows_rebuild_the_profile_of_their_values(seed: int) -> None:
    rng = random.Random(seed)
    reference = references(rng)
    log, truth = random_log(rng, 1500)
    rows = summarize_log(log, reference, DTYPES)
    assert set(rows["feature"]) == set(DTYPES)
    for lo_h, hi_h in [(0, HOURS), (1, 4), (5, 6)]:
        lo, hi = START + dt.timedelta(hours=lo_h), START + dt.timedelta(hours=hi_h)
        window = rows.filter(pl.col("hour").is_between(lo, hi, closed="left"))
        summed = {r["feature"]: r for r in sum_summaries(window, by=("feature",)).to_dicts()}
        for ref in DTYPES:
            values, statuses = _oracle(truth, ref, lo, hi)
            want = profile_frame(values, reference=reference)[ref]
            got = window_profile(summed[ref], reference[ref])
            _same(got, want)
            assert {s: summed[ref][c] for s, c in STATUS_COLUMNS.items()} == statuses


def test_two_batches_add_up_to_one() -> None:
    rng = random.Random(9)
    reference = references(rng)
    log, _ = random_log(rng, 1200)
    at_once = summarize_log(log, reference, DTYPES).sort("hour", "feature")
    halves = [summarize_log(part, reference, DTYPES) for part in (log[:500], log[500:])]
    added = sum_summaries(pl.concat(halves)).sort("hour", "feature")
    assert_frame_equal(added, at_once, check_exact=False, rel_tol=1e-9, abs_tol=1e-9)


def test_empty_and_unmonitored_logs() -> None:
    reference = references(random.Random(4))
    log, _ = random_log(random.Random(5), 50)
    assert summarize_log(log.clear(), reference, DTYPES).is_empty()
    only = log.with_columns(pl.lit(["other:unmonitored"]).alias("features"))
    assert summarize_log(only, reference, DTYPES).is_empty()
