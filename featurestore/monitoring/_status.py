"""The operational status of a repo, for the people on call.

Per view: whether the code still matches what was applied, whether its source can be read and
still fits the declarations and how recent its newest event is, when its latest values (and,
for aggregations, its recent events) were last materialized and with which definitions, how old
the newest online value is against the ttl, and whether the online store still holds what was
published (a Redis that restarted without persistence holds nothing). Per repo: the registry,
the online store's reachability and the serving log's size. Every problem found is one line
that says what is wrong and what to run; ``featurestore status --fail-on-flagged`` exits
non-zero when there is one, so a deploy or a cron job can gate on it.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from featurestore._config import OnlineStoreConfig
from featurestore._registry import RegistryState, ViewRecord, build_state
from featurestore._times import as_utc, format_duration
from featurestore.definitions import FeatureView, OnDemandFeatureView
from featurestore.errors import FeatureStoreError, RegistryError
from featurestore.online._event_state import events_store_name
from featurestore.online._materialize import MaterializationState
from featurestore.serving._serving_log import log_files
from featurestore.sources._schema import key_type_problems

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs
    from featurestore.online._protocol import OnlineStore

__all__ = ["RepoStatus", "ServingLogStatus", "ViewStatus", "build_status"]

_APPLY = "run 'featurestore apply'"
_MATERIALIZE = "run 'featurestore materialize'"


class ViewStatus(BaseModel):
    """One view. Times are UTC; ``None`` means never, unknown or not applicable."""

    name: str
    kind: Literal["batch", "on_demand"]
    owner: str | None
    online: bool = Field(description="materialized to the online store (batch views)")
    features: int
    applied: bool = Field(description="the registry knows the view")
    changed: list[str] = Field(
        default_factory=list,
        description="references whose code differs from the registry: changed, new or removed",
    )
    materialized_end: dt.datetime | None = Field(
        default=None, description="the end of the last materialization of its latest values"
    )
    published_at: dt.datetime | None = None
    newest_event_time: dt.datetime | None = Field(
        default=None, description="the event time of the newest value published online"
    )
    age_seconds: float | None = Field(
        default=None, description="how old the newest online value is at the status time"
    )
    ttl_seconds: float | None = None
    stale: bool = Field(
        default=False, description="the newest online value is older than the ttl: all STALE"
    )
    source_newest_event_time: dt.datetime | None = Field(
        default=None, description="batch views: the latest event time in the source"
    )
    source_error: str | None = Field(
        default=None, description="batch views: why the source cannot be read or no longer fits"
    )
    online_entities: int | None = Field(
        default=None, description="entities the online store holds for the latest values"
    )
    events_end: dt.datetime | None = Field(
        default=None, description="aggregations: the end of the last materialization of events"
    )
    event_entities: int | None = Field(
        default=None, description="aggregations: entities the online store holds events of"
    )
    problems: list[str] = Field(default_factory=list)


class ServingLogStatus(BaseModel):
    """What the serving log directory holds. Files and bytes come from the file system; records
    are counted from the Parquet footers of the last day only (a busy server writes a file a
    second, and reading a month of footers would take minutes)."""

    path: str
    files: int
    bytes: int
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    last_written: dt.datetime | None = Field(
        default=None, description="when the newest file was written"
    )
    last_day_records: int = 0


class RepoStatus(BaseModel):
    """The whole status; ``flagged`` lists every problem, the repo's first."""

    project: str
    checked_at: dt.datetime = Field(description="the time ages and ttls are measured at")
    applied_at: dt.datetime | None
    online_store: str = Field(description="the configured online store (without credentials)")
    online_store_error: str | None = None
    serving_log: ServingLogStatus
    views: list[ViewStatus]
    problems: list[str] = Field(default_factory=list, description="problems of the repo")

    @property
    def flagged(self) -> list[str]:
        """Every problem, each prefixed with its view."""
        return [*self.problems] + [f"view {v.name!r}: {p}" for v in self.views for p in v.problems]

    def to_dict(self) -> dict[str, object]:
        return {**self.model_dump(mode="json"), "flagged": self.flagged}


def describe_online_store(config: OnlineStoreConfig, data_dir: Path) -> str:
    """``lmdb <path>``, ``sqlite <path>`` or ``redis <host:port/db> prefix <p>``, never a
    password."""
    if config.type != "redis":
        return f"{config.type} {data_dir / config.path}"
    url = urlsplit(config.url)
    where = f"{url.hostname or '127.0.0.1'}:{url.port or 6379}{url.path or '/0'}"
    return f"redis {where} prefix {config.key_prefix!r}"


