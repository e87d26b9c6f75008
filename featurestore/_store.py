"""FeatureStore: the library's front door. One short method per verb, delegating to the
module that owns the idea; the CLI and the server call only this."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from featurestore._apply_checks import checked_state
from featurestore._registry import (
    FeatureRecord,
    PlanDiff,
    Registry,
    RegistryState,
    build_state,
    diff,
    fingerprints_of,
)
from featurestore._repo import RepoContents, find_repo, load_repo
from featurestore._selection import build_plan
from featurestore.definitions._dtypes import dtype_kind, parse_dtype
from featurestore.errors import (
    FeatureReferenceError,
    OnlineRequestError,
    OnlineStoreError,
    RegistryError,
    SchemaMismatchError,
    SourceError,
)
from featurestore.offline._engine import OfflineEngine, SpineLike, read_spine
from featurestore.offline._training_set import TrainingSet, TrainingSetFeature, TrainingSetMetadata
from featurestore.offline._value_checks import FeatureCheck, check_values
from featurestore.online._backends import open_online_store
from featurestore.online._event_state import events_definitions, publish_events
from featurestore.online._materialize import (
    MaterializationResult,
    MaterializationState,
    outdated_reason,
    publish_batch,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import DefinitionsCache, values_definitions
from featurestore.online._push import (
    PushMode,
    PushResult,
    online_aggregation_views,
    push_rows,
    views_reading,
)
from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._versions import (
    ReloadResult,
    ServedVersion,
    Signature,
    VersionWatcher,
    code_signature,
    files_signature,
)
from featurestore.sources._appends import RowsLike, append_part, part_path, pushed_frame
from featurestore.sources._schema import key_type_problems, read_schema, view_problems

if TYPE_CHECKING:
    from featurestore.monitoring import (
        DriftReport,
        ParityReport,
        ReportInputs,
        RepoStatus,
        Side,
        SkewReport,
    )
    from featurestore.serving._serving_log import ServingLogWriter

__all__ = ["FeatureStore", "SourceReport"]

log = logging.getLogger(__name__)


@dataclass
class SourceReport:
    """The result of checking one view's source against its declarations: its schema, then
    (when the schema fits) its values, feature by feature."""

    view: str
    source: str
    path: str
    problems: list[str]  # every problem, schema and values, in full
    features: list[FeatureCheck] = field(default_factory=list)  # empty: values not checked
    rows: int | None = None  # source rows whose values were checked; None: not checked

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "source": self.source,
            "path": self.path,
            "ok": self.ok,
            "problems": self.problems,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
        }


class FeatureStore:
    """A feature repo's definitions, registry and engines."""

    def __init__(self, repo: str | Path | None = None) -> None:
        root = find_repo(repo)
        self._code_seen = code_signature(root)  # of the code files self.repo is read from
        self.repo: RepoContents = load_repo(root)
        self.registry = Registry(self.repo.data_dir)
        self._offline: OfflineEngine | None = None
        self._online: OnlineStore | None = None
        self._retriever: OnlineRetriever | None = None
        self._watcher: VersionWatcher | None = None
        self._definitions: DefinitionsCache | None = None
        self._serving_lock = threading.Lock()
        self._serving_log: ServingLogWriter | None = None

    @property
    def project(self) -> str:
        return self.repo.config.project

    @property
    def offline(self) -> OfflineEngine:
        if self._offline is None:
            self._offline = OfflineEngine(self.repo)
        return self._offline

    def _code_on_disk(self) -> tuple[RepoContents, Signature]:
        """The repo as its files now define it (read again only if they changed since
        ``self.repo`` was read), and the code signature it was read at."""
        seen = code_signature(self.repo.root)
        if seen == self._code_seen:
            return self.repo, seen
        return load_repo(self.repo.root), seen

    def _previous_state(self) -> RegistryState | None:
        """The applied state; apply treats an unreadable registry as empty and rewrites it."""
        try:
            return self.registry.load()
        except RegistryError as exc:
            log.warning("registry unreadable, treating as empty: %s", exc)
            return None

    def plan(self) -> PlanDiff:
        """What apply would change (the repo's files as they are now against the registry),
        without writing anything."""
        repo, _ = self._code_on_disk()
        return diff(self.registry.load(), checked_state(repo, self.offline))

    def apply(self) -> PlanDiff:
        """Validate the definitions in the repo's files against their sources and record them
        in the registry; this store then works with them (and serves them, if it serves)."""
        repo, seen = self._code_on_disk()
        state = checked_state(repo, self.offline)
        previous = self._previous_state()
        changes = diff(previous, state)
        state.version = (previous.version if previous else 0) + 1
        self.registry.save(state)
        if self._watcher is not None:  # this process serves: the code it applied, at once
            self._watcher.adopt(ServedVersion(repo, state, seen))
        else:
            self._use(repo, seen)
        log.info(
            "applied project=%s added=%d changed=%d removed=%d",
            self.project,
            len(changes.added),
            len(changes.changed),
            len(changes.removed),
        )
        return changes

    def list_features(self) -> list[FeatureRecord]:
        """Applied features with dtype, owner and fingerprint."""
        return list(self.registry.require().features.values())

    def validate(self) -> list[SourceReport]:
        """Read each view's source and check it against the declarations: first its schema
        (columns and dtypes), then, when that fits, its values: per feature, the rows whose
        value would be INVALID in a training set or online (not castable, NaN or infinite,
        outside ``ge``/``le``, not ``allowed``, null when ``nullable=False``), with examples
        (see :mod:`featurestore.offline._value_checks`).

        Cost: one full scan of each source, reading only its join keys, event time and the
        columns its features read, in batches (memory stays about one batch)."""
        reports = []
        for view in self.repo.views.values():
            report = SourceReport(view.name, view.source.name, view.source.path, [])
            try:
                schema = read_schema(self.offline.con, view.source, self.repo.root)
                report.problems = view_problems(view, schema)
                if not report.problems:
                    values = check_values(self.offline.con, view, self.repo.root, schema)
                    report.rows, report.features = values.rows, values.features
                    report.problems += values.problems
            except SourceError as exc:
                report.problems.append(str(exc))
            reports.append(report)
        return reports

    def applied_fingerprints(self, refs: list[str]) -> dict[str, str]:
        """Fingerprints of ``refs``; fails if the code no longer matches what was applied."""
        return self._report_inputs().applied_fingerprints(refs)

    def _report_inputs(self) -> ReportInputs:
        from featurestore.monitoring import ReportInputs

        return ReportInputs(self.repo, self.registry, self.offline, self.read_serving_log)

    def get_training_set(
        self,
        spine: SpineLike,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        progress: Callable[[str], None] | None = None,
    ) -> TrainingSet:
        """Point-in-time correct features for every spine row, in spine order."""
        plan = build_plan(self.repo, features, feature_service, full_feature_names)
        fingerprints = self.applied_fingerprints([r.ref for r in plan.refs])
        frame = read_spine(spine)
        out, statuses = self.offline.training_frame(frame, plan, timestamp_column, progress)
        ts = frame[timestamp_column]
        metadata = TrainingSetMetadata(
            project=self.project,
            created_at=dt.datetime.now(dt.UTC),
            row_count=out.height,
            timestamp_column=timestamp_column,
            spine_start=ts.min() if frame.height else None,  # type: ignore[arg-type]
            spine_end=ts.max() if frame.height else None,  # type: ignore[arg-type]
            features=[
                TrainingSetFeature(
                    ref=r.ref,
                    column=r.column,
                    dtype=str(out.schema[r.column]),
                    fingerprint=fingerprints[r.ref],
                    statuses=statuses[r.ref],
                )
                for r in plan.refs
            ],
        )
        return TrainingSet(out, metadata)

    @property
    def online(self) -> OnlineStore:
        """The configured online store, opened on first use."""
        if self._online is None:
            self._online = open_online_store(
                self.repo.config.online_store, self.project, self.repo.data_dir
            )
        return self._online

    def materialize(
        self,
        end: dt.datetime,
        start: dt.datetime | None = None,
        views: list[str] | None = None,
        *,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> list[MaterializationResult]:
        """Publish each online view's latest values as of ``end``.

        Without ``start`` a view's online rows are replaced by a full snapshot; with it, only
        entities with rows in ``[start, end]`` are upserted. A view's aggregations always get
        each entity's events in ``(end - longest window, end]``, replacing the previous ones
        (see :mod:`featurestore.online._event_state`).
        """
        results: list[MaterializationResult] = []
        for name in self._online_views(views):
            results += self._materialize_view(name, start, end, force, progress)
        return results

    def materialize_incremental(
        self,
        end: dt.datetime,
        views: list[str] | None = None,
        *,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> list[MaterializationResult]:
        """Like :meth:`materialize`, from each view's last materialized time (full if none)."""
        names = self._online_views(views)
        state = MaterializationState.load(self.online, names)
        results = []
        for name in names:
            previous = state.views.get(name)
            start = previous.watermark if previous else None
            results += self._materialize_view(name, start, end, force, progress)
        return results

    def _online_views(self, views: list[str] | None) -> list[str]:
        names = (
            views if views is not None else [v.name for v in self.repo.views.values() if v.online]
        )
        for name in names:
            if name not in self.repo.views:
                self.repo.any_view(name)  # raises with the known names
                raise FeatureReferenceError(
                    f"{name!r} is an on-demand view; it is computed at request time"
                )
        return names

    def _materialize_view(
        self,
        name: str,
        start: dt.datetime | None,
        end: dt.datetime,
        force: bool,
        progress: Callable[[str], None] | None,
    ) -> list[MaterializationResult]:
        """Plain features: latest rows (guarded); aggregations: each entity's recent events."""
        view = self.repo.views[name]
        fingerprints = self.applied_fingerprints([f"{name}:{f}" for f in view.feature_names])
        recorded = self.registry.require().views.get(name)
        if recorded is not None:
            changed = key_type_problems(view, self.offline.source_schema(view), recorded.join_keys)
            if changed:
                raise SchemaMismatchError("; ".join(changed))
        results = []
        if view.features:
            plain = view.model_copy(update={"aggregations": []})
            previous = MaterializationState.load(self.online, [name]).views.get(name)
            applied = self.registry.require()
            definitions = values_definitions(
                plain, fingerprints, {r: applied.features[r].definition for r in fingerprints}
            )
            rebuilt = None
            if start is not None:
                rebuilt = outdated_reason(previous, plain, fingerprints)
                start = None if rebuilt else start
            if progress:
                progress(f"reading {name}" + (f" in full: {rebuilt}" if rebuilt else ""))
            frame = self.offline.latest_rows(plain, end, start)
            if progress:
                progress(f"publishing {name} ({frame.height:,} rows)")
            results.append(
                publish_batch(
                    self.online,
                    plain,
                    frame,
                    start=start,
                    end=end,
                    previous=previous,
                    config=self.repo.config.materialization,
                    definitions=definitions,
                    force=force,
                    rebuilt=rebuilt,
                )
            )
        if view.aggregations:
            if progress:
                progress(f"publishing the recent events of {name}")
            applied = self.registry.require()
            result = publish_events(
                self.online,
                self.offline.con,
                view,
                self.repo.root,
                end,
                definitions=events_definitions(
                    view,
                    fingerprints,
                    {ref: applied.features[ref].definition for ref in fingerprints},
                ),
                min_row_ratio=self.repo.config.materialization.min_row_ratio,
                force=force,
            )
            results.append(result)
        return results

    def push(
        self, source: str, rows: RowsLike, *, to: PushMode = "online_and_offline"
    ) -> PushResult:
        """Append new events of ``source``: to its files, as one atomically written Parquet
        part that training sets, materializations and skew replays read (``to`` "offline"
        or "online_and_offline", see :mod:`featurestore.sources._appends`), and to the online
        state of the aggregation views that read it, so their windows move at once ("online"
        or "online_and_offline", see :mod:`featurestore.online._push`). Rows are checked
        against every view of the source first: a bad batch writes nothing. Once the part is
        written the push is durable; if the online store then fails, the result says so in
        ``online_error`` and the next materialization brings the events online."""
        if not isinstance(to, str) or to not in ("online_and_offline", "online", "offline"):
            raise OnlineRequestError(
                f"push to={to!r} is not a push mode; use 'online_and_offline' (the default), "
                "'online' or 'offline'"
            )
        views = views_reading(self.repo.views, source)
        online_views = online_aggregation_views(views) if to != "offline" else []
        if to == "online" and not online_views:
            raise FeatureReferenceError(
                f"source {source!r} feeds no online view with aggregations, so a push to the "
                "online store would change nothing; push with to='online_and_offline' to "
                "append the events to the source's files"
            )
        refs = [f"{v.name}:{a.name}" for v in online_views for a in v.aggregations]
        fingerprints = self.applied_fingerprints(refs)
        target = part_path(views[0].source, self.repo.root) if to != "online" else None
        applied = self.registry.require()
        key_kinds = {
            key: dtype_kind(parse_dtype(dtype))
            for v in views
            if v.name in applied.views
            for key, dtype in applied.views[v.name].join_keys.items()
        }
        frame = pushed_frame(rows, views, source, key_kinds)
        result = PushResult(source=source, events=frame.height)
        if target is not None and frame.height:
            written = append_part(
                self.offline.con, views[0].source, self.repo.root, frame, target, views
            )
            result.offline_file = str(written)
        if online_views:
            definitions = {ref: applied.features[ref].definition for ref in refs}
            try:
                push_rows(
                    self.online,
                    online_views,
                    frame,
                    result,
                    self.offline.con,
                    {
                        v.name: events_definitions(v, fingerprints, definitions)
                        for v in online_views
                    },
                )
            except OnlineStoreError as exc:
                if result.offline_file is None:
                    raise
                result.online_error = (
                    f"{exc}; the events are in the source's files, and the next "
                    "materialization brings them online"
                )
                log.warning("push reached the source but not the online store: %s", exc)
        log.info(
            "pushed source=%s events=%d offline=%s late=%s",
            source,
            result.events,
            result.offline_file,
            result.late,
        )
        return result

    def newest_values(self) -> dict[str, dt.datetime | None]:
        """Per materialized view, the event time of the newest value published online."""
        state = MaterializationState.load(self.online, list(self.repo.views))
        return {name: view.newest_event_time for name, view in state.views.items()}

    @property
    def retriever(self) -> OnlineRetriever:
        """Online retrieval over the served version of the definitions (built on first use,
        when this store starts following apply: see :mod:`featurestore.serving._versions`)."""
        retriever = self._retriever
        if retriever is None:
            with self._serving_lock:
                if self._retriever is None:
                    registry_seen = files_signature([self.registry.path])
                    served = ServedVersion(self.repo, self.registry.require(), self._code_seen)
                    self._retriever = self._retriever_for(served)
                    watcher = VersionWatcher(
                        self.registry,
                        served,
                        self._switch,
                        self.repo.config.serving.reload_interval_seconds,
                        registry_seen=registry_seen,
                    )
                    if watcher.problem is not None:  # the files may hold the applied code
                        watcher.check(force=True)
                    self._watcher = watcher
                    watcher.start()
                retriever = self._retriever
        return retriever

    def _retriever_for(self, served: ServedVersion) -> OnlineRetriever:
        if self._definitions is None:
            self._definitions = DefinitionsCache(self.online)
        code = build_state(served.repo, {})
        return OnlineRetriever(
            served.repo,
            self.online,
            served.applied,
            fingerprints=partial(fingerprints_of, applied=served.applied, code=code),
            fallback_to_defaults=served.repo.config.online_store.fallback == "defaults",
            definitions=self._definitions,
        )

    def _use(self, repo: RepoContents, code_seen: Signature) -> None:
        """Work with ``repo``'s definitions from now on (training sets, materialization);
        ``code_seen``: the signature of the code files it was read from."""
        self.repo = repo
        self._code_seen = code_seen
        if self._offline is not None:
            self._offline.repo = repo

    def _switch(self, served: ServedVersion) -> None:
        """Serve ``served`` from now on; requests already running finish on their version."""
        self._use(served.repo, served.code_seen)
        self._retriever = self._retriever_for(served)

    def reload(self) -> ReloadResult:
        """Check now for a newly applied registry and serve it when the code on disk matches
        it (a serving store also checks every ``serving.reload_interval_seconds``)."""
        self.retriever  # noqa: B018 - starts following apply
        assert self._watcher is not None
        return self._watcher.check(force=True)

    @property
    def serving_problem(self) -> str | None:
        """Why the served version is not the applied code on disk, or None (see reload)."""
        return self._watcher.problem if self._watcher is not None else None

    @property
    def served_registry(self) -> RegistryState | None:
        """The registry state being served, once online serving started."""
        return self._watcher.served.applied if self._watcher is not None else None

    def get_online_features(
        self,
        features: list[str] | None = None,
        feature_service: str | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Latest values for each entity row, with a status per value and fingerprints.

        Values older than the view's ttl at ``request_time`` (default: now) are withheld
        (STALE); missing ones are null or the declared default; on-demand views run on the
        request through the same code as training sets.
        """
        started = time.perf_counter_ns()
        response = self.retriever.get(
            features,
            feature_service,
            entities,
            request_data,
            full_feature_names=full_feature_names,
            request_time=request_time,
        )
        if self.repo.config.serving_log.enabled:
            self.serving_log.log(
                response,
                request_id=uuid.uuid4().hex,
                latency_us=(time.perf_counter_ns() - started) // 1000,
                request_data=request_data,
                feature_service=feature_service,
            )
        return response

    @property
    def serving_log_dir(self) -> Path:
        return self.repo.serving_log_dir

    @property
    def serving_log(self) -> ServingLogWriter:
        """The background writer of this process's serving log (started on first use)."""
        if self._serving_log is None:
            from featurestore.serving._serving_log import ServingLogWriter

            cfg = self.repo.config.serving_log
            self._serving_log = ServingLogWriter(
                self.serving_log_dir,
                queue_size=cfg.queue_size,
                batch_size=cfg.batch_size,
                flush_interval_seconds=cfg.flush_interval_seconds,
            )
            atexit.register(self._serving_log.close)
        return self._serving_log

    def read_serving_log(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pl.DataFrame:
        """Served records with request time in ``[start, end)``, one row per entity row."""
        from featurestore.serving._serving_log import read_serving_log

        if self._serving_log is not None:
            self._serving_log.flush()
        return read_serving_log(self.serving_log_dir, start, end)

    def skew_report(
        self,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        features: list[str] | None = None,
        sample: int | None = None,
        *,
        seed: int = 0,
    ) -> SkewReport:
        """Replay the serving log of ``[start, end)`` through the offline engine and compare,
        per feature, what was served with what a training set would have held."""
        from featurestore.monitoring import build_skew_report

        return build_skew_report(self._report_inputs(), start, end, features, sample, seed=seed)

    def check_parity(
        self,
        features: list[str] | None = None,
        sample: int = 1000,
        *,
        seed: int = 0,
        spine: SpineLike | None = None,
        timestamp_column: str = "event_timestamp",
    ) -> ParityReport:
        """Compute each feature of the code on disk (as ``apply`` would record it) through the
        offline path and through the serving code, on ``sample`` rows drawn from the sources
        per group of join keys (or on ``spine``, as given), and report every feature whose
        values or statuses differ, with examples (see :mod:`featurestore.monitoring.parity`)."""
        from featurestore.monitoring import check_parity

        repo, _ = self._code_on_disk()
        engine = self.offline if repo is self.repo else OfflineEngine(repo)
        try:
            return check_parity(
                engine,
                self.read_serving_log,
                features,
                sample,
                seed,
                spine,
                timestamp_column=timestamp_column,
            )
        finally:
            if engine is not self.offline:
                engine.close()

    def drift_report(
        self,
        reference: Side | TrainingSet | str | Path,
        current: Side | TrainingSet | str | Path,
        features: list[str] | None = None,
    ) -> DriftReport:
        """Per-feature drift of ``current`` from ``reference``. Each side is a saved training
        set (object or path), a window of the serving log or of a view's source, as a side
        object or its text form (``log:7d``, ``log:START..END``, ``source:VIEW:START..END``)."""
        from featurestore.monitoring import build_drift_report, to_side

        return build_drift_report(
            self._report_inputs(), to_side(reference), to_side(current), features
        )

    def status(self, now: dt.datetime | None = None) -> RepoStatus:
        """Per view: applied or changed, last materialized, freshness against the ttl and
        online entity counts; plus the online store and the serving log. Problems are listed
        with what to run (see :mod:`featurestore.monitoring._status`)."""
        from featurestore.monitoring import build_status

        return build_status(self._report_inputs(), self.online, now)

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        if self._serving_log is not None:
            self._serving_log.close()
            self._serving_log = None
        if self._offline is not None:
            self._offline.close()
            self._offline = None
        if self._online is not None:
            self._online.close()
            self._online = None
