"""Windowed aggregations online: each entity's recent events, aggregated at request time.

For a view with aggregations the online store keeps, per entity, the events whose event time
lies within the view's longest window of the entity's newest event (under the view name
``<view>@events``), as one JSON value::

    {"__ts": newest event time, "__d": digest, "t": [event times], "c": [created times],
     "i1f2e3d4c": [...], ...}

Times are epoch microseconds; events are sorted by ``(t, c)``; ``c`` is present only when the
source declares a created timestamp; the other lists are the aggregations' inputs, cast in
DuckDB exactly as the offline SQL casts them (one list per distinct input), each named by a
hash of its SQL, so a stored part says what it holds whatever definition wrote it. ``__d`` is
the digest of the definitions the part was written with (:mod:`featurestore.online._published`).
At request time
``t`` every aggregation reads the events with ``t - window < event time < t`` (two bisections)
and aggregates them in Python, with the offline rules of
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

import datetime as dt
import hashlib
import math
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import chain, pairwise
from pathlib import Path
from typing import Any

import duckdb
import orjson
import polars as pl

from featurestore._times import epoch_us, from_epoch_us
from featurestore.definitions import Aggregation, FeatureView
from featurestore.definitions._dtypes import dtype_kind
from featurestore.errors import MaterializationGuardError
from featurestore.online._codec import EVENTS_SUFFIX, TS_FIELD, events_store_name, key_expr
from featurestore.online._materialize import (
    EventsState,
    GuardCheck,
    GuardReport,
    MaterializationResult,
)
from featurestore.online._protocol import OnlineStore, events_state_key
from featurestore.online._published import DIGEST_FIELD, PublishedDefinitions, write_definitions
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._schema import check_view, read_schema
from featurestore.sources._sql import (
    MIN_BIGINT,
    SPINE_ROW,
    SPINE_TS,
    ident,
    input_sql,
    timestamp_sql,
)

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
    "publish_events",
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


def field_name(sql: str) -> str:
    """The stored field of an input: named by its SQL, so equal inputs share a field whatever
    definition wrote them, and different ones never do."""
    return "i" + hashlib.sha256(sql.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class WindowLayout:
    """How one view's events are stored: its inputs (SQL -> field) and its longest window."""

    view: FeatureView
    inputs: dict[str, str]  # input SQL -> field name in the stored value
    fields: dict[str, str]  # aggregation name -> the field it reads (not for Count)
    temporal: frozenset[str]  # fields holding epoch microseconds of temporal values
    created: bool
    max_window_us: int

    @classmethod
    def of(cls, view: FeatureView) -> WindowLayout:
        inputs: dict[str, str] = {}
        fields: dict[str, str] = {}
        temporal: set[str] = set()
        for agg in view.aggregations:
            sql = input_sql(agg)
            if sql is None:
                continue
            fields[agg.name] = inputs.setdefault(sql, field_name(sql))
            if _temporal(agg):
                temporal.add(inputs[sql])
        return cls(
            view=view,
            inputs=inputs,
            fields=fields,
            temporal=frozenset(temporal),
            created=view.source.created_timestamp_field is not None,
            max_window_us=max(a.window_us for a in view.aggregations),
        )

    def union(self, other: WindowLayout) -> WindowLayout:
        """A layout storing the inputs of both, over the longer window (for a push that must
        also be readable with the definitions the stored events were written with)."""
        return WindowLayout(
            view=self.view,
            inputs={**other.inputs, **self.inputs},
            fields=self.fields,
            temporal=self.temporal | other.temporal,
            created=self.created,
            max_window_us=max(self.max_window_us, other.max_window_us),
        )

    def _event_columns(self, timestamp: str, created: str | None) -> list[str]:
        """One event's stored columns: ``t``, ``c`` and each input, cast as offline."""
        t = f"epoch_us({timestamp})"
        c = f"COALESCE(epoch_us({created}), {MIN_BIGINT})" if created else "0"
        cols = [f"{t} AS t", f"{c} AS c"]
        for sql, name in self.inputs.items():
            cols.append(
                f"epoch_us({sql}) AS {name}" if name in self.temporal else f"{sql} AS {name}"
            )
        return cols

    def _event_lists(self, prefix: str = "") -> list[str]:
        """The stored lists of a group of events (columns of :meth:`_event_columns`, read
        with ``prefix``), sorted by ``(t, c)``, and the newest event time."""
        t, c = f"{prefix}t", f"{prefix}c"
        order = f"ORDER BY {t}, {c}"
        lists = [f"max({t}) AS {TS_FIELD}", f"list({t} {order}) AS t"]
        if self.created:
            lists.append(f"list({c} {order}) AS c")
        lists += [f"list({prefix}{name} {order}) AS {name}" for name in self.inputs.values()]
        return lists

    def events_sql(
        self,
        scan: str,
        timestamp: str,
        created: str | None,
        where: str,
        *,
        drop_late: bool = False,
    ) -> str:
        """One row per entity: its events matching ``where`` as sorted lists, newest time;
        with ``drop_late``, without events older than the entity's newest one minus the longest
        window (no request at or after the newest event can see them)."""
        keys = ", ".join(ident(k) for k in self.view.join_keys)
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in self.view.join_keys)
        t = f"epoch_us({timestamp})"
        qualify = (
            f"QUALIFY {t} > max({t}) OVER (PARTITION BY {keys}) - {self.max_window_us}"
            if drop_late
            else ""
        )
        return (
            f"SELECT {keys}, {', '.join(self._event_lists())} FROM ("
            f"SELECT {keys}, {', '.join(self._event_columns(timestamp, created))} FROM {scan} "
            f"WHERE {timestamp} IS NOT NULL AND {not_null} AND ({where}) {qualify}) GROUP BY ALL"
        )

    def spine_events_sql(
        self, scan: str, timestamp: str, created: str | None, spine_table: str
    ) -> str:
        """One row per row of ``spine_table`` (columns ``__fs_row``, the join keys and
        ``__fs_ts``, a naive UTC TIMESTAMP) whose entity has events in ``(__fs_ts - longest
        window, __fs_ts]``: ``__fs_row``, the keys and those events as :meth:`events_sql`
        lists them, i.e. what :func:`publish_events` writes for the entity with ``end`` at
        the row's time. Rows without such events are left out."""
        keys = self.view.join_keys
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in keys)
        on = " AND ".join(f"s.{ident(k)} = e.{ident(k)}" for k in keys)
        now = f"epoch_us(s.{SPINE_TS})"
        return (
            f"SELECT s.{SPINE_ROW}, {', '.join(f's.{ident(k)}' for k in keys)}, "
            f"{', '.join(self._event_lists('e.'))} "
            f"FROM {ident(spine_table)} s JOIN ("
            f"SELECT {', '.join(ident(k) for k in keys)}, "
            f"{', '.join(self._event_columns(timestamp, created))} FROM {scan} "
            f"WHERE {timestamp} IS NOT NULL AND {not_null}) e "
            f"ON {on} AND e.t <= {now} AND e.t > {now} - {self.max_window_us} "
            f"GROUP BY ALL ORDER BY s.{SPINE_ROW}"
        )

    def encode(self, grouped: pl.DataFrame, digest: str) -> pl.DataFrame:
        """``(key, value)`` rows from :meth:`events_sql` output: entity key and JSON bytes,
        tagged with the ``digest`` of the definitions they were written with."""
        fields = [TS_FIELD, "t", *(["c"] if self.created else []), *self.inputs.values()]
        return grouped.select(
            key_expr(self.view.join_keys).alias("key"),
            pl.struct(pl.col(TS_FIELD), pl.lit(digest).alias(DIGEST_FIELD), *fields[1:])
            .struct.json_encode()
            .cast(pl.Binary)
            .alias("value"),
        )


