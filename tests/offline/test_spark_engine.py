"""The Spark engine against the same brute-force oracles as the DuckDB engine: point-in-time
training sets (ttl edges, ties by created time, nulls, defaults, zones, on-demand views) and
windowed aggregations (every kind, window edges, empty windows), on the same random repos. One
local Spark session (``local[2]``) serves every test of the run."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings

from featurestore import FeatureStore

from . import agg_repo as aggregations
from .conftest import PitRepo, write_pit_repo
from .test_aggregations import scenarios as agg_scenarios
from .test_point_in_time import check_against_oracle, spine_frame
from .test_point_in_time import scenarios as pit_scenarios

pytest.importorskip("pyspark")

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
SPARK = (
    'offline_store: {type: spark, master: "local[2]", conf: {spark.sql.shuffle.partitions: "2"}}\n'
)


def _on_spark(root: Path) -> None:
    config = root / "featurestore.yaml"
    config.write_text(config.read_text() + SPARK)


@pytest.fixture(scope="module")
def spark_pit_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PitRepo]:
    """The point-in-time test repo with ``offline_store.type: spark``."""
    root = write_pit_repo(tmp_path_factory.mktemp("spark_pit") / "repo")
    _on_spark(root)
    store = FeatureStore(root)
    store.apply()
    yield PitRepo(root, store)
    store.close()


@pytest.fixture(scope="module")
def spark_agg_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[aggregations.AggRepo]:
    """The aggregation test repo with ``offline_store.type: spark``."""
    from conftest import write_repo

    root = write_repo(
        tmp_path_factory.mktemp("spark_agg") / "repo",
        aggregations.DEFINITIONS,
        config=f"project: agg_tests\n{SPARK}",
        data={},
    )
    aggregations.write_sources(root)
    store = FeatureStore(root)
    store.apply()
    yield aggregations.AggRepo(root, store)
    store.close()


def test_the_store_builds_training_sets_on_spark(spark_pit_repo: PitRepo) -> None:
    from featurestore.offline._spark import SparkEngine

    assert isinstance(spark_pit_repo.store._joiner(), SparkEngine)


@settings(max_examples=6, deadline=None, suppress_health_check=SLOW)
@given(scenario=pit_scenarios())
def test_training_set_on_spark_matches_oracle(
    spark_pit_repo: PitRepo, scenario: dict[str, Any]
) -> None:
    written = spark_pit_repo.write_sources(
        scenario["sources"]["user_stats"],
        scenario["sources"]["user_merchant"],
        scenario["parts"],
    )
    check_against_oracle(
        spark_pit_repo,
        spine_frame(scenario["spine"], scenario["zone"], scenario["unit"]),
        scenario["refs"],
        written,
        scenario["full_feature_names"],
        scenario["as_arrow"],
    )


@settings(max_examples=5, deadline=None, suppress_health_check=SLOW)
@given(scenario=agg_scenarios())
def test_aggregations_on_spark_match_oracle(
    spark_agg_repo: aggregations.AggRepo, scenario: dict[str, Any]
) -> None:
    written = spark_agg_repo.write(scenario["txns"], scenario["pairs"])
    aggregations.check(
        spark_agg_repo,
        aggregations.spine_frame(scenario["spine"], scenario["zone"]),
        scenario["refs"],
        written,
        math.inf,  # the DuckDB engine's path choice; Spark has one path
        scenario["full_feature_names"],
    )


def test_spark_and_duckdb_give_the_same_training_set(spark_pit_repo: PitRepo) -> None:
    t = dt.datetime(2024, 1, 1)
    written = spark_pit_repo.write_sources(
        [
            {"user_id": 1, "event_time": t, "created": t, "score": 2.5, "level": 3, "tier": "gold"},
            {"user_id": 2, "event_time": t, "created": t, "score": None, "level": 1, "tier": "x"},
        ]
    )
    assert written
    spine = pl.DataFrame(
        {"user_id": [1, 2, 3, 1], "event_timestamp": [t, t, t, t - dt.timedelta(seconds=1)]}
    )
    refs = ["user_stats:score", "user_stats:level", "user_stats:tier"]
    on_spark = spark_pit_repo.store.get_training_set(spine, refs).to_polars()
    duck = FeatureStore(spark_pit_repo.root)
    try:
        duck.repo.config.offline_store.type = "duckdb"
        on_duckdb = duck.get_training_set(spine, refs).to_polars()
    finally:
        duck.close()
    assert on_spark.equals(on_duckdb)


def test_a_training_set_becomes_a_spark_dataframe(spark_pit_repo: PitRepo) -> None:
    t = dt.datetime(2024, 1, 1)
    spark_pit_repo.write_sources(
        [{"user_id": 1, "event_time": t, "created": t, "score": 2.5, "level": 3, "tier": "gold"}]
    )
    spine = pl.DataFrame({"user_id": [1, 2], "event_timestamp": [t, t]})
    ts = spark_pit_repo.store.get_training_set(spine, ["user_stats:score"])
    frame = ts.to_spark()
    assert frame.columns == ["user_id", "event_timestamp", "score"]
    assert [r["score"] for r in frame.orderBy("user_id").collect()] == [2.5, None]


def test_a_failing_on_demand_function_is_a_transform_error_on_spark(
    make_repo: Callable[..., Path],
) -> None:
    from conftest import DEFINITIONS, spine_frame

    from featurestore.errors import TransformError

    failing = DEFINITIONS.replace(
        'return df.select((pl.col("amount")',
        'if df.height:\n        raise ValueError("amounts must be checked first")\n'
        '    return df.select((pl.col("amount")',
    )
    root = make_repo("failing", failing, config=f"project: failing\n{SPARK}")
    store = FeatureStore(root)
    try:
        store.apply()
        with pytest.raises(TransformError, match="amounts must be checked first"):
            store.get_training_set(spine_frame(), ["txn_risk:amount_per_age"])
        plain = store.get_training_set(spine_frame(), ["user_profile:age"]).to_polars()
        assert plain["age"].to_list()[:3] == [30, 31, 45]
    finally:
        store.close()


def test_the_spine_may_be_a_spark_dataframe(spark_pit_repo: PitRepo) -> None:
    t = dt.datetime(2024, 1, 1)
    spark_pit_repo.write_sources(
        [{"user_id": 1, "event_time": t, "created": t, "score": 2.5, "level": 3, "tier": "gold"}]
    )
    spine = pl.DataFrame({"user_id": [2, 1], "event_timestamp": [t, t]})
    engine = spark_pit_repo.store._joiner()
    assert engine is not None
    session = engine.spark
    from_spark = spark_pit_repo.store.get_training_set(
        session.createDataFrame(spine.to_arrow()), ["user_stats:score"]
    )
    assert from_spark.to_polars()["score"].to_list() == [None, 2.5]


def test_edges_on_spark(spark_pit_repo: PitRepo, spark_agg_repo: aggregations.AggRepo) -> None:
    """The DuckDB engine's edge tests, on Spark: ttl edges to the microsecond, the spine's
    zone read as an instant, duplicate spine rows kept in order, window edges, entities
    without events, null values, sample deviations, ties of Last, and a mix of plain,
    expression, aggregation and on-demand features."""
    from . import test_aggregations as agg_tests
    from . import test_point_in_time as pit_tests

    pit_tests.test_ttl_edges(spark_pit_repo)
    pit_tests.test_spine_zone_is_read_as_an_instant(spark_pit_repo)
    pit_tests.test_duplicate_spine_rows_are_kept_in_order(spark_pit_repo, (2, 0, 1))
    for edge in (
        agg_tests.test_window_edges,
        agg_tests.test_entity_without_events,
        agg_tests.test_null_values_are_ignored_except_by_count,
        agg_tests.test_all_null_values_give_zero_sums_and_not_found,
        agg_tests.test_stddev_is_the_sample_deviation_and_null_below_two,
    ):
        edge(spark_agg_repo, math.inf)
    agg_tests.test_last_ties_go_to_created_then_to_the_greatest_value(
        spark_agg_repo, math.inf, True
    )
    agg_tests.test_mixed_with_plain_expression_and_on_demand_features(spark_agg_repo)
