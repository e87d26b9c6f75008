"""``monitor run``: under one lock, count the serving log files not yet summarized, evaluate
every alert rule over the windows that ended since the last run, send the state changes, and
save where each alert stands and the latest windows (which the server's ``/metrics`` reads).

Safe from cron and several times at once: a second run waits for the first and then finds
nothing new. Everything it writes is replaced atomically, so a killed run is resumed by the
next one without counting any log file twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from featurestore._config import AlertRule, MonitoringConfig
from featurestore._files import write_text_atomically
from featurestore._times import as_utc
from featurestore.errors import ConfigError, ReportError
from featurestore.monitoring._monitor._alerts import AlertEvent, Track, step_alert
from featurestore.monitoring._monitor._history import window_points
from featurestore.monitoring._monitor._metric_names import ALERTS_FILE, LATEST_FILE
from featurestore.monitoring._monitor._notify import log_event, post_event
from featurestore.monitoring._monitor._reference import MonitorReference
from featurestore.monitoring._monitor._summary_files import (
    first_hour,
    read_summaries,
    summarize_new_files,
)
from featurestore.monitoring._monitor._windows import (
    WINDOWS,
    whole_days,
    window_size,
    windows_ending,
)

__all__ = ["MonitorPaths", "MonitorRun", "run_monitor"]

_LOCK_FILE = ".run.lock"
_LOCK_TIMEOUT_SECONDS = 600.0


@dataclass(frozen=True)
class MonitorPaths:
    """The monitoring directory (summaries, alert state, latest windows) and the log's."""

    directory: Path
    log_dir: Path

    def summaries(self, reference: MonitorReference) -> Path:
        return self.directory / "summaries" / reference.id


@dataclass
class MonitorRun:
    """What one run did: the log files and records it summarized, the alert state changes it
    sent (``alerts``), and every alert firing after it."""

    reference: str
    until: dt.datetime
    files: int
    records: int
    hours: list[dt.datetime]
    alerts: list[AlertEvent]
    firing: list[AlertEvent]
    undelivered: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "until": self.until.isoformat(),
            "files_summarized": self.files,
            "records_summarized": self.records,
            "hours": [h.isoformat() for h in self.hours],
            "alerts": [e.to_json() for e in self.alerts],
            "firing": [e.to_json() for e in self.firing],
            "undelivered": self.undelivered,
        }


