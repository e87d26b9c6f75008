"""Rows in and out: every place rows go in (spines, pushes) takes a Polars frame (or lazy
frame), a pandas frame, an Arrow table or record batch, a mapping of column -> values or a
list of records; every place frames come out offers pandas with nullable dtypes, so an
integer column with nulls stays integer and a missing value stays missing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from featurestore.errors import FeatureStoreError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["as_polars", "is_pandas", "to_pandas"]


def is_pandas(value: object) -> bool:
    return type(value).__module__.split(".")[0] == "pandas"


def as_polars(rows: Any, error: type[FeatureStoreError], what: str) -> pl.DataFrame:
    """``rows`` as a Polars frame; ``error`` (naming ``what``) when they are none of the
    accepted kinds or cannot be converted."""
    if isinstance(rows, pl.DataFrame):
        return rows
    if isinstance(rows, pl.LazyFrame):
        return rows.collect()
    try:
        if isinstance(rows, pa.Table | pa.RecordBatch):
            return pl.DataFrame(pl.from_arrow(rows))
        if is_pandas(rows):
            return _from_pandas(rows, error, what)
        if isinstance(rows, Mapping):
            return pl.DataFrame(dict(rows))
        if isinstance(rows, str | bytes) or not hasattr(rows, "__iter__"):
            raise TypeError(f"found {type(rows).__name__}")
        return pl.DataFrame(list(rows), infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
        raise error(
            f"{what} must be a Polars, pandas or Arrow table, a mapping of column -> values or "
            f"a list of records: {str(exc).splitlines()[0]}"
        ) from None


def _from_pandas(frame: pd.DataFrame, error: type[FeatureStoreError], what: str) -> pl.DataFrame:
    columns = [str(c) for c in frame.columns]
    duplicated = sorted({c for c in columns if columns.count(c) > 1})
    if duplicated:
        raise error(
            f"the pandas {what} has duplicate column names {duplicated}; rename or drop them"
        )
    if not all(isinstance(c, str) for c in frame.columns):
        frame = frame.rename(columns=str)
    try:
        return pl.from_pandas(frame)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise error(
            f"the pandas {what} cannot be converted to a table: {str(exc).splitlines()[0]}; "
            "give its columns plain types (numbers, strings, datetimes)"
        ) from None


def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:
    """A pandas frame with nullable dtypes (Int64, boolean, Float64, string): nulls stay
    missing and integers stay integers; times stay datetime64 (missing: NaT)."""
    try:
        import pandas as pd
    except ImportError:
        raise FeatureStoreError(
            "to_pandas() needs pandas: pip install 'featurestore[pandas]'"
        ) from None
    nullable = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
        pa.float32(): pd.Float32Dtype(),
        pa.float64(): pd.Float64Dtype(),
        pa.string(): pd.StringDtype(),
        pa.large_string(): pd.StringDtype(),
        pa.string_view(): pd.StringDtype(),
    }
    out: pd.DataFrame = frame.to_arrow().to_pandas(types_mapper=nullable.get)
    return out
