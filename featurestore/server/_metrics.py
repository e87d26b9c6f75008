"""Prometheus metrics of the feature server, rendered at ``GET /metrics``.

One registry per app. With several worker processes (``featurestore serve --workers N``)
prometheus_client's multiprocess mode is used: ``PROMETHEUS_MULTIPROC_DIR`` is set before the
workers start, each worker writes its samples there, and a scrape of any worker sums them.

- ``featurestore_http_requests_total{endpoint, status}`` and
  ``featurestore_http_request_duration_seconds{endpoint, status}`` (histogram);
- ``featurestore_served_values_total{ref, status}``: served values by feature and status;
- ``featurestore_newest_value_age_seconds{view}``: age of the newest value published online,
  computed at scrape time from the materialization state, beside
  ``featurestore_view_ttl_seconds{view}``: the view's ttl (if any), to alert on an age past it;
- ``featurestore_serving_log_records_{written,dropped}_total``: from the serving log writer;
- ``featurestore_registry_version``, ``featurestore_registry_age_seconds`` and
  ``featurestore_registry_code_matches``: the registry version the process serves, how long ago
  it was applied, and whether the code on disk matches the applied registry (0 while the
  process keeps serving an older version because they disagree); read at scrape time, from the
  worker that answers the scrape.
- monitoring's newest windows and alerts, as ``monitor run`` last wrote them (see
  :mod:`featurestore.server._monitor_metrics`): drift statistics and thresholds, null, status
  and match rates, rows per window, flagged verdicts and firing alerts, per feature.
"""

from __future__ import annotations

import glob
import logging
import os
import threading
import time
from collections import Counter as Tally
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

from featurestore.monitoring._monitor._metric_names import MONITORING_DIR, VIEW_AGE, VIEW_TTL
from featurestore.server._monitor_metrics import MonitorCollector
from featurestore.serving._response import OnlineResponse

if TYPE_CHECKING:
    from featurestore._store import FeatureStore
    from featurestore.serving._serving_log import ServingLogWriter

__all__ = ["CONTENT_TYPE_LATEST", "MULTIPROC_ENV", "ServerMetrics", "multiprocess_enabled"]

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# request latencies: sub-millisecond serving up to slow on-demand functions
LATENCY_BUCKETS = (
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)


def multiprocess_enabled() -> bool:
    """Whether prometheus_client writes samples to files shared by worker processes."""
    return bool(os.environ.get(MULTIPROC_ENV))


