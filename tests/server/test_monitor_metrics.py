"""Monitoring at ``GET /metrics``: the newest windows and alerts that ``monitor run`` wrote under
the data directory become gauges per feature, window, statistic and status; each view's ttl
stands beside the age of its newest value; a missing or corrupt file exports nothing and the
scrape still succeeds."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from featurestore import FeatureStore
from featurestore.monitoring._monitor._history import HISTORY_SCHEMA
from featurestore.monitoring._monitor._metric_names import (
    ALERT_FIRING,
    ALERTS_FILE,
    DRIFT,
    DRIFT_FLAGGED,
    DRIFT_THRESHOLD,
    LATEST_FILE,
    MATCH_RATE,
    MONITOR_LAST_RUN,
    MONITORING_DIR,
    NULL_RATE,
    STATISTICS,
    STATUS_RATE,
    STATUSES,
    VIEW_AGE,
    VIEW_TTL,
    WINDOW_ROWS,
)
from featurestore.server._app import create_app
from featurestore.server._metrics import MULTIPROC_ENV, ServerMetrics
from featurestore.server._monitor_metrics import MonitorCollector

from .conftest import TestClient

MONITOR_NAMES = (
    DRIFT,
    DRIFT_THRESHOLD,
    DRIFT_FLAGGED,
    NULL_RATE,
    STATUS_RATE,
    WINDOW_ROWS,
    MATCH_RATE,
    MONITOR_LAST_RUN,
    ALERT_FIRING,
)
AGE, COUNTRY = "user_profile:age", "user_profile:country"


def point(**overrides: Any) -> dict[str, Any]:
    """A window point as ``monitor run`` writes it into latest.json."""
    out: dict[str, Any] = {
        "start": "2026-03-01T10:00:00+00:00",
        "end": "2026-03-01T11:00:00+00:00",
        "rows": 120,
        "null_rate": 0.05,
        "present_rate": 0.8,
        "not_found_rate": 0.1,
        "stale_rate": 0.05,
        "defaulted_rate": 0.03,
        "invalid_rate": 0.02,
        "psi": 0.31,
        "ks_d": 0.12,
        "linf": None,
        "true_rate_change": None,
        "null_rate_change": 0.01,
        "psi_threshold": 0.2,
        "ks_d_threshold": 0.15,
        "linf_threshold": None,
        "true_rate_change_threshold": None,
        "null_rate_change_threshold": 0.04,
        "match_rate": 0.99,
        "verdict": "flagged",
        "flagged": ["psi"],
    }
    return out | overrides


LATEST = {
    "until": "2026-03-01T11:05:00+00:00",
    "windows": {
        "1h": {AGE: point(), COUNTRY: point(psi=0.01, verdict="ok", flagged=[], match_rate=None)},
        "1d": {
            AGE: point(
                rows=3, psi=None, ks_d=None, null_rate_change=None, verdict="insufficient_data"
            )
        },
    },
}
ALERTS = {
    "evaluated": {"age psi": "2026-03-01T11:00:00+00:00"},
    "tracks": {
        "age psi": {AGE: {"firing": True, "streak": 3}, COUNTRY: {"firing": False, "streak": 0}},
    },
    "undelivered": [],
}


def write_monitoring(store: FeatureStore, latest: Any = LATEST, alerts: Any = ALERTS) -> Path:
    """Write latest.json and alerts.json (text as is, else as JSON) where the server reads them."""
    directory = store.repo.data_dir / MONITORING_DIR
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in ((LATEST_FILE, latest), (ALERTS_FILE, alerts)):
        (directory / name).write_text(data if isinstance(data, str) else json.dumps(data))
    return directory


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, by name and labels."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def of(scraped: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> dict[Any, float]:
    """The samples of metric ``name``, by their label values in label-name order."""
    return {
        tuple(v for _, v in sorted(labels)): value
        for (n, labels), value in scraped.items()
        if n == name
    }


@pytest.fixture
def client(make_store: Callable[..., FeatureStore]) -> Any:
    store = make_store()
    with TestClient(create_app(store)) as c:
        c.store = store
        yield c


def test_the_newest_windows_and_alerts_are_exported_per_feature(client: Any) -> None:
    write_monitoring(client.store)
    resp = client.get("/metrics")
    assert resp.status_code == 200
    scraped = samples(resp.text)
    # label values in label-name order: feature, statistic, window
    assert of(scraped, DRIFT) == {
        (AGE, "psi", "1h"): 0.31,
        (AGE, "ks_d", "1h"): 0.12,
        (AGE, "null_rate_change", "1h"): 0.01,
        (COUNTRY, "psi", "1h"): 0.01,
        (COUNTRY, "ks_d", "1h"): 0.12,
        (COUNTRY, "null_rate_change", "1h"): 0.01,
    }  # null statistics (too few rows, not that kind of feature) are left out
    assert of(scraped, DRIFT_THRESHOLD)[(AGE, "psi", "1h")] == 0.2
    assert of(scraped, DRIFT_THRESHOLD)[(AGE, "psi", "1d")] == 0.2  # with no statistic
    assert (AGE, "linf", "1h") not in of(scraped, DRIFT_THRESHOLD)
    assert of(scraped, NULL_RATE)[(AGE, "1h")] == 0.05
    statuses = of(scraped, STATUS_RATE)  # feature, status, window
    assert {s for (ref, s, w) in statuses if ref == AGE and w == "1h"} == set(STATUSES)
    assert statuses[(AGE, "not_found", "1h")] == 0.1
    assert of(scraped, WINDOW_ROWS) == {(AGE, "1h"): 120, (COUNTRY, "1h"): 120, (AGE, "1d"): 3}
    assert of(scraped, MATCH_RATE) == {(AGE, "1h"): 0.99, (AGE, "1d"): 0.99}
    assert of(scraped, DRIFT_FLAGGED) == {(AGE, "1h"): 1, (COUNTRY, "1h"): 0, (AGE, "1d"): 0}
    assert of(scraped, ALERT_FIRING) == {("age psi", AGE): 1, ("age psi", COUNTRY): 0}
    written = (client.store.repo.data_dir / MONITORING_DIR / LATEST_FILE).stat().st_mtime
    assert of(scraped, MONITOR_LAST_RUN) == {(): pytest.approx(written)}


def test_each_view_exports_its_ttl_beside_the_age_of_its_newest_value(client: Any) -> None:
    scraped = samples(client.get("/metrics").text)
    assert of(scraped, VIEW_TTL) == {("user_profile",): 30 * 86400.0, ("merchant_stats",): 86400.0}
    assert set(of(scraped, VIEW_AGE)) == {("user_profile",), ("merchant_stats",)}


@pytest.mark.parametrize(
    "latest",
    ["{not json", "", "[1, 2]", json.dumps({"until": "x", "windows": [1]}), None],
    ids=["corrupt", "empty", "a list", "windows not a mapping", "missing"],
)
def test_a_missing_or_corrupt_latest_file_exports_nothing_and_the_scrape_succeeds(
    client: Any, latest: str | None
) -> None:
    directory = write_monitoring(client.store, alerts="{oops")
    if latest is None:
        (directory / LATEST_FILE).unlink()
    else:
        (directory / LATEST_FILE).write_text(latest)
    resp = client.get("/metrics")
    assert resp.status_code == 200
    names = {name for name, _ in samples(resp.text)}
    assert names.isdisjoint(MONITOR_NAMES)
    assert VIEW_AGE in names  # the other metrics are unaffected


def test_a_new_run_is_read_at_the_next_scrape_and_an_unchanged_file_is_not_reparsed(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = write_monitoring(client.store)
    assert of(samples(client.get("/metrics").text), DRIFT)[(AGE, "psi", "1h")] == 0.31
    parsed: list[int] = []
    original = json.loads
    monkeypatch.setattr(json, "loads", lambda text: parsed.append(1) or original(text))
    client.get("/metrics")
    assert parsed == []  # both files served from the cache
    write_monitoring(client.store, LATEST | {"windows": {"1h": {AGE: point(psi=0.5)}}})
    os.utime(directory / LATEST_FILE, ns=(0, 10**18))  # a new mtime even on coarse clocks
    assert of(samples(client.get("/metrics").text), DRIFT)[(AGE, "psi", "1h")] == 0.5


def test_monitoring_is_exported_in_multiprocess_mode_too(
    make_store: Callable[..., FeatureStore], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Custom collectors go on the registry built per scrape from the workers' sample files."""
    store = make_store()
    write_monitoring(store)
    (tmp_path / "prom").mkdir()
    monkeypatch.setenv(MULTIPROC_ENV, str(tmp_path / "prom"))
    metrics = ServerMetrics(store)
    assert metrics.multiprocess
    scraped = samples(metrics.render().decode())
    assert of(scraped, ALERT_FIRING)[("age psi", AGE)] == 1
    assert of(scraped, VIEW_TTL)[("merchant_stats",)] == 86400.0


def test_the_collector_reads_every_key_a_window_point_has() -> None:
    """The keys the collector exports are columns of monitoring's window points."""
    keys = {"rows", "null_rate", "match_rate", "verdict"}
    keys |= {f"{s}_rate" for s in STATUSES} | set(STATISTICS)
    keys |= {f"{s}_threshold" for s in STATISTICS}
    assert keys <= set(HISTORY_SCHEMA)


def test_the_collector_of_a_directory_that_does_not_exist_exports_nothing(tmp_path: Path) -> None:
    assert list(MonitorCollector(tmp_path / "nowhere").collect()) == []
