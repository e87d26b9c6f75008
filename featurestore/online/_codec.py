"""How a view's row for one entity is stored online: an entity key string and a JSON value.

Both are built with Polars expressions at materialization (vectorized) and with the matching
plain-Python functions at request time; tests pin the two to the same bytes.

- entity key: the join key values as text joined by ``|``, with ``\\`` and ``|`` escaped.
- value: ``{"__ts": event time in epoch microseconds, "__d": digest, "<feature>": value, ...,
  "__st": S}`` where ``__d`` names the definitions the values were computed with (see
  :mod:`featurestore.online._published`) and ``S`` is null when every value is PRESENT, else
  ``"<feature>=<STATUS>;..."`` for the others (kept short: it is written for every entity of
  every view).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
import polars as pl

from featurestore.definitions._dtypes import dtype_kind

__all__ = ["decode_value", "encode_key", "key_expr", "value_expr"]

EVENTS_SUFFIX = "@events"
TS_FIELD = "__ts"
STATUS_FIELD = "__st"
DIGEST_FIELD = "__d"


def events_store_name(view: str) -> str:
    """Where a view's per-entity events live in the online store (see online.windows)."""
    return f"{view}{EVENTS_SUFFIX}"


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


def value_expr(ts_column: str, features: dict[str, str], digest: str) -> pl.Expr:
    """The JSON value per row; ``features`` maps a feature name to its status column, and
    ``digest`` names the definitions that computed them."""
    others = pl.concat_str(
        [
            pl.when(pl.col(status) != "PRESENT").then(
                pl.lit(f"{name}=") + pl.col(status).cast(pl.String)
            )
            for name, status in features.items()
        ],
        separator=";",
        ignore_nulls=True,
    )
    return pl.struct(
        pl.col(ts_column).dt.epoch("us").alias(TS_FIELD),
        pl.lit(digest).alias(DIGEST_FIELD),
        *(pl.col(name) for name in features),
        pl.when(others != "").then(others).alias(STATUS_FIELD),
    ).struct.json_encode()


def decode_value(raw: bytes) -> dict[str, Any]:
    """The stored mapping of one row; temporal values are still ISO text (see to_python)."""
    value: dict[str, Any] = orjson.loads(raw)
    return value


def decode_statuses(text: str | None) -> dict[str, str]:
    """The non-PRESENT statuses of a stored row, by feature name."""
    if not text:
        return {}
    return dict(part.split("=", 1) for part in text.split(";"))


def converter(dtype: pl.DataType) -> Callable[[Any], Any] | None:
    """How to turn a decoded non-null JSON value into the feature's Python value.

    None when JSON already yields it (numbers, strings, booleans); temporal values are
    stored as ISO text and parsed back.
    """
    kind = dtype_kind(dtype)
    if kind == "datetime":
        return dt.datetime.fromisoformat
    if kind == "date":
        return dt.date.fromisoformat
    return None
