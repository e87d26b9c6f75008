"""Windowed aggregations online equal the offline values and a brute-force oracle, on SQLite and
on Redis: after materialization, after pushes (in random order, in random chunks, with late
events, with the appended events folded after every push, at times or never) both before and
after the next materialization (a push lands in the source's files too, so training sets and
materializations see it), at request times on and around the window edges; plus the push API's
checks.

The oracle reads the event list directly: an aggregation at time ``t`` covers the events with
``t - window < event time < t``; nulls are skipped by all but Count; Sum and Count give 0 and
the others null without values; Last takes the latest event with a value (ties: latest created,
then greatest value); StdDev is the sample standard deviation.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
import statistics
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from conftest import USER, definitions, source, view
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureReferenceError, FeatureStatus, FeatureStore, SchemaMismatchError
from featurestore.online import _push as push_module
from featurestore.online._codec import encode_key
from featurestore.online._event_state import FRAGMENT_SEPARATOR

from .conftest import online_store_yaml, write_online_repo

Row = dict[str, Any]
UTC = dt.UTC
BASE = dt.datetime(2025, 1, 1, tzinfo=UTC)
NEVER = 10**9  # a fold limit no test reaches
GRID = dt.timedelta(minutes=20)  # event times on a grid: ties and exact window edges
H1, H3, D1 = dt.timedelta(hours=1), dt.timedelta(hours=3), dt.timedelta(days=1)

DEFINITIONS = definitions(
    USER,
    view(
        "user_txn",
        source("txns", "data/txns/", created="created"),
        aggregations=[
            'Sum("amount", window=timedelta(hours=1), name="spend_1h")',
            'Sum("qty", window=timedelta(hours=1), name="qty_1h", dtype="Int64")',
            'Count(window=timedelta(hours=1), name="count_1h")',
            'Count(window=timedelta(days=1), name="count_1d")',
            'Mean("amount", window=timedelta(days=1), name="mean_1d")',
            'Min("amount", window=timedelta(days=1), name="min_1d")',
            'Max("qty", window=timedelta(days=1), name="max_qty_1d", dtype="Int64")',
            'Last("amount", window=timedelta(days=1), name="last_1d")',
            'StdDev("amount", window=timedelta(hours=3), name="std_3h")',
            'CountDistinct("merchant", window=timedelta(days=1), name="merchants_1d")',
        ],
    ),
    doc="Aggregations of every kind over payment events.",
)

SCHEMA = {
    "user_id": pl.Int64,
    "ts": pl.Datetime("us", "UTC"),
    "created": pl.Datetime("us", "UTC"),
    "amount": pl.Float64,
    "qty": pl.Int64,
    "merchant": pl.String,
}
AGGS: dict[str, tuple[str, str | None, dt.timedelta]] = {
    "spend_1h": ("sum", "amount", H1),
    "qty_1h": ("sum", "qty", H1),
    "count_1h": ("count", None, H1),
    "count_1d": ("count", None, D1),
    "mean_1d": ("mean", "amount", D1),
    "min_1d": ("min", "amount", D1),
    "max_qty_1d": ("max", "qty", D1),
    "last_1d": ("last", "amount", D1),
    "std_3h": ("stddev", "amount", H3),
    "merchants_1d": ("count_distinct", "merchant", D1),
}
REFS = [f"user_txn:{name}" for name in AGGS]
USERS = [1, 2, 3]


def oracle(events: list[Row], user: int, t: dt.datetime) -> dict[str, Any]:
    """Every aggregation of ``user`` at ``t``, by brute force over ``events``."""
    out: dict[str, Any] = {}
    for name, (kind, column, window) in AGGS.items():
        rows = [e for e in events if e["user_id"] == user and t - window < e["ts"] < t]
        if kind == "count":
            out[name] = len(rows)
            continue
        assert column is not None
        valued = [e for e in rows if e[column] is not None]
        values = [e[column] for e in valued]
        if kind == "sum":
            out[name] = sum(values) if values else (0.0 if column == "amount" else 0)
        elif kind == "mean":
            out[name] = statistics.fmean(values) if values else None
        elif kind == "min":
            out[name] = min(values, default=None)
        elif kind == "max":
            out[name] = max(values, default=None)
        elif kind == "stddev":
            out[name] = statistics.stdev(values) if len(values) >= 2 else None
        elif kind == "count_distinct":
            out[name] = len(set(values))
        else:
            best = max(valued, key=lambda e: (e["ts"], e["created"], e[column]), default=None)
            out[name] = None if best is None else best[column]
    return out


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return a == b and type(a) is type(b)


def frame(events: list[Row]) -> pl.DataFrame:
    return pl.DataFrame([[e[c] for e in events] for c in SCHEMA], schema=SCHEMA, orient="col")


@pytest.fixture
def make_repo(
    backend: str, tmp_path: Path, redis_prefix: str
) -> Iterator[Callable[[list[Row]], FeatureStore]]:
    """A factory: a fresh repo (own directory and project) with ``events`` as its source."""
    stores: list[FeatureStore] = []
    counter = itertools.count()

    def make(events: list[Row]) -> FeatureStore:
        i = next(counter)
        root = write_online_repo(
            tmp_path / f"repo{i}",
            online_store_yaml(backend, redis_prefix),
            definitions=DEFINITIONS,
            project=f"agg{i}",
            data={"data/txns/base.parquet": frame(events)},
        )
        store = FeatureStore(root)
        store.apply()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def check(store: FeatureStore, events: list[Row], times: list[dt.datetime]) -> None:
    """Online == oracle == offline for every user at every time."""
    spine = pl.DataFrame(
        {
            "user_id": [u for _ in times for u in USERS],
            "event_timestamp": [t for t in times for _ in USERS],
        },
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    offline = store.get_training_set(spine, features=REFS).to_polars().to_dicts()
    for i, t in enumerate(times):
        online = store.get_online_features(
            features=REFS, entities={"user_id": USERS}, request_time=t
        )
        for j, user in enumerate(USERS):
            want = oracle(events, user, t)
            row = offline[i * len(USERS) + j]
            for name in AGGS:
                got = online.values[name][j]
                status = online.statuses[name][j]
                context = f"{name} of user {user} at {t}"
                assert same(got, want[name]), f"online {got!r} != oracle {want[name]!r}: {context}"
                assert same(row[name], want[name]), f"offline {row[name]!r}: {context}"
                expected = FeatureStatus.NOT_FOUND if want[name] is None else FeatureStatus.PRESENT
                assert status == expected, context


event = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(USERS),
        "slot": st.integers(0, 3 * 24 * 3),  # three days of 20-minute slots
        "late": st.integers(0, 3),  # created this many slots after the event
        "amount": st.one_of(st.none(), st.sampled_from([1.5, 2.0, 10.25, 100.0, -3.0])),
        "qty": st.one_of(st.none(), st.integers(-5, 50)),
        "merchant": st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
    }
)


def to_event(e: Row) -> Row:
    ts = BASE + e["slot"] * GRID
    return {
        **{k: e[k] for k in ("user_id", "amount", "qty", "merchant")},
        "ts": ts,
        "created": ts + e["late"] * GRID,
    }


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    before=st.lists(event, min_size=1, max_size=30),
    after=st.lists(event, min_size=1, max_size=20),
    chunks=st.integers(1, 4),
    offsets=st.lists(st.sampled_from([0, 1, 20, 60, 180, 24 * 60]), min_size=1, max_size=4),
    compact_after=st.sampled_from([0, 150, NEVER]),  # fold appended events always, at times, never
)
def test_online_equals_offline_and_oracle_after_materialize_and_push(
    make_repo: Callable[[list[Row]], FeatureStore],
    before: list[Row],
    after: list[Row],
    chunks: int,
    offsets: list[int],
    compact_after: int,
) -> None:
    materialized = [to_event(e) for e in before]
    store = make_repo(materialized)
    end = max(e["ts"] for e in materialized)
    store.materialize(end)
    # request times at and after the newest event written: on window edges and beyond
    times = [end + dt.timedelta(minutes=m) for m in offsets] + [end - H1 + GRID + H1]
    check(store, materialized, sorted(set(t for t in times if t >= end)))

    pushed = [to_event(e) for e in after]  # any order; some older than the horizon (late)
    size = math.ceil(len(pushed) / chunks)
    default = push_module.COMPACT_AFTER_BYTES
    push_module.COMPACT_AFTER_BYTES = compact_after
    try:
        for start in range(0, len(pushed), size):
            result = store.push("txns", frame(pushed[start : start + size]))
            assert result.events == len(pushed[start : start + size])
    finally:
        push_module.COMPACT_AFTER_BYTES = default
    everything = materialized + pushed
    newest = max(e["ts"] for e in everything)
    later = [newest + dt.timedelta(minutes=m) for m in sorted(set(offsets))]
    check(store, everything, later)  # the pushes are in the source's files: offline sees them
    # rebuilt from the files, pushed events included (forced: with three users, entities whose
    # events all left the window look like a collapse to the guard)
    store.materialize(newest, force=True)
    check(store, everything, later)


def test_pushes_move_values_without_rematerializing(
    make_repo: Callable[[list[Row]], FeatureStore],
) -> None:
    first = {"user_id": 1, "ts": BASE, "created": BASE, "amount": 10.0, "qty": 1, "merchant": "a"}
    store = make_repo([first])
    store.materialize(BASE)
    at = BASE + dt.timedelta(minutes=30)
    ask = {"features": ["user_txn:count_1h", "user_txn:spend_1h"], "entities": {"user_id": [1]}}
    assert store.get_online_features(**ask, request_time=at).values["spend_1h"] == [10.0]
    later = {**first, "ts": BASE + GRID, "created": BASE + GRID, "amount": 5.0}
    store.push("txns", [later])
    got = store.get_online_features(**ask, request_time=at)
    assert got.values == {"count_1h": [2], "spend_1h": [15.0]}
    # as the request time moves on, old events leave the window
    gone = store.get_online_features(**ask, request_time=BASE + H1 + GRID)
    assert gone.values == {"count_1h": [0], "spend_1h": [0.0]}
    assert gone.statuses["spend_1h"] == [FeatureStatus.PRESENT]
    # an event beyond the longest window of the newest one in the same push is dropped and
    # counted; one that only older events put out of reach is appended but never counted
    stale = {**first, "ts": BASE - 2 * D1, "created": BASE}
    result = store.push("txns", [stale, {**first, "ts": BASE + 2 * GRID, "amount": 1.0}])
    assert (result.entities, result.late) == ({"user_txn": 1}, {"user_txn": 1})
    result = store.push("txns", [stale])
    assert (result.entities, result.late, result.compacted) == (
        {"user_txn": 1},
        {"user_txn": 0},
        {"user_txn": 0},
    )
    at_3 = BASE + 3 * GRID
    ask_1d = {"features": ["user_txn:count_1d"], "entities": {"user_id": [1]}}
    assert store.get_online_features(**ask_1d, request_time=at_3).values == {"count_1d": [3]}


def test_appended_events_are_folded_into_one_state_past_the_size_limit(
    make_repo: Callable[[list[Row]], FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = {"user_id": 1, "ts": BASE, "created": BASE, "amount": 10.0, "qty": 1, "merchant": "a"}
    store = make_repo([first])
    store.materialize(BASE)
    six_hours = dt.timedelta(hours=6)
    pushed = [
        {**first, "ts": BASE + i * six_hours, "created": BASE + i * six_hours, "amount": float(i)}
        for i in range(1, 9)
    ]
    key = [encode_key((1,))]
    monkeypatch.setattr(push_module, "COMPACT_AFTER_BYTES", NEVER)
    for event in pushed[:4]:
        assert store.push("txns", [event]).compacted == {"user_txn": 0}
    assert store.online.read("user_txn@events", key)[0].count(FRAGMENT_SEPARATOR) == 4
    monkeypatch.setattr(push_module, "COMPACT_AFTER_BYTES", 0)
    for event in pushed[4:]:
        assert store.push("txns", [event]).compacted == {"user_txn": 1}
    # one state again, without the events at or before the newest (48 h) minus a day
    state = orjson.loads(store.online.read("user_txn@events", key)[0])
    hours = [(t - state["t"][0]) // 3_600_000_000 for t in state["t"]]
    assert (len(state["t"]), hours) == (4, [0, 6, 12, 18])
    at = BASE + 8 * six_hours + dt.timedelta(minutes=1)
    got = store.get_online_features(
        features=["user_txn:count_1d", "user_txn:spend_1h"],
        entities={"user_id": [1]},
        request_time=at,
    )
    assert got.values == {"count_1d": [4], "spend_1h": [8.0]}


def test_a_push_with_a_column_null_throughout_is_taken_and_folds_with_stored_values(
    make_repo: Callable[[list[Row]], FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = {"user_id": 1, "ts": BASE, "created": BASE, "amount": 1.0, "qty": 1, "merchant": "a"}
    store = make_repo([first, {**first, "ts": BASE + GRID, "merchant": "b"}])
    store.materialize(BASE + GRID)
    monkeypatch.setattr(push_module, "COMPACT_AFTER_BYTES", 0)
    nothing = {**first, "ts": BASE + 2 * GRID, "amount": None, "qty": None, "merchant": None}
    assert store.push("txns", [nothing]).compacted == {"user_txn": 1}
    got = store.get_online_features(
        features=["user_txn:merchants_1d", "user_txn:spend_1h", "user_txn:count_1h"],
        entities={"user_id": [1]},
        request_time=BASE + 3 * GRID,
    )
    assert got.values == {"merchants_1d": [2], "spend_1h": [1.0], "count_1h": [2]}


def test_push_checks_rows_before_writing_anything(
    make_repo: Callable[[list[Row]], FeatureStore],
) -> None:
    first = {"user_id": 1, "ts": BASE, "created": BASE, "amount": 10.0, "qty": 1, "merchant": "a"}
    store = make_repo([first])
    store.materialize(BASE)
    ask = {"features": ["user_txn:count_1d"], "entities": {"user_id": [1, 2]}}
    before = store.get_online_features(**ask, request_time=BASE + H1).values
    with pytest.raises(SchemaMismatchError, match=r"'amount'.*not found in the source"):
        store.push(
            "txns", {"user_id": [2], "ts": [BASE], "created": [BASE], "qty": [1], "merchant": ["b"]}
        )
    with pytest.raises(SchemaMismatchError, match="'ts' is null in 1 pushed row"):
        store.push("txns", [{**first, "user_id": 2}, {**first, "user_id": 2, "ts": None}])
    with pytest.raises(SchemaMismatchError, match=r"'amount'.*String"):
        store.push("txns", [{**first, "amount": "ten"}])
    with pytest.raises(FeatureReferenceError, match="Did you mean 'txns'"):
        store.push("txn", [first])
    assert store.get_online_features(**ask, request_time=BASE + H1).values == before
