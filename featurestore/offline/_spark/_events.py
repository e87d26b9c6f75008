"""Each entity's recent events on Spark, for the aggregation views materialization publishes:
the rows the DuckDB engine reads with the layout's SQL (``WindowLayout.events_sql``, see
:mod:`featurestore.offline._recent_events`), built with Spark from a source Spark reads
(``hdfs://``, ``s3a://``, catalog tables), then handed, a batch at a time and as the same
Polars frame, to a function the online layer passes in, run in the executors.

The rows: the events with a time and every join key and ``end - longest window < t <= end``;
per entity the newest time, the event times (``t``), the created times (``c``, when the source
declares them; a null created time sorts first) and each aggregation input, cast as
``input_sql`` casts it (temporal inputs as epoch microseconds), as lists sorted by ``(t, c)``.
Events tied on both times are listed in an order each engine picks (Spark: by their values),
which no aggregation depends on but for the rounding of float sums. Nothing of the rows is
gathered on the driver: only what the function returns for each batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow as pa

from featurestore._times import epoch_us as _us
from featurestore.definitions import Aggregation
from featurestore.errors import OnlineStoreError
from featurestore.offline._recent_events import EventsLayout
from featurestore.offline._spark._join import spark_type
from featurestore.offline._spark._sources import epoch_us, polars_schema, read_source
from featurestore.sources._schema import check_view
from featurestore.sources._sql import MIN_BIGINT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["map_recent_events", "recent_events"]

Schema = dict[str, pl.DataType]
_EVENTS = "__fs_events"
_SHARE = pa.schema([pa.field("share", pa.binary())])


def _input(agg: Aggregation, temporal: bool) -> Column:
    """The aggregation's input as ``input_sql`` casts it; temporal ones as epoch microseconds
    (a naive time or a date is UTC)."""
    from pyspark.sql import functions as F

    assert agg.column is not None  # Count has no input
    value = F.col(agg.column)
    if agg.kind != "count_distinct":
        value = value.cast("double" if agg.kind in ("mean", "stddev") else spark_type(agg.dtype))
    return F.unix_micros(value.cast("timestamp")) if temporal else value


def _input_dtype(agg: Aggregation, temporal: bool, schema: Schema) -> pl.DataType:
    """The Polars dtype DuckDB gives the input: what it is cast to, the raw column's for
    CountDistinct."""
    if temporal:
        return pl.Int64()
    if agg.kind == "count_distinct":
        assert agg.column is not None
        return schema[agg.column]
    return pl.Float64() if agg.kind in ("mean", "stddev") else agg.dtype


def _event_columns(layout: EventsLayout, schema: Schema) -> dict[str, tuple[Column, pl.DataType]]:
    """One event's stored columns (``t``, ``c`` and each input field, in the order the DuckDB
    query lists them) and the Polars dtype of their lists."""
    from pyspark.sql import functions as F

    src = layout.view.source
    int_list: pl.DataType = pl.List(pl.Int64())
    out: dict[str, tuple[Column, pl.DataType]] = {
        "t": (epoch_us(src.timestamp_field, schema[src.timestamp_field]), int_list)
    }
    if layout.created and src.created_timestamp_field is not None:
        created = epoch_us(src.created_timestamp_field, schema[src.created_timestamp_field])
        out["c"] = (F.coalesce(created, F.lit(int(MIN_BIGINT))), int_list)
    for agg in layout.view.aggregations:
        field = layout.fields.get(agg.name)
        if field is None or field in out:
            continue  # Count reads no input; equal inputs share a field
        temporal = field in layout.temporal
        out[field] = (_input(agg, temporal), pl.List(_input_dtype(agg, temporal, schema)))
    return out


def recent_events(
    spark: SparkSession, root: Path, layout: EventsLayout, end: dt.datetime
) -> tuple[DataFrame, Schema]:
    """Each entity's events in ``(end - longest window, end]`` grouped as ``layout`` groups
    them (see the module), not yet computed, and the Polars dtype of each of its columns. The
    source is checked against the view first."""
    from pyspark.sql import functions as F

    view, src = layout.view, layout.view.source
    source = read_source(spark, src, root)
    schema = polars_schema(source)
    check_view(view, schema)
    keys = list(view.join_keys)
    columns = _event_columns(layout, schema)
    present = F.col(src.timestamp_field).isNotNull()
    for k in keys:
        present = present & F.col(k).isNotNull()
    end_us = _us(end)
    events = (
        source.where(present)
        .select(*keys, *(column.alias(name) for name, (column, _) in columns.items()))
        .where((F.col("t") <= end_us) & (F.col("t") > end_us - layout.max_window_us))
    )
    grouped = events.groupBy(*keys).agg(
        F.max("t").alias(layout.newest),
        F.sort_array(F.collect_list(F.struct(*columns))).alias(_EVENTS),
    )
    lists = (F.col(_EVENTS).getField(name).alias(name) for name in columns)
    dtypes: Schema = {k: schema[k] for k in keys} | {layout.newest: pl.Int64()}
    dtypes |= {name: dtype for name, (_, dtype) in columns.items()}
    return grouped.select(*keys, layout.newest, *lists), dtypes


def map_recent_events(
    spark: SparkSession,
    root: Path,
    layout: EventsLayout,
    end: dt.datetime,
    fn: Callable[[pl.DataFrame], bytes],
) -> list[bytes]:
    """``fn`` run in the executors on each batch of :func:`recent_events`, as the Polars frame
    the DuckDB engine hands it (same columns, same dtypes); returns what it returned for each
    batch. A failure in an executor is an OnlineStoreError: nothing was published."""
    grouped, dtypes = recent_events(spark, root, layout, end)

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            out = fn(frame.select(pl.col(n).cast(d) for n, d in dtypes.items()))
            yield pa.RecordBatch.from_pydict({"share": [out]}, schema=_SHARE)

    return _collect(grouped.mapInArrow(run, "share binary"), layout.view.name)


def _collect(shares: DataFrame, view: str) -> list[bytes]:
    """What each batch's function returned; an error it raised in an executor (the online
    store unreachable from there, say) becomes an OnlineStoreError."""
    from pyspark.errors import PythonException

    try:
        table = shares.toArrow()
    except PythonException as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        cause = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")
        raise OnlineStoreError(
            f"publishing the recent events of view {view!r} failed in a Spark executor: "
            f"{cause}. Nothing was published: the previous events stay served. Fix the cause "
            "(the executors must reach the online store) and materialize again"
        ) from None
    return [bytes(v) for v in table.column("share").to_pylist()]