class _FreshnessCollector:
    """Age of the newest online value per view, read from the materialization state, and
    each view's ttl, so that an alert can compare the two."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def _families(self) -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                VIEW_AGE,
                "Seconds since the event time of the newest value published online, per view.",
                labels=["view"],
            ),
            GaugeMetricFamily(
                VIEW_TTL,
                "The view's ttl in seconds: older values are served as stale.",
                labels=["view"],
            ),
        )

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        family, ttls = self._families()
        try:
            newest = self.store.newest_values()
        except Exception:
            log.exception("metrics: cannot read the materialization state")
            newest = {}
        now = time.time()
        for view, at in sorted(newest.items()):
            if at is not None:
                family.add_metric([view], now - at.timestamp())
        for name, definition in sorted(self.store.repo.views.items()):
            if definition.ttl is not None:
                ttls.add_metric([name], definition.ttl.total_seconds())
        yield from (family, ttls)


class _RegistryCollector:
    """The registry version served, its age and whether the code on disk matches it."""

    def __init__(self, store: FeatureStore) -> None:
        self.store = store

    def _families(self) -> list[GaugeMetricFamily]:
        return [
            GaugeMetricFamily(
                "featurestore_registry_version", "Registry version (apply count) served."
            ),
            GaugeMetricFamily(
                "featurestore_registry_age_seconds",
                "Seconds since the registry version served was applied.",
            ),
            GaugeMetricFamily(
                "featurestore_registry_code_matches",
                "1 when the code on disk matches the applied registry, 0 when the process "
                "keeps serving an older version because they differ.",
            ),
        ]

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        version, age, matches = self._families()
        served = self.store.served_registry
        if served is not None:
            version.add_metric([], served.version)
            age.add_metric([], time.time() - served.applied_at.timestamp())
            matches.add_metric([], 0.0 if self.store.serving_problem else 1.0)
        yield from (version, age, matches)


class ServerMetrics:
    """The server's metrics; label children are cached so the request path only increments."""

    def __init__(self, store: FeatureStore) -> None:
        self.multiprocess = multiprocess_enabled()
        self.registry = CollectorRegistry()
        self._freshness = _FreshnessCollector(store)
        self._registry = _RegistryCollector(store)
        self._monitoring = MonitorCollector(store.repo.data_dir / MONITORING_DIR)
        # in multiprocess mode samples go to files, gathered per scrape into a fresh registry
        target = None if self.multiprocess else self.registry
        self.requests = Counter(
            "featurestore_http_requests",
            "HTTP requests by endpoint and status code.",
            ["endpoint", "status"],
            registry=target,
        )
        self.latency = Histogram(
            "featurestore_http_request_duration_seconds",
            "HTTP request latency in seconds by endpoint and status code.",
            ["endpoint", "status"],
            buckets=LATENCY_BUCKETS,
            registry=target,
        )
        self.values = Counter(
            "featurestore_served_values",
            "Feature values served, by feature reference and status.",
            ["ref", "status"],
            registry=target,
        )
        self.log_written = Counter(
            "featurestore_serving_log_records_written",
            "Serving log records written to Parquet.",
            registry=target,
        )
        self.log_dropped = Counter(
            "featurestore_serving_log_records_dropped",
            "Serving log records dropped (queue full, failed write or logged after close).",
            registry=target,
        )
        if not self.multiprocess:
            self.registry.register(self._freshness)
            self.registry.register(self._registry)
            self.registry.register(self._monitoring)
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        # with one process, served values per (ref, status) as plain ints on the request path,
        # added to the counter at scrape time by sync_counters
        self._value_counts: dict[tuple[str, str], int] = {}
        self._value_seen: dict[tuple[str, str], int] = {}
        self._value_children: dict[tuple[str, str], Any] = {}
        self._count_lock = threading.Lock()  # requests count from the loop and worker threads
        self._writer: ServingLogWriter | None = None
        self._seen_written = 0
        self._seen_dropped = 0
        self._sync_lock = threading.Lock()
        self._stop_syncing = threading.Event()
        self._syncer: threading.Thread | None = None

    def observe_request(self, endpoint: str, status: int, seconds: float) -> None:
        children = self._request_children.get((endpoint, status))
        if children is None:
            label = str(status)
            children = (
                self.requests.labels(endpoint, label),
                self.latency.labels(endpoint, label),
            )
            self._request_children[(endpoint, status)] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_values(self, response: OnlineResponse) -> None:
        """Count each served value under its feature reference and status (from any thread:
        with a network store, requests are answered in worker threads).

        With one process the counts are plain ints, added to the counter at scrape time (a
        prometheus increment per value costs more than serving it). In multiprocess mode a
        scrape reads every worker's sample files, which only the worker itself can update, so
        the counter is incremented at once.
        """
        refs = response.refs
        if self.multiprocess:
            counts: dict[tuple[str, str], int] = {}
            _tally(response, refs, counts)
            for (ref, status), n in counts.items():
                self._value_child(ref, status).inc(n)
            return
        with self._count_lock:
            _tally(response, refs, self._value_counts)

    def _value_child(self, ref: str, status: str) -> Any:
        child = self._value_children.get((ref, status))
        if child is None:
            child = self._value_children[(ref, status)] = self.values.labels(ref, str(status))
        return child

    def watch_writer(self, writer: ServingLogWriter | None) -> None:
        """Report this serving log writer's counters (synced at scrape time and on close)."""
        with self._sync_lock:
            self._writer = writer
            self._seen_written = self._seen_dropped = 0

    def sync_counters(self) -> None:
        """Add the values served and the records the writer wrote and dropped since the last
        sync to the prometheus counters."""
        with self._sync_lock:
            counts = dict(self._value_counts)  # one C-level copy: atomic under the GIL
            for key, n in counts.items():
                seen = self._value_seen.get(key, 0)
                if n > seen:
                    self._value_child(*key).inc(n - seen)
                    self._value_seen[key] = n
            writer = self._writer
            if writer is None:
                return
            written, dropped = writer.written, writer.dropped
            if written > self._seen_written:
                self.log_written.inc(written - self._seen_written)
                self._seen_written = written
            if dropped > self._seen_dropped:
                self.log_dropped.inc(dropped - self._seen_dropped)
                self._seen_dropped = dropped

    def start_syncing(self, interval_seconds: float = 1.0) -> None:
        """Sync the counters every ``interval_seconds`` in a thread: in multiprocess mode a
        scrape reads every worker's files, so each worker must keep its own up to date."""
        if self._syncer is not None:
            return

        def run() -> None:
            while not self._stop_syncing.wait(interval_seconds):
                self.sync_counters()

        self._stop_syncing.clear()
        self._syncer = threading.Thread(target=run, name="metrics-log-sync", daemon=True)
        self._syncer.start()

    def stop_syncing(self) -> None:
        """Stop the sync thread (if any) and sync one last time."""
        if self._syncer is not None:
            self._stop_syncing.set()
            self._syncer.join()
            self._syncer = None
        self.sync_counters()

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric (of every worker in multiprocess mode)."""
        self.sync_counters()
        if not self.multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        _SettledFilesCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        registry.register(self._freshness)
        registry.register(self._registry)
        registry.register(self._monitoring)
        return generate_latest(registry)


def _tally(
    response: OnlineResponse, refs: dict[str, str], counts: dict[tuple[str, str], int]
) -> None:
    """Add the response's values to ``counts`` by (ref, status)."""
    for column, statuses in response.statuses.items():
        ref = refs[column]
        if len(statuses) == 1:
            key = (ref, statuses[0])
            counts[key] = counts.get(key, 0) + 1
            continue
        for status, n in Tally(statuses).items():
            key = (ref, status)
            counts[key] = counts.get(key, 0) + n


class _SettledFilesCollector(MultiProcessCollector):
    """prometheus_client's multiprocess collector, skipping sample files a worker is still
    creating: such a file is empty for a moment (created, not yet sized), and reading it fails
    the whole scrape."""

    def collect(self) -> Iterable[Metric]:
        files = [
            path
            for path in glob.glob(os.path.join(self._path, "*.db"))
            if _size(path) >= _SAMPLE_HEADER_BYTES
        ]
        # prometheus_client leaves merge unannotated
        return self.merge(files, accumulate=True)  # type: ignore[no-untyped-call, no-any-return]


_SAMPLE_HEADER_BYTES = 8  # a sample file starts with its used length and padding


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:  # removed by a worker's exit hook between glob and stat
        return 0
