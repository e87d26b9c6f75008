"""The recent events of aggregation views materialized on Spark: grouped per entity by Spark
and encoded in the executors, byte for byte what the DuckDB path stores, and served value for
value alike at several request times; on Redis the executors write them into a staging hash the
driver swaps in with the events state after the entity-count guard, on LMDB and SQLite they come
back to the driver. A batch the guard refuses, or a job failing part-way, leaves the previous
events and their state served and no staging hash behind."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
import redis
from conftest import MERCHANT, USER, definitions, source, view
from online.conftest import drop_prefix

from featurestore import FeatureStore
from featurestore.errors import MaterializationGuardError, OnlineStoreError
from featurestore.online._codec import encode_key
from featurestore.online._redis import RedisOnlineStore
from featurestore.online._state import MaterializationState

pytest.importorskip("pyspark")

REDIS_URL = "redis://127.0.0.1:6379/0"
SPARK = (
    'offline_store: {type: spark, master: "local[2]", conf: {spark.sql.shuffle.partitions: "2"}}\n'
)
END = dt.datetime(2024, 3, 2)
USERS = 30
MERCHANTS = ["m|1", "m\\2", "m3", "m4"]  # key text that must be escaped
REQUEST_TIMES = [
    END,
    END - dt.timedelta(minutes=50),
    END + dt.timedelta(hours=2),
    END + dt.timedelta(hours=25),
]
Store = Callable[..., FeatureStore]

DEFINITIONS = definitions(
    """
    W1 = timedelta(hours=1)
    W2 = timedelta(hours=3, microseconds=7)
    W3 = timedelta(days=1)
    """,
    USER,
    MERCHANT,
    view(
        "user_txn",
        source("txns", "data/txns.parquet", "event_time", created="created"),
        features=['Feature("amount", pl.Float64)'],
        aggregations=[
            'Sum("amount", window=W1, name="spend_1h")',
            'Sum("qty", window=W2, name="qty_3h", dtype=pl.Int64)',
            'Count(window=W1, name="n_1h")',
            'Count(window=W2, name="n_3h")',
            'Mean("amount", window=W2, name="mean_3h")',
            'Min("qty", window=W1, name="min_qty_1h", dtype=pl.Int64)',
            'Max("amount", window=W2, name="max_3h")',
            'Last("merchant_id", window=W2, name="last_merchant_3h", dtype=pl.String)',
            'StdDev("amount", window=W2, name="sd_3h")',
            'CountDistinct("merchant_id", window=W2, name="merchants_3h")',
            'Max("paid_at", window=W2, name="paid_3h", dtype=pl.Datetime("us", "UTC"))',
            'Min("day", window=W1, name="day_1h", dtype=pl.Date)',
            'CountDistinct("paid_at", window=W1, name="paid_times_1h")',
        ],
    ),
    view(
        "pair_txn",
        source("pair_txns", "data/pair_txns.parquet"),
        entities="user, merchant",
        aggregations=[
            'Count(window=W3, name="pair_n_1d")',
            'Sum("amount", window=W1, name="pair_spend_1h")',
            'Last("amount", window=W3, name="pair_last_1d")',
            'Max("amount", window=W3, name="pair_max_1d")',
            'CountDistinct("seen_at", window=W3, name="pair_seen_1d")',
        ],
    ),
    doc="Definitions of the Spark events test repo.",
)
USER_AGGREGATIONS = [
    "spend_1h",
    "qty_3h",
    "n_1h",
    "n_3h",
    "mean_3h",
    "min_qty_1h",
    "max_3h",
    "last_merchant_3h",
    "sd_3h",
    "merchants_3h",
    "paid_3h",
    "day_1h",
    "paid_times_1h",
]
PAIR_AGGREGATIONS = ["pair_n_1d", "pair_spend_1h", "pair_last_1d", "pair_max_1d", "pair_seen_1d"]


def _with_nulls(rng: np.random.Generator, frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """About one value in ten of each of ``columns`` null."""
    return frame.with_columns(
        pl.when(pl.Series(rng.random(frame.height) < 0.1)).then(None).otherwise(c).alias(c)
        for c in columns
    )


def _times(rng: np.random.Generator, rows: int) -> list[dt.datetime]:
    """Event times on a 20-minute grid over two days before ``END`` and a few hours after it:
    ties on time, events on the window edges, events past the end."""
    return [END + dt.timedelta(minutes=20 * int(s)) for s in rng.integers(-150, 12, rows)]


def txns(seed: int, users: int = USERS, rows: int = 500) -> pl.DataFrame:
    """The user view's events (naive times): ties on time broken by created times (some null,
    never two null ones tied), nulls in every input, a row without key, one without time."""
    rng = np.random.default_rng(seed)
    times = _times(rng, rows)
    shifts = rng.permutation(rows)
    frame = pl.DataFrame(
        {
            "user_id": rng.integers(0, users, rows),
            "event_time": times,
            "created": [
                t + dt.timedelta(microseconds=int(s)) for t, s in zip(times, shifts, strict=True)
            ],
            "amount": rng.normal(50, 20, rows).round(2),
            "qty": rng.integers(-3, 9, rows),
            "merchant_id": rng.choice(MERCHANTS, rows).tolist(),
            "paid_at": [
                t - dt.timedelta(minutes=int(m) * 7) for t, m in zip(times, shifts % 3, strict=True)
            ],
            "day": [t.date() for t in times],
        },
        schema_overrides={"event_time": pl.Datetime("us"), "created": pl.Datetime("us")},
    )
    frame = _with_nulls(rng, frame, ["created", "amount", "qty", "merchant_id", "paid_at", "day"])
    row = pl.int_range(pl.len())
    frame = frame.with_columns(
        pl.when(row == 0).then(None).otherwise("user_id").alias("user_id"),
        pl.when(row == 1).then(None).otherwise("event_time").alias("event_time"),
    )
    return frame.unique(["user_id", "event_time", "created"], keep="first", maintain_order=True)


def pair_txns(seed: int, users: int = USERS, rows: int = 300) -> pl.DataFrame:
    """The pair view's events (UTC-aware times, no created time: never two tied)."""
    rng = np.random.default_rng(seed)
    frame = pl.DataFrame(
        {
            "user_id": rng.integers(0, users, rows),
            "merchant_id": rng.choice(MERCHANTS, rows).tolist(),
            "ts": [t.replace(tzinfo=dt.UTC) for t in _times(rng, rows)],
            "amount": rng.normal(20, 5, rows).round(3),
            "seen_at": [
                END.replace(tzinfo=dt.UTC) - dt.timedelta(hours=int(h))
                for h in rng.integers(0, 5, rows)
            ],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "seen_at": pl.Datetime("us", "UTC")},
    )
    frame = _with_nulls(rng, frame, ["amount", "seen_at", "merchant_id"])
    return frame.unique(["user_id", "merchant_id", "ts"], keep="first", maintain_order=True)


