"""One request as retrieval takes it: its columns and time, checked against the plan (keys of
the right kind, request values of the declared types, equal lengths), and the state the read
steps fill in."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore._value_rules import FeatureStatus
from featurestore.definitions._dtypes import PYTHON_TYPES, dtype_kind, dtype_name
from featurestore.errors import OnlineRequestError
from featurestore.serving._retrieval._plan import Prepared, ViewRead
from featurestore.sources._frames import as_polars

__all__ = ["RequestState", "as_columns", "as_dates", "as_of", "row_count"]

_MIDNIGHT = dt.time()


def as_columns(name: str, value: object) -> Mapping[str, Sequence[Any]]:
    """Entity or request columns as a mapping of column -> values: a mapping as given; a
    Polars, pandas or Arrow table or a list of records column by column; None as no columns."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    frame = as_polars(value, OnlineRequestError, name)
    return {str(c): frame[c].to_list() for c in frame.columns}


def as_of(value: object) -> dt.datetime:
    """The time to serve as of: now when None, a datetime (naive is UTC), or ISO 8601 text."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise OnlineRequestError(
                f"request_time {value!r} is not an ISO 8601 time such as 2025-03-01T12:00:00Z"
            ) from None
    if not isinstance(value, dt.datetime):
        raise OnlineRequestError(
            f"request_time must be a datetime (naive means UTC) or ISO 8601 text, found "
            f"{value!r} ({type(value).__name__})"
        )
    return value


@dataclass(slots=True)
class RequestState:
    """One request as the read steps fill it: its entity rows and time, and per reference the
    values and statuses so far (per view, the served rows' event times)."""

    entities: Mapping[str, Sequence[Any]]
    n: int
    now_us: int
    applied: dict[str, str]  # the applied fingerprints of the requested references
    store_down: bool = False  # after one timeout, the other views fall back without waiting
    values: dict[str, list[Any]] = field(default_factory=dict)
    statuses: dict[str, list[FeatureStatus]] = field(default_factory=dict)
    event_times: dict[str, list[dt.datetime | None]] = field(default_factory=dict)
    computed_with: dict[str, str] = field(default_factory=dict)  # refs served by older ones
    computed_dtypes: dict[str, pl.DataType] = field(default_factory=dict)  # their dtypes


def _is_column(column: object) -> bool:
    return not isinstance(column, str | bytes) and isinstance(column, Sequence)


def _entity_lengths(read: ViewRead, entities: Mapping[str, Sequence[Any]]) -> dict[str, int]:
    """The lengths of the join key columns ``read`` needs, each checked: present, a list, of
    integer or string keys as the view's keys are stored."""
    lengths: dict[str, int] = {}
    for key, kind in read.key_kinds.items():
        if key not in entities:
            raise OnlineRequestError(
                f"entities lack join key {key!r} needed by view {read.view.name!r}; "
                f"found keys: {sorted(entities) or 'none'}"
            )
        column = entities[key]
        if not _is_column(column):
            raise OnlineRequestError(
                f"entities[{key!r}] must be a list of values, found {type(column).__name__}"
            )
        lengths[f"entities[{key!r}]"] = len(column)
        for value in column:
            ok = (
                isinstance(value, str)
                if kind == "string"
                else isinstance(value, int) and not isinstance(value, bool)
            )
            if not ok and value is not None:
                want = "a string" if kind == "string" else "an integer"
                raise OnlineRequestError(
                    f"join key {key!r} of view {read.view.name!r} must be {want}, "
                    f"found {value!r} ({type(value).__name__})"
                )
    return lengths


def _request_lengths(
    prepared: Prepared, request_data: Mapping[str, Sequence[Any]]
) -> dict[str, int]:
    """The lengths of the request columns the on-demand views read, each checked: present, a
    list, of values of the declared type."""
    lengths: dict[str, int] = {}
    users = [r.view.name for r in prepared.on_demand]
    for col, dtype in prepared.plan.request_columns.items():
        if col not in request_data:
            raise OnlineRequestError(
                f"request_data lacks column {col!r} needed by on-demand view(s) {users}; "
                f"found: {sorted(request_data) or 'none'}"
            )
        column = request_data[col]
        if not _is_column(column):
            raise OnlineRequestError(
                f"request_data[{col!r}] must be a list of values, found {type(column).__name__}"
            )
        kind = dtype_kind(dtype)
        accepted = PYTHON_TYPES[kind]  # as the offline spine takes them
        for value in column:
            if kind == "date" and isinstance(value, dt.datetime) and value.time() != _MIDNIGHT:
                raise OnlineRequestError(
                    f"request_data[{col!r}] must hold dates for on-demand view(s) {users}; "
                    f"found {value!r}, which has a time of day (a datetime at midnight counts "
                    "as its date: pass dates, e.g. series.dt.date)"
                )
            if value is not None and (
                not isinstance(value, accepted)
                or (isinstance(value, bool) and bool not in accepted)
            ):
                raise OnlineRequestError(
                    f"request_data[{col!r}] must hold {dtype_name(dtype)} values for "
                    f"on-demand view(s) {users}; found {value!r} ({type(value).__name__})"
                )
        lengths[f"request_data[{col!r}]"] = len(column)
    return lengths


def as_dates(
    prepared: Prepared, request_data: Mapping[str, Sequence[Any]]
) -> Mapping[str, Sequence[Any]]:
    """Request data with the datetimes of Date columns as their dates (pandas has no date
    dtype, so dates often arrive as datetimes at midnight; :func:`row_count` refused any
    other time of day), as a spine's midnight datetimes are cast offline."""
    dates = [c for c, d in prepared.plan.request_columns.items() if dtype_kind(d) == "date"]
    if not any(isinstance(v, dt.datetime) for c in dates for v in request_data[c]):
        return request_data
    out = dict(request_data)
    for col in dates:
        out[col] = [v.date() if isinstance(v, dt.datetime) else v for v in request_data[col]]
    return out


def row_count(
    prepared: Prepared,
    entities: Mapping[str, Sequence[Any]],
    request_data: Mapping[str, Sequence[Any]],
) -> int:
    """The request's entity rows, once its columns are checked against ``prepared``."""
    for what, given in (("entities", entities), ("request_data", request_data)):
        odd = [k for k in given if not isinstance(k, str)]
        if odd:
            raise OnlineRequestError(
                f"{what} must map column names (strings) to lists of values; found the "
                f"key {odd[0]!r} ({type(odd[0]).__name__})"
            )
    lengths: dict[str, int] = {}
    for read in prepared.reads:
        lengths.update(_entity_lengths(read, entities))
    lengths.update(_request_lengths(prepared, request_data))
    if len(set(lengths.values())) > 1:
        shown = ", ".join(f"{k} has {v}" for k, v in lengths.items())
        raise OnlineRequestError(f"entity and request columns must have equal lengths: {shown}")
    return next(iter(lengths.values()), 0)
