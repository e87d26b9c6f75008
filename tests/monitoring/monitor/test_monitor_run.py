"""``monitor run`` end to end: summaries of a served week, alerts sent once per incident to a
real local webhook, idempotent and resumable runs, restarts that keep history, and concurrent
runs that count each log file once."""

from __future__ import annotations

import datetime as dt
import fcntl
import threading
import time
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.errors import ConfigError, FeatureReferenceError
from featurestore.monitoring import MonitorRun
from tests.monitoring.monitor.payments import FEATURES, START, open_repo, serve_hours
from tests.monitoring.monitor.receiver import webhook_receiver

AMOUNT = "payment:amount_v"


def _drift_alert(url: str, consecutive: int = 2, cooldown: str = "0s") -> str:
    return f"""
- name: amount-drift
  features: [{AMOUNT}]
  statistic: ks_d
  threshold: calibrated
  window: 1h
  consecutive: {consecutive}
  cooldown: {cooldown}
  severity: critical
  webhook: {url}
"""


def _shift(hours: range, by: float = 0.6) -> Callable[[int], float]:
    return lambda hour: by if hour in hours else 0.0


def test_one_webhook_per_incident_and_a_resolve(make_repo: Callable[..., Path]) -> None:
    with webhook_receiver() as hook:
        store = open_repo(make_repo, _drift_alert(hook.url))
        served = serve_hours(store, range(12), shift=_shift(range(5, 9)))
        run = store.monitor(until=START + dt.timedelta(hours=12))
        assert run.records == served
        assert [(e["state"], e["window_start"]) for e in hook.received] == [
            ("firing", (START + dt.timedelta(hours=6)).isoformat()),  # the 2nd window past it
            ("resolved", (START + dt.timedelta(hours=9)).isoformat()),
        ]
        fired = hook.received[0]
        assert fired["alert"] == "amount-drift" and fired["feature"] == AMOUNT
        assert fired["statistic"] == "ks_d" and fired["value"] > fired["threshold"] > 0
        assert fired["severity"] == "critical" and fired["owner"] == "risk"
        assert run.firing == []
        again = store.monitor(until=START + dt.timedelta(hours=12))
        assert (again.files, again.records, again.alerts) == (0, 0, [])
        assert len(hook.received) == 2
        store.close()


def test_clean_hours_raise_nothing(make_repo: Callable[..., Path]) -> None:
    with webhook_receiver() as hook:
        store = open_repo(make_repo, _drift_alert(hook.url, consecutive=1))
        serve_hours(store, range(24), rows=1000)
        run = store.monitor(until=START + dt.timedelta(days=1))
        assert run.alerts == [] and hook.received == []
        history = store.monitor_history(AMOUNT, "1h")
        assert history.height == 24 and set(history["verdict"]) == {"ok"}
        store.close()


def test_history_matches_what_was_served(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo)
    serve_hours(store, range(3), rows=1500, shift=_shift(range(2, 3), by=2.0))
    store.monitor(until=START + dt.timedelta(hours=3))
    hourly = store.monitor_history(AMOUNT, "1h")
    assert hourly["rows"].to_list() == [1500, 1500, 1500]
    assert hourly["start"].to_list() == [START + dt.timedelta(hours=h) for h in range(3)]
    assert hourly["verdict"].to_list() == ["ok", "ok", "flagged"]
    assert hourly["present_rate"].to_list() == [1.0, 1.0, 1.0]
    daily = store.monitor_history(AMOUNT, "1d")
    assert daily["rows"].to_list() == [4500]
    # the window statistics equal the drift report's over the same served values
    report = store.drift_report(
        store.repo.root / "ref.parquet",
        f"log:{START.isoformat()}..{(START + dt.timedelta(hours=3)).isoformat()}",
        [AMOUNT],
    )
    (feature,) = report.features
    assert daily["ks_d"][0] == pytest.approx(feature.stats["ks_d"], rel=1e-9)
    assert daily["psi"][0] == pytest.approx(feature.stats["psi"], rel=1e-9)
    channel = store.monitor_history("payment:channel_v", "1d")
    assert channel["linf"][0] is not None and channel["ks_d"][0] is None
    flag = store.monitor_history("payment:flag_v", "1d")
    assert flag["true_rate_change"][0] is not None and flag["psi"][0] is None
    store.close()


def test_a_restart_keeps_history_and_resumes(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo)
    first = serve_hours(store, range(0, 4), rows=1000)
    assert store.monitor(until=START + dt.timedelta(hours=4)).records == first
    before = store.monitor_history(AMOUNT, "1h")
    root = store.repo.root
    store.close()
    store = FeatureStore(root)
    assert store.monitor_history(AMOUNT, "1h").equals(before)
    later = serve_hours(store, range(4, 6), rows=1000, seed=7)
    run = store.monitor(until=START + dt.timedelta(hours=6))
    assert run.records == later
    after = store.monitor_history(AMOUNT, "1h")
    assert after.head(4).equals(before) and after["rows"].to_list() == [1000] * 6
    store.close()


