"""Windowed aggregations online: each entity's recent events, aggregated at request time.

For a view with aggregations the online store keeps, per entity, the events whose event time
lies within the view's longest window of the entity's newest event (under the view name
``<view>@events``), as one JSON value::

    {"__ts": newest event time, "__d": digest, "t": [event times], "c": [created times],
     "i1f2e3d4c": [...], ...}

Times are epoch microseconds; events are sorted by ``(t, c)``; ``c`` is present only when the
source declares a created timestamp; the other lists are the aggregations' inputs, cast
exactly as the offline SQL casts them (by Spark alike when it materializes; one list per
distinct input), each named by a hash of its SQL, so a stored part says what it holds whatever
definition wrote it (:mod:`featurestore.online._event_layout` writes them). ``__d`` is the
digest of the definitions the part was written with (:mod:`featurestore.online._published`). At
request time ``t`` every aggregation reads the events with ``t - window < event time < t`` (two
bisections) and aggregates them in Python, with the offline rules of
:mod:`featurestore.definitions._aggregation`.

Why raw events rather than pre-aggregated time tiles: every kind is exact at any request time,
``CountDistinct``, ``Last`` and ``Min``/``Max`` included, and both window edges are exact to the
microsecond, so online values equal offline ones; the cost is storage and request work that
grow with the events per entity within the longest window (thousands are fine; tiles would be
the next step for keys with millions). Materialization writes each entity's events in
``(end - longest window, end]``. A push (:func:`featurestore.online._push.push_rows`) appends
each entity's new events as one more JSON state after a newline, without reading what is
stored; a read merges the parts by ``(t, c)`` (:func:`decode_state`), and once an entity's
appended parts pass a size, the push folds them into one state (:func:`compact`), dropping
events that no request at or after the newest event can see. Requests are answered for times at
or after the events written: an event older than the horizon never counts.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from itertools import chain, pairwise
from typing import Any

import orjson
import polars as pl

from featurestore._times import from_epoch_us
from featurestore.definitions import Aggregation
from featurestore.definitions._dtypes import dtype_kind
from featurestore.online._codec import EVENTS_SUFFIX, TS_FIELD, events_store_name
from featurestore.online._event_layout import WindowLayout, aggregation_input, events_definitions
from featurestore.online._published import DIGEST_FIELD

__all__ = [
    "EVENTS_SUFFIX",
    "FRAGMENT_SEPARATOR",
    "INCOMPLETE",
    "MIXED_FIELD",
    "WindowLayout",
    "aggregate",
    "aggregation_input",
    "compact",
    "decode_state",
    "events_definitions",
    "events_store_name",
    "window_value",
]

FRAGMENT_SEPARATOR = b"\n"  # starts every pushed fragment; JSON text never holds a raw newline


MIXED_FIELD = "__m"  # in a decoded state: its parts were written by different definitions


class _Marker:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING = _Marker("MISSING")  # an input a stored part did not hold, in a decoded state
INCOMPLETE = _Marker("INCOMPLETE")  # a window whose events do not all hold the input


def _from_us(dtype: pl.DataType) -> Callable[[int], Any]:
    if dtype_kind(dtype) == "date":
        return lambda us: from_epoch_us(us).date()
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        return from_epoch_us
    return lambda us: from_epoch_us(us).replace(tzinfo=None)


def _last(values: Sequence[Any], t: Sequence[int], c: Sequence[int] | None) -> Any:
    """The value of the latest event with a value: ties on time go to the latest created
    time, then to the greatest value (the offline rule)."""
    best: tuple[Any, ...] | None = None
    for i in range(len(values) - 1, -1, -1):
        v = values[i]
        if v is None:
            continue
        key = (t[i], c[i] if c is not None else 0)
        if best is not None and key < best[:2]:
            break
        if best is None or key > best[:2] or v > best[2]:
            best = (*key, v)
    return None if best is None else best[2]


def aggregate(
    agg: Aggregation, state: dict[str, Any] | None, layout: WindowLayout, now_us: int
) -> Any:
    """The aggregation's value over the stored events in ``(now - window, now)``."""
    field = layout.fields.get(agg.name)
    return window_value(agg, state, field, field in layout.temporal, layout.created, now_us)


def window_value(
    agg: Aggregation,
    state: dict[str, Any] | None,
    field: str | None,
    temporal: bool,
    created: bool,
    now_us: int,
) -> Any:
    """The aggregation's value over the events of ``state`` in ``(now - window, now)``,
    reading input ``field``; INCOMPLETE when a stored part in the window lacks the field."""
    if state is None:
        return _empty(agg)
    times: list[int] = state["t"]
    lo = bisect_right(times, now_us - agg.window_us)
    hi = bisect_left(times, now_us)
    if agg.kind == "count":
        return hi - lo
    assert field is not None
    column = state.get(field)
    if column is None:
        return INCOMPLETE if hi > lo else _empty(agg)
    window = column[lo:hi]
    if state.get(MIXED_FIELD) and any(v is MISSING for v in window):
        return INCOMPLETE
    if agg.kind == "last":
        value = _last(window, times[lo:hi], state["c"][lo:hi] if created else None)
    else:
        values = [v for v in window if v is not None]
        if not values:
            return _empty(agg)
        value = _REDUCE[agg.kind](values)
    if value is not None and temporal:
        return _from_us(agg.dtype)(value)
    return value


