"""Push: new events of a source go straight into the online state of the aggregation views
that read it, so windowed values move as events arrive, without re-materializing.

Rows are checked against what the views need from the source (join keys, event time, created
time when declared, aggregated columns, with castable types, no null key or time) before
anything is written. Each view's new events are then grouped per entity and appended to the
entities' stored events in one atomic append (readers see all of a push or none of it), without
reading them first: a push costs a small write per entity however many events the entity
already holds. Out-of-order events take their place by event time when read. An event older
than the newest event of its entity in the same push minus the view's longest window can never
fall in a window again: it is dropped and counted as ``late``. Events that older pushes or the
materialized state put out of every window are never counted by a request, and are dropped when
the entity's appended events pass ``COMPACT_AFTER_BYTES`` and a push folds them into one state.
Materialization replaces the appended events with a fresh snapshot of the source.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import polars as pl
import pyarrow as pa

from featurestore.definitions import FeatureView, FileSource
from featurestore.definitions.base import did_you_mean
from featurestore.definitions.dtypes import utc_text_datetime
from featurestore.errors import FeatureReferenceError, SchemaMismatchError
from featurestore.offline.sources import view_problems
from featurestore.offline.sql import timestamp_sql
from featurestore.online.base import OnlineStore
from featurestore.online.published import (
    DefinitionsCache,
    PublishedDefinitions,
    rebuild_aggregation,
)
from featurestore.online.windows import (
    FRAGMENT_SEPARATOR,
    WindowLayout,
    compact,
    events_store_name,
)

__all__ = [
    "COMPACT_AFTER_BYTES",
    "PushResult",
    "RowsLike",
    "aggregation_views",
    "push_rows",
    "to_frame",
]

COMPACT_AFTER_BYTES = 4096  # appended bytes an entity may carry before a push folds them

RowsLike = pl.DataFrame | pa.Table | Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]]


@dataclass
class PushResult:
    """What one push did: events received; per view, entities updated, late events dropped and
    entities whose appended events were folded into one state."""

    source: str
    events: int
    entities: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    compacted: dict[str, int] = field(default_factory=dict)


def to_frame(rows: RowsLike) -> pl.DataFrame:
    """A Polars frame of ``rows``: a frame, an Arrow table, columns or a list of records."""
    if isinstance(rows, pl.DataFrame):
        return rows
    if isinstance(rows, pa.Table):
        return pl.from_arrow(rows)  # type: ignore[return-value]
    try:
        if isinstance(rows, Mapping):
            return pl.DataFrame(dict(rows))
        return pl.DataFrame(list(rows), infer_schema_length=None)
    except (TypeError, ValueError, pl.exceptions.PolarsError) as exc:
        raise SchemaMismatchError(
            f"push rows must be a Polars frame, an Arrow table, a mapping of column -> values or "
            f"a list of records with the source's columns: {exc}"
        ) from None


def aggregation_views(views: Mapping[str, FeatureView], source: str) -> list[FeatureView]:
    """Online views with aggregations that read ``source``; a clear error when none do."""
    sources = {v.source.name for v in views.values()}
    if source not in sources:
        hint = did_you_mean(source, sorted(sources))
        raise FeatureReferenceError(
            f"no feature view reads a source called {source!r}.{hint} "
            f"Sources of views: {', '.join(sorted(sources)) or 'none'}"
        )
    found = [v for v in views.values() if v.source.name == source and v.aggregations and v.online]
    if not found:
        raise FeatureReferenceError(
            f"source {source!r} feeds no online view with aggregations, so a push would change "
            "nothing online; push the events to the source's files and materialize instead"
        )
    return found


def _check(view: FeatureView, frame: pl.DataFrame) -> None:
    problems = view_problems(view, dict(frame.schema))
    src: FileSource = view.source
    for column in [*view.join_keys, src.timestamp_field]:
        if column in frame.columns and (nulls := frame[column].null_count()):
            problems.append(f"column {column!r} is null in {nulls} pushed row(s)")
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise SchemaMismatchError(
            f"pushed rows do not fit source {src.name!r}; nothing was written:\n{lines}"
        )


def _parse_times(frame: pl.DataFrame, views: Sequence[FeatureView]) -> pl.DataFrame:
    """Event and created times given as ISO 8601 text (e.g. over HTTP) as UTC datetimes."""
    fields = {
        f for v in views for f in (v.source.timestamp_field, v.source.created_timestamp_field)
    }
    text = [c for c in frame.columns if c in fields and frame.schema[c] == pl.String]
    if not text:
        return frame
    try:
        return frame.with_columns(
            utc_text_datetime(pl.col(c)).dt.replace_time_zone("UTC") for c in text
        )
    except pl.exceptions.PolarsError as exc:
        raise SchemaMismatchError(
            f"pushed time column(s) {text} must hold ISO 8601 UTC times such as "
            f"2025-03-01T12:00:00Z: {str(exc).splitlines()[0]}"
        ) from None


def _typed_nulls(frame: pl.DataFrame, views: Sequence[FeatureView]) -> pl.DataFrame:
    """Columns null throughout the push (typed Null, as JSON gives them) take the type the
    aggregations read them as: nulls fit any type. (A CountDistinct column stays Null: any
    scalar type would do, and its nulls count nothing.)"""
    casts: dict[str, pl.DataType] = {}
    for view in views:
        for agg in view.aggregations:
            column = agg.column
            if column is None or agg.kind == "count_distinct" or column in casts:
                continue
            if frame.schema.get(column) == pl.Null:
                casts[column] = pl.Float64() if agg.kind in ("mean", "stddev") else agg.dtype
    return frame.with_columns(pl.col(c).cast(t) for c, t in casts.items()) if casts else frame


def _layout(
    view: FeatureView,
    applied: PublishedDefinitions,
    stored: PublishedDefinitions | None,
    columns: Sequence[str],
) -> tuple[WindowLayout, str]:
    """How to write pushed events of ``view`` and the digest to tag them with.

    When the stored events were written by other definitions than the applied ones (an apply
    not yet followed by a materialization), the pushed events also hold the stored ones'
    inputs (those the pushed columns can give) and carry their digest: they join the stored
    events, readable with either definitions."""
    layout = WindowLayout.of(view)
    if stored is None or stored.digest == applied.digest:
        return layout, applied.digest
    old_aggs = [rebuild_aggregation(n, d) for n, d in stored.aggregations.items()]
    readable = [a for a in old_aggs if a.column is None or a.column in columns]
    if readable:
        old_view = view.model_copy(update={"aggregations": readable})
        layout = layout.union(WindowLayout.of(old_view))
    return layout, stored.digest


def push_rows(
    online: OnlineStore,
    views: Sequence[FeatureView],
    frame: pl.DataFrame,
    source: str,
    duck: duckdb.DuckDBPyConnection,
    definitions: Mapping[str, PublishedDefinitions],
) -> PushResult:
    """Append the events in ``frame`` to each view's online state (checked first, for all
    views, so a bad batch writes nothing), grouped per entity on a cursor of ``duck`` (a
    cursor costs well under a millisecond; a new DuckDB connection costs tens).
    ``definitions`` holds each view's applied events definitions."""
    frame = _typed_nulls(_parse_times(frame, views), views)
    for view in views:
        _check(view, frame)
    result = PushResult(source=source, events=frame.height)
    if frame.height == 0:
        return result
    con = duck.cursor()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("__fs_push", frame.to_arrow())
        cache = DefinitionsCache(online)
        for view in views:
            name = events_store_name(view.name)
            layout, digest = _layout(
                view, definitions[view.name], cache.current(name), frame.columns
            )
            src = view.source
            schema = dict(frame.schema)
            created = src.created_timestamp_field
            grouped = con.sql(
                layout.events_sql(
                    "__fs_push",
                    timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
                    timestamp_sql(created, schema[created]) if created else None,
                    "TRUE",
                    drop_late=True,
                )
            ).pl()
            # in key order, the store's index is written at neighbouring places
            encoded = layout.encode(grouped, digest).sort("key")
            keys = encoded["key"].to_list()
            fragments = [FRAGMENT_SEPARATOR + v for v in encoded["value"].to_list()]
            sizes = online.append(name, keys, fragments)
            result.entities[view.name] = len(keys)
            result.late[view.name] = frame.height - int(grouped["t"].list.len().sum())
            long = [k for k, size in zip(keys, sizes, strict=True) if size > COMPACT_AFTER_BYTES]
            if long:
                online.update(
                    name, long, lambda values, lay=layout: [compact(v, lay) for v in values]
                )
            result.compacted[view.name] = len(long)
    finally:
        con.close()
    return result
