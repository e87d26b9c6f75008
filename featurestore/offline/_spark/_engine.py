"""Spine -> training frame on Apache Spark: the same checks as the DuckDB engine, the
point-in-time join and windowed aggregations as Spark window functions (``_join``), then the
shared value code (value rules, feature expressions, on-demand views) run in the executors
over the joined rows (``_values``).

The spine is distributed from the driver; joins, sorts, aggregations and values run in Spark;
only the values (one row per spine row) come back, to be put beside the spine in its order.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import duckdb
import polars as pl
import pyarrow as pa

from featurestore._repo import RepoContents
from featurestore._selection import RetrievalPlan
from featurestore._times import epoch_us as _us
from featurestore._value_rules import STATUS_DTYPE
from featurestore.definitions import Aggregation, FeatureView
from featurestore.errors import TransformError
from featurestore.offline._feature_values import training_output, view_values
from featurestore.offline._spark._join import (
    ROW,
    SparkAggregations,
    SparkRows,
    SparkView,
    T,
    aggregations_at,
    latest_as_of,
)
from featurestore.offline._spark._session import spark_session
from featurestore.offline._spark._sources import epoch_us, polars_schema, read_source
from featurestore.offline._spark._values import status_column, value_rows
from featurestore.offline._spine import checked_inputs, spine_table
from featurestore.sources._schema import check_view
from featurestore.sources._sql import EVENT_TS, SPINE_ROW, SPINE_TS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkEngine"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Schema = dict[str, pl.DataType]
Scans = list[tuple[str, list[str], SparkView]]  # view name, plain features, what was joined
AggScans = list[tuple[str, SparkAggregations]]


class SparkEngine:
    """Builds training frames for one repo on a Spark session (``offline_store.type: spark``,
    or the ``SparkSession`` given)."""

    def __init__(self, repo: RepoContents, session: SparkSession | None = None) -> None:
        self.repo = repo
        self.spark = spark_session(repo.config.offline_store, session)
        self._con: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        """Close the DuckDB connection; the Spark session belongs to the process (other stores
        may use it) and stays."""
        if self._con is not None:
            self._con.close()
            self._con = None

    def source(self, view: FeatureView) -> DataFrame:
        """Every row of the view's source."""
        return read_source(self.spark, view.source, self.repo.root)

    def checked_schema(self, view: FeatureView) -> Schema:
        """The source's schema as Polars dtypes, checked against the view's declarations:
        raises SchemaMismatchError when they no longer fit."""
        schema = polars_schema(self.source(view))
        check_view(view, schema)
        return schema

    def training_frame(
        self,
        spine: pl.DataFrame,
        plan: RetrievalPlan,
        timestamp_column: str = "event_timestamp",
        progress: Progress | None = None,
        *,
        status_columns: bool = False,
    ) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
        """The spine with one column per requested feature, and status counts per feature
        (see the DuckDB engine's method of the same name: same values, same statuses). The
        values are computed in the executors by the shared code (``_values``)."""
        step = progress or (lambda _msg: None)
        schemas = checked_inputs(spine, plan, timestamp_column, self.checked_schema, step)
        step(f"joining {len(plan.views)} view(s) onto {spine.height:,} spine rows on Spark")
        joined, scans, agg_scans = self._joined_dataframe(spine, plan, timestamp_column, schemas)
        step("computing features in the executors")
        rows = value_rows(joined, plan, self.repo.views, scans, agg_scans, self._dtypes(plan))
        frame = self._collect(rows).sort(ROW)
        values = {r.ref: frame[r.ref] for r in plan.refs}
        statuses = {r.ref: frame[status_column(r.ref)].cast(STATUS_DTYPE) for r in plan.refs}
        return training_output(spine, plan, values, statuses, status_columns)

    def _dtypes(self, plan: RetrievalPlan) -> dict[str, pl.DataType]:
        """The declared dtype of each requested feature."""
        out: dict[str, pl.DataType] = {}
        for r in plan.refs:
            name, _, feature = r.ref.partition(":")
            view = self.repo.views.get(name)
            if view is not None and (agg := view.aggregation(feature)) is not None:
                out[r.ref] = agg.dtype
            else:
                out[r.ref] = self.repo.any_view(name).feature(feature).dtype
        return out

    def _collect(self, frame: DataFrame) -> pl.DataFrame:
        """The rows of ``frame`` on the driver; an error the shared code raised in an executor
        (a feature expression or an on-demand function that failed) becomes a TransformError."""
        from pyspark.errors import PythonException

        started = time.perf_counter()
        try:
            table = frame.toArrow()
        except PythonException as exc:
            lines = [ln for ln in str(exc).splitlines() if ln.strip()]
            cause = next(
                (ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else ""
            )
            raise TransformError(f"computing features on Spark failed: {cause.strip()}") from None
        out = pl.from_arrow(table)
        assert isinstance(out, pl.DataFrame)
        log.info("spark rows=%d seconds=%.3f", out.height, time.perf_counter() - started)
        return out

    def _spine(
        self, spine: pl.DataFrame, plan: RetrievalPlan, timestamp_column: str
    ) -> tuple[DataFrame, tuple[int, int]]:
        """The spine on Spark (row number, join keys, time in epoch microseconds and the
        request columns of the on-demand views, cast to their declared dtypes), and its first
        and last time."""
        internal = spine_table(spine, plan.join_keys, timestamp_column)
        requests = [
            spine[c].cast(d).alias(c) for c, d in plan.request_columns.items() if c not in internal
        ]
        internal = internal.with_columns(
            pl.col(SPINE_ROW).cast(pl.Int64), pl.col(SPINE_TS).dt.epoch("us").alias(T), *requests
        ).drop(SPINE_TS)
        span = (int(internal[T].min() or 0), int(internal[T].max() or 0))  # type: ignore[arg-type]
        return self.spark.createDataFrame(internal.rename({SPINE_ROW: ROW}).to_arrow()), span

    def joined_dataframe(
        self, spine: pl.DataFrame, plan: RetrievalPlan, timestamp_column: str = "event_timestamp"
    ) -> tuple[DataFrame, Scans, AggScans]:
        """The point-in-time join as a Spark DataFrame (one row per spine row, ``__fs_row`` and
        each view's joined columns; not yet computed), and what each view's columns hold. The
        spine and sources are checked first."""
        schemas = checked_inputs(spine, plan, timestamp_column, self.checked_schema)
        return self._joined_dataframe(spine, plan, timestamp_column, schemas)

    def _joined_dataframe(
        self,
        spine: pl.DataFrame,
        plan: RetrievalPlan,
        timestamp_column: str,
        schemas: dict[str, Schema],
    ) -> tuple[DataFrame, Scans, AggScans]:
        points, (first, last) = self._spine(spine, plan, timestamp_column)
        joined = points.select(ROW, *[c for c in plan.request_columns if c not in plan.join_keys])
        scans: Scans = []
        agg_scans: AggScans = []
        for i, (name, wanted) in enumerate(plan.views.items()):
            view = plan.batch_views[name]
            source, schema = self.source(view), schemas[name]
            plain = [n for n in wanted if view.aggregation(n) is None]
            if plain:
                scan = _view_scan(f"v{i}", view, plain, schema)
                joined = joined.join(latest_as_of(points, source, scan), ROW, "left")
                scans.append((name, plain, scan))
            aggs = tuple(a for n in wanted if (a := view.aggregation(n)) is not None)
            if aggs:
                agg = _aggregation_scan(f"a{i}", view, aggs, schema, (first, last))
                joined = joined.join(aggregations_at(points, source, agg), ROW, "left")
                agg_scans.append((name, agg))
        return joined, scans, agg_scans

    def source_schema(self, view: FeatureView) -> Schema:
        """The source's schema as Polars dtypes."""
        return polars_schema(self.source(view))

    def source_rows(self, view: FeatureView) -> int:
        """How many rows the view's source holds."""
        return int(self.source(view).count())

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection for what materialization still reads from local files itself
        (the recent events of aggregation views)."""
        if self._con is None:
            self._con = duckdb.connect()
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def latest_rows(
        self,
        view: FeatureView,
        end: dt.datetime,
        start: dt.datetime | None = None,
        part: tuple[int, int] = (0, 1),
    ) -> pl.DataFrame:
        """Per entity with a row at or before ``end`` (and at or after ``start``): its join
        keys, the event time of its latest row (``__fs_event_ts``) and each plain feature's
        value and status as a training set at ``end`` computes them; ``part=(i, n)``, the i-th
        of n disjoint shares of the entities (see the DuckDB engine's method)."""
        joined, scan = self._latest_joined(view, end, start, part)
        frame = pl.from_arrow(joined.toArrow())
        assert isinstance(frame, pl.DataFrame)
        return _latest_values(frame.sort(ROW), view, scan)

    def map_latest_rows(
        self, view: FeatureView, end: dt.datetime, fn: Callable[[pl.DataFrame], bytes]
    ) -> list[bytes]:
        """``fn`` run in the executors on each batch of the view's latest rows as of ``end``
        (keys, ``__fs_event_ts``, values and statuses, as :meth:`latest_rows` gives them),
        none of them gathered on the driver; returns what ``fn`` returned for each batch."""
        joined, scan = self._latest_joined(view, end, None, (0, 1))

        def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            for batch in batches:
                frame = pl.from_arrow(batch)
                assert isinstance(frame, pl.DataFrame)
                out = fn(_latest_values(frame, view, scan))
                yield pa.RecordBatch.from_pydict({"share": [out]}, schema=_SHARE)

        shares = self._collect(joined.mapInArrow(run, "share binary"))
        return [bytes(v) for v in shares["share"].to_list()]

    def _latest_joined(
        self, view: FeatureView, end: dt.datetime, start: dt.datetime | None, part: tuple[int, int]
    ) -> tuple[DataFrame, SparkView]:
        """Per entity of the (share of the) source with rows in ``[start, end]``: its keys and
        the joined columns of its latest row as of ``end``, not yet computed."""
        from pyspark.sql import functions as F

        schema = self.checked_schema(view)
        source = self.source(view)
        keys = list(view.join_keys)
        scan = _view_scan("v0", view, [f.name for f in view.features], schema)
        t = epoch_us(view.source.timestamp_field, schema[view.source.timestamp_field])
        rows = source.where(t <= _us(end))
        if start is not None:
            rows = rows.where(t >= _us(start))
        for k in keys:
            rows = rows.where(F.col(k).isNotNull())
        index, parts = part
        if parts > 1:
            share = F.pmod(F.hash(*[F.col(k) for k in keys]), F.lit(parts)) == index
            source, rows = source.where(share), rows.where(share)
        points = (
            rows.select(*keys)
            .distinct()
            .withColumn(ROW, F.monotonically_increasing_id())
            .withColumn(T, F.lit(_us(end)))
        )
        return points.join(latest_as_of(points, source, scan), ROW, "left"), scan


_SHARE = pa.schema([pa.field("share", pa.binary())])


def _latest_values(frame: pl.DataFrame, view: FeatureView, scan: SparkView) -> pl.DataFrame:
    """Keys, event time, values and statuses of joined latest rows (shared value code)."""
    frame = frame.with_columns(pl.col(f"__fs_match_{scan.alias}").cast(pl.UInt8))
    values = view_values(frame, scan, view, [f.name for f in view.features], "")
    event_ts = pl.from_epoch(pl.col(f"__fs_event_us_{scan.alias}"), time_unit="us")
    keys = list(view.join_keys)
    return pl.concat([frame.select(*keys, event_ts.alias(EVENT_TS)), values], how="horizontal")


def _view_scan(alias: str, view: FeatureView, wanted: list[str], schema: Schema) -> SparkView:
    columns: dict[str, None] = {}
    for fname in wanted:
        columns.update(dict.fromkeys(view.feature(fname).source_columns))
    return SparkView(
        alias=alias,
        rows=SparkRows.of(view, schema),
        columns=tuple(columns),
        ttl_us=view.ttl // dt.timedelta(microseconds=1) if view.ttl else None,
    )


def _aggregation_scan(
    alias: str,
    view: FeatureView,
    aggregations: tuple[Aggregation, ...],
    schema: Schema,
    spine_range_us: tuple[int, int],
) -> SparkAggregations:
    return SparkAggregations(
        alias=alias,
        rows=SparkRows.of(view, schema),
        aggregations=aggregations,
        spine_range_us=spine_range_us,
    )