def files(seed: int, users: int = USERS) -> dict[str, pl.DataFrame]:
    return {
        "data/txns.parquet": txns(seed, users),
        "data/pair_txns.parquet": pair_txns(seed + 1000, users),
    }


@pytest.fixture
def make_store(make_repo: Callable[..., Path]) -> Iterator[Store]:
    """Applied stores of the repo above over ``data``, on Spark or DuckDB, with the online
    ``backend`` (Redis under a key prefix of their own, deleted afterwards)."""
    prefixes: list[str] = []
    stores: list[FeatureStore] = []

    def make(name: str, spark: bool, backend: str, data: dict[str, pl.DataFrame]) -> FeatureStore:
        online = f"online_store: {{type: {backend}}}\n"
        if backend == "redis":
            prefix = f"fstest:spark_events:{uuid.uuid4().hex[:12]}:"
            prefixes.append(prefix)
            online = f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
        config = "project: spark_events\n" + online + (SPARK if spark else "")
        store = FeatureStore(make_repo(name, DEFINITIONS, config=config, data=data))
        store.apply()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
    client = redis.Redis.from_url(REDIS_URL)
    for prefix in prefixes:
        drop_prefix(client, prefix)
    client.close()


def entity_keys(data: dict[str, pl.DataFrame]) -> dict[str, list[str]]:
    """Every entity key the sources hold, per events view."""
    users = data["data/txns.parquet"].select("user_id").drop_nulls().unique()
    pairs = data["data/pair_txns.parquet"].select("user_id", "merchant_id").drop_nulls().unique()
    return {
        "user_txn@events": [encode_key(r) for r in users.rows()],
        "pair_txn@events": [encode_key(r) for r in pairs.rows()],
    }


def stored(store: FeatureStore, keys: dict[str, list[str]]) -> dict[str, dict[str, bytes]]:
    """The stored events of each entity with any, per events view."""
    out: dict[str, dict[str, bytes]] = {}
    for name, names in keys.items():
        values = store.online.read(name, names)
        out[name] = {k: v for k, v in zip(names, values, strict=True) if v is not None}
    return out


def served(store: FeatureStore, views: tuple[str, ...] = ("pair_txn",)) -> list[Any]:
    """Every aggregation of ``views`` for every entity (and some without events), at each
    request time, with its status."""
    ids = list(range(USERS + 1))
    pairs = [(u, m) for u in ids for m in MERCHANTS]
    requests = {
        "user_txn": ([f"user_txn:{a}" for a in USER_AGGREGATIONS], {"user_id": ids}),
        "pair_txn": (
            [f"pair_txn:{a}" for a in PAIR_AGGREGATIONS],
            {"user_id": [u for u, _ in pairs], "merchant_id": [m for _, m in pairs]},
        ),
    }
    out = []
    for at in REQUEST_TIMES:
        for refs, entities in (requests[v] for v in views):
            response = store.get_online_features(refs, entities=entities, request_time=at)
            out.append((response.to_polars().to_dicts(), response.statuses))
    return out


def events_state(store: FeatureStore, view: str) -> tuple[dt.datetime, int, str | None]:
    """The view's events state: its end, its entity count and its digest."""
    state = MaterializationState.load(store.online, [view]).events[view]
    return state.end, state.entities, state.digest


