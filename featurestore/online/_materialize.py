"""Materialization: the latest row per entity as of ``end`` -> guard -> atomic publish -> state.

The rows come from the offline engine's point-in-time join (spine time = ``end``), so the
online value of an entity is, by construction, what a training set at ``end`` would hold.
Before publishing, a guard (:mod:`featurestore.online._guard`) compares the batch with the
declarations and with the last published batch of the view, and refuses a batch that looks
broken unless forced. A view's aggregations get each entity's events in ``(end - longest
window, end]`` instead, replacing the previous ones, grouped by the same engine
(:mod:`featurestore.online._publish_events`). Each publish writes the view's state in its own
transaction (:mod:`featurestore.online._state`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import polars as pl

from featurestore._registry import Registry, RegistryState
from featurestore._repo import RepoContents
from featurestore.definitions import FeatureView
from featurestore.errors import FeatureReferenceError, SchemaMismatchError
from featurestore.online._event_layout import WindowLayout, events_definitions
from featurestore.online._guard import GuardCheck, GuardReport
from featurestore.online._protocol import OnlineStore
from featurestore.online._publish import (
    MaterializationResult,
    publish_batch,
    publish_in_parts,
)
from featurestore.online._publish_events import Share, publish_events
from featurestore.online._published import PublishedDefinitions, values_definitions
from featurestore.online._staged import StagedRows, publish_staged, staging_store
from featurestore.online._state import MaterializationState, ViewState
from featurestore.sources._schema import key_type_problems

__all__ = [
    "GuardCheck",
    "GuardReport",
    "MaterializationResult",
    "MaterializationState",
    "OfflineRows",
    "materialize_views",
    "online_view_names",
    "outdated_reason",
    "watermarks",
]

Progress = Callable[[str], None]


class OfflineRows(Protocol):
    """What materialization reads through the offline engine (the DuckDB ``OfflineEngine``,
    or the Spark engine, which reads the latest rows and groups the recent events on Spark)."""

    def source_schema(self, view: FeatureView) -> dict[str, pl.DataType]: ...

    def latest_rows(
        self,
        view: FeatureView,
        end: dt.datetime,
        start: dt.datetime | None = None,
        part: tuple[int, int] = (0, 1),
    ) -> pl.DataFrame: ...

    def source_rows(self, view: FeatureView) -> int: ...

    def map_recent_events(
        self, layout: WindowLayout, end: dt.datetime, fn: Share
    ) -> list[bytes]: ...


def online_view_names(repo: RepoContents, views: Sequence[str] | None) -> list[str]:
    """``views``, or every online view of the repo; an unknown or on-demand view is an error."""
    names = list(views) if views is not None else [v.name for v in repo.views.values() if v.online]
    for name in names:
        if name not in repo.views:
            repo.any_view(name)  # raises with the known names
            raise FeatureReferenceError(
                f"{name!r} is an on-demand view; it is computed at request time"
            )
    return names


def watermarks(store: OnlineStore, names: Sequence[str]) -> dict[str, dt.datetime | None]:
    """Per view, the end of its last materialized window (None: never materialized)."""
    state = MaterializationState.load(store, names)
    return {n: (v.watermark if (v := state.views.get(n)) else None) for n in names}


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


def materialize_views(
    online: Callable[[], OnlineStore],
    repo: RepoContents,
    registry: Registry,
    offline: OfflineRows,
    starts: Mapping[str, dt.datetime | None],
    end: dt.datetime,
    force: bool = False,
    progress: Progress | None = None,
) -> list[MaterializationResult]:
    """Publish each view of ``starts`` as of ``end``: its plain features in full (start None)
    or, from its start, only the entities with rows in ``[start, end]``; its aggregations'
    recent events always in full. The applied registry gives the fingerprints the values are
    published under; a view whose code differs from it is refused. ``online()`` opens the
    store, only when there is something to publish."""
    if not starts:
        return []
    run = _Run(online(), repo, offline, end, force, progress or (lambda _message: None))
    results: list[MaterializationResult] = []
    for name, start in starts.items():
        view = repo.views[name]
        fingerprints = registry.applied_fingerprints(
            repo, [f"{name}:{f}" for f in view.feature_names]
        )
        applied = registry.require()
        run.check_key_types(view, applied)
        definitions = {ref: applied.features[ref].definition for ref in fingerprints}
        if view.features:
            results.append(run.publish_values(view, start, fingerprints, definitions))
        if view.aggregations:
            run.step(f"publishing the recent events of {name}")
            events = events_definitions(view, fingerprints, definitions)
            results.append(run.publish_events(view, events))
    return results


@dataclass(frozen=True)
class _Run:
    """One materialization run's parts and settings."""

    store: OnlineStore
    repo: RepoContents
    offline: OfflineRows
    end: dt.datetime
    force: bool
    step: Progress

    def check_key_types(self, view: FeatureView, applied: RegistryState) -> None:
        """Refuse a view whose join keys changed kind since apply: they would be stored under
        other keys than the ones served."""
        recorded = applied.views.get(view.name)
        if recorded is None:
            return
        changed = key_type_problems(view, self.offline.source_schema(view), recorded.join_keys)
        if changed:
            raise SchemaMismatchError("; ".join(changed))

    def publish_values(
        self,
        view: FeatureView,
        start: dt.datetime | None,
        fingerprints: dict[str, str],
        definitions: dict[str, dict[str, Any]],
    ) -> MaterializationResult:
        """The plain features' latest values, in full when ``start`` is None or when some were
        published with other definitions than the applied ones."""
        plain = view.model_copy(update={"aggregations": []})
        previous = MaterializationState.load(self.store, [view.name]).views.get(view.name)
        published_with = values_definitions(plain, fingerprints, definitions)
        rebuilt = outdated_reason(previous, plain, fingerprints) if start is not None else None
        start = None if rebuilt else start
        config = self.repo.config.materialization
        workers = staging_store(self.store)
        if start is None and workers is not None and hasattr(self.offline, "map_latest_rows"):
            self.step(f"computing and writing {view.name} in the engine's workers")
            return publish_staged(
                workers,
                cast(StagedRows, self.offline),
                plain,
                end=self.end,
                previous=previous,
                config=config,
                definitions=published_with,
                force=self.force,
                rebuilt=rebuilt,
            )
        parts = math.ceil(self.offline.source_rows(view) / config.part_rows) if not start else 1
        if parts > 1:
            self.step(f"reading and publishing {view.name} in {parts} parts")
            return publish_in_parts(
                self.store,
                plain,
                lambda: (
                    self.offline.latest_rows(plain, self.end, None, (i, parts))
                    for i in range(parts)
                ),
                end=self.end,
                previous=previous,
                config=config,
                definitions=published_with,
                force=self.force,
                rebuilt=rebuilt,
            )
        self.step(f"reading {view.name}" + (f" in full: {rebuilt}" if rebuilt else ""))
        frame = self.offline.latest_rows(plain, self.end, start)
        self.step(f"publishing {view.name} ({frame.height:,} rows)")
        return publish_batch(
            self.store,
            plain,
            frame,
            start=start,
            end=self.end,
            previous=previous,
            config=self.repo.config.materialization,
            definitions=published_with,
            force=self.force,
            rebuilt=rebuilt,
        )

    def publish_events(
        self, view: FeatureView, definitions: PublishedDefinitions
    ) -> MaterializationResult:
        """The aggregations' recent events, replacing the stored ones."""
        return publish_events(
            self.store,
            self.offline,
            view,
            self.end,
            definitions=definitions,
            min_row_ratio=self.repo.config.materialization.min_row_ratio,
            force=self.force,
        )
