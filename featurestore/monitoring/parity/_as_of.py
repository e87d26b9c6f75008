"""An online store as of each spine row: for each row, what a materialization at the row's
time would have written for the row's entity, so the serving code can be run on it."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import polars as pl

from featurestore._registry import RegistryState, fingerprints_of
from featurestore.definitions import FeatureView
from featurestore.monitoring.parity._sample import TIME
from featurestore.offline._engine import OfflineEngine
from featurestore.online._codec import key_expr, value_expr
from featurestore.online._event_state import WindowLayout, events_definitions, events_store_name
from featurestore.online._protocol import Parts
from featurestore.online._published import values_definitions
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, timestamp_sql

__all__ = ["AsOfOnlineStore", "as_of_store", "spine_table"]

_SPINE = "__fs_parity_spine"  # the spine's name in DuckDB while the store is built


class AsOfOnlineStore:
    """A read-only in-memory :class:`~featurestore.online._protocol.OnlineStore` holding, for each
    spine row, the value a materialization at the row's time would have written for the row's
    entity, per stored view; reads answer for the row set in ``row``."""

    def __init__(self) -> None:
        self.row = 0
        self._values: dict[str, dict[int, tuple[str, bytes]]] = {}

    def put(
        self, view: str, rows: Sequence[int], keys: Sequence[str], values: Sequence[bytes]
    ) -> None:
        stored = self._values.setdefault(view, {})
        for row, key, value in zip(rows, keys, values, strict=True):
            stored[row] = (key, value)

    def value(self, view: str, row: int) -> tuple[str, bytes] | None:
        """The entity key and value stored for ``row`` under ``view``, if any."""
        return self._values.get(view, {}).get(row)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        stored = self._values.get(view, {}).get(self.row)
        return [stored[1] if stored is not None and stored[0] == k else None for k in keys]

    def publish(
        self,
        view: str,
        keys: Sequence[str],
        values: Sequence[bytes],
        *,
        replace: bool,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        raise NotImplementedError("the parity check's online store is read-only")

    def publish_parts(
        self, view: str, parts: Parts, *, meta: Callable[[], Mapping[str, bytes]]
    ) -> None:
        raise NotImplementedError("the parity check's online store is read-only")

    def append(self, view: str, keys: Sequence[str], fragments: Sequence[bytes]) -> list[int]:
        raise NotImplementedError("the parity check's online store is read-only")

    def update(self, view: str, keys: Sequence[str], change: Any) -> None:
        raise NotImplementedError("the parity check's online store is read-only")

    def count(self, view: str) -> int:
        return len(self._values.get(view, {}))

    def delete_view(self, view: str) -> None:
        self._values.pop(view, None)

    def ping(self) -> None:
        return None

    def close(self) -> None:
        return None


def spine_table(spine: pl.DataFrame, keys: Sequence[str], timestamp_column: str) -> pl.DataFrame:
    """The spine as the engines read it: row number, join keys, naive UTC time."""
    col = pl.col(timestamp_column)
    dtype = spine.schema[timestamp_column]
    if isinstance(dtype, pl.Datetime) and dtype.time_zone:
        col = col.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
    return spine.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(SPINE_ROW),
        *keys,
        col.cast(pl.Datetime("us")).alias(SPINE_TS),
    )


def as_of_store(
    engine: OfflineEngine,
    state: RegistryState,
    spine: pl.DataFrame,
    views: Mapping[str, list[str]],
    timestamp_column: str = TIME,
) -> AsOfOnlineStore:
    """An online store holding, for each row of ``spine`` and each of ``views`` (view name ->
    the features read from it), what a materialization with ``end`` at the row's time would
    have written for the row's entity, tagged with the digests of ``state``'s definitions:
    the view's latest row (if any) when a plain feature is read, the entity's events in
    ``(t - longest window, t]`` (if any) when an aggregation is."""
    repo = engine.repo
    store = AsOfOnlineStore()
    keys = list(dict.fromkeys(k for v in views for k in repo.views[v].join_keys))
    engine.con.register(_SPINE, spine_table(spine, keys, timestamp_column).to_arrow())
    try:
        for name, wanted in views.items():
            view = repo.views[name]
            refs = [f"{name}:{f}" for f in view.feature_names]
            fps = fingerprints_of(refs, state, state)
            definitions = {r: state.features[r].definition for r in refs}
            if any(f.name in wanted for f in view.features):
                digest = values_definitions(view, fps, definitions).digest
                _put_latest_rows(store, engine, view, digest)
            if any(view.aggregation(f) is not None for f in wanted):
                digest = events_definitions(view, fps, definitions).digest
                _put_events(store, engine, view, digest)
    finally:
        engine.con.unregister(_SPINE)
    return store


def _put_latest_rows(
    store: AsOfOnlineStore, engine: OfflineEngine, view: FeatureView, digest: str
) -> None:
    """Per spine row, the view's latest row at the row's time, encoded as publish encodes it."""
    plain = [f.name for f in view.features]
    encoded = (
        engine.rows_as_of(view, _SPINE)
        .with_row_index("__fs_i")
        .filter(pl.col("__fs_event_ts").is_not_null())
        .select(
            "__fs_i",
            key_expr(view.join_keys).alias("key"),
            value_expr("__fs_event_ts", {f: f"{f}__status" for f in plain}, digest)
            .cast(pl.Binary)
            .alias("value"),
        )
    )
    store.put(view.name, *(encoded[c].to_list() for c in ("__fs_i", "key", "value")))


def _put_events(
    store: AsOfOnlineStore, engine: OfflineEngine, view: FeatureView, digest: str
) -> None:
    """Per spine row, the entity's events in the view's longest window before the row's time,
    encoded as a materialization encodes them."""
    layout = WindowLayout.of(view)
    src = view.source
    schema = engine.source_schema(view)
    created = src.created_timestamp_field
    with reading([src], engine.repo.root):
        grouped = engine.con.sql(
            layout.spine_events_sql(
                scan_sql(src, engine.repo.root),
                timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
                timestamp_sql(created, schema[created]) if created else None,
                _SPINE,
            )
        ).pl()
    encoded = layout.encode(grouped, digest)
    store.put(
        events_store_name(view.name),
        grouped[SPINE_ROW].to_list(),
        encoded["key"].to_list(),
        encoded["value"].to_list(),
    )
