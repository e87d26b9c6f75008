"""The spine of a training set: read from any table-like input, checked against what the
requested features need, and turned into the internal table the point-in-time join reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa

from featurestore._selection import RetrievalPlan
from featurestore.definitions import FeatureView
from featurestore.definitions._base import did_you_mean
from featurestore.definitions._dtypes import dtype_kind, is_castable
from featurestore.errors import SpineError
from featurestore.sources._frames import as_polars, is_pandas
from featurestore.sources._sql import SPINE_ROW, SPINE_TS

__all__ = [
    "SpineLike",
    "check_spine",
    "checked_inputs",
    "is_spark_frame",
    "read_spine",
    "spine_table",
]

SpineLike = Any  # pl.DataFrame | pl.LazyFrame | pa.Table | pandas.DataFrame | str | Path


def read_spine(spine: SpineLike) -> pl.DataFrame:
    """Accept a Polars, pandas or Arrow table, a Spark DataFrame (collected through Arrow) or
    a Parquet/CSV path, as a Polars frame."""
    if isinstance(spine, pl.DataFrame):
        return spine
    if isinstance(spine, pl.LazyFrame):
        return spine.collect()
    if isinstance(spine, pa.Table | pa.RecordBatch):
        return pl.from_arrow(spine)  # type: ignore[return-value]
    if isinstance(spine, str | Path):
        return _read_file(Path(spine))
    if is_pandas(spine):
        return as_polars(spine, SpineError, "spine")
    if is_spark_frame(spine):
        return pl.from_arrow(spine.toArrow())  # type: ignore[return-value]
    raise SpineError(
        "spine must be a Polars, pandas, Arrow or Spark table or a Parquet path, "
        f"found {type(spine).__name__}"
    )


def is_spark_frame(spine: object) -> bool:
    """Whether ``spine`` is a Spark DataFrame (checked without importing pyspark)."""
    return type(spine).__module__.startswith("pyspark.") and hasattr(spine, "toArrow")


def _read_file(path: Path) -> pl.DataFrame:
    kind = "CSV" if path.suffix == ".csv" else "Parquet"
    if not path.exists():
        raise SpineError(f"spine file {path} does not exist")
    if not path.is_file():
        raise SpineError(f"spine path {path} is not a file; give a Parquet or CSV file")
    try:
        return pl.read_csv(path, try_parse_dates=True) if kind == "CSV" else pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise SpineError(
            f"spine file {path} cannot be read as {kind}: {str(exc).splitlines()[0]}"
        ) from None


def spine_table(spine: pl.DataFrame, keys: list[str], timestamp_column: str) -> pl.DataFrame:
    """The join's view of the spine: row number, join keys and time as naive UTC."""
    time = pl.col(timestamp_column)
    dtype = spine.schema[timestamp_column]
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        time = time.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return spine.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(SPINE_ROW),
        *keys,
        time.cast(pl.Datetime("us")).alias(SPINE_TS),
    )


def check_spine(
    spine: pl.DataFrame,
    plan: RetrievalPlan,
    timestamp_column: str,
    schemas: dict[str, dict[str, pl.DataType]],
) -> None:
    """Raise :class:`SpineError` when the spine lacks a time, a join key or a request column
    the plan needs, has one of the wrong type, or already holds an output column."""
    _check_time(spine, timestamp_column)
    _check_keys(spine, plan, schemas)
    _check_request_columns(spine, plan)
    clash = [r.column for r in plan.refs if r.column in spine.columns]
    if clash:
        raise SpineError(
            f"spine already has column(s) {clash}, which the requested features would "
            "overwrite; drop them from the spine or pass full_feature_names=True"
        )


def _check_time(spine: pl.DataFrame, timestamp_column: str) -> None:
    if timestamp_column not in spine.columns:
        hint = did_you_mean(timestamp_column, spine.columns)
        raise SpineError(
            f"spine has no timestamp column {timestamp_column!r}.{hint} Found columns: "
            f"{', '.join(spine.columns)}. Rename the column or pass timestamp_column=..."
        )
    ts_dtype = spine.schema[timestamp_column]
    if dtype_kind(ts_dtype) not in ("datetime", "date"):
        raise SpineError(
            f"spine timestamp column {timestamp_column!r} is {ts_dtype}; expected Datetime or "
            "Date (parse strings first, e.g. pl.col(c).str.to_datetime())"
        )
    nulls = spine[timestamp_column].null_count()
    if nulls:
        raise SpineError(
            f"spine timestamp column {timestamp_column!r} has {nulls} null value(s); "
            "every spine row needs a time"
        )


def _check_keys(
    spine: pl.DataFrame, plan: RetrievalPlan, schemas: dict[str, dict[str, pl.DataType]]
) -> None:
    for name, view in plan.batch_views.items():
        for key in view.join_keys:
            if key not in spine.columns:
                raise SpineError(
                    f"spine lacks join key {key!r} needed by view {name!r}; "
                    f"found columns: {', '.join(spine.columns)}"
                )
            found, want = spine.schema[key], schemas[name][key]
            if dtype_kind(found) != dtype_kind(want) and found != pl.Null:
                raise SpineError(
                    f"spine join key {key!r} is {found} but source "
                    f"{view.source.name!r} stores it as {want}; cast the spine column"
                )


def _check_request_columns(spine: pl.DataFrame, plan: RetrievalPlan) -> None:
    for col, dtype in plan.request_columns.items():
        users = [o.name for o in plan.on_demand if col in o.request_columns]
        if col not in spine.columns:
            raise SpineError(
                f"spine lacks request column {col!r} needed by on-demand view(s) "
                f"{users}; found columns: {', '.join(spine.columns)}"
            )
        if not is_castable(spine.schema[col], dtype) and spine.schema[col] != pl.Null:
            raise SpineError(
                f"spine request column {col!r} is {spine.schema[col]}; on-demand view(s) "
                f"{users} expect {dtype}"
            )
        if dtype_kind(dtype) == "date" and dtype_kind(spine.schema[col]) == "datetime":
            timed = spine.filter(pl.col(col).dt.time() != dt.time())[col]
            if timed.len():
                raise SpineError(
                    f"spine request column {col!r} holds datetimes with a time of day (e.g. "
                    f"{timed[0]}); on-demand view(s) {users} expect dates, and a datetime "
                    "counts as its date only at midnight: pass dates, e.g. pl.col(c).dt.date()"
                )


def checked_inputs(
    spine: pl.DataFrame,
    plan: RetrievalPlan,
    timestamp_column: str,
    checked_schema: Callable[[FeatureView], dict[str, pl.DataType]],
    step: Callable[[str], None] = lambda _message: None,
) -> dict[str, dict[str, pl.DataType]]:
    """Every planned view's source schema, each checked against its declarations by the
    engine's ``checked_schema``, then the spine against the plan (see :func:`check_spine`)."""
    schemas = {}
    for name, view in plan.batch_views.items():
        step(f"checking source {view.source.name}")
        schemas[name] = checked_schema(view)
    check_spine(spine, plan, timestamp_column, schemas)
    return schemas
