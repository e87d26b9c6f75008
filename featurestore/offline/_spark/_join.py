"""Point-in-time joins and windowed aggregations as Spark DataFrames, with no join that grows
with the rows per entity: each view's rows are unioned with the spine points, sorted within
entity partitions by time, and window functions carry the latest row forward (plain features)
or sum over a range of microseconds before each point (aggregations).

The results keep the columns the DuckDB join gives (``__fs_match_<alias>``,
``<alias>__<column>``, ``<alias>__<aggregation>``), so every engine hands the same joined frame
to the shared value code. Times are integer epoch microseconds throughout (``__fs_t``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, MATCH_STALE
from featurestore.definitions import Aggregation, FeatureView
from featurestore.offline._spark._sources import epoch_us

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = [
    "SparkAggregations",
    "SparkRows",
    "SparkView",
    "aggregations_at",
    "latest_as_of",
    "spark_type",
]

T, SIDE, CREATED, ROW = "__fs_t", "__fs_side", "__fs_c", "__fs_row"
_MIN_US = -(2**63)  # a null created time loses every tie


@dataclass(frozen=True)
class SparkRows:
    """How a view's source rows are keyed and timed: join keys, event and created time
    columns with their dtypes."""

    join_keys: tuple[str, ...]
    timestamp: str
    timestamp_dtype: pl.DataType
    created: str | None
    created_dtype: pl.DataType | None

    @classmethod
    def of(cls, view: FeatureView, schema: dict[str, pl.DataType]) -> SparkRows:
        src = view.source
        created = src.created_timestamp_field
        return cls(
            join_keys=tuple(view.join_keys),
            timestamp=src.timestamp_field,
            timestamp_dtype=schema[src.timestamp_field],
            created=created,
            created_dtype=schema[created] if created else None,
        )


@dataclass(frozen=True)
class SparkView:
    """A view's plain features to join: its rows and where their columns go."""

    alias: str
    rows: SparkRows
    columns: tuple[str, ...]
    ttl_us: int | None


@dataclass(frozen=True)
class SparkAggregations:
    """A view's windowed aggregations to compute at each distinct spine point."""

    alias: str
    rows: SparkRows
    aggregations: tuple[Aggregation, ...]
    spine_range_us: tuple[int, int]


def spark_type(dtype: pl.DataType) -> str:
    """The Spark SQL type a value of ``dtype`` is cast to."""
    names = {
        pl.Int64: "bigint",
        pl.Int32: "int",
        pl.Int16: "smallint",
        pl.Int8: "tinyint",
        pl.Float64: "double",
        pl.Float32: "float",
        pl.String: "string",
        pl.Boolean: "boolean",
        pl.Date: "date",
    }
    for kind, name in names.items():
        if isinstance(dtype, kind):
            return name
    if isinstance(dtype, pl.Datetime):
        return "timestamp" if dtype.time_zone else "timestamp_ntz"
    if isinstance(dtype, pl.Decimal):
        return f"decimal({dtype.precision or 38},{dtype.scale})"
    raise ValueError(f"no Spark type for {dtype}")


def _created(created: str | None, dtype: pl.DataType | None) -> Column:
    from pyspark.sql import functions as F

    if created is None or dtype is None:
        return F.lit(_MIN_US)
    return F.coalesce(epoch_us(created, dtype), F.lit(_MIN_US))


def _events(source: DataFrame, rows: SparkRows) -> DataFrame:
    """The source's rows with a time and every key, with ``__fs_t`` and ``__fs_c``."""
    from pyspark.sql import functions as F

    condition = F.col(rows.timestamp).isNotNull()
    for k in rows.join_keys:
        condition = condition & F.col(k).isNotNull()
    return (
        source.where(condition)
        .withColumn(T, epoch_us(rows.timestamp, rows.timestamp_dtype))
        .withColumn(CREATED, _created(rows.created, rows.created_dtype))
    )


