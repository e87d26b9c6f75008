"""Sources as Spark DataFrames: the files a ``FileSource`` names (local, ``hdfs://``,
``s3a://``; Parquet or CSV; a file, a glob or a directory) or the catalog table a
``TableSource`` names, their schema as Polars dtypes (for the checks every engine shares), and
event times as integer epoch microseconds."""

from __future__ import annotations

import datetime as dt
import glob
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from featurestore._times import from_epoch_us
from featurestore.definitions import BatchSource, FileSource, TableSource
from featurestore.errors import SourceError, SourceNotFoundError
from featurestore.sources._scans import resolve_path

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

__all__ = [
    "epoch_us",
    "newest_time",
    "polars_dtype",
    "polars_schema",
    "read_source",
    "read_table",
]

_REMOTE = ("hdfs://", "s3a://", "s3://", "gs://", "abfs://", "abfss://", "file://")


def _location(source: FileSource, root: Path) -> tuple[str, dict[str, str]]:
    """The path Spark reads and its reader options."""
    suffix = "csv" if source.file_format == "csv" else "parquet"
    if source.path.startswith(_REMOTE):
        if source.is_directory:
            return source.path, {"recursiveFileLookup": "true", "pathGlobFilter": f"*.{suffix}"}
        return source.path, {}
    path = resolve_path(source, root)
    if source.is_directory or Path(path).is_dir():
        if not glob.glob(str(Path(path) / "**" / f"*.{suffix}"), recursive=True):
            path = str(Path(path) / f"*.{suffix}")  # no file: reported below
        else:
            return path, {"recursiveFileLookup": "true", "pathGlobFilter": f"*.{suffix}"}
    if not glob.glob(path, recursive=True):
        raise SourceNotFoundError(
            f"source {source.name!r}: path {path!r} matches no file; "
            "generate or copy the data there, or fix the path in the definition"
        )
    return path, {}


def read_table(spark: SparkSession, source: TableSource) -> DataFrame:
    """Every row of the source's catalog table, whatever the catalog (Hive metastore, Glue,
    Iceberg, Delta...); never its ``path``, which is for DuckDB alone."""
    try:
        frame = spark.table(source.table) if spark.catalog.tableExists(source.table) else None
    except Exception as exc:  # AnalysisException and friends (an unknown catalog): name them
        raise SourceError(
            f"source {source.name!r}: Spark cannot read the table {source.table!r}: "
            f"{str(exc).splitlines()[0]}"
        ) from None
    if frame is None:
        files = (
            f"; its path {source.path!r} is read only by the DuckDB engine, never in place of "
            "the table on Spark"
            if source.path is not None
            else ""
        )
        raise SourceNotFoundError(
            f"source {source.name!r}: the table {source.table!r} is not in the Spark session's "
            f"catalog{files}. Create the table (e.g. df.write.saveAsTable({source.table!r})) "
            "or fix table= in the definition"
        )
    return frame


def read_source(spark: SparkSession, source: BatchSource, root: Path) -> DataFrame:
    """Every row of the source: its catalog table, or its files (Parquet schemas merged by
    name; CSV with a header and inferred types)."""
    if isinstance(source, TableSource):
        return read_table(spark, source)
    path, options = _location(source, root)
    reader = spark.read.options(**options)
    try:
        if source.file_format == "csv":
            return reader.options(header="true", inferSchema="true").csv(path)
        return reader.option("mergeSchema", "true").parquet(path)
    except Exception as exc:  # AnalysisException and friends: name the source
        raise SourceError(
            f"source {source.name!r}: Spark cannot read {path!r}: {str(exc).splitlines()[0]}"
        ) from None


def polars_dtype(spark_type: Any) -> pl.DataType:
    """The Polars dtype of a Spark column type (what the shared schema checks compare)."""
    from pyspark.sql import types as t

    simple: dict[type, pl.DataType] = {
        t.LongType: pl.Int64(),
        t.IntegerType: pl.Int32(),
        t.ShortType: pl.Int16(),
        t.ByteType: pl.Int8(),
        t.DoubleType: pl.Float64(),
        t.FloatType: pl.Float32(),
        t.StringType: pl.String(),
        t.BooleanType: pl.Boolean(),
        t.DateType: pl.Date(),
        t.TimestampType: pl.Datetime("us", "UTC"),
        t.TimestampNTZType: pl.Datetime("us"),
        t.BinaryType: pl.Binary(),
        t.NullType: pl.Null(),
    }
    for kind, dtype in simple.items():
        if isinstance(spark_type, kind):
            return dtype
    if isinstance(spark_type, t.DecimalType):
        return pl.Decimal(spark_type.precision, spark_type.scale)
    if isinstance(spark_type, t.ArrayType):
        return pl.List(polars_dtype(spark_type.elementType))
    return pl.Object()


def polars_schema(frame: DataFrame) -> dict[str, pl.DataType]:
    """Each column's Polars dtype."""
    return {f.name: polars_dtype(f.dataType) for f in frame.schema.fields}


def epoch_us(column: str, dtype: pl.DataType) -> Column:
    """A time column as epoch microseconds (UTC): naive times are UTC, aware ones instants,
    text is parsed as ISO 8601, dates are midnight."""
    from pyspark.sql import functions as F

    col = F.col(column)
    if isinstance(dtype, pl.Datetime | pl.Date):
        return F.unix_micros(col.cast("timestamp"))
    if isinstance(dtype, pl.String):
        return F.unix_micros(F.to_timestamp(col))
    return col.cast("long")


def newest_time(frame: DataFrame, column: str, dtype: pl.DataType) -> dt.datetime | None:
    """The latest time in ``column`` of ``frame`` (aware UTC); None when it has no rows."""
    from pyspark.sql import functions as F

    [(newest,)] = frame.select(F.max(epoch_us(column, dtype))).collect()
    return None if newest is None else from_epoch_us(int(newest))
