"""Push, online side: new events of a source go straight into the online state of the
aggregation views that read it, so windowed values move as events arrive, without
re-materializing. (The same events also land in the source's files:
:mod:`featurestore.sources._appends`; the facade does both.)

Each view's new events are grouped per entity and appended to the entities' stored events in
one atomic append (readers see all of a push or none of it), without reading them first: a
push costs a small write per entity however many events the entity already holds.
Out-of-order events take their place by event time when read. An event older than the newest
event of its entity in the same push minus the view's longest window can never fall in a window
again: it is dropped and counted as ``late``. Events that older pushes or the materialized state
put out of every window are never counted by a request, and are dropped when the entity's
appended events pass ``COMPACT_AFTER_BYTES`` and a push folds them into one state.
Materialization replaces the appended events with a fresh snapshot of the source, pushed
events included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Literal

import duckdb
import polars as pl

from featurestore.definitions import FeatureView, FileSource, PushSource
from featurestore.definitions._base import did_you_mean
from featurestore.errors import FeatureReferenceError, SchemaMismatchError
from featurestore.online._event_state import (
    FRAGMENT_SEPARATOR,
    WindowLayout,
    compact,
    events_store_name,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import (
    DefinitionsCache,
    PublishedDefinitions,
    rebuild_aggregation,
)
from featurestore.sources._sql import timestamp_sql

__all__ = [
    "COMPACT_AFTER_BYTES",
    "PushMode",
    "PushResult",
    "online_aggregation_views",
    "push_rows",
    "views_reading",
]

COMPACT_AFTER_BYTES = 4096  # appended bytes an entity may carry before a push folds them

PushMode = Literal["online_and_offline", "online", "offline"]


@dataclass
class PushResult:
    """What one push did: events received; the part file written to the source's files
    (None with ``to="online"``); per online view with aggregations, entities updated, late
    events dropped and entities whose appended events were folded into one state; and why the
    online store was not updated, when it could not be (the events are in the source's files:
    the next materialization brings them online)."""

    source: str
    events: int
    offline_file: str | None = None
    entities: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    compacted: dict[str, int] = field(default_factory=dict)
    online_error: str | None = None


def _files(source: FileSource) -> FileSource:
    """The file source whose files a source reads (a PushSource's batch source)."""
    return source.batch_source if isinstance(source, PushSource) else source


def views_reading(views: Mapping[str, FeatureView], source: str) -> list[FeatureView]:
    """The views that read the files of the source called ``source`` (named as a view's
    source, or as the batch source of a view's PushSource: a push to either lands in the same
    files); a clear error when none does."""
    if not isinstance(source, str):
        raise FeatureReferenceError(
            f"source must be a source's name, found {type(source).__name__}"
        )
    by_name = {v.source.name: v.source for v in views.values()}
    by_name.update({_files(s).name: _files(s) for s in list(by_name.values())})
    if source not in by_name:
        hint = did_you_mean(source, sorted(by_name))
        raise FeatureReferenceError(
            f"no feature view reads a source called {source!r}.{hint} "
            f"Sources of views: {', '.join(sorted(by_name)) or 'none'}"
        )
    files = _files(by_name[source]).name
    return [v for v in views.values() if _files(v.source).name == files]


def online_aggregation_views(views: Sequence[FeatureView]) -> list[FeatureView]:
    """The views of ``views`` whose online state a push moves: online views with
    aggregations (plain features follow at the next materialization)."""
    return [v for v in views if v.aggregations and v.online]


def _layout(
    view: FeatureView,
    applied: PublishedDefinitions,
    stored: PublishedDefinitions | None,
    schema: Mapping[str, pl.DataType],
) -> tuple[WindowLayout, str]:
    """How to write pushed events of ``view`` and the digest to tag them with.

    When the stored events were written by other definitions than the applied ones (an apply
    not yet followed by a materialization), the pushed events also hold the stored ones'
    inputs (those the pushed columns can give) and carry their digest: they join the stored
    events, readable with either definitions."""
    layout = WindowLayout.of(view)
    if stored is None or stored.digest == applied.digest:
        return layout, applied.digest
    old_aggs = [rebuild_aggregation(n, d) for n, d in stored.definitions.items()]
    readable = [
        a
        for a in old_aggs
        if a.column is None or (a.column in schema and a.accepts(schema[a.column]))
    ]
    if readable:
        old_view = view.model_copy(update={"aggregations": readable})
        layout = layout.union(WindowLayout.of(old_view))
    return layout, stored.digest


def _compact_all(values: list[bytes | None], layout: WindowLayout) -> list[bytes]:
    return [compact(v, layout) for v in values]


def push_rows(
    online: OnlineStore,
    views: Sequence[FeatureView],
    frame: pl.DataFrame,
    result: PushResult,
    duck: duckdb.DuckDBPyConnection,
    definitions: Mapping[str, PublishedDefinitions],
) -> PushResult:
    """Append the events in ``frame`` (checked by
    :func:`featurestore.sources._appends.pushed_frame`) to each view's online state, grouped per
    entity on a cursor of ``duck`` (a cursor costs well under a millisecond; a new DuckDB
    connection costs tens), and record what was done in ``result``. ``definitions`` holds each
    view's applied events definitions."""
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
                view, definitions[view.name], cache.current(view.name), frame.schema
            )
            src = view.source
            schema = dict(frame.schema)
            created = src.created_timestamp_field
            sql = layout.events_sql(
                "__fs_push",
                timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
                timestamp_sql(created, schema[created]) if created else None,
                "TRUE",
                drop_late=True,
            )
            try:
                grouped = con.sql(sql).pl()
            except duckdb.Error as exc:
                first = str(exc).strip().splitlines()[0]
                raise SchemaMismatchError(
                    f"pushed rows of view {view.name!r} cannot be read as its aggregations "
                    f"read them: {first}; nothing more was written online"
                ) from exc
            # in key order, the store's index is written at neighbouring places
            encoded = layout.encode(grouped, digest).sort("key")
            keys = encoded["key"].to_list()
            fragments = [FRAGMENT_SEPARATOR + v for v in encoded["value"].to_list()]
            sizes = online.append(name, keys, fragments)
            result.entities[view.name] = len(keys)
            result.late[view.name] = frame.height - int(grouped["t"].list.len().sum())
            long = [k for k, size in zip(keys, sizes, strict=True) if size > COMPACT_AFTER_BYTES]
            if long:
                online.update(name, long, partial(_compact_all, layout=layout))
            result.compacted[view.name] = len(long)
    finally:
        con.close()
    return result
