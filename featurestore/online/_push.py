"""Push: new events of a source land in its files (as one appended Parquet part, see
:mod:`featurestore.sources._appends`) and in the online state of the aggregation views that read
it, so windowed values move as events arrive, without re-materializing.

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

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from typing import Any, Literal

import duckdb
import polars as pl

from featurestore._registry import Registry, RegistryState
from featurestore._repo import RepoContents
from featurestore.definitions import BatchSource, FeatureView, PushSource
from featurestore.definitions._base import did_you_mean
from featurestore.definitions._dtypes import dtype_kind, parse_dtype
from featurestore.errors import (
    FeatureReferenceError,
    OnlineRequestError,
    OnlineStoreError,
    SchemaMismatchError,
)
from featurestore.online._codec import events_store_name
from featurestore.online._event_layout import WindowLayout, events_definitions
from featurestore.online._event_state import FRAGMENT_SEPARATOR, compact
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import (
    DefinitionsCache,
    PublishedDefinitions,
    rebuild_aggregation,
)
from featurestore.sources._appends import RowsLike, append_part, part_path, pushed_frame
from featurestore.sources._sql import timestamp_sql

__all__ = [
    "COMPACT_AFTER_BYTES",
    "PushMode",
    "PushResult",
    "online_aggregation_views",
    "push_events",
    "push_rows",
    "views_reading",
]

log = logging.getLogger(__name__)

COMPACT_AFTER_BYTES = 4096  # appended bytes an entity may carry before a push folds them

PushMode = Literal["online_and_offline", "online", "offline"]
_MODES = ("online_and_offline", "online", "offline")


@dataclass
class PushResult:
    """What one push did: events received; whether they were appended to the source's files
    (not with ``to="online"``) and as which part file (known in process, not over HTTP); per
    online view with aggregations, entities updated, late events dropped and entities whose
    appended events were folded into one state; and why the online store was not updated,
    when it could not be (the events are in the source's files: the next materialization
    brings them online). ``FeatureStore.push`` and ``Client.push`` both return one."""

    source: str
    events: int
    offline: bool = False
    offline_file: str | None = None
    entities: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)
    compacted: dict[str, int] = field(default_factory=dict)
    online_error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The result as the server answers it: every field but the part file's name, which
        the server keeps to itself (read back with :meth:`from_json`)."""
        out = asdict(self)
        del out["offline_file"]
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PushResult:
        """A result from the server's answer (its other entries, e.g. the request id, left)."""
        names = [f.name for f in fields(cls) if f.name != "offline_file"]
        return cls(**{name: data[name] for name in names})


def _files(source: BatchSource) -> BatchSource:
    """The source whose rows a source reads (a PushSource's batch source)."""
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


def push_events(
    repo: RepoContents,
    registry: Registry,
    con: duckdb.DuckDBPyConnection,
    open_online: Callable[[], OnlineStore],
    source: str,
    rows: RowsLike,
    to: PushMode,
) -> PushResult:
    """Append new events of ``source`` to its files (``to`` "offline" or "online_and_offline")
    and to the online state of the aggregation views that read it ("online" or
    "online_and_offline"). Rows are checked against every view of the source first: a bad
    batch writes nothing. Once the part is written the push is durable; if the online store
    (opened by ``open_online`` only when the push reaches it) then fails, the result says so in
    ``online_error`` and the next materialization brings the events online."""
    if not isinstance(to, str) or to not in _MODES:
        raise OnlineRequestError(
            f"push to={to!r} is not a push mode; use 'online_and_offline' (the default), "
            "'online' or 'offline'"
        )
    views = views_reading(repo.views, source)
    online_views = online_aggregation_views(views) if to != "offline" else []
    if to == "online" and not online_views:
        raise FeatureReferenceError(
            f"source {source!r} feeds no online view with aggregations, so a push to the "
            "online store would change nothing; push with to='online_and_offline' to "
            "append the events to the source's files"
        )
    refs = [f"{v.name}:{a.name}" for v in online_views for a in v.aggregations]
    fingerprints = registry.applied_fingerprints(repo, refs)
    target = part_path(views[0].source, repo.root) if to != "online" else None
    applied = registry.require()
    frame = pushed_frame(rows, views, source, _key_kinds(views, applied))
    result = PushResult(source=source, events=frame.height)
    if target is not None and frame.height:
        written = append_part(con, views[0].source, repo.root, frame, target, views)
        result.offline, result.offline_file = True, str(written)
    if online_views:
        definitions = {ref: applied.features[ref].definition for ref in refs}
        published = {v.name: events_definitions(v, fingerprints, definitions) for v in online_views}
        _push_online(open_online, online_views, frame, result, con, published)
    log.info(
        "pushed source=%s events=%d offline=%s late=%s",
        source,
        result.events,
        result.offline,
        result.late,
    )
    return result


def _key_kinds(views: Sequence[FeatureView], applied: RegistryState) -> dict[str, str]:
    """Each join key's kind (integer or text) as recorded when its view was applied."""
    return {
        key: dtype_kind(parse_dtype(dtype))
        for v in views
        if v.name in applied.views
        for key, dtype in applied.views[v.name].join_keys.items()
    }


def _push_online(
    open_online: Callable[[], OnlineStore],
    views: Sequence[FeatureView],
    frame: pl.DataFrame,
    result: PushResult,
    con: duckdb.DuckDBPyConnection,
    definitions: Mapping[str, PublishedDefinitions],
) -> None:
    """:func:`push_rows`; when the events already reached the source's files, an online store
    failure is reported in ``result`` instead of raised."""
    try:
        push_rows(open_online(), views, frame, result, con, definitions)
    except OnlineStoreError as exc:
        if not result.offline:
            raise
        result.online_error = (
            f"{exc}; the events are in the source's files, and the next "
            "materialization brings them online"
        )
        log.warning("push reached the source but not the online store: %s", exc)
