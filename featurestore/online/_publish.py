"""Publishing one view's plain features online: guard the batch, then write each entity's latest
values and the view's new state in one transaction, whole or in parts. (An aggregation view's
recent events are published by :mod:`featurestore.online._publish_events`.)"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

import polars as pl
from pydantic import BaseModel

from featurestore._config import MaterializationConfig
from featurestore.definitions import FeatureView
from featurestore.errors import MaterializationGuardError
from featurestore.online._codec import key_expr, value_expr
from featurestore.online._guard import (
    BatchCounts,
    GuardReport,
    batch_stats,
    guard_batch,
)
from featurestore.online._protocol import OnlineStore, view_state_key
from featurestore.online._published import PublishedDefinitions, write_definitions
from featurestore.online._state import BatchStats, ViewState
from featurestore.sources._sql import EVENT_TS

__all__ = [
    "MaterializationResult",
    "encoded_values",
    "next_state",
    "publish_batch",
    "publish_in_parts",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class MaterializationResult(BaseModel):
    """The outcome of materializing one view; ``rebuilt`` says why a run asked to publish only
    what changed published a full snapshot instead (the view's definitions changed since its
    values were published)."""

    view: str
    start: dt.datetime | None
    end: dt.datetime
    rows: int
    seconds: float
    published: bool
    forced: bool = False
    guard: GuardReport
    rebuilt: str | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


def publish_batch(
    store: OnlineStore,
    view: FeatureView,
    frame: pl.DataFrame,
    *,
    start: dt.datetime | None,
    end: dt.datetime,
    previous: ViewState | None,
    config: MaterializationConfig,
    definitions: PublishedDefinitions,
    force: bool = False,
    rebuilt: str | None = None,
) -> MaterializationResult:
    """Guard, then publish ``frame`` (keys, event time, values, statuses) with the view's new
    state in the same transaction; ``previous`` is the state the store held.

    ``start=None`` publishes a full snapshot that replaces the view; otherwise rows are upserted.
    Values are tagged with the digest of ``definitions``, recorded in the store first.
    """
    started = time.perf_counter()
    full = start is None
    stats = batch_stats(frame, view, full)
    fingerprints = {f"{view.name}:{n}": fp for n, fp in definitions.fingerprints.items()}
    report = guard_batch(view, stats, previous, config, fingerprints)
    if not report.passed and not force:
        raise MaterializationGuardError(report)
    if not report.passed:
        log.warning("guard overridden view=%s failures=%d", view.name, len(report.failures))
    encoded = encoded_values(frame, view, definitions.digest)
    state = next_state(stats, previous, end, fingerprints)
    write_definitions(store, definitions)
    store.publish(
        view.name,
        encoded["key"].to_list(),
        encoded["value"].cast(pl.Binary).to_list(),
        replace=full,
        meta={view_state_key(view.name): state.model_dump_json().encode()},
    )
    seconds = time.perf_counter() - started
    log.info(
        "materialized view=%s rows=%d seconds=%.3f full=%s", view.name, frame.height, seconds, full
    )
    return MaterializationResult(
        view=view.name,
        start=start,
        end=end,
        rows=frame.height,
        seconds=seconds,
        published=True,
        forced=force and not report.passed,
        guard=report,
        rebuilt=rebuilt,
    )


def publish_in_parts(
    store: OnlineStore,
    view: FeatureView,
    frames: Callable[[], Iterator[pl.DataFrame]],
    *,
    end: dt.datetime,
    previous: ViewState | None,
    config: MaterializationConfig,
    definitions: PublishedDefinitions,
    force: bool = False,
    rebuilt: str | None = None,
) -> MaterializationResult:
    """:func:`publish_batch` of a full snapshot read as parts (``frames()`` yields them, each
    entity in one), holding one part at a time: each is counted and written as it comes, the
    guard runs on the summed counts after the last one, and the store commits all of it with
    the new state, or nothing when the guard refuses."""
    started = time.perf_counter()
    fingerprints = {f"{view.name}:{n}": fp for n, fp in definitions.fingerprints.items()}
    counted: list[BatchCounts] = []
    outcome: list[GuardReport] = []

    def parts() -> Iterator[tuple[list[str], list[bytes]]]:
        counts = BatchCounts()  # a store may restart its write from the first part
        counted[:] = [counts]

        def encoded() -> Iterator[pl.DataFrame]:
            for frame in frames():
                counts.add(frame, view)
                yield encoded_values(frame, view, definitions.digest)

        # the next part is read and encoded while the store writes this one; only the encoded
        # rows stay, and as Python objects a slice at a time
        for part in _one_ahead(encoded()):
            for piece in part.iter_slices(_SLICE_ROWS):
                yield piece["key"].to_list(), piece["value"].cast(pl.Binary).to_list()

    def meta() -> dict[str, bytes]:
        stats = counted[0].stats(view, full_snapshot=True)
        report = guard_batch(view, stats, previous, config, fingerprints)
        outcome[:] = [report]
        if not report.passed and not force:
            raise MaterializationGuardError(report)
        state = next_state(stats, previous, end, fingerprints)
        return {view_state_key(view.name): state.model_dump_json().encode()}

    write_definitions(store, definitions)
    store.publish_parts(view.name, parts, meta=meta)
    report, rows = outcome[0], counted[0].rows
    seconds = time.perf_counter() - started
    log.info("materialized view=%s rows=%d seconds=%.3f in parts", view.name, rows, seconds)
    return MaterializationResult(
        view=view.name,
        start=None,
        end=end,
        rows=rows,
        seconds=seconds,
        published=True,
        forced=force and not report.passed,
        guard=report,
        rebuilt=rebuilt,
    )


_SLICE_ROWS = 100_000  # encoded rows turned into Python bytes at once by publish_in_parts
_DONE = object()


def _one_ahead(items: Iterator[T]) -> Iterator[T]:
    """``items``, each produced in a worker thread while the caller uses the one before it
    (DuckDB and Polars release the GIL while they work); the worker's errors are raised here."""
    with ThreadPoolExecutor(1, thread_name_prefix="featurestore-part") as pool:
        pending = pool.submit(next, items, _DONE)
        while True:
            item = pending.result()
            if item is _DONE:
                return
            pending = pool.submit(next, items, _DONE)
            yield cast(T, item)


def encoded_values(frame: pl.DataFrame, view: FeatureView, digest: str) -> pl.DataFrame:
    """``(key, value)`` rows of a batch, in key order: a store's index then grows at its end
    instead of at random places."""
    statuses = {f: f"{f}__status" for f in view.feature_names}
    return frame.select(
        key_expr(view.join_keys).alias("key"),
        value_expr(EVENT_TS, statuses, digest).alias("value"),
    ).sort("key", maintain_order=True)


def next_state(
    stats: BatchStats, previous: ViewState | None, end: dt.datetime, fingerprints: dict[str, str]
) -> ViewState:
    """The view's state once the batch is published: an empty batch keeps the last batch's
    rates (it says nothing about them), a full snapshot becomes the row count to keep."""
    last_full = previous.last_full_batch if previous else None
    return ViewState(
        watermark=end,
        published_at=dt.datetime.now(dt.UTC),
        last_batch=previous.last_batch if previous and not stats.rows else stats,
        last_full_batch=stats if stats.full_snapshot else last_full,
        fingerprints=fingerprints,
    )
