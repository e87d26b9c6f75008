"""The materialization guard: a batch is compared with the declarations and with the view's
last published batches, and a batch that looks broken is refused unless forced."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import cast

import polars as pl
from pydantic import BaseModel

from featurestore._config import MaterializationConfig
from featurestore._times import as_utc
from featurestore.definitions import FeatureView
from featurestore.online._state import BatchStats, ViewState
from featurestore.sources._sql import EVENT_TS

__all__ = ["BatchCounts", "GuardCheck", "GuardReport", "batch_stats", "guard_batch"]


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


@dataclass
class BatchCounts:
    """The counts the guard's rates come from, summed over the parts of a batch read in
    pieces: rows, and per feature nulls and rows within the ttl, and invalid values."""

    rows: int = 0
    nulls: Counter[str] = field(default_factory=Counter)
    fresh: Counter[str] = field(default_factory=Counter)
    invalid: Counter[str] = field(default_factory=Counter)
    newest: dt.datetime | None = None

    def add(self, frame: pl.DataFrame, view: FeatureView) -> None:
        """Count one part (keys, event time, values, statuses) in one pass."""
        if not frame.height:
            return
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
            pl.col(EVENT_TS).max().alias("newest"),
        ).row(0, named=True)
        self.rows += frame.height
        for f in names:
            self.nulls[f] += row[f"n:{f}"]
            self.fresh[f] += row[f"m:{f}"]
            self.invalid[f] += row[f"i:{f}"]
        newest = cast("dt.datetime | None", row["newest"])
        if newest is not None and (self.newest is None or newest > self.newest):
            self.newest = newest

    def merge(self, other: BatchCounts) -> None:
        """Add the counts of ``other`` (a part counted elsewhere, e.g. in a Spark executor)."""
        self.rows += other.rows
        self.nulls.update(other.nulls)
        self.fresh.update(other.fresh)
        self.invalid.update(other.invalid)
        if other.newest is not None and (self.newest is None or other.newest > self.newest):
            self.newest = other.newest

    def stats(self, view: FeatureView, full_snapshot: bool) -> BatchStats:
        """Null rates (over rows within the ttl) and invalid rates per feature."""
        names = view.feature_names if self.rows else []
        return BatchStats(
            rows=self.rows,
            full_snapshot=full_snapshot,
            null_rates={f: self.nulls[f] / self.fresh[f] for f in names if self.fresh[f]},
            invalid_rates={f: self.invalid[f] / self.rows for f in names},
            newest_event_time=as_utc(self.newest) if self.newest else None,
        )


def batch_stats(frame: pl.DataFrame, view: FeatureView, full_snapshot: bool) -> BatchStats:
    """The guard's statistics of a batch held whole (see :class:`BatchCounts`)."""
    counts = BatchCounts()
    counts.add(frame, view)
    return counts.stats(view, full_snapshot)


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
    last_full = previous.last_full_batch if previous else None
    checks = _invalid_checks(stats, config)
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
        checks += _null_rate_checks(view, stats, previous, config, fingerprints)
    return GuardReport(
        view=view.name,
        rows=stats.rows,
        previous_rows=last_full.rows if last_full else None,
        checks=checks,
    )


def _invalid_checks(stats: BatchStats, config: MaterializationConfig) -> list[GuardCheck]:
    """Per feature: the share of values breaking the declared rules, against the limit."""
    return [
        GuardCheck(
            check="declared rules",
            feature=f,
            passed=rate <= config.max_invalid_rate,
            detail=f"{rate:.2%} of values break the declared dtype, bounds or allowed values "
            f"(limit {config.max_invalid_rate:.2%})",
        )
        for f, rate in stats.invalid_rates.items()
    ]


def _null_rate_checks(
    view: FeatureView,
    stats: BatchStats,
    previous: ViewState,
    config: MaterializationConfig,
    fingerprints: dict[str, str] | None,
) -> list[GuardCheck]:
    """Per feature whose definition is unchanged: the null rate's rise since the last batch."""
    checks = []
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
    return checks