@contextlib.contextmanager
def _run_lock(directory: Path) -> Iterator[None]:
    """Hold the monitoring lock; a concurrent run waits for it (up to ten minutes)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / _LOCK_FILE, "a+") as fh:
        deadline = time.monotonic() + _LOCK_TIMEOUT_SECONDS
        while True:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ReportError(
                        f"another monitor run has held {directory / _LOCK_FILE} for "
                        f"{_LOCK_TIMEOUT_SECONDS:.0f} s; check for a stuck process"
                    ) from None
                time.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _load_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {"evaluated": {}, "tracks": {}, "undelivered": []}
    try:
        state: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"the alert state {path} cannot be read ({exc}); delete it to start the alerts "
            "afresh (every rule is then evaluated again from the first summarized hour)"
        ) from None
    return state


def _rule_features(rule: AlertRule, reference: MonitorReference) -> list[str]:
    if rule.features == "all":
        return list(reference.features)
    unknown = [r for r in rule.features if r not in reference.features]
    if unknown:
        raise ConfigError(
            f"monitoring.alerts[{rule.name}]: {', '.join(unknown)} not monitored; monitored "
            f"features: {', '.join(reference.features) or 'none'}"
        )
    return list(rule.features)


def _evaluate(
    rule: AlertRule,
    reference: MonitorReference,
    summaries: Path,
    state: dict[str, Any],
    until: dt.datetime,
) -> list[AlertEvent]:
    """Advance ``rule`` over the windows that ended since it was last evaluated."""
    seen = state["evaluated"].get(rule.name)
    start = dt.datetime.fromisoformat(seen) if seen else first_hour(summaries)
    if start is None:
        return []
    if not seen:
        start -= window_size(rule.window)  # the first window ends an hour after the log starts
    windows = windows_ending(rule.window, start, until)
    if not windows:
        return []
    features = _rule_features(rule, reference)
    days = whole_days(rule.window)
    rows = read_summaries(summaries, windows[0][0], windows[-1][1], features, days)
    tracks = state["tracks"].setdefault(rule.name, {})
    events = []
    for ref in features:
        feature = reference.features[ref]
        track = Track.from_json(tracks.get(ref, {}))
        for point in window_points(feature, rows, windows):
            if (event := step_alert(rule, ref, feature.owner, point, track)) is not None:
                events.append(event)
        tracks[ref] = track.to_json()
    state["evaluated"][rule.name] = windows[-1][1].isoformat()
    return events


def _deliver(events: list[AlertEvent], config: MonitoringConfig, state: dict[str, Any]) -> int:
    """Log every event and POST it to its webhooks, together with earlier undelivered
    ones; returns how many POSTs are still undelivered (kept for the next run)."""
    rules = {r.name: r for r in config.alerts}
    pending = [(u, AlertEvent.from_json(e)) for u, e in state.get("undelivered", [])]
    for event in events:
        log_event(event)
        rule = rules.get(event.alert)
        urls = [rule.webhook] if rule is not None and rule.webhook else []
        if event.owner is not None and event.owner in config.owner_webhooks:
            urls.append(config.owner_webhooks[event.owner])
        pending += [(u, event) for u in dict.fromkeys(urls)]
    left = [
        (url, event)
        for url, event in pending
        if not post_event(
            url,
            event,
            timeout=config.webhook_timeout_seconds,
            retries=config.webhook_retries,
        )
    ]
    state["undelivered"] = [[u, e.to_json()] for u, e in left]
    return len(left)


def _latest(reference: MonitorReference, summaries: Path, until: dt.datetime) -> dict[str, Any]:
    """Per window size and feature, the newest complete window's point (for /metrics)."""
    out: dict[str, Any] = {"until": until.isoformat(), "windows": {}}
    for window in WINDOWS:
        windows = windows_ending(window, until - window_size(window) - window_size("1h"), until)
        if not windows:
            continue
        rows = read_summaries(summaries, *windows[-1], whole_days=whole_days(window))
        points = {}
        for ref, feature in reference.features.items():
            (point,) = window_points(feature, rows, windows[-1:])
            points[ref] = {
                k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in point.items()
            }
        out["windows"][window] = points
    return out


def run_monitor(
    reference: MonitorReference,
    config: MonitoringConfig,
    paths: MonitorPaths,
    summarize: Callable[[pl.DataFrame], pl.DataFrame],
    until: dt.datetime | None = None,
) -> MonitorRun:
    """Summarize new log files with ``summarize``, then evaluate and send the alerts."""
    until = as_utc(until) if until is not None else dt.datetime.now(dt.UTC)
    with _run_lock(paths.directory):
        summaries = paths.summaries(reference)
        added = summarize_new_files(paths.log_dir, summaries, summarize)
        state_path = paths.directory / ALERTS_FILE
        state = _load_state(state_path)
        events = []
        for rule in config.alerts:
            events += _evaluate(rule, reference, summaries, state, until)
        undelivered = _deliver(events, config, state)
        write_text_atomically(state_path, json.dumps(state, indent=1))
        latest = _latest(reference, summaries, until)
        write_text_atomically(paths.directory / LATEST_FILE, json.dumps(latest))
    firing = [
        AlertEvent.from_json(t["fired"])
        for tracks in state["tracks"].values()
        for t in tracks.values()
        if t.get("firing") and t.get("fired")
    ]
    return MonitorRun(
        reference.label, until, added.files, added.records, added.hours, events, firing, undelivered
    )
