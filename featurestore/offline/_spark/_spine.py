"""The spine of a training set on Spark: a Polars frame sent to the executors, or a Spark
DataFrame that stays there (numbered in its own order), checked as the DuckDB path checks a
spine, and the points the point-in-time join reads (row, keys, time in epoch microseconds and
the on-demand views' request columns in their declared dtypes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from featurestore._selection import RetrievalPlan
from featurestore.definitions._dtypes import dtype_kind
from featurestore.errors import SpineError
from featurestore.offline._spark._join import ROW, T
from featurestore.offline._spark._sources import epoch_us, polars_schema
from featurestore.offline._spark._values import arrow_type
from featurestore.offline._spine import spine_table
from featurestore.sources._sql import SPINE_ROW, SPINE_TS

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = ["SparkSpine"]

Span = tuple[int, int]  # first and last spine time, epoch microseconds


@dataclass
class SparkSpine:
    """A spine as the Spark engine holds it: the Polars frame given (``local``), or a Spark
    DataFrame numbered with ``__fs_row`` in its own order (``remote``, checkpointed in the
    executors, so that the numbers stay put and later reads do not compute it again)."""

    spark: SparkSession
    local: pl.DataFrame | None
    remote: DataFrame | None

    @classmethod
    def of(cls, spark: SparkSession, spine: pl.DataFrame | DataFrame) -> SparkSpine:
        if isinstance(spine, pl.DataFrame):
            return cls(spark, spine, None)
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        numbered = spine.withColumn(ROW, F.monotonically_increasing_id())
        return cls(spark, None, numbered.localCheckpoint(True, StorageLevel.DISK_ONLY))

    @property
    def schema(self) -> dict[str, pl.DataType]:
        if self.local is not None:
            return dict(self.local.schema)
        assert self.remote is not None
        return {c: d for c, d in polars_schema(self.remote).items() if c != ROW}

    def sample(self) -> pl.DataFrame:
        """The spine itself, or for a Spark spine an empty frame of its schema: what the
        shared spine checks read (its data is checked in Spark by :meth:`points`)."""
        if self.local is not None:
            return self.local
        return pl.DataFrame(schema=self.schema)

    def points(self, plan: RetrievalPlan, timestamp_column: str) -> tuple[DataFrame, Span]:
        """The join's points on Spark and the spine's first and last time. A Spark spine's
        values are checked in the same pass as the shared checks check a Polars spine's: no
        null time, request dates given as datetimes only at midnight."""
        if self.local is not None:
            return self._local_points(self.local, plan, timestamp_column)
        assert self.remote is not None
        from pyspark.sql import functions as F

        points = self.remote.select(
            F.col(ROW),
            *[F.col(k) for k in plan.join_keys],
            epoch_us(timestamp_column, self.schema[timestamp_column]).alias(T),
            *self._requests(plan),
        )
        dates = [
            c
            for c, d in plan.request_columns.items()
            if dtype_kind(d) == "date" and dtype_kind(self.schema[c]) == "datetime"
        ]
        found = self.remote.agg(
            F.count(F.when(F.col(timestamp_column).isNull(), 1)).alias("null_times"),
            F.min(epoch_us(timestamp_column, self.schema[timestamp_column])).alias("first"),
            F.max(epoch_us(timestamp_column, self.schema[timestamp_column])).alias("last"),
            *[
                F.count(F.when(F.col(c) != F.col(c).cast("date").cast("timestamp"), 1)).alias(c)
                for c in dates
            ],
        ).first()
        assert found is not None
        if found["null_times"]:
            raise SpineError(
                f"spine timestamp column {timestamp_column!r} has {found['null_times']} null "
                "value(s); every spine row needs a time"
            )
        for c in dates:
            if found[c]:
                raise SpineError(
                    f"spine request column {c!r} holds {found[c]} datetime(s) with a time of "
                    "day; a datetime counts as its date only at midnight: pass dates"
                )
        return points, (int(found["first"] or 0), int(found["last"] or 0))

    def _requests(self, plan: RetrievalPlan) -> list[Column]:
        """The on-demand views' request columns of a Spark spine, cast to their dtypes."""
        from pyspark.sql import functions as F
        from pyspark.sql.pandas.types import from_arrow_type

        columns = []
        for c, d in plan.request_columns.items():
            if c in plan.join_keys:
                continue
            try:
                spark_type = from_arrow_type(arrow_type(d))
            except ValueError:
                raise SpineError(
                    f"request column {c!r} is declared {d}, which a Spark spine cannot carry; "
                    "give the spine as a Polars, pandas or Arrow table"
                ) from None
            columns.append(F.col(c).cast(spark_type).alias(c))
        return columns

    def _local_points(
        self, spine: pl.DataFrame, plan: RetrievalPlan, timestamp_column: str
    ) -> tuple[DataFrame, Span]:
        internal = spine_table(spine, plan.join_keys, timestamp_column)
        requests = [
            spine[c].cast(d).alias(c) for c, d in plan.request_columns.items() if c not in internal
        ]
        internal = internal.with_columns(
            pl.col(SPINE_ROW).cast(pl.Int64), pl.col(SPINE_TS).dt.epoch("us").alias(T), *requests
        ).drop(SPINE_TS)
        span = (int(internal[T].min() or 0), int(internal[T].max() or 0))  # type: ignore[arg-type]
        return self.spark.createDataFrame(internal.rename({SPINE_ROW: ROW}).to_arrow()), span

    def frame(self) -> DataFrame:
        """Every spine column and ``__fs_row`` on Spark."""
        if self.remote is not None:
            return self.remote
        assert self.local is not None
        from pyspark.sql.pandas.types import from_arrow_schema

        numbered = self.local.with_row_index(ROW).with_columns(pl.col(ROW).cast(pl.Int64))
        table = numbered.to_arrow()  # naive times stay naive (TIMESTAMP_NTZ), as written
        return self.spark.createDataFrame(table, schema=from_arrow_schema(table.schema))

    def collected(self) -> pl.DataFrame:
        """The spine on the driver, in its order."""
        if self.local is not None:
            return self.local
        assert self.remote is not None
        table = self.remote.orderBy(ROW).drop(ROW).toArrow()
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        return frame

    def time_range(self, span: Span, rows: int, timestamp_column: str) -> tuple[object, object]:
        """The first and last spine time as the metadata records them: the Polars spine's own
        values, or for a Spark spine the instants of ``span`` (in UTC when the column has a
        zone); None for an empty spine."""
        if self.local is not None:
            ts = self.local[timestamp_column]
            return (ts.min(), ts.max()) if self.local.height else (None, None)
        if not rows:
            return None, None
        zone = dt.UTC if getattr(self.schema[timestamp_column], "time_zone", None) else None
        epoch = dt.datetime(1970, 1, 1, tzinfo=zone)
        first, last = (epoch + dt.timedelta(microseconds=us) for us in span)
        return first, last