def staging_keys(store: FeatureStore) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        prefix = store.repo.config.online_store.key_prefix
        return list(client.scan_iter(match=f"{prefix}*:staging:*", count=1000))
    finally:
        client.close()


def test_spark_events_equal_duckdb_events_on_redis(make_store: Store) -> None:
    data = files(seed=1)
    on_spark = make_store("spark", True, "redis", data)
    on_duckdb = make_store("duckdb", False, "redis", data)
    spark_results = on_spark.materialize(END)
    duck_results = on_duckdb.materialize(END)
    assert [(r.view, r.rows, r.guard.checks) for r in spark_results] == [
        (r.view, r.rows, r.guard.checks) for r in duck_results
    ]
    keys = entity_keys(data)
    want = stored(on_duckdb, keys)
    assert all(want.values())
    assert stored(on_spark, keys) == want
    for name in ("user_txn", "pair_txn"):
        spark_end, spark_entities, spark_digest = events_state(on_spark, name)
        assert (spark_end, spark_digest) == events_state(on_duckdb, name)[::2]
        assert (
            spark_entities == len(want[f"{name}@events"]) == on_spark.online.count(f"{name}@events")
        )
    both = ("user_txn", "pair_txn")
    assert served(on_spark, both) == served(on_duckdb, both)
    assert staging_keys(on_spark) == []


@pytest.mark.parametrize("backend", ["lmdb", "sqlite"])
def test_spark_events_equal_duckdb_events_on_embedded_stores(
    make_store: Store, backend: str
) -> None:
    data = files(seed=2)
    on_spark = make_store(f"spark_{backend}", True, backend, data)
    on_duckdb = make_store(f"duckdb_{backend}", False, backend, data)
    on_spark.materialize(END, views=["pair_txn"])
    on_duckdb.materialize(END, views=["pair_txn"])
    keys = {"pair_txn@events": entity_keys(data)["pair_txn@events"]}
    want = stored(on_duckdb, keys)
    assert want["pair_txn@events"] and stored(on_spark, keys) == want
    assert events_state(on_spark, "pair_txn") == events_state(on_duckdb, "pair_txn")
    assert served(on_spark) == served(on_duckdb)


def test_a_refused_events_batch_leaves_the_previous_events_served(make_store: Store) -> None:
    store = make_store("refused", True, "redis", files(seed=3))
    store.materialize(END, views=["pair_txn"])
    before, state = served(store), events_state(store, "pair_txn")
    collapsed = pair_txns(seed=4, users=2)  # a handful of entities left
    collapsed.write_parquet(store.repo.root / "data" / "pair_txns.parquet")
    with pytest.raises(MaterializationGuardError, match="entities with events"):
        store.materialize(END + dt.timedelta(hours=1), views=["pair_txn"])
    assert served(store) == before and staging_keys(store) == []
    assert events_state(store, "pair_txn") == state
    assert store.online.count("pair_txn@events") == state[1]


def _fails_after_writing(fn: Callable[[pl.DataFrame], bytes]) -> Callable[[pl.DataFrame], bytes]:
    """``fn``, failing once it wrote a batch holding user 7 (after the others had time to
    finish, so nothing is written after the failure)."""

    def run(frame: pl.DataFrame) -> bytes:
        out = fn(frame)
        if 7 in frame["user_id"].to_list():
            time.sleep(1.0)
            raise RuntimeError("executor lost while writing")
        return out

    return run


def test_a_job_failing_part_way_leaves_the_previous_events_served(
    make_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurestore.offline._spark import SparkEngine

    store = make_store("failing", True, "redis", files(seed=5))
    store.materialize(END, views=["pair_txn"])
    before, state = served(store), events_state(store, "pair_txn")
    files(seed=6)["data/pair_txns.parquet"].write_parquet(
        store.repo.root / "data" / "pair_txns.parquet"
    )
    original = SparkEngine.map_recent_events
    monkeypatch.setattr(
        SparkEngine,
        "map_recent_events",
        lambda self, layout, end, fn: original(self, layout, end, _fails_after_writing(fn)),
    )
    dropped: list[int] = []  # the entities staged when the failed job's staging hash is dropped
    drop = RedisOnlineStore.drop_staging

    def drop_staging(self: RedisOnlineStore, staging: str) -> None:
        dropped.append(int(self.client.hlen(staging)))
        drop(self, staging)

    monkeypatch.setattr(RedisOnlineStore, "drop_staging", drop_staging)
    with pytest.raises(OnlineStoreError, match="executor lost while writing"):
        store.materialize(END + dt.timedelta(hours=1), views=["pair_txn"])
    assert len(dropped) == 1 and dropped[0] > 0  # failed part-way, after writing
    assert served(store) == before and staging_keys(store) == []
    assert events_state(store, "pair_txn") == state
    assert store.online.count("pair_txn@events") == state[1]
    monkeypatch.undo()  # the next run publishes the new events and their state
    later = END + dt.timedelta(hours=1)
    (result,) = store.materialize(later, views=["pair_txn"])
    assert events_state(store, "pair_txn") == (later, result.rows, state[2])
    assert store.online.count("pair_txn@events") == result.rows and served(store) != before
