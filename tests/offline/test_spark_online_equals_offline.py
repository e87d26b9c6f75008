"""The online-equals-offline property test of the DuckDB engine, on a repo switched to Spark:
random source tables materialized on Spark into Redis, then ``get_online_features`` at T equals
the Spark training set at T, values and statuses, ttl edges, nulls and an on-demand view
included."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from online.conftest import (
    REDIS_URL,
    drop_prefix,
    online_store_yaml,
    unique_prefix,
    write_online_repo,
)
from online.test_online_equals_offline import BASE, check_random_scenario, pair, scenarios, user

from featurestore import FeatureStore

from .test_spark_engine import SPARK

pytest.importorskip("pyspark")


@pytest.fixture(scope="module")
def spark_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """The online test repo on Redis with ``offline_store.type: spark``, applied once."""
    prefix = unique_prefix()
    root = write_online_repo(
        tmp_path_factory.mktemp("spark_random") / "repo",
        online_store_yaml("redis", prefix) + SPARK,
        users=[user(1, BASE)],
        pairs=[pair(1, "m1", BASE, n_txn=1, avg_amt=1.0)],
    )
    store = FeatureStore(Path(root))
    store.apply()
    yield store
    store.close()
    client = redis.Redis.from_url(REDIS_URL)
    drop_prefix(client, prefix)
    client.close()


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_random_tables_online_equals_training_set_on_spark(
    spark_store: FeatureStore, scenario: dict[str, Any]
) -> None:
    from featurestore.offline._spark import SparkEngine

    assert isinstance(spark_store._joiner(), SparkEngine)
    check_random_scenario(spark_store, scenario)
