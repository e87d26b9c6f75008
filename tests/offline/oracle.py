"""A brute-force oracle for point-in-time training sets: plain Python loops over row dicts.

It implements the contract of DESIGN.md section 3 directly and shares no code with the engine:
for a spine row with keys ``k`` and time ``t``, a view contributes its latest source row for
``k`` with ``t - ttl <= event_time <= t`` (ties on event_time go to the latest created time, a
null created time losing); no row gives the default (DEFAULTED) or null (NOT_FOUND), a row
older than the ttl gives the default or null (STALE), a value breaking a rule gives the
default or null (INVALID). Naive timestamps are UTC, aware ones are converted to UTC.

A windowed aggregation reads every event of ``k`` with ``t - window < event_time < t`` (the ttl
plays no part): counts and sums are always PRESENT (0 without events), the other kinds are
NOT_FOUND when they have no value. Null values are skipped by every kind but Count. Last takes
the event with the greatest (event time, created time, value), a null created time losing.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "AmbiguousRowError",
    "OracleAggregation",
    "OracleFeature",
    "OracleOnDemand",
    "OracleView",
    "Outcome",
    "aggregate",
    "candidate_rows",
    "expected_training_set",
    "to_utc",
    "window_rows",
]

Row = dict[str, Any]


class AmbiguousRowError(AssertionError):
    """Tied winning rows disagree on a feature value, so no single answer exists."""


@dataclass(frozen=True)
class OracleFeature:
    """A feature's rules; ``compute`` maps a source row (or on-demand inputs) to a raw value."""

    name: str
    kind: str  # int, float, string or bool: the declared dtype, as a Python kind
    compute: Callable[[Row], Any] | None = None  # None: the source column of the same name
    ge: Any = None
    le: Any = None
    allowed: tuple[Any, ...] | None = None
    nullable: bool = True
    default: Any = None

    def raw(self, row: Row) -> Any:
        return row.get(self.name) if self.compute is None else self.compute(row)


@dataclass(frozen=True)
class OracleAggregation:
    """A windowed aggregation: ``kind`` over ``column`` in ``(t - window, t)``, output ``out``
    (int, float or string: values are cast to it before aggregating)."""

    name: str
    kind: str  # sum, count, mean, min, max, last, stddev or count_distinct
    window: dt.timedelta
    column: str | None = None
    out: str = "float"


@dataclass(frozen=True)
class OracleView:
    """A batch view: join keys, timestamp columns, ttl, features and aggregations."""

    name: str
    keys: tuple[str, ...]
    timestamp: str
    features: tuple[OracleFeature, ...] = ()
    created: str | None = None
    ttl: dt.timedelta | None = None
    aggregations: tuple[OracleAggregation, ...] = ()

    def feature(self, name: str) -> OracleFeature:
        return next(f for f in self.features if f.name == name)


@dataclass(frozen=True)
class OracleOnDemand:
    """An on-demand view: request columns and whole views in, ``compute`` per row out."""

    name: str
    request_columns: tuple[str, ...]
    views: tuple[str, ...]
    features: tuple[OracleFeature, ...]
    compute: Callable[[Row], Row] = field(default=lambda row: {})

    def feature(self, name: str) -> OracleFeature:
        return next(f for f in self.features if f.name == name)


@dataclass(frozen=True)
class Outcome:
    """One feature's final value and status for one spine row."""

    value: Any
    status: str


def to_utc(value: dt.datetime | dt.date) -> dt.datetime:
    """A naive UTC datetime: naive values are UTC already, aware ones are converted."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value
    return value.astimezone(dt.UTC).replace(tzinfo=None)


def _cast(value: Any, kind: str) -> Any:
    if value is None:
        return None
    if kind == "float":
        return float(value)
    if kind == "int":
        return int(value)
    if kind == "bool":
        return bool(value)
    if kind == "string":
        return str(value)
    raise ValueError(f"oracle knows no kind {kind!r}")


def _breaks_rules(feature: OracleFeature, value: Any) -> bool:
    if feature.ge is not None and value < feature.ge:
        return True
    if feature.le is not None and value > feature.le:
        return True
    return feature.allowed is not None and value not in feature.allowed


def outcome(feature: OracleFeature, match: str, raw: Any) -> Outcome:
    """Value and status of ``feature`` given how its row was found and its raw value."""
    default = feature.default
    if match == "none":
        return Outcome(default, "DEFAULTED" if default is not None else "NOT_FOUND")
    if match == "stale":
        return Outcome(default, "STALE")
    value = _cast(raw, feature.kind)
    if value is None:
        if default is not None:
            return Outcome(default, "DEFAULTED")
        return Outcome(None, "PRESENT" if feature.nullable else "INVALID")
    if _breaks_rules(feature, value):
        return Outcome(default, "INVALID")
    return Outcome(value, "PRESENT")


def _created_rank(row: Row, created: str | None) -> tuple[int, dt.datetime]:
    value = row.get(created) if created is not None else None
    return (0, dt.datetime.min) if value is None else (1, to_utc(value))


def candidate_rows(
    view: OracleView, rows: Sequence[Row], spine_row: Row, timestamp_column: str
) -> tuple[str, list[Row]]:
    """How the view matches the spine row ("found", "stale" or "none") and the tied winners."""
    t = to_utc(spine_row[timestamp_column])
    keys = [spine_row.get(k) for k in view.keys]
    if any(k is None for k in keys):
        return "none", []
    mine = []
    for row in rows:
        if row.get(view.timestamp) is None:
            continue
        if all(row.get(k) == v for k, v in zip(view.keys, keys, strict=True)):
            mine.append(row)
    in_window = []
    older = []
    for row in mine:
        event_time = to_utc(row[view.timestamp])
        if event_time > t:
            continue
        if view.ttl is None or t - view.ttl <= event_time:
            in_window.append(row)
        else:
            older.append(row)
    if not in_window:
        return ("stale" if older else "none"), []
    best = None
    for row in in_window:
        rank = (to_utc(row[view.timestamp]), _created_rank(row, view.created))
        if best is None or rank > best:
            best = rank
    winners = [
        row
        for row in in_window
        if (to_utc(row[view.timestamp]), _created_rank(row, view.created)) == best
    ]
    return "found", winners


def window_rows(
    view: OracleView,
    rows: Sequence[Row],
    spine_row: Row,
    timestamp_column: str,
    window: dt.timedelta,
) -> list[Row]:
    """The spine row's events with ``t - window < event_time < t`` (none for a null key)."""
    t = to_utc(spine_row[timestamp_column])
    keys = [spine_row.get(k) for k in view.keys]
    if any(k is None for k in keys):
        return []
    return [
        row
        for row in rows
        if row.get(view.timestamp) is not None
        and all(row.get(k) == v for k, v in zip(view.keys, keys, strict=True))
        and t - window < to_utc(row[view.timestamp]) < t
    ]


