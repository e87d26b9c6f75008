"""Materialization state, kept in the online store itself under the reserved view ``__fs_meta``.

Per view: the end of the last published window, the stats the guard compares the next batch
with and the fingerprints its values were computed with; per aggregation view: the last
publish of its recent events. Each entry is written in the same transaction as the batch it
describes (``OnlineStore.publish(meta=...)``), so two runs materializing different views never
overwrite each other's state, and a run killed at any point leaves data and state in agreement.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pydantic import BaseModel, Field

from featurestore.online._protocol import META_VIEW, OnlineStore, events_state_key, view_state_key

__all__ = ["BatchStats", "EventsState", "MaterializationState", "ViewState"]


class BatchStats(BaseModel):
    """What the guard remembers of a published batch."""

    rows: int
    full_snapshot: bool
    null_rates: dict[str, float]
    invalid_rates: dict[str, float]
    newest_event_time: dt.datetime | None = None


class ViewState(BaseModel):
    """Materialization state of one view."""

    watermark: dt.datetime
    published_at: dt.datetime
    last_batch: BatchStats  # the last batch with rows: the null rates to compare against
    last_full_batch: BatchStats | None = None  # the last full snapshot: the row count to keep
    fingerprints: dict[str, str] = Field(default_factory=dict)

    @property
    def newest_event_time(self) -> dt.datetime | None:
        """The event time of the newest value published online."""
        times = [
            b.newest_event_time
            for b in (self.last_batch, self.last_full_batch)
            if b is not None and b.newest_event_time is not None
        ]
        return max(times) if times else None


class EventsState(BaseModel):
    """The last publish of an aggregation view's recent events; ``digest`` names the
    definitions they were written with (a push writes its events so they can be read with
    them)."""

    end: dt.datetime
    published_at: dt.datetime
    entities: int
    fingerprints: dict[str, str] = Field(default_factory=dict)
    digest: str | None = None


class MaterializationState(BaseModel):
    """Per view: the end of the last published window and the last batch's stats; per
    aggregation view: the last publish of its recent events. Read from the online store."""

    views: dict[str, ViewState] = Field(default_factory=dict)
    events: dict[str, EventsState] = Field(default_factory=dict)

    @classmethod
    def load(cls, store: OnlineStore, views: Sequence[str]) -> MaterializationState:
        """The state of ``views`` as the online store holds it (two reads)."""
        names = list(views)
        state = cls()
        found = store.read(META_VIEW, [view_state_key(v) for v in names])
        for name, raw in zip(names, found, strict=True):
            if raw is not None:
                state.views[name] = ViewState.model_validate_json(raw)
        found = store.read(META_VIEW, [events_state_key(v) for v in names])
        for name, raw in zip(names, found, strict=True):
            if raw is not None:
                state.events[name] = EventsState.model_validate_json(raw)
        return state
