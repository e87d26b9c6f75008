"""Command-line values parsed: ISO times, durations, comma-separated lists and NAME=V1,V2
assignments typed by their column's dtype. No IO: click reports what does not parse."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import click
import polars as pl

from featurestore._times import as_utc, parse_duration
from featurestore.definitions._dtypes import dtype_kind, dtype_name

__all__ = [
    "ISO_DATETIME",
    "Duration",
    "IsoDatetime",
    "broadcast",
    "parse_assignments",
    "parse_value",
    "split_list",
]

TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


class IsoDatetime(click.ParamType[dt.datetime]):
    """An ISO 8601 date or datetime; a naive one is UTC, an aware one is converted to UTC."""

    name = "ISO datetime"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.datetime:
        if isinstance(value, dt.datetime):
            return as_utc(value)
        try:
            return as_utc(dt.datetime.fromisoformat(str(value).strip()))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO datetime such as 2025-03-01T12:00:00 "
                "(naive times are UTC; add +02:00 or Z for another zone)",
                param,
                ctx,
            )


ISO_DATETIME = IsoDatetime()


class Duration(click.ParamType[dt.timedelta]):
    """A duration such as 90s, 30m, 12h, 1d or 2w."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        duration = parse_duration(str(value))
        if duration is None:
            self.fail(f"{value!r} is not a duration such as 30m, 12h, 1d or 2w", param, ctx)
        return duration


def split_list(values: Sequence[str]) -> list[str]:
    """Comma-separated items of one or several option values, stripped, empty ones dropped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def parse_value(text: str, dtype: pl.DataType) -> Any:
    """One command-line value as the Python value of ``dtype``; ValueError if it is not one."""
    kind = dtype_kind(dtype)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "datetime":
        value = as_utc(dt.datetime.fromisoformat(text))
        return value if getattr(dtype, "time_zone", None) else value.replace(tzinfo=None)
    return text


def _values(text: str, dtype: pl.DataType, what: str, option: str) -> list[Any]:
    """The comma-separated values of one assignment, each parsed with ``dtype``."""
    values = []
    for item in text.split(","):
        try:
            values.append(parse_value(item.strip(), dtype))
        except ValueError:
            raise click.BadParameter(
                f"{what} takes {dtype_name(dtype)} values; {item.strip()!r} is not one",
                param_hint=option,
            ) from None
    return values


def parse_assignments(
    args: Sequence[str], dtypes: dict[str, pl.DataType], option: str, what: str
) -> dict[str, list[Any]]:
    """``NAME=V1,V2`` options as {name: [values]}, each value parsed with the name's dtype."""
    out: dict[str, list[Any]] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE[,VALUE...]", param_hint=option)
        if name not in dtypes:
            known = ", ".join(sorted(dtypes)) or "none"
            raise click.BadParameter(f"unknown {what} {name!r}; known: {known}", param_hint=option)
        if name in out:
            raise click.BadParameter(
                f"{what} {name!r} is given twice; list its values in one option: {name}=V1,V2",
                param_hint=option,
            )
        out[name] = _values(text, dtypes[name], f"{what} {name!r}", option)
    return out


def broadcast(entities: dict[str, list[Any]], request: dict[str, list[Any]]) -> list[str]:
    """Repeat single values to the row count of the longest list (other lengths must agree);
    returns one note per repeated value, e.g. "--entity product_id=1000 used for each of the 2
    rows", so that the caller says so instead of broadcasting silently."""
    lengths = {f"--entity {k}": len(v) for k, v in entities.items()}
    lengths |= {f"--request {k}": len(v) for k, v in request.items()}
    n = max(lengths.values(), default=0)
    bad = [f"{k} has {m}" for k, m in lengths.items() if m not in (1, n)]
    if bad:
        raise click.UsageError(
            f"each --entity and --request needs {n} value(s), or 1 used for every row: "
            + ", ".join(bad)
        )
    notes = []
    for flag, columns in (("--entity", entities), ("--request", request)):
        for key, values in columns.items():
            if len(values) == 1 and n > 1:
                notes.append(f"{flag} {key}={values[0]} used for each of the {n} rows")
                columns[key] = values * n
    return notes
