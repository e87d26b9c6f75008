"""Publishing an aggregation view's recent events: each entity's events in ``(end - longest
window, end]`` (see :mod:`featurestore.online._event_state`), replacing the stored ones.

One path for every engine and store. The offline engine groups the events per entity and runs a
function of this module on each batch of them: the DuckDB engine in this process
(``OfflineEngine.map_recent_events``), the Spark engine in its executors
(``SparkEngine.map_recent_events``), so on a cluster the source is read where it lives and the
events never gather on the driver. The function depends on the store:

- a store other processes can write (Redis, :mod:`featurestore.online._staged`): it encodes its
  batch and writes it into a staging hash, and returns how many entities it wrote. The driver
  sums the counts, runs the entity-count guard and swaps the staging hash in with the view's
  events state in one transaction; a refused batch, or a job that fails part-way, drops the
  staging hash instead.
- an embedded store (LMDB, SQLite: files local to the driver): it returns its batch encoded; the
  driver gathers the batches, runs the guard and publishes them with the events state in one
  transaction.

Either way readers see the previous events, and the state that describes them, until the new
ones are all in.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import polars as pl

from featurestore.definitions import FeatureView
from featurestore.errors import MaterializationGuardError
from featurestore.online._codec import events_store_name
from featurestore.online._event_layout import WindowLayout
from featurestore.online._guard import GuardCheck, GuardReport
from featurestore.online._protocol import OnlineStore, events_state_key
from featurestore.online._publish import MaterializationResult
from featurestore.online._published import PublishedDefinitions, write_definitions
from featurestore.online._staged import StagingStore, staging_store
from featurestore.online._state import EventsState

__all__ = ["RecentEvents", "publish_events"]

log = logging.getLogger(__name__)

Share = Callable[[pl.DataFrame], bytes]


class RecentEvents(Protocol):
    """An engine that runs a function over each batch of a view's recent events, one row per
    entity as :meth:`WindowLayout.events_sql` groups them, and returns what it returned."""

    def map_recent_events(
        self, layout: WindowLayout, end: dt.datetime, fn: Share
    ) -> list[bytes]: ...


@dataclass(frozen=True)
class _EncodeShare:
    """Encode a batch of grouped events; the ``(key, value)`` rows go back as Arrow IPC."""

    layout: WindowLayout
    digest: str

    def __call__(self, grouped: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        self.layout.encode(grouped, self.digest).write_ipc(buffer)
        return buffer.getvalue()


@dataclass(frozen=True)
class _StageShare:
    """Encode a batch of grouped events and write it into the staging hash; returns how many
    entities it wrote. Pickled to the engine's workers."""

    url: str
    staging: str
    layout: WindowLayout
    digest: str

    def __call__(self, grouped: pl.DataFrame) -> bytes:
        from featurestore.online._redis import stage_values

        if grouped.height:
            encoded = self.layout.encode(grouped, self.digest)
            stage_values(
                self.url, self.staging, encoded["key"].to_list(), encoded["value"].to_list()
            )
        return str(grouped.height).encode()


@dataclass
class _Gathered:
    """Events returned encoded to this process, published with their state in one call."""

    store: OnlineStore
    name: str
    encoded: pl.DataFrame = field(default_factory=pl.DataFrame)

    def share(self, layout: WindowLayout, digest: str) -> Share:
        return _EncodeShare(layout, digest)

    def entities(self, shares: list[bytes]) -> int:
        frames = [pl.read_ipc(io.BytesIO(s)) for s in shares]
        self.encoded = pl.concat(frames).sort("key") if frames else pl.DataFrame()
        return self.encoded.height

    def publish(self, meta: Mapping[str, bytes]) -> None:
        keys = self.encoded["key"].to_list() if self.encoded.height else []
        values = self.encoded["value"].to_list() if self.encoded.height else []
        self.store.publish(self.name, keys, values, replace=True, meta=meta)

    def discard(self) -> None:
        self.encoded = pl.DataFrame()


@dataclass(frozen=True)
class _Staged:
    """Events the workers wrote into a staging hash, swapped in with their state."""

    store: StagingStore
    name: str
    staging: str

    def share(self, layout: WindowLayout, digest: str) -> Share:
        return _StageShare(self.store.url, self.staging, layout, digest)

    def entities(self, shares: list[bytes]) -> int:
        return sum(int(s) for s in shares)

    def publish(self, meta: Mapping[str, bytes]) -> None:
        self.store.swap_staging(self.name, self.staging, meta)

    def discard(self) -> None:
        self.store.drop_staging(self.staging)


def _target(online: OnlineStore, name: str) -> _Gathered | _Staged:
    """Where the workers' events go: a staging hash when other processes can write the
    store, else back to this process."""
    workers = staging_store(online)
    if workers is None:
        return _Gathered(online, name)
    return _Staged(workers, name, workers.new_staging_key(name))


def publish_events(
    online: OnlineStore,
    engine: RecentEvents,
    view: FeatureView,
    end: dt.datetime,
    *,
    definitions: PublishedDefinitions,
    min_row_ratio: float,
    force: bool = False,
) -> MaterializationResult:
    """Replace the view's online events by each entity's events in ``(end - longest window,
    end]``, computed by ``engine``, unless the entity count collapses (then refuse, or warn
    when ``force``). Always a full snapshot: the horizon moves with ``end``. The events are
    tagged with the digest of ``definitions`` (recorded first), and the view's events state
    (end, entities, fingerprints, digest) is written with them in one transaction."""
    started = time.perf_counter()
    layout = WindowLayout.of(view)
    name = events_store_name(view.name)
    write_definitions(online, definitions)
    target = _target(online, name)
    published = False
    try:
        shares = engine.map_recent_events(layout, end, target.share(layout, definitions.digest))
        entities = target.entities(shares)
        report = _entities_guard(view, entities, online.count(name), min_row_ratio)
        if not report.passed and not force:
            raise MaterializationGuardError(report)
        state = EventsState(
            end=end,
            published_at=dt.datetime.now(dt.UTC),
            entities=entities,
            fingerprints={f"{view.name}:{n}": fp for n, fp in definitions.fingerprints.items()},
            digest=definitions.digest,
        )
        target.publish({events_state_key(view.name): state.model_dump_json().encode()})
        published = True
    finally:
        if not published:
            target.discard()
    seconds = time.perf_counter() - started
    log.info("published events view=%s entities=%d seconds=%.3f", view.name, entities, seconds)
    return MaterializationResult(
        view=view.name,
        start=None,
        end=end,
        rows=entities,
        seconds=seconds,
        published=True,
        forced=not report.passed,
        guard=report,
    )


def _entities_guard(
    view: FeatureView, entities: int, previous: int, min_row_ratio: float
) -> GuardReport:
    """The events' guard: the entities with events must not fall below ``min_row_ratio`` of
    those published before."""
    passed = not previous or entities >= min_row_ratio * previous
    check = GuardCheck(
        check="row_count",
        passed=passed,
        detail=f"{entities} entities with events vs {previous} published before "
        f"(minimum ratio {min_row_ratio})",
    )
    return GuardReport(view=view.name, rows=entities, previous_rows=previous, checks=[check])