def serving_log_status(directory: Path) -> ServingLogStatus:
    """Files, bytes and days of the serving log, and the records of its last day."""
    files = log_files(directory)
    if not files:
        return ServingLogStatus(path=str(directory), files=0, bytes=0)
    stats = [f.stat() for f in files]
    day_of = [dt.date.fromisoformat(f.parent.name.partition("=")[2]) for f in files]
    last_day = max(day_of)
    return ServingLogStatus(
        path=str(directory),
        files=len(files),
        bytes=sum(st.st_size for st in stats),
        first_day=min(day_of),
        last_day=last_day,
        last_written=dt.datetime.fromtimestamp(max(st.st_mtime for st in stats), dt.UTC),
        last_day_records=sum(
            pq.read_metadata(f).num_rows
            for f, d in zip(files, day_of, strict=True)
            if d == last_day
        ),
    )


def _code_changes(
    names: list[str], current: RegistryState, applied: RegistryState | None, view: str
) -> list[str]:
    """References of ``view`` that differ between the code and the registry."""
    applied_refs = {r for r, f in (applied.features if applied else {}).items() if f.view == view}
    refs = [f"{view}:{n}" for n in names]
    changed = [
        r
        for r in refs
        if applied is None
        or r not in applied.features
        or applied.features[r].fingerprint != current.features[r].fingerprint
    ]
    return changed + sorted(applied_refs - set(refs))


def _count(online: OnlineStore, name: str, down: bool) -> int | None:
    if down:
        return None
    try:
        return online.count(name)
    except FeatureStoreError:
        return None


class _Checker:
    """Builds each view's status against one registry, state and online store."""

    def __init__(
        self,
        reads: ReportInputs,
        online: OnlineStore,
        now: dt.datetime,
        down: bool,
        applied: RegistryState | None,
    ) -> None:
        self.reads = reads
        self.online = online
        self.now = now
        self.down = down
        self.applied = applied
        self.current = build_state(reads.repo, {})
        self.state = (
            MaterializationState()
            if down
            else MaterializationState.load(online, list(reads.repo.views))
        )

    def _outdated(self, recorded: dict[str, str], refs: list[str], what: str) -> list[str]:
        """A problem when the online ``what`` of some ``refs`` come from a definition other
        than the applied one (``recorded``: the fingerprints they were published with)."""
        applied = self.applied.features if self.applied else {}
        stale = [r for r in refs if r in applied and recorded.get(r) != applied[r].fingerprint]
        if not stale:
            return []
        return [
            f"online {what} of {', '.join(stale)} come from another definition than the "
            f"applied one; {_MATERIALIZE}"
        ]

    def defined(self, view: FeatureView | OnDemandFeatureView) -> ViewStatus:
        """A view of the code: its definitions against the registry and, for an applied online
        batch view, what the online store holds."""
        batch = view if isinstance(view, FeatureView) else None
        status = ViewStatus(
            name=view.name,
            kind="batch" if batch is not None else "on_demand",
            owner=view.owner,
            online=batch is not None and batch.online,
            features=len(view.feature_names),
            applied=self.applied is not None and view.name in self.applied.views,
            changed=_code_changes(view.feature_names, self.current, self.applied, view.name),
            ttl_seconds=batch.ttl.total_seconds() if batch is not None and batch.ttl else None,
        )
        if self.applied is not None and not status.applied:  # (nothing applied: said once)
            status.problems.append(f"defined in the code but not applied; {_APPLY}")
        elif self.applied is not None and status.changed:
            status.problems.append(
                f"{', '.join(status.changed)} differ from the applied definitions; {_APPLY}"
            )
        if batch is not None:
            self._source(batch, status)
        if batch is not None and batch.online and status.applied:
            if batch.features:
                self._latest_values(batch, status)
            if batch.aggregations:
                self._events(batch, status)
        if batch is not None and batch.online and not status.stale:
            self._source_freshness(batch, status)
        return status

    def _source(self, view: FeatureView, status: ViewStatus) -> None:
        """The source's newest event, or why it cannot be read or no longer fits the
        declarations (flagged: training sets and materializations would fail)."""
        engine = self.reads.source_engine(view)
        try:
            status.source_newest_event_time = engine.newest_event_time(view)
        except FeatureStoreError as exc:
            status.source_error = str(exc)
            status.problems.append(
                f"its source cannot be used: {exc}; training sets and materializations of the "
                "view fail until it is fixed"
            )
            return
        if status.source_newest_event_time is None:
            status.problems.append(f"its source {view.source.name!r} holds no rows")
        record = self.applied.views.get(view.name) if self.applied else None
        if record is not None:
            schema = engine.source_schema(view)
            status.problems += key_type_problems(view, schema, record.join_keys)

    def _source_freshness(self, view: FeatureView, status: ViewStatus) -> None:
        """Flag a source whose newest event is older than the ttl: no materialization can
        serve fresh values of the view."""
        newest, ttl = status.source_newest_event_time, status.ttl_seconds
        if newest is None or ttl is None or (self.now - newest).total_seconds() <= ttl:
            return
        status.problems.append(
            f"the newest event in source {view.source.name!r} is "
            f"{format_duration((self.now - newest).total_seconds())} old, beyond the ttl of "
            f"{format_duration(ttl)}: no materialization can serve fresh values; check what "
            "writes the source"
        )

    def _latest_values(self, view: FeatureView, status: ViewStatus) -> None:
        recorded = self.state.views.get(view.name)
        status.online_entities = _count(self.online, view.name, self.down)
        if recorded is None:
            status.problems.append(f"its features were never materialized; {_MATERIALIZE}")
            return
        status.materialized_end = recorded.watermark
        status.published_at = recorded.published_at
        status.newest_event_time = recorded.newest_event_time
        if status.newest_event_time is not None:
            status.age_seconds = (self.now - status.newest_event_time).total_seconds()
        age, ttl = status.age_seconds, status.ttl_seconds
        if age is not None and ttl is not None and age > ttl:
            status.stale = True
            source = status.source_newest_event_time
            fix = (
                f"its source has newer events (up to {source:%Y-%m-%d %H:%M:%S} UTC); "
                f"{_MATERIALIZE}"
                if source is not None and source > (status.newest_event_time or source)
                else f"source {view.source.name!r} has nothing newer: check what writes it"
            )
            status.problems.append(
                f"the newest online value is {format_duration(age)} old, beyond the ttl of "
                f"{format_duration(ttl)}: every value of the view is served STALE; {fix}"
            )
        status.problems += self._outdated(
            recorded.fingerprints, [f"{view.name}:{f.name}" for f in view.features], "values"
        )
        full, held = recorded.last_full_batch, status.online_entities
        if full is not None and held is not None and held < full.rows:
            status.problems.append(
                f"the online store holds {held:,} entities but the last full materialization "
                f"published {full.rows:,}: values were lost (e.g. a store that restarted "
                f"without persistence); {_MATERIALIZE}"
            )

    def _events(self, view: FeatureView, status: ViewStatus) -> None:
        recorded = self.state.events.get(view.name)
        status.event_entities = _count(self.online, events_store_name(view.name), self.down)
        if recorded is None:
            status.problems.append(f"its aggregations were never materialized; {_MATERIALIZE}")
            return
        status.events_end = recorded.end
        status.published_at = max(filter(None, (status.published_at, recorded.published_at)))
        status.problems += self._outdated(
            recorded.fingerprints, [f"{view.name}:{a}" for a in view.aggregation_names], "events"
        )
        if status.event_entities is not None and status.event_entities < recorded.entities:
            status.problems.append(
                f"the online store holds events of {status.event_entities:,} entities but "
                f"the last materialization published {recorded.entities:,}: events were lost; "
                f"{_MATERIALIZE}"
            )

    def removed(self, record: ViewRecord) -> ViewStatus:
        return ViewStatus(
            name=record.name,
            kind="on_demand" if record.kind == "on_demand" else "batch",
            owner=record.owner,
            online=False,
            features=len(record.features),
            applied=True,
            changed=[f"{record.name}:{f}" for f in record.features],
            ttl_seconds=record.ttl_seconds,
            problems=[f"applied but no longer defined in the code; {_APPLY} to remove it"],
        )


