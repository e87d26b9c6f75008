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

import polars as pl
import pyarrow as pa

from featurestore._repo import RepoContents
from featurestore._selection import RetrievalPlan
from featurestore._times import epoch_us as _us
from featurestore.definitions import Aggregation, FeatureView
from featurestore.offline._event_spine import EventRange
from featurestore.offline._feature_values import view_values
from featurestore.offline._recent_events import EventsLayout
from featurestore.offline._spark._events import map_recent_events
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
from featurestore.offline._spark._sources import (
    epoch_us,
    newest_time,
    polars_schema,
    read_source,
)
from featurestore.offline._spark._spine import SparkSpine
from featurestore.offline._spark._training_set import SparkTrainingSet, status_counts
from featurestore.offline._spark._values import transform_errors, value_rows, value_schema
from featurestore.offline._spine import checked_inputs
from featurestore.offline._training_set import TrainingSet, training_metadata
from featurestore.sources._schema import check_view
from featurestore.sources._sql import EVENT_TS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["SparkEngine"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
Schema = dict[str, pl.DataType]
Scans = list[tuple[str, list[str], SparkView]]  # view name, plain features, what was joined
AggScans = list[tuple[str, SparkAggregations]]


class SparkEngine:
    """Builds training sets and the rows materialization publishes for one repo on a Spark
    session (``offline_store.type: spark``,
    or the ``SparkSession`` given)."""

    def __init__(self, repo: RepoContents, session: SparkSession | None = None) -> None:
        self.repo = repo
        self.spark = spark_session(repo.config.offline_store, session)

    def source(self, view: FeatureView) -> DataFrame:
        """Every row of the view's source."""
        return read_source(self.spark, view.source, self.repo.root)

    def checked_schema(self, view: FeatureView) -> Schema:
        """The source's schema as Polars dtypes, checked against the view's declarations:
        raises SchemaMismatchError when they no longer fit."""
        schema = polars_schema(self.source(view))
        check_view(view, schema)
        return schema

    def training_set(
        self,
        spine: pl.DataFrame | DataFrame,
        plan: RetrievalPlan,
        fingerprints: dict[str, str],
        timestamp_column: str = "event_timestamp",
        progress: Progress | None = None,
        events: EventRange | None = None,
    ) -> TrainingSet:
        """The spine with the plan's features as of each row's time (see the DuckDB engine's
        ``training_frame``: same values, same statuses), its values computed in the executors
        by the shared code (``_values``) and kept in Spark (``SparkTrainingSet``); a Spark
        DataFrame spine stays on Spark. The status counts are computed here, in Spark."""
        step = progress or (lambda _msg: None)
        held = SparkSpine.of(self.spark, spine)
        schemas = checked_inputs(held.sample(), plan, timestamp_column, self.checked_schema, step)
        step(f"joining {len(plan.views)} view(s) onto the spine on Spark")
        points, span = held.points(plan, timestamp_column)
        joined, scans, agg_scans = self._joined_from(points, span, plan, schemas)
        declared = self._dtypes(plan)
        rows = value_rows(joined, plan, self.repo.views, scans, agg_scans, declared)
        from pyspark import StorageLevel

        step("computing features in the executors")
        with transform_errors():
            # computed once onto the executors' local disks: not persist(), whose cache Spark
            # would hand to a later identical plan over files that have changed since, and not
            # in memory, where it would crowd out the results collected from it
            values = rows.localCheckpoint(eager=True, storageLevel=StorageLevel.DISK_ONLY)
            statuses = status_counts(values, plan)
        count = sum(statuses[plan.refs[0].ref].values()) if plan.refs else 0
        output = pl.DataFrame(value_schema(plan, declared).empty_table()).schema
        dtypes = {r.column: output[r.ref] for r in plan.refs}
        metadata = training_metadata(
            self.repo.config.project,
            plan,
            fingerprints,
            dtypes,
            statuses,
            count,
            held.time_range(span, count, timestamp_column),
            timestamp_column,
            events,
        )
        return SparkTrainingSet(metadata, held, values, plan, dtypes, self._collect)

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
        started = time.perf_counter()
        with transform_errors():
            table = frame.toArrow()
        out = pl.from_arrow(table)
        assert isinstance(out, pl.DataFrame)
        log.info("spark rows=%d seconds=%.3f", out.height, time.perf_counter() - started)
        return out

    def joined_dataframe(
        self, spine: pl.DataFrame, plan: RetrievalPlan, timestamp_column: str = "event_timestamp"
    ) -> tuple[DataFrame, Scans, AggScans]:
        """The point-in-time join as a Spark DataFrame (one row per spine row, ``__fs_row`` and
        each view's joined columns; not yet computed), and what each view's columns hold. The
        spine and sources are checked first."""
        schemas = checked_inputs(spine, plan, timestamp_column, self.checked_schema)
        points, span = SparkSpine.of(self.spark, spine).points(plan, timestamp_column)
        return self._joined_from(points, span, plan, schemas)

    def _joined_from(
        self,
        points: DataFrame,
        span: tuple[int, int],
        plan: RetrievalPlan,
        schemas: dict[str, Schema],
    ) -> tuple[DataFrame, Scans, AggScans]:
        first, last = span
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

    def newest_event_time(self, view: FeatureView) -> dt.datetime | None:
        """The latest event time in the view's source (aware UTC), None when it has no rows;
        the source is checked against the declarations first, as on DuckDB."""
        schema = self.checked_schema(view)
        ts = view.source.timestamp_field
        return newest_time(self.source(view), ts, schema[ts])

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

    def map_recent_events(
        self, layout: EventsLayout, end: dt.datetime, fn: Callable[[pl.DataFrame], bytes]
    ) -> list[bytes]:
        """``fn`` run in the executors on each batch of the view's recent events as of ``end``
        (one row per entity, as the DuckDB engine's method gives them; see ``_events``), none
        of them gathered on the driver; returns what ``fn`` returned for each batch."""
        return map_recent_events(self.spark, self.repo.root, layout, end, fn)


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
