"""Reading a view's aggregations: each entity's stored events, evaluated over each window at
the request time; events written by other definitions serve the applied aggregation when
they cover it, else the aggregation as their definitions declared it, else STALE."""

from __future__ import annotations

import math
from typing import Any

from featurestore._times import from_epoch_us
from featurestore._value_rules import FeatureStatus
from featurestore.definitions import Aggregation
from featurestore.online._codec import DIGEST_FIELD, TS_FIELD
from featurestore.online._event_state import (
    INCOMPLETE,
    MIXED_FIELD,
    aggregate,
    aggregation_input,
    decode_state,
    events_store_name,
    window_value,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import DefinitionsCache, rebuild_aggregation
from featurestore.serving._retrieval._fetch import entity_keys, fetch
from featurestore.serving._retrieval._plan import ViewRead, Window
from featurestore.serving._retrieval._request import RequestState

__all__ = ["WindowReader"]

_PRESENT = FeatureStatus.PRESENT
_DEFAULTED = FeatureStatus.DEFAULTED
_NOT_FOUND = FeatureStatus.NOT_FOUND
_STALE = FeatureStatus.STALE
_INVALID = FeatureStatus.INVALID


class WindowReader:
    """Fills the values, statuses and event times of views' aggregations from ``store``;
    remembers the aggregations of earlier definitions it rebuilt."""

    def __init__(
        self, store: OnlineStore, definitions: DefinitionsCache, fallback_to_defaults: bool
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.fallback_to_defaults = fallback_to_defaults
        self._old_aggregations: dict[tuple[str, str], Aggregation] = {}

    def read(self, read: ViewRead, state: RequestState) -> None:
        """Evaluate a view's aggregations at the request time over each entity's stored
        events."""
        view, layout, n = read.view, read.layout, state.n
        assert layout is not None
        name = events_store_name(view.name)
        keys = entity_keys(view, state.entities, n)
        found, unavailable = fetch(self.store, name, keys, state, self.fallback_to_defaults)
        values, statuses = state.values, state.statuses
        if unavailable:
            for w in read.windows:
                values[w.ref] = [None] * n
                statuses[w.ref] = [_DEFAULTED] * n
            state.event_times[name] = [None] * n
            return
        states = [decode_state(found.get(k)) if k is not None else None for k in keys]
        state.event_times[name] = [
            None if st is None else from_epoch_us(st[TS_FIELD]) for st in states
        ]
        digest = read.events_digest
        older = [
            i
            for i, st in enumerate(states)
            if st is not None and (st.get(DIGEST_FIELD) != digest or MIXED_FIELD in st)
        ]
        for w in read.windows:
            out_v = [aggregate(w.agg, st, layout, state.now_us) for st in states]
            out_s = [_PRESENT if v is not None else _NOT_FOUND for v in out_v]
            for i in older:
                stored = states[i]
                assert stored is not None  # older lists stored states only
                out_v[i], out_s[i] = self._older_window(w, read, stored, state)
            if w.is_float:
                for i, v in enumerate(out_v):
                    if v is not None and not math.isfinite(v):
                        out_v[i], out_s[i] = None, _INVALID
            values[w.ref] = out_v
            statuses[w.ref] = out_s

    def _older_window(
        self, w: Window, read: ViewRead, stored: dict[str, Any], state: RequestState
    ) -> tuple[Any, FeatureStatus]:
        """The value of an aggregation over events written by other definitions than the
        applied ones (or a mix): the applied aggregation when the stored events cover it (same
        source and keys, its input held by every event in the window, its window within the
        one the events were stored for); else the aggregation as the events' definitions
        declared it, under its own fingerprint; else withheld (STALE)."""
        name = events_store_name(read.view.name)
        definitions = self.definitions.get(name, stored.get(DIGEST_FIELD))
        if definitions is None:
            return None, _STALE
        created = read.layout.created if read.layout else False
        agg = w.agg
        same_source = definitions.source_of_events() == (
            w.definition["source"],
            w.definition["join_keys"],
        )
        if same_source and agg.window_us <= (definitions.max_window_us or 0):
            field, temporal = aggregation_input(agg)
            value = window_value(agg, stored, field, temporal, created, state.now_us)
            if value is not INCOMPLETE:
                return value, _PRESENT if value is not None else _NOT_FOUND
        earlier = definitions.definitions.get(agg.name)
        computed = definitions.fingerprints.get(agg.name)
        if earlier is None or computed is None:
            return None, _STALE
        key = (definitions.digest, agg.name)
        old = self._old_aggregations.get(key)
        if old is None:
            old = self._old_aggregations[key] = rebuild_aggregation(agg.name, earlier)
        field, temporal = aggregation_input(old)
        value = window_value(old, stored, field, temporal, created, state.now_us)
        if value is INCOMPLETE:
            return None, _STALE
        state.computed_with[w.ref] = computed
        return value, _PRESENT if value is not None else _NOT_FOUND