def events_definitions(
    view: FeatureView, fingerprints: dict[str, str], definitions: dict[str, dict[str, Any]]
) -> PublishedDefinitions:
    """What a view's stored events are written with: each aggregation's fingerprint and
    definition (``view:name`` -> the applied registry's), the stored inputs and the longest
    window."""
    layout = WindowLayout.of(view)
    refs = {a.name: f"{view.name}:{a.name}" for a in view.aggregations}
    return PublishedDefinitions(
        view=events_store_name(view.name),
        fingerprints={name: fingerprints[ref] for name, ref in refs.items()},
        definitions={name: definitions[ref] for name, ref in refs.items()},
        inputs={field: sql for sql, field in layout.inputs.items()},
        max_window_us=layout.max_window_us,
    )


def aggregation_input(agg: Aggregation) -> tuple[str | None, bool]:
    """The stored field an aggregation reads (None for Count), and whether it holds epoch
    microseconds of temporal values."""
    sql = input_sql(agg)
    return (field_name(sql) if sql is not None else None), _temporal(agg)


def _temporal(agg: Aggregation) -> bool:
    return agg.kind in ("min", "max", "last") and dtype_kind(agg.dtype) in ("date", "datetime")


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
        return orjson.loads(raw)
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


def publish_events(
    online: OnlineStore,
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    root: Path,
    end: dt.datetime,
    *,
    definitions: PublishedDefinitions,
    min_row_ratio: float,
    force: bool = False,
) -> MaterializationResult:
    """Replace the view's online events by each entity's events in ``(end - longest window,
    end]`` read from its source, unless the entity count collapses (then refuse, or warn when
    ``force``). Always a full snapshot: the horizon moves with ``end``. The events are tagged
    with the digest of ``definitions`` (recorded first), and the view's events state (end,
    entities, fingerprints, digest) is written with them in one transaction."""
    started = time.perf_counter()
    layout = WindowLayout.of(view)
    src = view.source
    schema = read_schema(con, src, root)
    check_view(view, schema)
    timestamp = timestamp_sql(src.timestamp_field, schema[src.timestamp_field])
    created = src.created_timestamp_field
    end_us = epoch_us(end)
    sql = layout.events_sql(
        scan_sql(src, root),
        timestamp,
        timestamp_sql(created, schema[created]) if created else None,
        f"epoch_us({timestamp}) <= {end_us} "
        f"AND epoch_us({timestamp}) > {end_us - layout.max_window_us}",
    )
    with reading([src], root):
        grouped = con.sql(sql).pl()
    encoded = layout.encode(grouped, definitions.digest).sort("key")
    name = events_store_name(view.name)
    previous = online.count(name)
    ratio_ok = not previous or encoded.height >= min_row_ratio * previous
    check = GuardCheck(
        check="row_count",
        passed=ratio_ok,
        detail=f"{encoded.height} entities with events vs {previous} published before "
        f"(minimum ratio {min_row_ratio})",
    )
    report = GuardReport(
        view=view.name, rows=encoded.height, previous_rows=previous, checks=[check]
    )
    if not ratio_ok and not force:
        raise MaterializationGuardError(report)
    state = EventsState(
        end=end,
        published_at=dt.datetime.now(dt.UTC),
        entities=encoded.height,
        fingerprints={f"{view.name}:{n}": fp for n, fp in definitions.fingerprints.items()},
        digest=definitions.digest,
    )
    write_definitions(online, definitions)
    online.publish(
        name,
        encoded["key"].to_list(),
        encoded["value"].to_list(),
        replace=True,
        meta={events_state_key(view.name): state.model_dump_json().encode()},
    )
    return MaterializationResult(
        view=view.name,
        start=None,
        end=end,
        rows=encoded.height,
        seconds=time.perf_counter() - started,
        published=True,
        forced=not ratio_ok,
        guard=report,
    )
