"""A spine read from the sources themselves, for a training set asked for by time range
instead of by spine: one row per entity per source event in ``[start, end]``, or, with
``latest``, one row per entity at ``end``."""

from __future__ import annotations

import datetime as dt

import polars as pl
from pydantic import BaseModel, ConfigDict

from featurestore._selection import RetrievalPlan
from featurestore._times import as_naive_utc, as_utc
from featurestore.definitions import FeatureView
from featurestore.errors import SpineError
from featurestore.offline._engine import OfflineEngine
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import ident, timestamp_sql

__all__ = ["EventRange", "event_range", "event_spine"]


class EventRange(BaseModel):
    """Which source events a spine-less training set is built for (kept in its metadata)."""

    model_config = ConfigDict(frozen=True)

    start: dt.datetime | None
    end: dt.datetime | None
    latest: bool = False


def _time(value: object, name: str) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        value = dt.datetime.combine(value, dt.time())
    if not isinstance(value, dt.datetime):
        raise SpineError(f"{name} must be a datetime, found {type(value).__name__} {value!r}")
    return as_utc(value)


def event_range(spine: object, start: object, end: object, latest: object) -> EventRange | None:
    """The range to build a spine from, or None when a spine is given; raises SpineError when
    both or neither are given, or the range is not one."""
    ranged = start is not None or end is not None or latest
    if spine is not None:
        if ranged:
            raise SpineError(
                "pass either a spine or start=/end=/latest= (which build the spine from the "
                "sources' events), not both"
            )
        return None
    if not ranged:
        raise SpineError(
            "pass a spine (the entity keys and times to join features onto), or start= and "
            "end= to use every source event in that range, or latest=True for each entity's "
            "latest values"
        )
    if not isinstance(latest, bool):
        raise SpineError(f"latest must be True or False, found {latest!r}")
    first, last = _time(start, "start"), _time(end, "end")
    if latest and last is None:
        last = dt.datetime.now(dt.UTC)
    if first is not None and last is not None and first > last:
        raise SpineError(f"start {first.isoformat()} is after end {last.isoformat()}")
    return EventRange(start=first, end=last, latest=latest)


def _event_sources(
    engine: OfflineEngine, plan: RetrievalPlan
) -> list[tuple[FeatureView, dict[str, pl.DataType]]]:
    """One view per distinct source whose rows hold every join key the plan needs."""
    if plan.request_columns:
        users = sorted(o.name for o in plan.on_demand if o.request_columns)
        raise SpineError(
            f"on-demand view(s) {users} need request column(s) {sorted(plan.request_columns)}, "
            "which no source holds; pass a spine with them"
        )
    if not plan.batch_views:
        raise SpineError("the requested features read no source; pass a spine")
    found: dict[str, tuple[FeatureView, dict[str, pl.DataType]]] = {}
    for view in plan.batch_views.values():
        schema = engine.checked_schema(view)
        if all(k in schema for k in plan.join_keys):
            found.setdefault(view.source.name, (view, schema))
    if not found:
        raise SpineError(
            f"the requested features need join keys {plan.join_keys} together, but no "
            "requested view's source holds them all; pass a spine with those columns"
        )
    return list(found.values())


def event_spine(
    engine: OfflineEngine, plan: RetrievalPlan, span: EventRange, timestamp_column: str
) -> pl.DataFrame:
    """The join keys and ``timestamp_column`` (aware UTC) of every distinct source event in
    ``span`` (an event seen by two sources is one row), ordered by time then keys; with
    ``span.latest``, each entity seen in ``span`` once, at ``span.end``. Events come from the
    plan's sources that hold all its join keys."""
    keys = ", ".join(ident(k) for k in plan.join_keys)
    params: dict[str, dt.datetime] = {}
    if span.start is not None:
        params["start"] = as_naive_utc(span.start)
    if span.end is not None:
        params["end"] = as_naive_utc(span.end)
    selects = []
    sources = _event_sources(engine, plan)
    for view, schema in sources:
        ts = timestamp_sql(view.source.timestamp_field, schema[view.source.timestamp_field])
        where = [f"{ident(k)} IS NOT NULL" for k in plan.join_keys] + [f"{ts} IS NOT NULL"]
        where += [f"{ts} >= $start"] if span.start is not None else []
        where += [f"{ts} <= $end"] if span.end is not None else []
        selects.append(
            f"SELECT {keys}, {ts} AS __fs_ts FROM {scan_sql(view.source, engine.repo.root)} "
            f"WHERE {' AND '.join(where)}"
        )
    events = " UNION ALL ".join(selects)
    out = ident(timestamp_column)
    sql = (
        f"SELECT DISTINCT {keys}, CAST($end AS TIMESTAMP) AS {out} FROM ({events}) ORDER BY {keys}"
        if span.latest
        else f"SELECT DISTINCT {keys}, __fs_ts AS {out} FROM ({events}) ORDER BY {out}, {keys}"
    )
    with reading([v.source for v, _ in sources], engine.repo.root):
        frame: pl.DataFrame = engine.con.sql(sql, params=params).pl()
    return frame.with_columns(
        pl.col(timestamp_column).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    )
