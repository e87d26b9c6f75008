"""Feature dtypes: which Polars dtypes a feature may declare and how they map to DuckDB.

One table, so the offline engine, the validators and the registry agree on every type.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias

import polars as pl

__all__ = [
    "PYTHON_TYPES",
    "Bound",
    "DTypeLike",
    "Scalar",
    "dtype_kind",
    "dtype_name",
    "duckdb_type",
    "is_castable",
    "parse_dtype",
    "utc_text_datetime",
]

# What a definition's dtype may be given as: a Polars dtype class (``pl.Int64``) or instance
# (``pl.Datetime("us", "UTC")``), or its name (``"Int64"``, ``"float"``); see parse_dtype.
DTypeLike: TypeAlias = pl.DataType | type[pl.DataType] | str
# A feature's value as Python gives it (bool and int are floats to a type checker, a
# datetime is a date), for defaults and allowed values; bounds are numbers or times.
Scalar: TypeAlias = float | str | dt.date
Bound: TypeAlias = float | dt.date

# canonical name -> (Polars dtype, DuckDB type, kind)
_TABLE: dict[str, tuple[pl.DataType, str, str]] = {
    "Int8": (pl.Int8(), "TINYINT", "int"),
    "Int16": (pl.Int16(), "SMALLINT", "int"),
    "Int32": (pl.Int32(), "INTEGER", "int"),
    "Int64": (pl.Int64(), "BIGINT", "int"),
    "UInt8": (pl.UInt8(), "UTINYINT", "int"),
    "UInt16": (pl.UInt16(), "USMALLINT", "int"),
    "UInt32": (pl.UInt32(), "UINTEGER", "int"),
    "UInt64": (pl.UInt64(), "UBIGINT", "int"),
    "Float32": (pl.Float32(), "FLOAT", "float"),
    "Float64": (pl.Float64(), "DOUBLE", "float"),
    "Boolean": (pl.Boolean(), "BOOLEAN", "bool"),
    "String": (pl.String(), "VARCHAR", "string"),
    "Date": (pl.Date(), "DATE", "date"),
    "Datetime": (pl.Datetime("us"), "TIMESTAMP", "datetime"),
}

_ALIASES = {
    "int": "Int64",
    "integer": "Int64",
    "float": "Float64",
    "double": "Float64",
    "bool": "Boolean",
    "str": "String",
    "utf8": "String",
    "varchar": "String",
}

# kinds a source column may be cast from, per declared kind
_CASTABLE_FROM = {
    "int": {"int"},
    "float": {"int", "float", "decimal"},
    "bool": {"bool"},
    "string": {"string", "categorical"},
    "date": {"date", "datetime"},
    "datetime": {"date", "datetime"},
}

SUPPORTED = ", ".join(_TABLE)

# Python types a value of each kind may be given as (a declared default or allowed value, a
# request value); an int is a float's value too
PYTHON_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "string": (str,),
    "date": (dt.date,),
    "datetime": (dt.datetime,),
}


def parse_dtype(value: Any) -> pl.DataType:
    """Turn a Polars dtype (class or instance) or its name into a supported dtype instance."""
    if isinstance(value, str):
        name = _ALIASES.get(value.lower(), value)
        match = {k.lower(): k for k in _TABLE}.get(name.lower())
        if match is None:
            raise ValueError(f"unknown dtype {value!r}; supported: {SUPPORTED}")
        return _TABLE[match][0]
    if isinstance(value, type) and issubclass(value, pl.DataType):
        if value.__name__ not in _TABLE:  # e.g. pl.List, which cannot be built without args
            raise ValueError(
                f"dtype {value.__name__} is not supported for features; supported: {SUPPORTED}"
            )
        value = value()
    if not isinstance(value, pl.DataType):
        raise ValueError(f"expected a Polars dtype such as pl.Int64, found {value!r}")
    if isinstance(value, pl.Datetime):
        return pl.Datetime("us", value.time_zone and "UTC")
    name = _base_name(value)
    if name not in _TABLE:
        raise ValueError(f"dtype {value} is not supported for features; supported: {SUPPORTED}")
    return _TABLE[name][0]


def _base_name(dtype: pl.DataType) -> str:
    return type(dtype).__name__


def dtype_name(dtype: pl.DataType) -> str:
    """Stable text for a dtype, used in fingerprints, the registry and messages."""
    if isinstance(dtype, pl.Datetime):
        return "Datetime(UTC)" if dtype.time_zone else "Datetime"
    return _base_name(dtype)


def dtype_kind(dtype: pl.DataType) -> str:
    """One of int, float, bool, string, date, datetime, decimal, categorical or other."""
    name = _base_name(dtype)
    if name in _TABLE:
        return _TABLE[name][2]
    if isinstance(dtype, pl.Decimal):
        return "decimal"
    if isinstance(dtype, pl.Categorical | pl.Enum):
        return "categorical"
    return "other"


def duckdb_type(dtype: pl.DataType) -> str:
    """The DuckDB type a value of this dtype is cast to in SQL."""
    if isinstance(dtype, pl.Datetime):
        return "TIMESTAMPTZ" if dtype.time_zone else "TIMESTAMP"
    return _TABLE[_base_name(dtype)][1]


def is_castable(found: pl.DataType, declared: pl.DataType) -> bool:
    """Whether a source column of dtype ``found`` may feed a feature declared ``declared``."""
    return dtype_kind(found) in _CASTABLE_FROM.get(dtype_kind(declared), set())


_ISO_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d")
_OFFSET = r"(Z|[+-]\d{2}:?\d{2})$"


def utc_text_datetime(column: pl.Expr) -> pl.Expr:
    """ISO 8601 text, naive (meaning UTC) or with any offset (``Z``, ``+05:30``, ``-0300``), as
    a naive UTC datetime in microseconds; null where the text is not such a time. How times sent
    as JSON (the serving log, HTTP pushes) are read back."""
    text = column.str.strip_chars()
    offset = text.str.extract(r"([+-]\d{2}:?\d{2})$")
    local = text.str.replace(_OFFSET, "").str.replace(r"^(\d{4}-\d{2}-\d{2}) ", "${1}T")
    parsed = pl.coalesce(
        local.str.to_datetime(fmt, time_unit="us", strict=False) for fmt in _ISO_FORMATS
    )
    sign = pl.when(offset.str.slice(0, 1) == "-").then(-1).otherwise(1)
    minutes = sign * (
        offset.str.slice(1, 2).cast(pl.Int64) * 60 + offset.str.slice(-2, 2).cast(pl.Int64)
    )
    return parsed - pl.duration(minutes=minutes.fill_null(0))
