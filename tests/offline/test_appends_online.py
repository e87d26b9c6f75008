"""A training set at T equals online at T after pushes, on LMDB, SQLite and Redis; and bad push
input, refused with a typed error or taken as the issue asks."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator

import polars as pl
import pytest
import redis
from conftest import rows_frame
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import (
    FeatureStore,
    SchemaMismatchError,
)

from .push_repo import (
    AGG_REFS,
    BASE,
    MINUTE,
    PLAIN_REFS,
    TXN_SCHEMA,
    USERS,
    Row,
    default_files,
    listing,
    offline,
    online,
    txn,
)

REDIS_URL = "redis://127.0.0.1:6379/0"


# --- training set at T equals online at T, on both stores -------------------------------


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}); start one with "
            "'redis-server --port 6379 --daemonize yes'",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(params=["lmdb", "sqlite", "redis"])
def online_yaml(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param != "redis":  # lmdb is the default
        yield "" if request.param == "lmdb" else "online_store: {type: sqlite}\n"
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix = f"fstest:appends:{uuid.uuid4().hex[:12]}:"
    yield f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


GRID = 10 * MINUTE
pushed_event = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(USERS),
        "slot": st.integers(-12, 30),  # ten-minute slots around the materialization at BASE
        "amount": st.one_of(st.none(), st.sampled_from([0.5, 2.0, 7.25, 100.0])),
        "merchant": st.sampled_from(["a", "b", "c"]),
    }
)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    batches=st.lists(st.lists(pushed_event, min_size=1, max_size=6), min_size=1, max_size=4),
    offsets=st.lists(st.sampled_from([0, 1, 10, 60, 61, 600]), min_size=1, max_size=3),
    to=st.sampled_from(["online_and_offline", "offline"]),
)
def test_a_training_set_at_t_equals_online_at_t_after_pushes(
    make_store: Callable[..., FeatureStore],
    online_yaml: str,
    batches: list[list[Row]],
    offsets: list[int],
    to: str,
) -> None:
    """Aggregations follow a push (default mode) at once; plain features of the same source
    (and aggregations pushed with to="offline") only after the next materialization."""
    seed = [txn(1, BASE - 3 * GRID, 10.0, "a"), txn(2, BASE - GRID, 4.0, "z")]
    files = {**default_files(), "data/txns/base.parquet": rows_frame(TXN_SCHEMA, seed)}
    store = make_store(online=online_yaml, files=files)
    store.materialize(BASE)
    # one event per user and time: of two rows tied on keys and event time (no created
    # timestamp), "either may be chosen" (README, point-in-time semantics), by a training set
    # and by a materialization alike, so a tie could differ between the two
    taken = {(1, -3), (2, -1)}
    pushed = []
    for batch in batches:
        events = []
        for e in batch:
            if (e["user_id"], e["slot"]) not in taken:
                taken.add((e["user_id"], e["slot"]))
                events.append(
                    txn(e["user_id"], BASE + e["slot"] * GRID, e["amount"], e["merchant"])
                )
        if events:
            pushed.append(events)
    newest = max(e["ts"] for e in [*seed, *itertools.chain(*pushed)])
    times = sorted({max(newest, BASE) + m * MINUTE for m in offsets})
    plain_before = {t: online(store, PLAIN_REFS, t) for t in times}
    aggs_before = {t: online(store, AGG_REFS, t) for t in times}
    for batch in pushed:
        result = store.push("txns", batch, to=to)  # type: ignore[arg-type]
        assert result.events == len(batch) and result.online_error is None
    for t in times:
        if to == "online_and_offline":
            assert online(store, AGG_REFS, t) == offline(store, AGG_REFS, t), t
        else:
            assert online(store, AGG_REFS, t) == aggs_before[t], t
        assert online(store, PLAIN_REFS, t) == plain_before[t], t  # plain: not yet
    store.materialize(newest, force=True)
    for t in times:
        refs = [*AGG_REFS, *PLAIN_REFS]
        assert online(store, refs, t) == offline(store, refs, t), t


# --- bad push input: refused with a typed error, or taken as the issue asks ---------------


def test_nan_and_infinity_are_refused_with_nothing_written(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    before, at = listing(store), BASE + 30 * MINUTE
    served = online(store, AGG_REFS, at)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(SchemaMismatchError, match="NaN or infinite values in 1 pushed row"):
            store.push("txns", [txn(1, BASE + MINUTE, 2.0), txn(2, BASE + MINUTE, bad)])
    assert listing(store) == before
    assert online(store, AGG_REFS, at) == served


def test_times_with_any_utc_offset_are_taken(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    pushed = [
        {"user_id": 2, "ts": "2025-01-01T05:10:00+05:00", "amount": 1.0, "merchant": "a"},
        {"user_id": 2, "ts": "2024-12-31T20:20:00-0400", "amount": 2.0, "merchant": "a"},
        {"user_id": 3, "ts": "2025-01-01T00:30:00Z", "amount": 4.0, "merchant": "a"},
        {"user_id": 3, "ts": "2025-01-01T00:40:00", "amount": 8.0, "merchant": "a"},
    ]
    result = store.push("txns", pushed)
    assert result.events == 4 and result.offline_file is not None
    # 00:10 and 00:20 UTC for user 2, 00:30 and 00:40 for user 3
    times = pl.read_parquet(result.offline_file)["ts"].to_list()
    assert [t.astimezone(dt.UTC).strftime("%H:%M") for t in times] == [
        "00:10",
        "00:20",
        "00:30",
        "00:40",
    ]
    at = BASE + 45 * MINUTE
    assert online(store, AGG_REFS, at) == offline(store, AGG_REFS, at)
    assert online(store, ["user_txn:spend_1d"], at)["spend_1d"][1:] == [3.0, 12.0]


def test_an_empty_push_is_taken_and_writes_nothing(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    before = listing(store)
    for empty in ([], {}, pl.DataFrame()):
        result = store.push("txns", empty)
        assert (result.events, result.offline_file, result.entities) == (0, None, {})
    assert listing(store) == before


def test_keys_of_another_kind_than_the_sources_are_refused(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    before = listing(store)
    for key in ("abc'--", "2"):  # text where the source holds integers
        with pytest.raises(SchemaMismatchError, match="join key 'user_id' holds integers"):
            store.push("txns", [{**txn(1, BASE + MINUTE), "user_id": key}])
    assert listing(store) == before
    assert online(store, AGG_REFS, BASE + 30 * MINUTE)["count_1h"] == [1, 0, 0]