def build_status(
    reads: ReportInputs, online: OnlineStore, now: dt.datetime | None = None
) -> RepoStatus:
    """Check the repo and what ``online`` holds at ``now`` (default: the current time; naive
    is UTC)."""
    now = as_utc(now) if now is not None else dt.datetime.now(dt.UTC)
    repo = reads.repo
    problems: list[str] = []
    error = None
    try:
        online.ping()
    except FeatureStoreError as exc:
        error = str(exc)
        problems.append(f"the online store is unreachable: {error}")
    try:
        applied = reads.registry.load()
        if applied is None:
            problems.insert(0, f"nothing has been applied yet; {_APPLY}")
    except RegistryError as exc:
        applied = None
        problems.insert(0, str(exc))
    checker = _Checker(reads, online, now, error is not None, applied)
    defined: list[FeatureView | OnDemandFeatureView] = [
        *repo.views.values(),
        *repo.on_demand_views.values(),
    ]
    views = [checker.defined(v) for v in defined]
    if checker.applied is not None:
        views += [
            checker.removed(record)
            for name, record in checker.applied.views.items()
            if name not in repo.views and name not in repo.on_demand_views
        ]
    return RepoStatus(
        project=repo.config.project,
        checked_at=now,
        applied_at=checker.applied.applied_at if checker.applied else None,
        online_store=describe_online_store(repo.config.online_store, repo.data_dir),
        online_store_error=error,
        serving_log=serving_log_status(repo.serving_log_dir),
        views=views,
        problems=problems,
    )
