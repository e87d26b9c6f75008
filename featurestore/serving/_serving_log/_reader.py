"""Reading the serving log back: the records of a time range, and a JSON-text column decoded
into typed columns (what the skew, drift and parity reports replay)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

import polars as pl

from featurestore._times import as_utc
from featurestore.definitions._dtypes import utc_text_datetime
from featurestore.serving._serving_log._files import log_files
from featurestore.serving._serving_log._schema import SERVING_LOG_SCHEMA

__all__ = ["decode_json_column", "read_serving_log"]

_JSON_COLUMNS = ("entity_keys", "request_data", "values", "statuses", "event_times")


def read_serving_log(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pl.DataFrame:
    """Logged records with ``start <= request_time < end``, sorted by request_time,
    request_id and row. Naive bounds are UTC; hidden and temporary files are ignored."""
    lo = as_utc(start) if start is not None else None
    hi = as_utc(end) if end is not None else None
    files = [str(f) for f in log_files(Path(directory), lo, hi)]
    if not files:
        return pl.DataFrame(schema=SERVING_LOG_SCHEMA)
    frame = pl.scan_parquet(
        files,
        hive_partitioning=False,
        glob=False,
        schema=SERVING_LOG_SCHEMA,
        missing_columns="insert",  # files written before a column existed
    )
    if lo is not None:
        frame = frame.filter(pl.col("request_time") >= lo)
    if hi is not None:
        frame = frame.filter(pl.col("request_time") < hi)
    return frame.sort("request_time", "request_id", "row").collect()


def _wire_dtype(column: str, dtype: pl.DataType) -> pl.DataType:
    """How a key's values are written in the JSON text: epoch microseconds for event times,
    ISO 8601 text for temporal values, else as declared."""
    if column == "event_times":
        return pl.Int64()
    if isinstance(dtype, pl.Datetime | pl.Date | pl.Time | pl.Duration):
        return pl.String()
    return dtype


def _typed(column: str, key: str, dtype: pl.DataType) -> pl.Expr:
    """The decoded text of ``key`` cast back to ``dtype``."""
    col = pl.col(key)
    if column == "event_times":
        return col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    if isinstance(dtype, pl.Datetime):
        naive = utc_text_datetime(col)
        if dtype.time_zone is None:
            return naive
        return naive.dt.replace_time_zone("UTC").dt.convert_time_zone(dtype.time_zone)
    if isinstance(dtype, pl.Date):
        return col.str.to_date()
    return col


def decode_json_column(
    log: pl.DataFrame, column: str, dtypes: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """One typed column per key of the JSON-text ``column`` of a serving log frame.

    Keys a record lacks are null. Dates and datetimes are logged as ISO 8601 text and parsed
    back (naive or UTC datetimes, both read as UTC); ``event_times`` values are epoch
    microseconds.
    """
    if column not in _JSON_COLUMNS:
        raise ValueError(f"{column!r} is not a JSON column of the serving log")
    if not dtypes:
        return pl.DataFrame(height=log.height)
    wire = {key: _wire_dtype(column, dtype) for key, dtype in dtypes.items()}
    struct = log[column].str.json_decode(pl.Struct(wire)).struct.unnest()
    return struct.select([_typed(column, key, dtype) for key, dtype in dtypes.items()])
