"""The point-in-time SQL builder: its text (no connection needed), then the query run in DuckDB
on small tables, where each case checks one rule of the join."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import duckdb
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, MATCH_STALE
from featurestore.offline._point_in_time import ViewScan, point_in_time_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, ident, timestamp_sql

T = dt.datetime(2024, 5, 1, 12, 0)
US = dt.timedelta(microseconds=1)
HOUR_US = 3_600_000_000


@settings(max_examples=60, deadline=None)
@given(
    instants=st.lists(
        st.integers(-(2**50), 2**52), min_size=1, max_size=20
    ),  # microseconds around 1970 to 2112, pre-1970 included
    unit=st.sampled_from(["us", "ns", "ms"]),
    zone=st.sampled_from([None, "UTC", "America/New_York", "Asia/Kathmandu"]),
)
def test_timestamp_sql_reads_every_parquet_timestamp_as_naive_utc(
    tmp_path_factory: pytest.TempPathFactory, instants: list[int], unit: str, zone: str | None
) -> None:
    """Whatever the unit and zone a writer chose (pandas writes nanoseconds, Arrow keeps the
    zone), DuckDB reads each instant through ``timestamp_sql`` as the naive UTC time Polars
    computes for it (sub-microsecond digits dropped, towards the past)."""
    frame = pl.DataFrame({"ts": pl.Series(instants, dtype=pl.Int64).cast(pl.Datetime("us"))})
    frame = frame.with_columns(pl.col("ts").cast(pl.Datetime(unit)))  # type: ignore[arg-type]
    if zone is not None:
        frame = frame.with_columns(
            pl.col("ts").dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
        )
    path = tmp_path_factory.mktemp("ts") / "t.parquet"
    frame.write_parquet(path)
    con = duckdb.connect()
    con.execute("SET TimeZone = 'America/Los_Angeles'")  # the session zone must not matter
    schema = dict(con.sql(f"SELECT * FROM read_parquet('{path}') LIMIT 0").pl().schema)
    sql = timestamp_sql("ts", schema["ts"])
    got = con.sql(f"SELECT {sql} AS ts FROM read_parquet('{path}')").pl()["ts"]
    want = frame["ts"]
    if zone is not None:
        want = want.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    assert got.to_list() == want.cast(pl.Datetime("us")).to_list()


def scan(
    alias: str = "v0",
    *,
    table: str = "src",
    keys: tuple[str, ...] = ("user_id",),
    created: bool = False,
    columns: tuple[str, ...] = ("x",),
    ttl_us: int | None = HOUR_US,
) -> ViewScan:
    """A view scan over ``table`` with naive event (and created) time columns."""
    return ViewScan(
        alias=alias,
        scan=ident(table),
        join_keys=keys,
        timestamp=timestamp_sql("event_time", pl.Datetime("us")),
        created=timestamp_sql("created", pl.Datetime("us")) if created else None,
        columns=columns,
        ttl_us=ttl_us,
    )


class TestText:
    def test_ident_quotes_and_escapes(self) -> None:
        assert ident("user_id") == '"user_id"'
        assert ident('we"ird') == '"we""ird"'

    def test_timestamp_sql_casts_naive_columns_only(self) -> None:
        assert timestamp_sql("ts", pl.Datetime("us")) == 'CAST("ts" AS TIMESTAMP)'
        assert timestamp_sql("ts", pl.Datetime("ns")) == 'CAST("ts" AS TIMESTAMP)'
        assert timestamp_sql("d", pl.Date()) == 'CAST("d" AS TIMESTAMP)'

    def test_subquery_reads_keys_times_and_prefixed_columns(self) -> None:
        sql = scan(keys=("bank", "acct"), created=True, columns=("x", "y z")).subquery()
        assert sql.startswith('SELECT "bank", "acct", CAST("event_time" AS TIMESTAMP) AS __fs_ts')
        created = "COALESCE(CAST(\"created\" AS TIMESTAMP), '-infinity'::TIMESTAMP) AS __fs_created"
        assert created in sql
        assert '"x" AS "v0__x"' in sql
        assert '"y z" AS "v0__y z"' in sql
        assert sql.endswith('FROM "src" WHERE CAST("event_time" AS TIMESTAMP) IS NOT NULL')

    def test_subquery_without_created_has_no_created_column(self) -> None:
        assert "__fs_created" not in scan().subquery()

    def test_condition_without_created_is_inclusive_on_time(self) -> None:
        cond = scan(keys=("bank", "acct")).condition("s")
        assert cond == (
            f's."bank" = v0."bank" AND s."acct" = v0."acct" AND s.{SPINE_TS} >= v0.__fs_ts'
        )

    def test_condition_with_created_orders_by_time_then_created(self) -> None:
        cond = scan(created=True).condition("s")
        assert cond.startswith('s."user_id" = v0."user_id" AND ')
        assert (
            f"{{'t': s.{SPINE_TS}, 'c': 'infinity'::TIMESTAMP}} >= "
            "{'t': v0.__fs_ts, 'c': v0.__fs_created}"
        ) in cond

    def test_match_with_and_without_ttl(self) -> None:
        with_ttl = scan(ttl_us=7 * HOUR_US + 3).match("s")
        assert f"WHEN v0.__fs_ts IS NULL THEN {MATCH_NONE}" in with_ttl
        assert (
            f"WHEN v0.__fs_ts < s.{SPINE_TS} - to_microseconds({7 * HOUR_US + 3}) "
            f"THEN {MATCH_STALE}"
        ) in with_ttl
        assert f"ELSE {MATCH_FOUND}" in with_ttl
        assert with_ttl.endswith("AS __fs_match_v0")
        without = scan(ttl_us=None).match("s")
        assert str(MATCH_STALE) not in without.replace("__fs_match_v0", "")
        assert "to_microseconds" not in without

    def test_outputs_name_the_match_and_prefixed_columns(self) -> None:
        assert scan(columns=("x", "y")).outputs() == ["__fs_match_v0", "v0__x", "v0__y"]

    def test_query_has_one_cte_and_one_asof_join_per_view_in_spine_order(self) -> None:
        views = [scan("v0"), scan("v1", table="other", created=True, ttl_us=None)]
        sql = point_in_time_sql("__fs_spine", views)
        assert sql.startswith("WITH v0 AS (SELECT ")
        assert ",\nv1 AS (SELECT " in sql
        assert sql.count("ASOF LEFT JOIN") == 2
        assert "ASOF LEFT JOIN v0 ON " in sql
        assert "ASOF LEFT JOIN v1 ON " in sql
        assert 'FROM "__fs_spine" s' in sql
        assert sql.rstrip().endswith(f"ORDER BY s.{SPINE_ROW}")
        assert sql.index("ASOF LEFT JOIN v0") < sql.index("ASOF LEFT JOIN v1")


@pytest.fixture
def con() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()


def run(
    con: duckdb.DuckDBPyConnection,
    spine: list[tuple[int | None, dt.datetime]],
    source: pl.DataFrame,
    view: ViewScan,
) -> list[tuple[int, object]]:
    """(match code, first column) per spine row, in spine order."""
    con.register(
        "__fs_spine",
        pl.DataFrame(
            {
                SPINE_ROW: list(range(len(spine))),
                "user_id": [k for k, _ in spine],
                SPINE_TS: [t for _, t in spine],
            },
            schema={SPINE_ROW: pl.UInt32, "user_id": pl.Int64, SPINE_TS: pl.Datetime("us")},
        ).to_arrow(),
    )
    con.register("src", source.to_arrow())
    rows = con.execute(point_in_time_sql("__fs_spine", [view])).fetchall()
    assert [r[0] for r in rows] == list(range(len(spine)))
    return [(r[1], r[2]) for r in rows]


def source(**columns: list[object]) -> pl.DataFrame:
    """A source table whose event_time and created columns are naive datetimes."""
    return pl.DataFrame(
        columns,
        schema_overrides={"event_time": pl.Datetime("us"), "created": pl.Datetime("us")},
    )


class TestDuckDB:
    def test_ttl_window_is_inclusive_and_stale_one_microsecond_past_it(
        self, con: duckdb.DuckDBPyConnection
    ) -> None:
        src = source(user_id=[1], event_time=[T], x=["a"])
        hour = dt.timedelta(hours=1)
        spine = [(1, T - US), (1, T), (1, T + hour), (1, T + hour + US), (2, T)]
        assert run(con, spine, src, scan()) == [
            (MATCH_NONE, None),
            (MATCH_FOUND, "a"),
            (MATCH_FOUND, "a"),
            (MATCH_STALE, "a"),
            (MATCH_NONE, None),
        ]

    def test_latest_row_at_or_before_t_wins_and_duplicate_spine_rows_stay(
        self, con: duckdb.DuckDBPyConnection
    ) -> None:
        src = source(user_id=[1, 1, 1], event_time=[T + US, T - US, T - 2 * US], x=["c", "b", "a"])
        spine = [(1, T), (None, T), (1, T), (1, T + US)]
        got = run(con, spine, src, scan(ttl_us=None))
        assert got == [
            (MATCH_FOUND, "b"),
            (MATCH_NONE, None),
            (MATCH_FOUND, "b"),
            (MATCH_FOUND, "c"),
        ]

    @pytest.mark.parametrize("reverse", [False, True])
    def test_ties_on_event_time_go_to_latest_created_null_created_last(
        self, con: duckdb.DuckDBPyConnection, reverse: bool
    ) -> None:
        created = [T - US, None, T + dt.timedelta(days=1), T]
        x = ["early", "null", "latest", "middle"]
        if reverse:
            created, x = created[::-1], x[::-1]
        src = source(user_id=[1] * 4, event_time=[T] * 4, created=created, x=x)
        assert run(con, [(1, T)], src, scan(created=True)) == [(MATCH_FOUND, "latest")]
        only_null = source(user_id=[1, 1], event_time=[T, T - US], created=[None, T], x=["n", "o"])
        assert run(con, [(1, T)], only_null, scan(created=True)) == [(MATCH_FOUND, "n")]

    def test_rows_with_null_event_time_are_never_picked(
        self, con: duckdb.DuckDBPyConnection
    ) -> None:
        src = source(user_id=[1, 1], event_time=[None, T - US], x=["null", "real"])
        assert run(con, [(1, T)], src, scan()) == [(MATCH_FOUND, "real")]

    def test_quoted_identifiers_run(self, con: duckdb.DuckDBPyConnection) -> None:
        src = source(user_id=[1], event_time=[T], **{'we"ird col': [5]})
        view = scan(columns=('we"ird col',))
        assert run(con, [(1, T)], src, view) == [(MATCH_FOUND, 5)]
        assert view.outputs() == ["__fs_match_v0", 'v0__we"ird col']

    def test_aware_source_times_are_compared_in_utc(self, con: duckdb.DuckDBPyConnection) -> None:
        aware = pl.DataFrame(
            {"user_id": [1], "event_time": [T], "x": ["a"]},
            schema_overrides={"event_time": pl.Datetime("us")},
        ).with_columns(
            pl.col("event_time").dt.replace_time_zone("UTC").dt.convert_time_zone("Asia/Tokyo")
        )
        view = ViewScan(
            alias="v0",
            scan=ident("src"),
            join_keys=("user_id",),
            timestamp=timestamp_sql("event_time", aware.schema["event_time"]),
            created=None,
            columns=("x",),
            ttl_us=HOUR_US,
        )
        assert run(con, [(1, T - US), (1, T)], aware, view) == [
            (MATCH_NONE, None),
            (MATCH_FOUND, "a"),
        ]