def aggregate(agg: OracleAggregation, view: OracleView, events: Sequence[Row]) -> Outcome:
    """The aggregation over ``events`` (already limited to the window), with its status."""
    if agg.kind == "count":
        return Outcome(len(events), "PRESENT")
    assert agg.column is not None
    pairs = [(row, row[agg.column]) for row in events if row.get(agg.column) is not None]
    if agg.kind == "count_distinct":
        return Outcome(len({v for _, v in pairs}), "PRESENT")
    values = [_cast(v, agg.out) for _, v in pairs]
    if agg.kind == "sum":
        total = math.fsum(values) if agg.out == "float" else sum(values)
        return Outcome(total if values else _cast(0, agg.out), "PRESENT")
    result: Any = None
    if values and agg.kind == "mean":
        result = math.fsum(values) / len(values)
    elif values and agg.kind == "min":
        result = min(values)
    elif values and agg.kind == "max":
        result = max(values)
    elif len(values) > 1 and agg.kind == "stddev":
        result = statistics.stdev(values)
    elif values and agg.kind == "last":
        ranked = [
            ((to_utc(row[view.timestamp]), _created_rank(row, view.created), v), v)
            for (row, _), v in zip(pairs, values, strict=True)
        ]
        result = max(ranked)[1]
    return Outcome(result, "NOT_FOUND" if result is None else "PRESENT")


def _view_outcomes(
    view: OracleView, rows: Sequence[Row], spine_row: Row, timestamp_column: str
) -> dict[str, Outcome]:
    aggregations = {
        a.name: aggregate(a, view, window_rows(view, rows, spine_row, timestamp_column, a.window))
        for a in view.aggregations
    }
    match, winners = candidate_rows(view, rows, spine_row, timestamp_column)
    if not winners:
        return {f.name: outcome(f, match, None) for f in view.features} | aggregations
    out: dict[str, Outcome] = {}
    for f in view.features:
        options = [outcome(f, match, f.raw(row)) for row in winners]
        out[f.name] = options[0] if all(o == options[0] for o in options) else _ambiguous(winners)
    return out | aggregations


def _ambiguous(winners: list[Row]) -> Outcome:
    """Tied winning rows disagree: reading this outcome raises, leaving it unread is fine."""
    return Outcome(AmbiguousRowError(f"rows tied in keys, event and created time: {winners}"), "")


def _read(result: Outcome) -> Outcome:
    if isinstance(result.value, AmbiguousRowError):
        raise result.value
    return result


def expected_training_set(
    spine: Sequence[Row],
    refs: Sequence[str],
    views: Sequence[OracleView],
    sources: dict[str, Sequence[Row]],
    on_demand: Sequence[OracleOnDemand] = (),
    timestamp_column: str = "event_timestamp",
    full_feature_names: bool = False,
    request_kinds: dict[str, str] | None = None,
) -> tuple[list[Row], dict[str, Counter[str]]]:
    """The expected output rows (spine columns, then features) and status counts per ref.

    ``sources`` maps a view name to its source rows; ``request_kinds`` gives the declared kind
    of each request column (spine values are cast to it before an on-demand view sees them).
    """
    by_name_view = {v.name: v for v in views}
    by_name_odfv = {o.name: o for o in on_demand}
    kinds = request_kinds or {}
    needed: dict[str, None] = {}
    for ref in refs:
        view_name = ref.split(":")[0]
        odfv = by_name_odfv.get(view_name)
        needed.update(dict.fromkeys(odfv.views if odfv else [view_name]))
    out_rows: list[Row] = []
    counts: dict[str, Counter[str]] = {ref: Counter() for ref in refs}
    for spine_row in spine:
        batch = {
            name: _view_outcomes(by_name_view[name], sources[name], spine_row, timestamp_column)
            for name in needed
        }
        out = dict(spine_row)
        for ref in refs:
            view_name, feature_name = ref.split(":")
            if view_name in by_name_view:
                result = _read(batch[view_name][feature_name])
            else:
                odfv = by_name_odfv[view_name]
                inputs: Row = {c: _cast(spine_row[c], kinds[c]) for c in odfv.request_columns}
                for v in odfv.views:
                    inputs.update({n: _read(o).value for n, o in batch[v].items()})
                feature = odfv.feature(feature_name)
                result = outcome(feature, "found", odfv.compute(inputs)[feature_name])
            column = f"{view_name}__{feature_name}" if full_feature_names else feature_name
            out[column] = result.value
            counts[ref][result.status] += 1
        out_rows.append(out)
    return out_rows, counts
