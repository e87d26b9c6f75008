"""Materialization on Spark into Redis: the executors compute the latest rows, count them for
the guard and write them into a staging hash, which the driver swaps in only after the guard
passed; value for value what the DuckDB path publishes and serves. A batch the guard refuses,
or a job that fails part-way, leaves the previous values served and no staging hash behind."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import redis
from conftest import DEFINITIONS
from online.conftest import drop_prefix

from featurestore import FeatureStore
from featurestore.errors import MaterializationGuardError, TransformError

pytest.importorskip("pyspark")

REDIS_URL = "redis://127.0.0.1:6379/0"
SPARK = (
    'offline_store: {type: spark, master: "local[2]", conf: {spark.sql.shuffle.partitions: "2"}}\n'
)
END = dt.datetime(2024, 3, 1)


def users(n: int, seed: int, bad_ages: float = 0.0) -> pl.DataFrame:
    """Several rows per user over two months, nulls, ties in time with different values."""
    rng = np.random.default_rng(seed)
    rows = 3 * n
    start = dt.datetime(2024, 1, 1)
    ages = rng.integers(18, 90, rows)
    ages = np.where(rng.random(rows) < bad_ages, 200, ages)
    return pl.DataFrame(
        {
            "user_id": rng.integers(0, n, rows),
            "updated_at": [start + dt.timedelta(hours=int(h)) for h in rng.integers(0, 1400, rows)],
            "signup_at": [start - dt.timedelta(days=int(d)) for d in rng.integers(0, 900, rows)],
            "country": rng.choice(["FR", "US", "DE", None], rows).tolist(),
            "age": ages,
        },
        schema_overrides={"updated_at": pl.Datetime("us"), "signup_at": pl.Datetime("us")},
    )


@pytest.fixture
def make_store(make_repo: Callable[..., Path]) -> Iterator[Callable[..., FeatureStore]]:
    prefixes: list[str] = []
    stores: list[FeatureStore] = []

    def make(
        name: str,
        spark: bool,
        frame: pl.DataFrame,
        part_rows: int = 1_000_000,
        definitions: str = DEFINITIONS,
    ) -> FeatureStore:
        prefix = f"fstest:spark:{uuid.uuid4().hex[:12]}:"
        prefixes.append(prefix)
        config = (
            f"project: spark_mat\n"
            f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
            f"materialization: {{part_rows: {part_rows}}}\n" + (SPARK if spark else "")
        )
        root = make_repo(name, definitions, config=config, data={"data/users.parquet": frame})
        store = FeatureStore(root)
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


def served(store: FeatureStore, n: int) -> dict[str, list[object]]:
    response = store.get_online_features(
        ["user_profile:country", "user_profile:age", "user_profile:tenure_days"],
        entities={"user_id": list(range(n + 2))},
        request_time=END,
    )
    return {"values": response.to_polars().to_dicts(), "statuses": response.statuses}


def staging_keys(store: FeatureStore) -> list[bytes]:
    client = redis.Redis.from_url(REDIS_URL)
    try:
        prefix = store.repo.config.online_store.key_prefix
        return list(client.scan_iter(match=f"{prefix}*:staging:*", count=1000))
    finally:
        client.close()


def test_spark_materialization_serves_what_duckdb_does(
    make_store: Callable[..., FeatureStore],
) -> None:
    frame = users(300, seed=4)
    on_spark = make_store("spark", True, frame)
    on_duckdb = make_store("duckdb", False, frame)
    (spark_result,) = on_spark.materialize(END)
    (duck_result,) = on_duckdb.materialize(END)
    assert spark_result.rows == duck_result.rows > 0
    assert spark_result.guard.checks == duck_result.guard.checks
    assert served(on_spark, 300) == served(on_duckdb, 300)
    assert staging_keys(on_spark) == []


def test_a_refused_batch_leaves_the_previous_values_served(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store("spark", True, users(200, seed=5), part_rows=150)
    store.materialize(END)
    before = served(store, 200)
    users(200, seed=6, bad_ages=0.5).write_parquet(store.repo.root / "data" / "users.parquet")
    with pytest.raises(MaterializationGuardError, match="break the declared"):
        store.materialize(END)
    assert served(store, 200) == before and staging_keys(store) == []


def test_a_job_failing_part_way_leaves_the_previous_values_served(
    make_store: Callable[..., FeatureStore],
) -> None:
    strict = DEFINITIONS.replace(
        'Feature("age", pl.Int64, ge=0, le=130)',
        'Feature("age", pl.Int64, expr=pl.col("age").cast(pl.Int8, strict=True).cast(pl.Int64))',
    )
    store = make_store("failing", True, users(200, seed=7), definitions=strict)
    store.materialize(END)
    before = served(store, 200)
    frame = users(200, seed=8).with_columns(
        pl.when(pl.col("user_id") == 150).then(1000).otherwise(pl.col("age")).alias("age")
    )  # one entity's age no longer fits: its executor fails after others wrote their share
    frame.write_parquet(store.repo.root / "data" / "users.parquet")
    with pytest.raises(TransformError, match="age"):
        store.materialize(END)
    assert served(store, 200) == before and staging_keys(store) == []