def latest_as_of(spine: DataFrame, source: DataFrame, view: SparkView) -> DataFrame:
    """Per spine row (``__fs_row``, the view's keys, ``__fs_t``): the match code, the event
    time (``__fs_event_us_<alias>``) and the columns of the view's latest source row at or
    before ``__fs_t`` (ties to the latest created time), as ``<alias>__<column>``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    a, keys = view.alias, list(view.rows.join_keys)
    events = _events(source, view.rows)
    value = F.struct(F.col(T).alias("t"), *(F.col(c).alias(c) for c in view.columns))
    rows = events.select(
        *keys,
        T,
        F.lit(0).alias(SIDE),
        CREATED,
        F.lit(None).cast("long").alias(ROW),
        value.alias("__fs_v"),
    )
    points = spine.select(
        *[F.col(k).cast(rows.schema[k].dataType).alias(k) for k in keys],
        T,
        F.lit(1).alias(SIDE),
        F.lit(_MIN_US).alias(CREATED),
        F.col(ROW).cast("long").alias(ROW),
        F.lit(None).cast(rows.schema["__fs_v"].dataType).alias("__fs_v"),
    )
    order = Window.partitionBy(*keys).orderBy(T, SIDE, CREATED)
    carried = order.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    picked = (
        rows.unionByName(points)
        .withColumn("__fs_pick", F.last("__fs_v", ignorenulls=True).over(carried))
        .where(F.col(SIDE) == 1)
    )
    found = F.col("__fs_pick").isNull()
    match = F.when(found, F.lit(MATCH_NONE))
    if view.ttl_us is not None:
        match = match.when(F.col("__fs_pick.t") < F.col(T) - view.ttl_us, F.lit(MATCH_STALE))
    return picked.select(
        ROW,
        match.otherwise(F.lit(MATCH_FOUND)).alias(f"__fs_match_{a}"),
        F.col("__fs_pick.t").alias(f"__fs_event_us_{a}"),
        *(F.col(f"__fs_pick.{c}").alias(f"{a}__{c}") for c in view.columns),
    )


def _input(agg: Aggregation) -> Column | None:
    from pyspark.sql import functions as F

    if agg.column is None:
        return None
    if agg.kind == "count_distinct":
        return F.col(agg.column)
    target = "double" if agg.kind in ("mean", "stddev") else spark_type(agg.dtype)
    return F.col(agg.column).cast(target)


def _aggregate(agg: Aggregation, x: str, window: object) -> Column:
    from pyspark.sql import functions as F

    over = window  # a WindowSpec
    if agg.kind == "count":
        return F.count("__fs_event").over(over)  # type: ignore[arg-type]
    if agg.kind == "last":
        latest = F.when(F.col(x).isNotNull(), F.struct(T, CREATED, F.col(x).alias("v")))
        return F.max(latest).over(over).getField("v")  # type: ignore[arg-type]
    if agg.kind == "count_distinct":
        return F.size(F.collect_set(x).over(over))  # type: ignore[arg-type]
    function = {
        "sum": F.sum,
        "mean": F.avg,
        "min": F.min,
        "max": F.max,
        "stddev": F.stddev_samp,
    }[agg.kind]
    return function(x).over(over)  # type: ignore[arg-type]


def aggregations_at(points: DataFrame, source: DataFrame, scan: SparkAggregations) -> DataFrame:
    """Per spine row (``__fs_row``, the view's keys, ``__fs_t``): each aggregation over the
    events of its keys with ``t - window < event time < t``, computed once per distinct point;
    an empty window (or a null key) gives the aggregation's empty value; as
    ``<alias>__<name>`` cast to its dtype."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    a, keys, aggs = scan.alias, list(scan.rows.join_keys), scan.aggregations
    first, last = scan.spine_range_us
    longest = max(g.window_us for g in aggs)
    events = _events(source, scan.rows).where((F.col(T) < last) & (F.col(T) > first - longest))
    inputs = {g.name: x for g in aggs if (x := _input(g)) is not None}
    rows = events.select(
        *keys,
        T,
        F.lit(0).alias(SIDE),
        CREATED,
        F.lit(1).alias("__fs_event"),
        *(x.alias(f"__fs_x_{name}") for name, x in inputs.items()),
    )
    spots = points.select(
        *[F.col(k).cast(rows.schema[k].dataType).alias(k) for k in keys], T
    ).distinct()
    unioned = rows.unionByName(spots.withColumn(SIDE, F.lit(1)), allowMissingColumns=True)
    frames = {
        w: Window.partitionBy(*keys).orderBy(T).rangeBetween(-(w - 1), -1)
        for w in {g.window_us for g in aggs}
    }
    raw = [_aggregate(g, f"__fs_x_{g.name}", frames[g.window_us]).alias(g.name) for g in aggs]
    at = unioned.select(*keys, T, SIDE, *raw).where(F.col(SIDE) == 1).drop(SIDE)
    outputs = []
    for g in aggs:
        value = F.col(g.name)
        if g.empty_value is not None:
            value = F.coalesce(value, F.lit(g.empty_value))
        outputs.append(value.cast(spark_type(g.dtype)).alias(f"{a}__{g.name}"))
    return points.join(at, [*keys, T], "left").select(ROW, *outputs)
