"""A full snapshot written by the workers of a distributed engine (Spark executors) straight
into a Redis staging hash: each worker computes its share of the latest rows, counts them for
the guard and writes them; the driver sums the counts, runs the guard and, only when it passes,
swaps the staging hash in with the view's new state in one transaction. A failed job, or a
refused batch, drops the staging hash; a killed driver leaves it to expire. Readers see the
previous snapshot until the swap."""

from __future__ import annotations

import datetime as dt
import logging
import pickle
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, cast

import polars as pl

from featurestore._config import MaterializationConfig
from featurestore.definitions import FeatureView
from featurestore.errors import MaterializationGuardError
from featurestore.online._guard import BatchCounts, guard_batch
from featurestore.online._protocol import OnlineStore, view_state_key
from featurestore.online._publish import MaterializationResult, encoded_values, next_state
from featurestore.online._published import PublishedDefinitions, write_definitions
from featurestore.online._state import ViewState

__all__ = ["StagedRows", "StagingStore", "publish_staged", "staging_store"]

log = logging.getLogger(__name__)


class StagedRows(Protocol):
    """An engine that runs a function over the latest rows of a view in its workers."""

    def map_latest_rows(
        self, view: FeatureView, end: dt.datetime, fn: Callable[[pl.DataFrame], bytes]
    ) -> list[bytes]: ...


class StagingStore(OnlineStore, Protocol):
    """An online store whose snapshots other processes can write (Redis)."""

    url: str

    def new_staging_key(self, view: str) -> str: ...
    def swap_staging(self, view: str, staging: str, meta: Mapping[str, bytes]) -> None: ...
    def drop_staging(self, staging: str) -> None: ...


def staging_store(store: OnlineStore) -> StagingStore | None:
    """``store`` when other processes can write its snapshots, else None."""
    if all(hasattr(store, m) for m in ("url", "new_staging_key", "swap_staging", "drop_staging")):
        return cast(StagingStore, store)
    return None


@dataclass(frozen=True)
class _WriteShare:
    """What each worker runs on its share of the latest rows: count them, encode them, write
    them to the staging hash; returns the pickled counts. Pickled to the workers."""

    url: str
    staging: str
    view: FeatureView
    digest: str

    def __call__(self, frame: pl.DataFrame) -> bytes:
        from featurestore.online._redis import stage_values

        counts = BatchCounts()
        counts.add(frame, self.view)
        if frame.height:
            encoded = encoded_values(frame, self.view, self.digest)
            values = encoded["value"].cast(pl.Binary).to_list()
            stage_values(self.url, self.staging, encoded["key"].to_list(), values)
        return pickle.dumps(counts)


def publish_staged(
    store: StagingStore,
    engine: StagedRows,
    view: FeatureView,
    *,
    end: dt.datetime,
    previous: ViewState | None,
    config: MaterializationConfig,
    definitions: PublishedDefinitions,
    force: bool = False,
    rebuilt: str | None = None,
) -> MaterializationResult:
    """A full snapshot of ``view`` as of ``end``, written by ``engine``'s workers into a
    staging hash of ``store`` and swapped in after the guard passed (see the module)."""
    started = time.perf_counter()
    fingerprints = {f"{view.name}:{n}": fp for n, fp in definitions.fingerprints.items()}
    write_definitions(store, definitions)
    staging = store.new_staging_key(view.name)
    swapped = False
    try:
        shares = engine.map_latest_rows(
            view, end, _WriteShare(store.url, staging, view, definitions.digest)
        )
        counts = BatchCounts()
        for share in shares:
            counts.merge(pickle.loads(share))
        stats = counts.stats(view, full_snapshot=True)
        report = guard_batch(view, stats, previous, config, fingerprints)
        if not report.passed and not force:
            raise MaterializationGuardError(report)
        state = next_state(stats, previous, end, fingerprints)
        store.swap_staging(
            view.name, staging, {view_state_key(view.name): state.model_dump_json().encode()}
        )
        swapped = True
    finally:
        if not swapped:
            store.drop_staging(staging)
    seconds = time.perf_counter() - started
    log.info(
        "materialized view=%s rows=%d seconds=%.3f from workers", view.name, counts.rows, seconds
    )
    return MaterializationResult(
        view=view.name,
        start=None,
        end=end,
        rows=counts.rows,
        seconds=seconds,
        published=True,
        forced=force and not report.passed,
        guard=report,
        rebuilt=rebuilt,
    )
