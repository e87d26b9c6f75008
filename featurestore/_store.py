"""FeatureStore: the library's front door. One short method per verb, delegating to the
module that owns the idea; the CLI and the server call only this."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from featurestore._apply_checks import SourceReport, checked_state, source_reports
from featurestore._registry import FeatureRecord, PlanDiff, Registry, RegistryState, diff
from featurestore._repo import RepoContents, find_repo, load_repo
from featurestore._selection import build_plan
from featurestore.offline._engine import OfflineEngine
from featurestore.offline._event_spine import event_range
from featurestore.offline._spine import SpineLike
from featurestore.offline._training_set import TrainingSet, build_training_set
from featurestore.online._backends import open_online_store
from featurestore.online._materialize import (
    MaterializationResult,
    Progress,
    materialize_views,
    online_view_names,
    watermarks,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._push import PushMode, PushResult, push_events
from featurestore.online._state import MaterializationState
from featurestore.online._teardown import teardown_online
from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._served import ServedRetriever
from featurestore.serving._serving_log import ServingLog, ServingLogWriter
from featurestore.serving._serving_path import OnlineRequest, ServingPath
from featurestore.serving._versions import ReloadResult, ServedVersion, Signature, code_signature
from featurestore.sources._appends import RowsLike

if TYPE_CHECKING:
    from featurestore.monitoring import (
        DriftReport,
        MonitorReport,
        MonitorRun,
        ParityReport,
        ReportInputs,
        RepoStatus,
        Side,
        SkewReport,
    )
    from featurestore.offline._spark import SparkEngine

__all__ = ["FeatureStore", "SourceReport"]

log = logging.getLogger(__name__)


class FeatureStore:
    """A feature repo's definitions, registry and engines."""

    def __init__(self, repo: str | Path | None = None, *, spark: Any = None) -> None:
        """Open the repo at ``repo`` (default: the working directory or a parent). ``spark``:
        a ``SparkSession`` to build training sets on, whatever ``offline_store`` says."""
        root = find_repo(repo)
        self._code_seen = code_signature(root)  # of the code files self.repo is read from
        self.repo: RepoContents = load_repo(root)
        self.registry = Registry(self.repo.data_dir)
        self._offline: OfflineEngine | None = None
        self._spark_session = spark
        self._spark: SparkEngine | None = None
        self._online: OnlineStore | None = None
        self._served = ServedRetriever(
            self.registry, lambda: self.online, lambda: (self.repo, self._code_seen), self._use
        )
        self._log = ServingLog(lambda: self.repo)

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

    def plan(self) -> PlanDiff:
        """What apply would change (the repo's files as they are now against the registry),
        without writing anything."""
        repo, _ = self._code_on_disk()
        return diff(self.registry.load(), checked_state(repo, self.offline, self._joiner))

    def apply(self) -> PlanDiff:
        """Validate the definitions in the repo's files against their sources and record them
        in the registry; this store then works with them (and serves them, if it serves)."""
        repo, seen = self._code_on_disk()
        state = checked_state(repo, self.offline, self._joiner)
        changes = self.registry.record(state)
        if self._served.following:  # this process serves: the code it applied, at once
            self._served.adopt(ServedVersion(repo, state, seen))
        else:
            self._use(repo, seen)
        return changes

    def list_features(self) -> list[FeatureRecord]:
        """Applied features with dtype, owner and fingerprint."""
        return list(self.registry.require().features.values())

    def validate(self) -> list[SourceReport]:
        """Check each view's source against the declarations: its schema, then its values,
        per feature, with examples (see :func:`featurestore._apply_checks.source_reports`)."""
        return source_reports(self.repo, self.offline, self._joiner)

    def applied_fingerprints(self, refs: list[str]) -> dict[str, str]:
        """Fingerprints of ``refs``; fails if the code no longer matches what was applied."""
        return self.registry.applied_fingerprints(self.repo, refs)

    def _report_inputs(self) -> ReportInputs:
        from featurestore.monitoring import ReportInputs

        reads = (self.repo, self.registry, self.offline, self.read_serving_log, self._joiner)
        return ReportInputs(*reads)

    def get_training_set(
        self,
        spine: SpineLike | None = None,
        features: list[str] | None = None,
        feature_service: str | None = None,
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        latest: bool = False,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
        progress: Callable[[str], None] | None = None,
    ) -> TrainingSet:
        """Point-in-time correct features for every spine row, in spine order; with no spine,
        for every source event in ``[start, end]`` (``latest``: each entity once, at ``end``)."""
        span = event_range(spine, start, end, latest)
        plan = build_plan(self.repo, features, feature_service, full_feature_names)
        fingerprints = self.applied_fingerprints([r.ref for r in plan.refs])
        return build_training_set(
            self.offline,
            span or spine,
            plan,
            fingerprints,
            timestamp_column,
            progress,
            self._joiner(),
        )

    def _joiner(self) -> SparkEngine | None:
        """The Spark engine when training sets run on Spark; None for DuckDB."""
        if self._spark_session is None and self.repo.config.offline_store.type != "spark":
            return None
        if self._spark is None:
            from featurestore.offline._spark import SparkEngine

            self._spark = SparkEngine(self.repo, self._spark_session)
        self._spark.repo = self.repo
        return self._spark

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
        """Publish each online view's latest values as of ``end``: a full snapshot, or with
        ``start`` only the entities with rows in ``[start, end]``; aggregations get each
        entity's events in ``(end - longest window, end]`` (see
        :func:`featurestore.online._materialize.materialize_views`)."""
        starts = dict.fromkeys(online_view_names(self.repo, views), start)
        return self._materialize(starts, end, force, progress)

    def materialize_incremental(
        self,
        end: dt.datetime,
        views: list[str] | None = None,
        *,
        force: bool = False,
        progress: Callable[[str], None] | None = None,
    ) -> list[MaterializationResult]:
        """Like :meth:`materialize`, from each view's last materialized time (full if none)."""
        names = online_view_names(self.repo, views)
        starts = watermarks(self.online, names) if names else {}
        return self._materialize(starts, end, force, progress)

    def _materialize(
        self, starts: dict[str, Any], end: dt.datetime, force: bool, progress: Progress | None
    ) -> list[MaterializationResult]:
        offline = self._joiner() or self.offline  # the rows are read on Spark when it is set
        run = (self.repo, self.registry, offline, starts, end, force, progress)
        return materialize_views(lambda: self.online, *run)

    def push(
        self, source: str, rows: RowsLike, *, to: PushMode = "online_and_offline"
    ) -> PushResult:
        """Append new events of ``source`` to its files, as one Parquet part that training
        sets, materializations and skew replays read, and to the online state of the
        aggregation views that read it ("online" or "offline" alone with ``to``; see
        :func:`featurestore.online._push.push_events`)."""
        return push_events(
            self.repo, self.registry, self.offline.con, lambda: self.online, source, rows, to
        )

    def teardown(self) -> list[str]:
        """Remove this project's online values, events and publish state (see
        :func:`featurestore.online._teardown.teardown_online`); returns what was dropped."""
        return teardown_online(self.online, self.repo, self.registry.load())

    def newest_values(self) -> dict[str, dt.datetime | None]:
        """Per materialized view, the event time of the newest value published online."""
        state = MaterializationState.load(self.online, list(self.repo.views))
        return {name: view.newest_event_time for name, view in state.views.items()}

    @property
    def retriever(self) -> OnlineRetriever:
        """Online retrieval over the served version of the definitions (built on first use,
        when this store starts following apply: see :mod:`featurestore.serving._versions`)."""
        return self._served.current

    def _use(self, repo: RepoContents, code_seen: Signature) -> None:
        """Work with ``repo``'s definitions from now on (training sets, materialization);
        ``code_seen``: the signature of the code files it was read from."""
        self.repo = repo
        self._code_seen = code_seen
        if self._offline is not None:
            self._offline.repo = repo

    def reload(self) -> ReloadResult:
        """Check now for a newly applied registry and serve it when the code on disk matches
        it (a serving store also checks every ``serving.reload_interval_seconds``)."""
        return self._served.reload()

    @property
    def serving_problem(self) -> str | None:
        """Why the served version is not the applied code on disk, or None (see reload)."""
        return self._served.problem

    @property
    def served_registry(self) -> RegistryState | None:
        """The registry state being served, once online serving started."""
        return self._served.applied

    @cached_property
    def serving_path(self) -> ServingPath:
        """The one retrieval path (``get_online_features`` and the server), logging what it
        serves when ``serving_log.enabled`` (the server logs in any case, and counts)."""
        path = ServingPath(lambda: self._served.current)
        if self.repo.config.serving_log.enabled:
            path.log_to(lambda: self.serving_log)
        return path

    def get_online_features(
        self,
        features: list[str] | None = None,
        feature_service: str | None = None,
        entities: RowsLike | None = None,
        request_data: RowsLike | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Latest values for each entity row, with a status per value and fingerprints.

        Values older than the view's ttl at ``request_time`` (default: now) are withheld
        (STALE); missing ones are null or the declared default; on-demand views run on the
        request through the same code as training sets.
        """
        request = OnlineRequest(
            features, feature_service, entities, request_data, full_feature_names, request_time
        )
        return self.serving_path.get(request)

    @property
    def serving_log_dir(self) -> Path:
        return self.repo.serving_log_dir

    @property
    def serving_log(self) -> ServingLogWriter:
        """The background writer of this process's serving log (started on first use)."""
        return self._log.writer

    def read_serving_log(
        self, start: dt.datetime | None = None, end: dt.datetime | None = None
    ) -> pl.DataFrame:
        """Served records with request time in ``[start, end)``, one row per entity row."""
        return self._log.read(start, end)

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
        """Every feature of the code on disk whose offline and serving values or statuses
        differ, on ``sample`` source rows or on ``spine`` (see monitoring.parity)."""
        from featurestore.monitoring import check_parity

        repo, _ = self._code_on_disk()
        return check_parity(
            self.offline,
            self.read_serving_log,
            features,
            sample,
            seed,
            spine,
            timestamp_column=timestamp_column,
            repo=repo,
        )

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

    def monitor(self, until: dt.datetime | None = None) -> MonitorRun:
        """Summarize the serving log files not yet counted, then evaluate the alert rules of
        ``monitoring`` in featurestore.yaml over every window ended by ``until`` (default now)."""
        from featurestore.monitoring import monitor

        return monitor(self._report_inputs(), until)

    def monitor_history(
        self,
        ref: str,
        window: str = "1h",
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
    ) -> pl.DataFrame:
        """Per ``window`` (1h, 1d or 7d) of ``ref``: rows, rates, drift statistics with their
        calibrated thresholds, the sampled match rate and the verdict, from the summaries."""
        from featurestore.monitoring import monitor_history

        return monitor_history(self._report_inputs(), ref, window, start, end)

    def monitor_report(
        self,
        window: str = "1d",
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        features: list[str] | None = None,
    ) -> MonitorReport:
        """Each monitored feature's drift per ``window`` over a period (default: all that was
        summarized), a report whose HTML page draws each feature's series."""
        from featurestore.monitoring import monitor_report

        return monitor_report(self._report_inputs(), window, start, end, features)

    def status(self, now: dt.datetime | None = None) -> RepoStatus:
        """Per view: applied or changed, last materialized, freshness and online entity counts;
        the online store and the serving log; problems with what to run."""
        from featurestore.monitoring import build_status

        return build_status(self._report_inputs(), self.online, now)

    def close(self) -> None:
        self._served.stop()
        self._log.close()
        for part in (self._offline, self._online):
            if part is not None:
                part.close()
        self._offline, self._online = None, None
