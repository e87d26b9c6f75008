"""Aggregations beyond training-set values: apply checks their columns, a training set rechecks
the source, the SQL text of both paths, and a view's aggregations as features."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any

import duckdb
import polars as pl
import pytest
from conftest import USER, definitions, source, view

from featurestore import FeatureStore
from featurestore.definitions import (
    Count,
    CountDistinct,
    Entity,
    FeatureView,
    FileSource,
    Last,
    Mean,
    StdDev,
    Sum,
)
from featurestore.errors import ApplyError, SchemaMismatchError
from featurestore.offline._point_in_time import WINDOW_ABOVE, AggregationScan, point_in_time_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, ident, timestamp_sql

from .agg_repo import (
    W1,
    W2,
    AggRepo,
    spine_frame,
)

US = dt.timedelta(microseconds=1)
BASE = dt.datetime(2024, 3, 10, 3, 0)
PATHS = [0.0, WINDOW_ABOVE, math.inf]  # window path, the default choice, join path


# --- apply-time checks -------------------------------------------------------------------------


def test_apply_checks_aggregation_columns(make_repo: Any) -> None:
    """A missing column and a column of the wrong type are both reported, nothing applied."""
    bad = view(
        "bad",
        source("users", "data/users.parquet", "updated_at"),
        aggregations=[
            'Sum("country", window=timedelta(days=1), name="country_sum")',
            'Mean("amount", window=timedelta(days=1), name="amount_mean")',
            'Sum("age", window=timedelta(days=1), name="age_sum", dtype=pl.Int64)',
            'Count(window=timedelta(days=1), name="n")',
            'CountDistinct("country", window=timedelta(days=1), name="countries")',
        ],
    )
    store = FeatureStore(make_repo(definitions=definitions(USER, bad)))
    with pytest.raises(ApplyError) as info:
        store.apply()
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert "'bad:country_sum'" in problems[0] and "String" in problems[0]
    assert "Float64" in problems[0]
    assert "'bad:amount_mean'" in problems[1] and "not found in the source" in problems[1]
    assert not (store.repo.data_dir / "registry.json").exists()
    store.close()


def test_training_set_rechecks_the_source(agg_repo: AggRepo) -> None:
    """A source whose aggregation column changed type fails before any SQL runs."""
    bad = pl.DataFrame(
        {
            "user_id": [1],
            "event_time": [BASE],
            "created": [BASE],
            "amount": ["oops"],
            "qty": [1],
            "merchant_id": ["m1"],
        }
    )
    bad.write_parquet(agg_repo.root / "data" / "txns.parquet")
    spine = spine_frame([{"user_id": 1, "event_timestamp": BASE}])
    with pytest.raises(SchemaMismatchError, match="spend_1h"):
        agg_repo.store.get_training_set(spine, features=["user_txn:spend_1h"])
    agg_repo.write()


# --- the SQL text ------------------------------------------------------------------------------


def agg_scan(window_above: float = WINDOW_ABOVE, created: bool = True) -> AggregationScan:
    return AggregationScan(
        alias="a0",
        scan=ident("src"),
        join_keys=("user_id",),
        timestamp=timestamp_sql("event_time", pl.Datetime("us")),
        created=timestamp_sql("created", pl.Datetime("us")) if created else None,
        aggregations=(
            Sum("x", window=W1, name="s"),
            Count(window=W2, name="n"),
            Mean("x", window=W2, name="m"),
            Last("x", window=W1, name="l"),
            CountDistinct("k", window=W1, name="d"),
            StdDev("x", window=W2, name="sd"),
        ),
        spine_range_us=(1_000, 9_000),
        window_above=window_above,
    )


class TestSql:
    def test_frames_are_open_at_both_ends_in_integer_microseconds(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        for window in (W1, W2):
            us = window // US
            assert f"RANGE BETWEEN {us - 1} PRECEDING AND 1 PRECEDING" in sql
        assert sql.count("RANGE BETWEEN") == 2  # one frame per distinct window length
        assert f"e.__fs_t < p.__fs_t AND e.__fs_t > p.__fs_t - {W2 // US}" in sql

    def test_shorter_windows_filter_the_join(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        assert f"sum(e.__fs_x0) FILTER (WHERE e.__fs_t > p.__fs_t - {W1 // US})" in sql
        assert "avg(e.__fs_x0) AS" in sql  # the longest window needs no filter
        assert "count(e.__fs_t) AS" in sql

    def test_inputs_are_cast_once_per_distinct_expression(self) -> None:
        scan = agg_scan()
        assert scan.inputs == {'CAST("x" AS DOUBLE)': "__fs_x0", '"k"': "__fs_x1"}

    def test_events_are_bounded_by_the_spine_range(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        assert 'epoch_us(CAST("event_time" AS TIMESTAMP)) < 9000' in sql
        assert f'epoch_us(CAST("event_time" AS TIMESTAMP)) > {1_000 - W2 // US}' in sql

    def test_last_orders_by_time_then_created_then_value(self) -> None:
        with_created = "\n".join(agg_scan().ctes("__fs_spine"))
        assert "{'t': e.__fs_t, 'c': e.__fs_c, 'v': e.__fs_x0}" in with_created
        assert 'COALESCE(epoch_us(CAST("created" AS TIMESTAMP)), -9223372036854775808)' in (
            with_created
        )
        without = "\n".join(agg_scan(created=False).ctes("__fs_spine"))
        assert "{'t': e.__fs_t, 'v': e.__fs_x0}" in without
        assert "__fs_c" not in without

    def test_join_path_alone_has_no_window(self) -> None:
        sql = "\n".join(agg_scan(math.inf).ctes("__fs_spine"))
        assert "OVER" not in sql and "a0_heavy" not in sql

    def test_outputs_fill_empty_windows_for_counts_and_sums_only(self) -> None:
        out = agg_scan().outputs()
        assert out[0] == 'CAST(COALESCE(a0."a0__s", 0) AS DOUBLE) AS "a0__s"'
        assert out[1] == 'CAST(COALESCE(a0."a0__n", 0) AS BIGINT) AS "a0__n"'
        assert out[2] == 'CAST(a0."a0__m" AS DOUBLE) AS "a0__m"'
        assert out[4] == 'CAST(COALESCE(a0."a0__d", 0) AS BIGINT) AS "a0__d"'

    @pytest.mark.parametrize("window_above", PATHS)
    def test_query_runs_without_an_engine(self, window_above: float) -> None:
        """The text alone, on two in-memory tables: the heavy-key count and the values."""
        con = duckdb.connect()
        t0 = dt.datetime(2024, 1, 1)
        con.register(
            "src",
            pl.DataFrame(
                {
                    "user_id": [1, 1, 1, 2],
                    "event_time": [t0, t0 + US, t0 + W1, t0],
                    "created": [t0, None, t0, t0],
                    "x": [1.0, 2.0, 4.0, 8.0],
                    "k": ["a", "b", "b", "c"],
                }
            ).to_arrow(),
        )
        spine = pl.DataFrame(
            {SPINE_ROW: [0, 1, 2], "user_id": [1, 1, 3], SPINE_TS: [t0 + W1, t0 + W1 + US, t0]},
            schema={SPINE_ROW: pl.UInt32, "user_id": pl.Int64, SPINE_TS: pl.Datetime("us")},
        )
        con.register("__fs_spine", spine.to_arrow())
        first, last = (int(v) for v in spine[SPINE_TS].dt.epoch("us").sort()[[0, -1]])
        scan = replace(agg_scan(window_above), spine_range_us=(first, last))
        heavy = con.execute(scan.heavy_keys_sql("__fs_spine")).fetchall()[0][0]
        assert heavy == (1 if window_above == 0 else 0)
        rows = con.execute(point_in_time_sql("__fs_spine", [], aggregations=[scan])).fetchall()
        # at t0 + 1h the 1h window holds the event at t0 + 1us only; the 3h window all before
        assert rows[0][1:] == (2.0, 2, 1.5, 2.0, 1, pytest.approx(math.sqrt(0.5)))
        assert rows[1][1:] == (4.0, 3, 7 / 3, 4.0, 1, pytest.approx(math.sqrt(7 / 3)))
        assert rows[2][1:] == (0.0, 0, None, None, 0, None)
        con.close()


# --- the view's API -----------------------------------------------------------------------------


def test_view_exposes_aggregations_as_features() -> None:
    spending = FeatureView(
        name="v",
        entities=[Entity("user", join_keys=["user_id"])],
        source=FileSource(name="t", path="t.parquet", timestamp_field="ts"),
        owner="o",
        aggregations=[Sum("amount", window=W1, name="spend"), Count(window=W2, name="n")],
    )
    assert spending.feature_names == ["spend", "n"]
    assert spending.aggregation("spend") == Sum("amount", window=W1, name="spend")
    assert spending.aggregation("nope") is None
    assert spending.feature("n").dtype == pl.Int64
    assert spending.source_columns() == ["amount"]
