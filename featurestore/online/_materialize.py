"""Materialization: the latest row per entity as of ``end`` -> guard -> atomic publish -> state.

The rows come from the offline engine's point-in-time join (spine time = ``end``), so the
online value of an entity is, by construction, what a training set at ``end`` would hold.
Before publishing, a guard compares the batch with the declarations and with the last
published batch of the view, and refuses a batch that looks broken unless forced.

Each view's state (watermark, publish time, the stats the guard compares against, the
fingerprints its values were computed with) lives in the online store itself, under the
reserved view ``__fs_meta``, and is written in the same transaction as the batch: two runs
materializing different views never overwrite each other's state, and a run killed at any point
leaves the data and its state in agreement (the old batch with the old state, or the new with
the new).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

import polars as pl
from pydantic import BaseModel, Field

from featurestore._config import MaterializationConfig
from featurestore.definitions import FeatureView
from featurestore.errors import MaterializationGuardError
from featurestore.online._codec import key_expr, value_expr
from featurestore.online._protocol import META_VIEW, OnlineStore, events_state_key, view_state_key
from featurestore.online._published import PublishedDefinitions, write_definitions

__all__ = [
    "EventsState",
    "GuardCheck",
    "GuardReport",
    "MaterializationResult",
    "MaterializationState",
    "guard_batch",
    "outdated_reason",
    "publish_batch",
]

log = logging.getLogger(__name__)

EVENT_TS = "__fs_event_ts"


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


class GuardCheck(BaseModel):
    """One guard check and its outcome."""

    check: str
    feature: str | None = None
    passed: bool
    detail: str


class GuardReport(BaseModel):
    """Every check the guard ran on one view's batch."""

    view: str
    rows: int
    previous_rows: int | None
    checks: list[GuardCheck]

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failures(self) -> list[GuardCheck]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        lines = [f"view {self.view!r}: {self.rows} rows (last full snapshot: {self.previous_rows})"]
        lines += [
            f"  FAILED {c.check}" + (f" [{c.feature}]" if c.feature else "") + f": {c.detail}"
            for c in self.failures
        ]
        return "\n".join(lines)


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


def batch_stats(frame: pl.DataFrame, view: FeatureView, full_snapshot: bool) -> BatchStats:
    """Null rates (over rows within the ttl) and invalid rates per feature, in one pass."""
    n = frame.height
    if n == 0:
        return BatchStats(rows=0, full_snapshot=full_snapshot, null_rates={}, invalid_rates={})
    newest = frame[EVENT_TS].max()
    names = view.feature_names
    # stale rows are null by design, invalid ones are counted apart: neither counts as a null
    fresh = [~pl.col(f"{f}__status").is_in(["STALE", "INVALID"]) for f in names]
    row = frame.select(
        *(
            pl.col(f).is_null().and_(ok).sum().alias(f"n:{f}")
            for f, ok in zip(names, fresh, strict=True)
        ),
        *(ok.sum().alias(f"m:{f}") for f, ok in zip(names, fresh, strict=True)),
        *((pl.col(f"{f}__status") == "INVALID").sum().alias(f"i:{f}") for f in names),
    ).row(0, named=True)
    return BatchStats(
        rows=n,
        full_snapshot=full_snapshot,
        null_rates={f: row[f"n:{f}"] / row[f"m:{f}"] for f in names if row[f"m:{f}"]},
        invalid_rates={f: row[f"i:{f}"] / n for f in names},
        newest_event_time=newest.replace(tzinfo=dt.UTC) if newest else None,  # type: ignore[union-attr]
    )


def guard_batch(
    view: FeatureView,
    stats: BatchStats,
    previous: ViewState | None,
    config: MaterializationConfig,
    fingerprints: dict[str, str] | None = None,
) -> GuardReport:
    """Check a batch against the declarations and the view's previously published batches.

    A full snapshot's row count is compared with the last full snapshot (incremental batches
    hold only changed entities); null rates with the last batch that had rows, except for
    features whose definition changed since (``fingerprints``: the batch's, by reference):
    another definition's null rate says nothing about this one's.
    """
    checks: list[GuardCheck] = []
    for f, rate in stats.invalid_rates.items():
        checks.append(
            GuardCheck(
                check="declared rules",
                feature=f,
                passed=rate <= config.max_invalid_rate,
                detail=f"{rate:.2%} of values break the declared dtype, bounds or allowed values "
                f"(limit {config.max_invalid_rate:.2%})",
            )
        )
    last_full = previous.last_full_batch if previous else None
    if last_full is not None and stats.full_snapshot:
        floor = last_full.rows * config.min_row_ratio
        checks.append(
            GuardCheck(
                check="row count",
                passed=stats.rows >= floor,
                detail=f"{stats.rows} rows vs {last_full.rows} in the last full snapshot "
                f"(at least {config.min_row_ratio:.0%} required)",
            )
        )
    if previous is not None and stats.rows:
        for f, rate in stats.null_rates.items():
            before = previous.last_batch.null_rates.get(f)
            ref = f"{view.name}:{f}"
            if before is None or (
                fingerprints is not None and previous.fingerprints.get(ref) != fingerprints.get(ref)
            ):
                continue
            checks.append(
                GuardCheck(
                    check="null rate",
                    feature=f,
                    passed=rate - before <= config.max_null_rate_increase,
                    detail=f"null rate {rate:.2%} vs {before:.2%} last time "
                    f"(increase limit {config.max_null_rate_increase:.0%})",
                )
            )
    return GuardReport(
        view=view.name,
        rows=stats.rows,
        previous_rows=last_full.rows if last_full else None,
        checks=checks,
    )


def outdated_reason(
    previous: ViewState | None, view: FeatureView, fingerprints: dict[str, str]
) -> str | None:
    """Why the view's online values must be rebuilt in full rather than upserted: some were
    published with another definition than the applied one (``fingerprints``, by reference),
    or never published. None when an upsert keeps every value computed by the applied ones."""
    if previous is None:
        return None  # nothing published: the caller's window decides
    refs = [f"{view.name}:{f.name}" for f in view.features]
    changed = [r for r in refs if previous.fingerprints.get(r) != fingerprints[r]]
    if not changed:
        return None
    return (
        f"the definitions of {', '.join(changed)} changed since its values were published, "
        "so every entity is recomputed"
    )


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
    # in key order, a store's index grows at its end instead of at random places
    encoded = frame.select(
        key_expr(view.join_keys).alias("key"),
        value_expr(
            EVENT_TS, {f: f"{f}__status" for f in view.feature_names}, definitions.digest
        ).alias("value"),
    ).sort("key", maintain_order=True)
    keep = previous is not None and not stats.rows  # an empty batch says nothing about rates
    state = ViewState(
        watermark=end,
        published_at=dt.datetime.now(dt.UTC),
        last_batch=previous.last_batch if keep and previous else stats,
        last_full_batch=stats if full else (previous.last_full_batch if previous else None),
        fingerprints=fingerprints,
    )
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
