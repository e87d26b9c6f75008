"""How a view's row for one entity is stored online: an entity key string and a JSON value.

Both are built with Polars expressions at materialization (vectorized) and with the matching
plain-Python functions at request time; tests pin the two to the same bytes.

- entity key: the join key values as text joined by ``|``, with ``\\`` and ``|`` escaped.
- value: ``{"__ts": event time in epoch microseconds, "<feature>": value, ...,
  "__st": {"<feature>": status}}`` where ``__st`` lists only statuses other than PRESENT.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import polars as pl

from featurestore.definitions.dtypes import dtype_kind

__all__ = ["decode_value", "encode_key", "key_expr", "value_expr"]

TS_FIELD = "__ts"
STATUS_FIELD = "__st"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def encode_key(values: tuple[Any, ...]) -> str:
    """The entity key of one row of join key values (ints or strings)."""
    return "|".join(_escape(v if isinstance(v, str) else str(v)) for v in values)


def key_expr(join_keys: list[str]) -> pl.Expr:
    """Polars twin of :func:`encode_key` over the join key columns."""
    parts = [
        pl.col(k)
        .cast(pl.String)
        .str.replace_all("\\", "\\\\", literal=True)
        .str.replace_all("|", "\\|", literal=True)
        for k in join_keys
    ]
    return pl.concat_str(parts, separator="|")


def value_expr(ts_column: str, features: dict[str, str]) -> pl.Expr:
    """The JSON value per row; ``features`` maps a feature name to its status column."""
    statuses = [
        pl.when(pl.col(status).cast(pl.String) != "PRESENT")
        .then(pl.col(status).cast(pl.String))
        .alias(name)
        for name, status in features.items()
    ]
    return pl.struct(
        pl.col(ts_column).dt.epoch("us").alias(TS_FIELD),
        *(pl.col(name) for name in features),
        pl.struct(statuses).alias(STATUS_FIELD),
    ).struct.json_encode()


def decode_value(raw: bytes) -> dict[str, Any]:
    """The stored mapping of one row; temporal values are still ISO text (see to_python)."""
    return orjson.loads(raw)


def to_python(value: Any, dtype: pl.DataType) -> Any:
    """Turn a decoded JSON value back into the Python value of the feature's dtype."""
    if value is None:
        return None
    kind = dtype_kind(dtype)
    if kind == "datetime":
        parsed = dt.datetime.fromisoformat(value)
        return parsed if parsed.tzinfo is None or dtype.time_zone else parsed.replace(tzinfo=None)  # type: ignore[attr-defined]
    if kind == "date":
        return dt.date.fromisoformat(value)
    if kind == "float":
        return float(value)
    return value
