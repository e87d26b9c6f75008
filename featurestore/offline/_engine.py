"""Spine -> training frame: checks the spine, runs the point-in-time join and the windowed
aggregations in DuckDB, then the shared transforms and validation in Polars. No Python loop
over rows."""

from __future__ import annotations

import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import replace

import duckdb
import polars as pl

from featurestore._repo import RepoContents
from featurestore._selection import RetrievalPlan
from featurestore._times import as_naive_utc, as_utc
from featurestore.definitions import Aggregation, FeatureView
from featurestore.offline._feature_values import (
    feature_columns,
    on_demand_columns,
    training_output,
    view_values,
)
from featurestore.offline._point_in_time import (
    WINDOW_ABOVE,
    AggregationScan,
    ViewScan,
    point_in_time_sql,
)
from featurestore.offline._recent_events import EVENTS_SLICE_ROWS, EventsLayout, recent_events
from featurestore.offline._spine import SpineLike, checked_inputs, read_spine, spine_table
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import files_signature, scan_sql
from featurestore.sources._schema import check_view, read_schema
from featurestore.sources._sql import EVENT_TS, SPINE_ROW, SPINE_TS, ident, timestamp_sql

__all__ = ["OfflineEngine", "SpineLike", "read_spine"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Schema = dict[str, pl.DataType]
PlainScans = list[tuple[str, list[str], ViewScan]]  # view name, features, scan
AggregationScans = list[tuple[str, AggregationScan]]  # view name, scan


class OfflineEngine:
    """Builds training frames for one repo with one DuckDB connection.

    ``window_above`` picks the path of each key's aggregations (see
    :mod:`featurestore.offline._point_in_time`): ``math.inf`` forces the join path, 0 the
    window path.
    """

    window_above: float = WINDOW_ABOVE

    def __init__(self, repo: RepoContents) -> None:
        self.repo = repo
        self._schemas: dict[str, tuple[tuple[tuple[str, int, int], ...], Schema]] = {}
        self._checked: dict[str, tuple[FeatureView, tuple[tuple[str, pl.DataType], ...]]] = {}
        self.con = duckdb.connect()
        self.con.execute("SET TimeZone = 'UTC'")
        cfg = repo.config.offline_store
        if cfg.threads:
            self.con.execute(f"SET threads = {int(cfg.threads)}")
        if cfg.memory_limit:
            self.con.execute("SET memory_limit = ?", [cfg.memory_limit])

    def close(self) -> None:
        self.con.close()

    def source_schema(self, view: FeatureView) -> dict[str, pl.DataType]:
        """The source's schema, read from the files only when they changed since the last
        read (by path, size and modification time)."""
        src, root = view.source, self.repo.root
        scan, files = scan_sql(src, root), files_signature(src, root)
        kept = self._schemas.get(scan)
        if kept is None or kept[0] != files:  # only the latest read of each source is kept
            kept = self._schemas[scan] = (files, read_schema(self.con, src, root))
        return dict(kept[1])

    def checked_schema(self, view: FeatureView) -> dict[str, pl.DataType]:
        """:meth:`source_schema`, checked against the view's declarations (once per view
        definition and schema): raises SchemaMismatchError when they no longer fit."""
        schema = self.source_schema(view)
        checked = (view, tuple(schema.items()))
        if self._checked.get(view.name) != checked:
            check_view(view, schema)
            self._checked[view.name] = checked
        return schema

    def newest_event_time(self, view: FeatureView) -> dt.datetime | None:
        """The latest event time in the view's source (aware UTC), None when it has no rows.
        Checks the source against the declarations first: raises SourceError when it is
        missing, unreadable or no longer fits them."""
        schema = self.checked_schema(view)
        ts = timestamp_sql(view.source.timestamp_field, schema[view.source.timestamp_field])
        scan = scan_sql(view.source, self.repo.root)
        with reading([view.source], self.repo.root):
            [(newest,)] = self.con.execute(f"SELECT max({ts}) FROM {scan}").fetchall()
        return as_utc(newest) if newest is not None else None

    def training_frame(
        self,
        spine: pl.DataFrame,
        plan: RetrievalPlan,
        timestamp_column: str = "event_timestamp",
        progress: Progress | None = None,
        *,
        status_columns: bool = False,
    ) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
        """The spine with one column per requested feature, and status counts per feature;
        with ``status_columns``, also each value's status (``<column>__status``, text)."""
        step = progress or (lambda _msg: None)
        schemas = checked_inputs(spine, plan, timestamp_column, self.checked_schema, step)
        internal = spine_table(spine, plan.join_keys, timestamp_column)
        scans, agg_scans = self._scans(plan, schemas, internal)
        step(f"joining {len(plan.views)} view(s) onto {spine.height:,} spine rows")
        joined, agg_scans = self._join(internal, plan, scans, agg_scans)
        step("computing features")
        values, statuses = feature_columns(joined, plan, scans, agg_scans)
        for odfv in plan.on_demand:
            step(f"running on-demand view {odfv.name}")
            on_demand_columns(self.repo.views, odfv, spine, values, statuses)
        return training_output(spine, plan, values, statuses, status_columns)

    def _scans(
        self,
        plan: RetrievalPlan,
        schemas: dict[str, dict[str, pl.DataType]],
        internal: pl.DataFrame,
    ) -> tuple[PlainScans, AggregationScans]:
        """Per planned view: the scan of its plain features and that of its aggregations."""
        scans: PlainScans = []
        agg_scans: AggregationScans = []
        for i, (name, wanted) in enumerate(plan.views.items()):
            view = plan.batch_views[name]
            plain = [n for n in wanted if view.aggregation(n) is None]
            if plain:
                scans.append((name, plain, self._scan(f"v{i}", view, plain, schemas[name])))
            aggs = tuple(a for n in wanted if (a := view.aggregation(n)) is not None)
            if aggs:
                scan = self._aggregation_scan(f"a{i}", view, aggs, schemas[name], internal)
                agg_scans.append((name, scan))
        return scans, agg_scans

    def _join(
        self,
        internal: pl.DataFrame,
        plan: RetrievalPlan,
        scans: PlainScans,
        agg_scans: AggregationScans,
    ) -> tuple[pl.DataFrame, AggregationScans]:
        """The point-in-time join of every scan onto the spine, in one query; the aggregation
        scans as run (each with the path its keys took)."""
        started = time.perf_counter()
        self.con.register("__fs_spine", internal.to_arrow())
        try:
            with reading([v.source for v in plan.batch_views.values()], self.repo.root):
                agg_scans = [(name, self._choose_paths(scan)) for name, scan in agg_scans]
                sql = point_in_time_sql(
                    "__fs_spine", [s for _, _, s in scans], aggregations=[s for _, s in agg_scans]
                )
                joined = self.con.sql(sql).pl()
        finally:
            self.con.unregister("__fs_spine")
        log.info(
            "point-in-time join rows=%d views=%d aggregation_views=%d seconds=%.3f",
            internal.height,
            len(scans),
            len(agg_scans),
            time.perf_counter() - started,
        )
        return joined, agg_scans

    def _scan(
        self, alias: str, view: FeatureView, wanted: list[str], schema: dict[str, pl.DataType]
    ) -> ViewScan:
        cols: dict[str, None] = {}
        for fname in wanted:
            cols.update(dict.fromkeys(view.feature(fname).source_columns))
        src = view.source
        created = src.created_timestamp_field
        return ViewScan(
            alias=alias,
            scan=scan_sql(src, self.repo.root),
            join_keys=tuple(view.join_keys),
            timestamp=timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
            created=timestamp_sql(created, schema[created]) if created else None,
            columns=tuple(cols),
            ttl_us=view.ttl // dt.timedelta(microseconds=1) if view.ttl else None,
        )

    def _aggregation_scan(
        self,
        alias: str,
        view: FeatureView,
        aggregations: tuple[Aggregation, ...],
        schema: dict[str, pl.DataType],
        spine: pl.DataFrame,
    ) -> AggregationScan:
        src = view.source
        created = src.created_timestamp_field
        times = spine[SPINE_TS].dt.epoch("us")
        return AggregationScan(
            alias=alias,
            scan=scan_sql(src, self.repo.root),
            join_keys=tuple(view.join_keys),
            timestamp=timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
            created=timestamp_sql(created, schema[created]) if created else None,
            aggregations=aggregations,
            spine_range_us=(int(times.min() or 0), int(times.max() or 0)),  # type: ignore[arg-type]
            window_above=self.window_above,
        )

    def _choose_paths(self, scan: AggregationScan) -> AggregationScan:
        """Send every key down the join path when none needs the window path (cheaper SQL)."""
        if math.isinf(scan.window_above):
            return scan
        heavy = self.con.execute(scan.heavy_keys_sql("__fs_spine")).fetchall()[0][0]
        log.info("aggregations alias=%s keys_on_window_path=%d", scan.alias, heavy)
        return scan if heavy else replace(scan, window_above=math.inf)

    def latest_rows(
        self,
        view: FeatureView,
        end: dt.datetime,
        start: dt.datetime | None = None,
        part: tuple[int, int] = (0, 1),
    ) -> pl.DataFrame:
        """Per entity with a row at or before ``end`` (and at or after ``start``): its join keys,
        the event time of its latest row (``__fs_event_ts``), and each plain feature's value
        and status exactly as a training set with spine time ``end`` would compute them
        (aggregations are not included). ``part=(i, n)``: only the i-th of n disjoint shares
        of the entities (by a hash of their keys), to work through a large view in pieces."""
        schema = self.checked_schema(view)
        src = view.source
        timestamp = timestamp_sql(src.timestamp_field, schema[src.timestamp_field])
        keys = ", ".join(ident(k) for k in view.join_keys)
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in view.join_keys)
        window = f"{timestamp} <= $end"
        params = {"end": as_naive_utc(end)}
        if start is not None:
            window += f" AND {timestamp} >= $start"
            params["start"] = as_naive_utc(start)
        index, parts = part
        share = f"hash({keys}) % {int(parts)} = {int(index)}" if parts > 1 else None
        if share:
            not_null += f" AND {share}"
        with reading([view.source], self.repo.root):
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE __fs_entities AS SELECT "
                f"CAST(row_number() OVER () - 1 AS UINTEGER) AS {SPINE_ROW}, {keys}, "
                f"CAST($end AS TIMESTAMP) AS {SPINE_TS} "
                f"FROM (SELECT DISTINCT {keys} FROM {scan_sql(src, self.repo.root)} "
                f"WHERE {window} AND {not_null})",
                params,
            )
        try:
            return self.rows_as_of(view, "__fs_entities", schema, share)
        finally:
            self.con.execute("DROP TABLE IF EXISTS __fs_entities")

    def source_rows(self, view: FeatureView) -> int:
        """How many rows the view's source holds (from file metadata where it can)."""
        with reading([view.source], self.repo.root):
            [(rows,)] = self.con.execute(
                f"SELECT count(*) FROM {scan_sql(view.source, self.repo.root)}"
            ).fetchall()
        return int(rows)

    def rows_as_of(
        self,
        view: FeatureView,
        spine_table: str,
        schema: dict[str, pl.DataType] | None = None,
        share: str | None = None,
    ) -> pl.DataFrame:
        """Per row of the DuckDB table or view ``spine_table`` (columns ``__fs_row``, the view's
        join keys and ``__fs_ts``, a naive UTC TIMESTAMP), in ``__fs_row`` order: its join
        keys, the event time of the view's latest row at or before its time
        (``__fs_event_ts``, null when there is none) and each plain feature's value and status
        as a training set with that spine time computes them (``STALE`` beyond the ttl):
        what a materialization with ``end`` at the row's time publishes for the entity.
        ``schema`` is the source's, read and checked when not given; ``share``, a condition on
        the source's rows that keeps only the entities of ``spine_table`` (so the join reads a
        share of the source, not all of it)."""
        if schema is None:
            schema = self.checked_schema(view)
        names = [f.name for f in view.features]
        scan = self._scan("v0", view, names, schema)
        if share:
            scan = replace(scan, scan=f"(SELECT * FROM {scan.scan} WHERE {share})")
        with reading([view.source], self.repo.root):
            joined: pl.DataFrame = self.con.sql(
                point_in_time_sql(spine_table, [scan], tuple(view.join_keys), event_times=True)
            ).pl()
        values = view_values(joined, scan, view, names, "")
        return pl.concat(
            [
                joined.select(*view.join_keys, pl.col(f"{EVENT_TS}_v0").alias(EVENT_TS)),
                values,
            ],
            how="horizontal",
        )

    def map_recent_events(
        self, layout: EventsLayout, end: dt.datetime, fn: Callable[[pl.DataFrame], bytes]
    ) -> list[bytes]:
        """``fn`` run on each slice of the view's recent events as of ``end`` (one row per
        entity: its events in ``(end - longest window, end]`` as ``layout`` groups them, see
        :mod:`featurestore.offline._recent_events`); returns what it returned for each slice.
        The source is checked against the view first."""
        schema = self.checked_schema(layout.view)
        events = recent_events(self.con, layout, schema, self.repo.root, end)
        return [fn(part) for part in events.iter_slices(EVENTS_SLICE_ROWS)]