def _empty(agg: Aggregation) -> Any:
    """The value over a window without values, in the output dtype (0.0 for a Float64 sum)."""
    if agg.empty_value is None:
        return None
    return float(agg.empty_value) if dtype_kind(agg.dtype) == "float" else agg.empty_value


def _mean(values: list[float]) -> float:
    return math.fsum(values) / len(values)


def _stddev(values: list[float]) -> float | None:
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))


def _sum(values: list[Any]) -> Any:
    return math.fsum(values) if isinstance(values[0], float) else sum(values)


_REDUCE: dict[str, Callable[[list[Any]], Any]] = {
    "sum": _sum,
    "mean": _mean,
    "min": min,
    "max": max,
    "stddev": _stddev,
    "count_distinct": lambda values: len(set(values)),
}


def _parts(raw: bytes) -> list[dict[str, Any]]:
    """The stored state and the fragments pushed since, in order."""
    return [orjson.loads(p) for p in raw.split(FRAGMENT_SEPARATOR) if p]


def decode_state(raw: bytes | None) -> dict[str, Any] | None:
    """One entity's events (None when it has none): its stored state with the fragments pushed
    since merged in, sorted by ``(t, c)``. ``__d`` is the digest of the first part (the
    materialized state, which decides the window the events cover). When the parts were
    written by different definitions, ``__m`` is set and an input a part did not hold is
    MISSING for its events."""
    if not raw:
        return None
    if FRAGMENT_SEPARATOR not in raw:
        stored: dict[str, Any] = orjson.loads(raw)
        return stored
    every = _parts(raw)
    parts = [p for p in every if p["t"]]
    if len(parts) <= 1 and (not parts or parts[0] is every[0]):
        return parts[0] if parts else None
    first = every[0]
    digest = first.get(DIGEST_FIELD)
    names = dict.fromkeys(n for p in parts for n in p if n not in (TS_FIELD, DIGEST_FIELD))
    state: dict[str, Any] = {TS_FIELD: max(p[TS_FIELD] for p in parts), DIGEST_FIELD: digest}
    mixed = any(p.get(DIGEST_FIELD) != digest or p.keys() != first.keys() for p in parts)
    if mixed:
        state[MIXED_FIELD] = True
    for n in names:
        state[n] = list(chain.from_iterable(p.get(n) or [MISSING] * len(p["t"]) for p in parts))
    if all(_edge(a, -1) <= _edge(b, 0) for a, b in pairwise(parts)):
        return state  # parts in time order (the usual case): already sorted
    t, c = state["t"], state.get("c")
    order = sorted(range(len(t)), key=(lambda i: (t[i], c[i])) if c else t.__getitem__)
    return {n: v if not isinstance(v, list) else [v[i] for i in order] for n, v in state.items()}


def _edge(part: dict[str, Any], i: int) -> tuple[int, int]:
    """The ``(t, c)`` of a part's first (0) or last (-1) event."""
    return part["t"][i], part["c"][i] if "c" in part else 0


def _trim(part: dict[str, Any], horizon_us: int) -> dict[str, Any]:
    drop = bisect_right(part["t"], horizon_us)
    if not drop:
        return part
    return {n: v[drop:] if isinstance(v, list) else v for n, v in part.items()}


def compact(raw: bytes | None, layout: WindowLayout) -> bytes:
    """One entity's whole value folded into one state, without the events that no request at
    or after its newest event can see (older than the newest minus the longest window). Parts
    written by different definitions hold different inputs: they are only trimmed, each kept
    with its own fields and digest."""
    if not raw:
        return b""
    parts = _parts(raw) if FRAGMENT_SEPARATOR in raw else [orjson.loads(raw)]
    if not parts:
        return b""
    horizon = max(p[TS_FIELD] for p in parts) - layout.max_window_us
    if len({(p.get(DIGEST_FIELD), *sorted(p)) for p in parts}) > 1:
        # the first part stays, even emptied: its digest tells what window the events cover
        first, *rest = (_trim(p, horizon) for p in parts)
        kept = [first, *(p for p in rest if p["t"])]
        return FRAGMENT_SEPARATOR.join(orjson.dumps(p) for p in kept)
    state = decode_state(raw)
    assert state is not None
    return orjson.dumps(_trim(state, horizon))
