"""Windowed aggregations in training sets, checked against the brute-force oracle.

The repo has a view with plain features and a dozen aggregations (every kind, three window
lengths, one with odd microseconds) over a source with a created timestamp, and a view keyed by
two entities over a UTC-aware source without one. Event times sit on a coarse grid, so ties
and events exactly at a window edge are common; spine times are aimed at ``event + window``
give or take a microsecond. Every check runs on both SQL paths (join and window) and on the
default choice between them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore.offline._point_in_time import WINDOW_ABOVE

from .agg_repo import (
    AGG_REFS,
    ALL_REFS,
    W1,
    W2,
    W3,
    AggRepo,
    Row,
    check,
    spine_frame,
)

US = dt.timedelta(microseconds=1)
BASE = dt.datetime(2024, 3, 10, 3, 0)
STEP = dt.timedelta(minutes=20)
PATHS = [0.0, WINDOW_ABOVE, math.inf]  # window path, the default choice, join path
ZONES = [None, "UTC", "America/New_York"]
SLOW = [HealthCheck.too_slow]


# --- property test ---------------------------------------------------------------------------

OFFSETS = [0, 0, 0, 1, -1, 7, -7]
grid_times = st.builds(
    lambda k, j: BASE + k * STEP + j * US, st.integers(0, 14), st.sampled_from(OFFSETS)
)


def maybe(strategy: st.SearchStrategy[Any], weight: int = 3) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), *[strategy] * weight)


def txn_rows(
    times: st.SearchStrategy[dt.datetime], created: st.SearchStrategy[dt.datetime]
) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 1, 1, 2, 3, None]),
            "event_time": maybe(times, weight=10),
            "created": maybe(created),
            "amount": maybe(st.integers(-8, 40).map(lambda n: n / 4)),
            "qty": maybe(st.integers(-5, 20)),
            "merchant_id": maybe(st.sampled_from(["m1", "m2", "m3"])),
        }
    )


def pair_rows(times: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, None]),
            "merchant_id": st.sampled_from(["m1", "m2", None]),
            "ts": times.map(lambda t: t.replace(tzinfo=dt.UTC)),
            "amount": maybe(st.integers(-4, 20).map(lambda n: n / 2)),
        }
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(grid_times, min_size=1, max_size=3, unique=True))
    times = st.one_of(*[st.sampled_from(pool)] * 3, grid_times)
    # unique in (key, event time, created): ties there would make the plain features
    # ambiguous; the pair source, with no plain features, has ties of every kind
    identity = ("user_id", "event_time", "created")
    created = st.one_of(st.sampled_from(pool), grid_times)
    txns = draw(
        st.lists(
            txn_rows(times, created),
            min_size=1,
            max_size=25,
            unique_by=lambda r: tuple(r[c] for c in identity),
        )
    )
    for row in draw(st.lists(st.sampled_from(txns), max_size=4)):  # twins tied on event time
        twin = draw(txn_rows(times, created)) | {"user_id": row["user_id"]}
        twin["event_time"] = row["event_time"]
        if all(tuple(twin[c] for c in identity) != tuple(r[c] for c in identity) for r in txns):
            txns.append(twin)
    pairs = draw(st.lists(pair_rows(times), max_size=12))
    anchors = [(r["user_id"], r["merchant_id"], r["event_time"]) for r in txns]
    anchors += [(r["user_id"], r["merchant_id"], r["ts"].replace(tzinfo=None)) for r in pairs]
    anchors = [a for a in anchors if a[2] is not None]
    random_row = st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, 3, 4, None]),
            "merchant_id": st.sampled_from(["m1", "m2", "m9", None]),
            "event_timestamp": grid_times,
            "req_amount": maybe(st.integers(0, 20).map(float)),
        }
    )
    spine = []
    for _ in range(draw(st.integers(1, 20))):
        row = draw(random_row)
        if anchors and draw(st.integers(0, 3)):  # aimed at an event's keys and window edge
            user, merchant, t = draw(st.sampled_from(anchors))
            offset = draw(st.sampled_from([dt.timedelta(0), W1, W2, W3]))
            when = t + offset + draw(st.sampled_from([0, 1, -1])) * US
            row |= {"user_id": user, "merchant_id": merchant, "event_timestamp": when}
        spine.append(row)
    return {
        "txns": txns,
        "pairs": pairs,
        "spine": spine,
        "refs": draw(
            st.one_of(
                st.just(list(ALL_REFS)),
                st.lists(st.sampled_from(ALL_REFS), min_size=1, max_size=8, unique=True),
            )
        ),
        "zone": draw(st.sampled_from(ZONES)),
        "path": draw(st.sampled_from(PATHS)),
        "full_feature_names": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW)
@given(scenario=scenarios())
def test_aggregations_match_oracle(agg_repo: AggRepo, scenario: dict[str, Any]) -> None:
    """Every kind, window edge, tie, null and path agrees with the oracle."""
    written = agg_repo.write(scenario["txns"], scenario["pairs"])
    check(
        agg_repo,
        spine_frame(scenario["spine"], scenario["zone"]),
        scenario["refs"],
        written,
        scenario["path"],
        scenario["full_feature_names"],
    )


# --- edges, empty windows, nulls and ties ----------------------------------------------------


def txn(t: dt.datetime, **values: Any) -> Row:
    """A user_txn row of user 1 at ``t``."""
    row = {"user_id": 1, "event_time": t, "created": t, "amount": 1.0, "qty": 1}
    return row | {"merchant_id": "m1"} | values


@pytest.mark.parametrize("path", PATHS)
def test_window_edges(agg_repo: AggRepo, path: float) -> None:
    """An event at T is in ``(t - window, t)`` from T + 1us to T + window - 1us only."""
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t, amount=2.5, qty=4)])
    times = [t - US, t, t + US, t + W1 - US, t + W1, t + W2 - US, t + W2]
    spine = spine_frame([{"user_id": 1, "event_timestamp": when} for when in times])
    refs = ["user_txn:n_1h", "user_txn:n_3h", "user_txn:spend_1h", "user_txn:mean_3h"]
    out = check(agg_repo, spine, refs, written, path)
    assert out["n_1h"].to_list() == [0, 0, 1, 1, 0, 0, 0]
    assert out["n_3h"].to_list() == [0, 0, 1, 1, 1, 1, 0]
    assert out["spend_1h"].to_list() == [0.0, 0.0, 2.5, 2.5, 0.0, 0.0, 0.0]
    assert out["mean_3h"].to_list() == [None, None, 2.5, 2.5, 2.5, 2.5, None]


@pytest.mark.parametrize("path", PATHS)
def test_entity_without_events(agg_repo: AggRepo, path: float) -> None:
    """No events: counts and sums are 0 and PRESENT; the other kinds null and NOT_FOUND.
    A null key finds no events either."""
    written = agg_repo.write([txn(BASE)], [])
    spine = spine_frame(
        [
            {"user_id": 4, "merchant_id": "m1", "event_timestamp": BASE + STEP},
            {"user_id": None, "merchant_id": "m1", "event_timestamp": BASE + STEP},
        ]
    )
    out = check(agg_repo, spine, AGG_REFS, written, path)
    zero = {
        "spend_1h": 0.0,
        "qty_3h": 0,
        "qty_1h_float": 0.0,
        "n_1h": 0,
        "n_3h": 0,
        "merchants_3h": 0,
        "pair_n_1d": 0,
        "pair_spend_1h": 0.0,
    }
    for name in (r.split(":")[1] for r in AGG_REFS):
        assert out[name].to_list() == [zero.get(name)] * 2, name
    ts = agg_repo.store.get_training_set(spine, features=["user_txn:n_1h", "user_txn:mean_3h"])
    assert {f.ref: f.statuses for f in ts.metadata.features} == {
        "user_txn:n_1h": {"PRESENT": 2},
        "user_txn:mean_3h": {"NOT_FOUND": 2},
    }


@pytest.mark.parametrize("path", PATHS)
def test_null_values_are_ignored_except_by_count(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write(
        [
            txn(t - 3 * US, amount=1.0, qty=5, merchant_id="m2"),
            txn(t - 2 * US, amount=None, qty=None, merchant_id=None),
            txn(t - US, amount=None, qty=2, merchant_id=None),
        ]
    )
    spine = spine_frame([{"user_id": 1, "event_timestamp": t}])
    out = check(agg_repo, spine, AGG_REFS[:12], written, path)
    got = out.row(0, named=True)
    assert got["n_1h"] == 3
    assert got["spend_1h"] == 1.0 and got["qty_3h"] == 7 and got["min_qty_1h"] == 2
    assert got["mean_3h"] == 1.0 and got["max_3h"] == 1.0 and got["sd_3h"] is None
    assert got["last_amount_1h"] == 1.0 and got["last_merchant_3h"] == "m2"
    assert got["merchants_3h"] == 1


@pytest.mark.parametrize("path", PATHS)
def test_all_null_values_give_zero_sums_and_not_found(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t - US, amount=None, qty=None, merchant_id=None)])
    spine = spine_frame([{"user_id": 1, "event_timestamp": t}])
    refs = ["user_txn:n_1h", "user_txn:spend_1h", "user_txn:qty_3h", "user_txn:mean_3h"]
    out = check(agg_repo, spine, refs, written, path)
    assert out.row(0) == (1, None, t, None, 1, 0.0, 0, None)


@pytest.mark.parametrize("path", PATHS)
def test_stddev_is_the_sample_deviation_and_null_below_two(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t - 2 * US, amount=2.0), txn(t - US, amount=4.0)])
    spine = spine_frame(
        [{"user_id": 1, "event_timestamp": t - US}, {"user_id": 1, "event_timestamp": t}]
    )
    out = check(agg_repo, spine, ["user_txn:sd_3h"], written, path)
    assert out["sd_3h"].to_list() == [None, pytest.approx(math.sqrt(2.0))]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reverse", [False, True])
def test_last_ties_go_to_created_then_to_the_greatest_value(
    agg_repo: AggRepo, path: float, reverse: bool
) -> None:
    """Tied event times: the latest created wins, a null created loses; tied created too, or a
    source without created times: the greatest value, whatever the file order."""
    t = BASE + 3 * STEP
    rows = [
        txn(t, created=t + US, amount=1.0, merchant_id="late"),
        txn(t, created=None, amount=9.0, merchant_id="null"),
        txn(t, created=t, amount=5.0, merchant_id="early"),
        txn(t - US, created=t + W1, amount=7.0, merchant_id="older"),
    ]
    tied = [
        txn(t, created=t, amount=a, merchant_id=m) | {"user_id": 2}
        for a, m in [(3.0, "b"), (8.0, "a"), (6.0, "c")]
    ]
    pairs = [
        {"user_id": 1, "merchant_id": "m1", "ts": t.replace(tzinfo=dt.UTC), "amount": a}
        for a in (2.0, 4.0, 3.0)
    ]
    if reverse:
        rows, tied, pairs = rows[::-1], tied[::-1], pairs[::-1]
    written = agg_repo.write([*rows, *tied], pairs)
    spine = spine_frame(
        [{"user_id": u, "merchant_id": "m1", "event_timestamp": t + US} for u in (1, 2)]
    )
    refs = ["user_txn:last_amount_1h", "user_txn:last_merchant_3h", "pair_txn:pair_last_1d"]
    out = check(agg_repo, spine, refs, written, path)
    assert out["last_amount_1h"].to_list() == [1.0, 8.0]
    assert out["last_merchant_3h"].to_list() == ["late", "c"]  # its own value breaks the tie
    assert out["pair_last_1d"].to_list() == [4.0, None]


def test_mixed_with_plain_expression_and_on_demand_features(agg_repo: AggRepo) -> None:
    """Aggregations, plain and expression features (with their ttl, which does not apply to
    aggregations) and on-demand features over aggregation outputs, through a service too."""
    t = BASE + 3 * STEP
    written = agg_repo.write(
        [txn(t - W1 + US, amount=4.0), txn(t - 2 * W1, amount=10.0)],
        [{"user_id": 1, "merchant_id": "m1", "ts": (t - W1).replace(tzinfo=dt.UTC), "amount": 3.0}],
    )
    spine = spine_frame(
        [
            {"user_id": 1, "merchant_id": "m1", "event_timestamp": t, "req_amount": 10.0},
            {"user_id": 4, "merchant_id": "m1", "event_timestamp": t, "req_amount": 1.0},
        ]
    )
    for path in PATHS:
        out = check(agg_repo, spine, ALL_REFS, written, path)
        assert out["amount"].to_list() == [None, None]  # older than the 30 min ttl
        assert out["n_3h"].to_list() == [2, 0]
        assert out["above_mean"].to_list() == [3.0, None]
        assert out["first_in_3h"].to_list() == [False, True]
        check(agg_repo, spine, ALL_REFS[:5], written, path, full_feature_names=True)
    ts = agg_repo.store.get_training_set(spine, feature_service="svc")
    assert ts.to_polars().columns[-6:] == [
        "pair_n_1d",
        "pair_spend_1h",
        "pair_last_1d",
        "pair_max_1d",
        "spend_1h",
        "above_mean",
    ]
    assert ts.to_polars()["pair_n_1d"].to_list() == [1, 0]
    applied = {r.ref: r for r in agg_repo.store.list_features()}
    assert applied["user_txn:spend_1h"].kind == "aggregation"
    assert (
        ts.metadata.fingerprints()["user_txn:spend_1h"] == applied["user_txn:spend_1h"].fingerprint
    )


def test_both_paths_in_one_query_on_skewed_keys(
    agg_repo: AggRepo, caplog: pytest.LogCaptureFixture
) -> None:
    """A key with many events and spine points takes the window path, light keys the join
    path, in the same query; the values are the oracle's either way."""
    heavy = [
        txn(BASE + i * dt.timedelta(minutes=1), amount=float(i % 7), qty=i % 5)
        | {"merchant_id": f"m{i % 4}", "created": None if i % 3 else BASE}
        for i in range(400)
    ]
    light = [txn(BASE + i * STEP, amount=1.5, qty=i) | {"user_id": 2} for i in range(5)]
    written = agg_repo.write([*heavy, *light])
    spine_rows = [
        {"user_id": 1, "event_timestamp": BASE + i * dt.timedelta(minutes=2, microseconds=1)}
        for i in range(200)
    ]
    spine_rows += [{"user_id": 2, "event_timestamp": BASE + i * STEP} for i in range(6)]
    caplog.set_level(logging.INFO, logger="featurestore.offline._engine")
    refs = list(AGG_REFS[:12])
    check(agg_repo, spine_frame(spine_rows), refs, written, WINDOW_ABOVE)
    assert "keys_on_window_path=1" in caplog.text
    caplog.clear()
    check(agg_repo, spine_frame(spine_rows[200:]), refs, written, WINDOW_ABOVE)
    assert "keys_on_window_path=0" in caplog.text