def test_late_records_of_a_summarized_hour_are_added(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo)
    serve_hours(store, range(2), rows=1000)
    store.monitor(until=START + dt.timedelta(hours=2))
    serve_hours(store, range(1, 2), rows=500, seed=3)  # more records of hour 1, logged later
    store.monitor(until=START + dt.timedelta(hours=2))
    assert store.monitor_history(AMOUNT, "1h")["rows"].to_list() == [1000, 1500]
    store.close()


def test_concurrent_runs_count_each_file_once(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo)
    served = serve_hours(store, range(6), rows=1000)
    root = store.repo.root
    lock_path = root / ".featurestore" / "monitoring" / ".run.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    results: list[MonitorRun] = []
    with open(lock_path, "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # both runs start while another run holds the lock

        def run() -> None:
            other = FeatureStore(root)
            try:
                results.append(other.monitor(until=START + dt.timedelta(hours=6)))
            finally:
                other.close()

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        assert results == []  # both wait for the lock
        fcntl.flock(held, fcntl.LOCK_UN)
    for t in threads:
        t.join(60)
    assert sorted(r.records for r in results) == [0, served]
    assert store.monitor_history(AMOUNT, "1h")["rows"].to_list() == [1000] * 6
    store.close()


def test_a_run_killed_midway_is_resumed_without_double_counting(
    make_repo: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurestore.monitoring._monitor import _summary_files

    store = open_repo(make_repo)
    serve_hours(store, range(22, 26), rows=1000)  # two UTC days
    real = _summary_files._write_day
    calls: list[Path] = []

    def dies_on_the_second_day(path: Path, rows: pl.DataFrame, counted: set[str]) -> None:
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt("killed")
        real(path, rows, counted)

    monkeypatch.setattr(_summary_files, "_write_day", dies_on_the_second_day)
    with pytest.raises(KeyboardInterrupt):
        store.monitor(until=START + dt.timedelta(hours=26))
    monkeypatch.setattr(_summary_files, "_write_day", real)
    run = store.monitor(until=START + dt.timedelta(hours=26))
    assert run.records == 2000  # only the second day was left
    assert store.monitor_history(AMOUNT, "1h")["rows"].to_list() == [1000] * 4
    store.close()


def test_a_webhook_that_fails_is_retried_then_delivered_once(
    make_repo: Callable[..., Path],
) -> None:
    with webhook_receiver() as hook:
        store = open_repo(make_repo, _drift_alert(hook.url, consecutive=1))
        serve_hours(store, range(3), shift=_shift(range(1, 3)))
        hook.fail_next = 1  # the first attempt gets a 500, the retry succeeds
        run = store.monitor(until=START + dt.timedelta(hours=3))
        assert [e["state"] for e in hook.received] == ["firing"]
        assert run.undelivered == 0 and [e.feature for e in run.firing] == [AMOUNT]
        store.close()


def test_an_unreachable_webhook_is_delivered_at_the_next_run(
    make_repo: Callable[..., Path],
) -> None:
    with webhook_receiver() as hook:
        store = open_repo(make_repo, _drift_alert(hook.url, consecutive=1))
        serve_hours(store, range(3), shift=_shift(range(1, 3)))
        hook.fail_next = 100
        run = store.monitor(until=START + dt.timedelta(hours=3))
        assert run.undelivered == 1 and hook.received == []
        hook.fail_next = 0
        again = store.monitor(until=START + dt.timedelta(hours=3))
        assert again.undelivered == 0 and again.alerts == []
        assert [e["state"] for e in hook.received] == ["firing"]
        store.close()


def test_cooldown_silences_a_flapping_feature(make_repo: Callable[..., Path]) -> None:
    with webhook_receiver() as hook:
        store = open_repo(make_repo, _drift_alert(hook.url, consecutive=1, cooldown="3h"))
        drifting = {1, 3, 8}  # resolves at 2, back at 3 (within 3h: quiet), again at 8
        serve_hours(store, range(10), rows=1000, shift=lambda h: 0.8 if h in drifting else 0.0)
        store.monitor(until=START + dt.timedelta(hours=10))
        states = [(e["state"], e["window_start"][11:16]) for e in hook.received]
        assert states == [
            ("firing", "01:00"),
            ("resolved", "02:00"),
            ("firing", "08:00"),
            ("resolved", "09:00"),
        ]
        store.close()


def test_bad_monitoring_settings_are_named(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo, "- name: x\n  features: [payment:nope]")
    serve_hours(store, range(1), rows=500)
    with pytest.raises(ConfigError, match=r"payment:nope not monitored; monitored features"):
        store.monitor(until=START + dt.timedelta(hours=1))
    with pytest.raises(FeatureReferenceError, match="is not monitored"):
        store.monitor_history("payment:amount", "1h")
    (store.repo.root / "ref.parquet").unlink()
    with pytest.raises(ConfigError, match=r"monitoring\.reference: training set 'ref\.parquet'"):
        store.monitor()
    store.close()


def test_every_monitored_feature_and_status_is_summarized(make_repo: Callable[..., Path]) -> None:
    store = open_repo(make_repo)
    serve_hours(store, range(1), rows=800)
    store.monitor(until=START + dt.timedelta(hours=1))
    for ref in FEATURES:
        (point,) = store.monitor_history(ref, "1h").iter_rows(named=True)
        assert point["rows"] == 800 and point["null_rate"] == 0.0
        assert point["present_rate"] == 1.0 and point["not_found_rate"] == 0.0
    store.close()


def test_seven_clean_days_send_nothing_then_one_incident_sends_one(
    make_repo: Callable[..., Path],
) -> None:
    with webhook_receiver() as hook:
        rules = "".join(
            f"""
- name: {statistic}-{window}
  statistic: {statistic}
  window: {window}
  webhook: {hook.url}
"""
            for statistic, window in (("psi", "1h"), ("psi", "1d"), ("ks_d", "1d"))
        )
        store = open_repo(make_repo, rules)
        serve_hours(store, range(7 * 24), rows=600)
        clean = store.monitor(until=START + dt.timedelta(days=7))
        assert clean.alerts == [] and hook.received == []
        serve_hours(store, range(7 * 24, 8 * 24), rows=600, shift=lambda h: 1.0, seed=9)
        store.monitor(until=START + dt.timedelta(days=8))
        fired = [(e["alert"], e["feature"], e["state"]) for e in hook.received]
        assert sorted(fired) == [
            ("ks_d-1d", AMOUNT, "firing"),
            ("psi-1d", AMOUNT, "firing"),
            ("psi-1h", AMOUNT, "firing"),  # one incident: fired once, not once per hour
        ]
        store.close()


def test_owner_routing_sends_to_the_owner_webhook_too(make_repo: Callable[..., Path]) -> None:
    with webhook_receiver() as rule_hook, webhook_receiver() as owner_hook:
        extra = (
            f"  owner_webhooks:\n    risk: {owner_hook.url}\n    other-team: http://127.0.0.1:9/\n"
        )
        store = open_repo(make_repo, _drift_alert(rule_hook.url, consecutive=1), extra=extra)
        serve_hours(store, range(2), shift=_shift(range(1, 2)))
        store.monitor(until=START + dt.timedelta(hours=2))
        assert rule_hook.received == owner_hook.received
        assert [(e["state"], e["owner"]) for e in owner_hook.received] == [("firing", "risk")]
        store.close()


def test_day_totals_equal_the_summed_hours(make_repo: Callable[..., Path]) -> None:
    from featurestore.monitoring._monitor._summaries import sum_summaries
    from featurestore.monitoring._monitor._summary_files import read_summaries

    store = open_repo(make_repo)
    serve_hours(store, range(20, 30), rows=700, shift=_shift(range(25, 27)))  # two UTC days
    store.monitor(until=START + dt.timedelta(hours=30))
    serve_hours(store, range(28, 29), rows=300, seed=5)  # a later file of the second day
    store.monitor(until=START + dt.timedelta(hours=30))
    (directory,) = (store.repo.data_dir / "monitoring" / "summaries").iterdir()
    hourly = read_summaries(directory)
    days = read_summaries(directory, whole_days=True)
    expected = sum_summaries(hourly.with_columns(pl.col("hour").dt.truncate("1d")))
    assert hourly.height == 10 * 3 and days.height == 2 * 3
    key = ["hour", "feature"]
    assert days.sort(key).equals(expected.select(days.columns).sort(key))
    daily = store.monitor_history(AMOUNT, "1d")
    assert daily["rows"].to_list() == [4 * 700, 6 * 700 + 300]
    store.close()


def test_a_corrupt_alert_state_is_named_not_a_traceback(make_repo: Callable[..., Path]) -> None:
    from featurestore.errors import ReportError

    store = open_repo(make_repo, _drift_alert("http://127.0.0.1:9/hook"))
    serve_hours(store, range(1), rows=500)
    state = store.repo.data_dir / "monitoring" / "alerts.json"
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text("{not json")
    with pytest.raises(ReportError, match=r"alert state .* cannot be read.*delete it"):
        store.monitor(until=START + dt.timedelta(hours=1))
    state.unlink()  # the summaries written before the failure are kept, not counted again
    assert store.monitor(until=START + dt.timedelta(hours=1)).records == 0
    assert store.monitor_history(AMOUNT, "1h")["rows"].to_list() == [500]
    store.close()
