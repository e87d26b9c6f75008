"""Monitoring's latest windows at ``GET /metrics``: a collector that reads what ``monitor run``
last wrote (``latest.json`` and ``alerts.json`` under the data directory's ``monitoring/``)
and exports it as gauges, so Prometheus can alert on drift and Grafana can chart it.

Each file is parsed again only when its modification time or size changes. A missing,
unreadable or malformed file yields no samples: a scrape never fails because of monitoring.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric

from featurestore.monitoring._monitor._metric_names import (
    ALERT_FIRING,
    ALERTS_FILE,
    DRIFT,
    DRIFT_FLAGGED,
    DRIFT_THRESHOLD,
    LATEST_FILE,
    MATCH_RATE,
    MONITOR_LAST_RUN,
    NULL_RATE,
    STATISTICS,
    STATUS_RATE,
    STATUSES,
    WINDOW_ROWS,
)

__all__ = ["MonitorCollector"]

log = logging.getLogger(__name__)

Sample = tuple[str, tuple[str, ...], float]  # metric name, label values, value

_LABELS: dict[str, tuple[list[str], str]] = {
    DRIFT: (
        ["feature", "statistic", "window"],
        "Drift statistic of the newest monitoring window against the reference.",
    ),
    DRIFT_THRESHOLD: (
        ["feature", "statistic", "window"],
        "Calibrated threshold of the drift statistic for the newest window.",
    ),
    DRIFT_FLAGGED: (
        ["feature", "window"],
        "1 when the newest window's verdict is flagged, else 0.",
    ),
    NULL_RATE: (["feature", "window"], "Share of null values served in the newest window."),
    STATUS_RATE: (
        ["feature", "status", "window"],
        "Share of values served with each status in the newest window.",
    ),
    WINDOW_ROWS: (["feature", "window"], "Values served in the newest window."),
    MATCH_RATE: (
        ["feature", "window"],
        "Share of sampled served values the offline path reproduces, in the newest window.",
    ),
    MONITOR_LAST_RUN: ([], "Unix time at which monitor run last wrote its latest windows."),
    ALERT_FIRING: (["alert", "feature"], "1 while monitor run's alert fires for the feature."),
}


@dataclass(frozen=True)
class _Parsed:
    """One file's samples, with the (mtime, size, inode) they were read at."""

    stamp: tuple[int, int, int]
    samples: list[Sample]


def _number(value: Any) -> float | None:
    """``value`` as a finite float, or None (null, text, NaN or infinite)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _point_samples(ref: str, window: str, point: dict[str, Any]) -> Iterator[Sample]:
    """The samples of one feature's newest window of one size."""
    for statistic in STATISTICS:
        if (value := _number(point.get(statistic))) is not None:
            yield DRIFT, (ref, statistic, window), value
        if (limit := _number(point.get(f"{statistic}_threshold"))) is not None:
            yield DRIFT_THRESHOLD, (ref, statistic, window), limit
    if (nulls := _number(point.get("null_rate"))) is not None:
        yield NULL_RATE, (ref, window), nulls
    for status in STATUSES:
        if (rate := _number(point.get(f"{status}_rate"))) is not None:
            yield STATUS_RATE, (ref, status, window), rate
    if (rows := _number(point.get("rows"))) is not None:
        yield WINDOW_ROWS, (ref, window), rows
    if (match := _number(point.get("match_rate"))) is not None:
        yield MATCH_RATE, (ref, window), match
    if isinstance(point.get("verdict"), str):
        yield DRIFT_FLAGGED, (ref, window), 1.0 if point["verdict"] == "flagged" else 0.0


def latest_samples(data: Any, written_at: float) -> list[Sample]:
    """The samples of a parsed ``latest.json`` written at ``written_at`` (Unix time)."""
    windows = data.get("windows") if isinstance(data, dict) else None
    if not isinstance(windows, dict):
        return []
    out: list[Sample] = [(MONITOR_LAST_RUN, (), written_at)]
    for window, points in sorted(windows.items()):
        if not isinstance(points, dict):
            continue
        for ref, point in sorted(points.items()):
            if isinstance(point, dict):
                out.extend(_point_samples(str(ref), str(window), point))
    return out


def alert_samples(data: Any) -> list[Sample]:
    """The samples of a parsed ``alerts.json``: whether each alert fires, per feature."""
    tracks = data.get("tracks") if isinstance(data, dict) else None
    if not isinstance(tracks, dict):
        return []
    out: list[Sample] = []
    for alert, features in sorted(tracks.items()):
        if not isinstance(features, dict):
            continue
        for ref, track in sorted(features.items()):
            if isinstance(track, dict):
                firing = 1.0 if track.get("firing") is True else 0.0
                out.append((ALERT_FIRING, (str(alert), str(ref)), firing))
    return out


class MonitorCollector:
    """Gauges of monitoring's newest windows and alerts, read from ``directory`` at scrape
    time (each file parsed again only when it changes)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, _Parsed] = {}

    def _families(self) -> dict[str, GaugeMetricFamily]:
        return {
            name: GaugeMetricFamily(name, text, labels=labels)
            for name, (labels, text) in _LABELS.items()
        }

    def describe(self) -> Iterator[Metric]:
        yield from self._families().values()

    def _read(self, name: str) -> list[Sample]:
        """The samples of file ``name``, from the cache while its mtime, size and inode hold."""
        path = self.directory / name
        try:
            stat = os.stat(path)
        except OSError:  # not written yet: monitoring is off or has not run
            self._cache.pop(name, None)
            return []
        stamp = (stat.st_mtime_ns, stat.st_size, stat.st_ino)  # replaced atomically: new inode
        cached = self._cache.get(name)
        if cached is not None and cached.stamp == stamp:
            return cached.samples
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError) as exc:
            log.warning("metrics: cannot read %s: %s", path, exc)
            data = None
        if name == LATEST_FILE:
            samples = latest_samples(data, stat.st_mtime)
        else:
            samples = alert_samples(data)
        self._cache[name] = _Parsed(stamp, samples)
        return samples

    def collect(self) -> Iterator[Metric]:
        families = self._families()
        for name in (LATEST_FILE, ALERTS_FILE):
            try:
                samples = self._read(name)
            except Exception:  # a scrape must not fail because of monitoring's files
                log.exception("metrics: cannot export %s", self.directory / name)
                samples = []
            for metric, labels, value in samples:
                families[metric].add_metric(list(labels), value)
        # families without samples are left out, as when monitoring never ran
        yield from (family for family in families.values() if family.samples)
