"""``featurestore monitor run | history | report``: JSON shapes, the alert exit code, the text
output and the HTML page with a series per feature."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from tests.cli.helpers import run
from tests.monitoring.monitor.payments import open_repo, serve_hours

ALERT = """
- name: amount-drift
  features: [payment:amount_v]
  statistic: ks_d
  window: 1h
"""
UNTIL = "2026-03-01T06:00:00Z"


def _repo(make_repo: Callable[..., Path], drifting: bool) -> Path:
    store = open_repo(make_repo, ALERT)
    serve_hours(store, range(6), rows=1000, shift=lambda h: 0.8 if drifting and h >= 4 else 0.0)
    root = store.repo.root
    store.close()
    return root


def test_run_and_history_as_json(make_repo: Callable[..., Path]) -> None:
    root = _repo(make_repo, drifting=True)
    done = run("monitor", "run", "--until", UNTIL, "--json", "--fail-on-alert", cwd=root)
    assert done.returncode == 3, done.stderr  # the drift alert fires and is still firing
    result = json.loads(done.stdout)
    assert result["records_summarized"] == 6000 and len(result["hours"]) == 6
    (fired,) = result["alerts"]
    assert fired["state"] == "firing" and fired["feature"] == "payment:amount_v"
    assert result["firing"] == [fired]
    shown = run("monitor", "history", "--feature", "payment:amount_v", "--json", cwd=root)
    assert shown.returncode == 0, shown.stderr
    history = json.loads(shown.stdout)
    assert (history["feature"], history["window"]) == ("payment:amount_v", "1h")
    points = history["points"]
    assert [p["verdict"] for p in points] == ["ok"] * 4 + ["flagged"] * 2
    assert points[0]["start"] == "2026-03-01T00:00:00+00:00" and points[0]["rows"] == 1000
    assert {"psi", "ks_d", "ks_d_threshold", "null_rate", "match_rate"} <= set(points[0])
    again = run("monitor", "run", "--until", UNTIL, "--json", cwd=root)
    assert again.returncode == 0 and json.loads(again.stdout)["alerts"] == []


def test_text_output_and_a_clean_run(make_repo: Callable[..., Path]) -> None:
    root = _repo(make_repo, drifting=False)
    done = run("monitor", "run", "--until", UNTIL, "--fail-on-alert", cwd=root)
    assert done.returncode == 0, done.stderr
    assert "Summarized 6,000 records" in done.stdout and "No alert is firing." in done.stdout
    shown = run("monitor", "history", "--feature", "payment:channel_v", "--window", "1d", cwd=root)
    assert shown.returncode == 0 and "linf" in shown.stdout and "2026-03-01 00:00" in shown.stdout
    wrong = run("monitor", "history", "--feature", "payment:nope", cwd=root)
    assert wrong.returncode == 1 and "is not monitored" in wrong.stderr


def test_report_html_draws_each_feature_series(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    root = _repo(make_repo, drifting=True)
    assert run("monitor", "run", "--until", UNTIL, cwd=root).returncode == 0
    page = tmp_path / "monitoring.html"
    done = run("monitor", "report", "--window", "1h", "--html", str(page), "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["features"][0]["ref"] == "payment:amount_v"  # flagged first
    assert [f["verdict"] for f in report["features"]] == ["flagged", "ok", "ok"]
    series = report["features"][0]["series"]
    assert series["statistic"] == "ks_d" and len(series["points"]) == 6
    html = page.read_text()
    assert len(re.findall(r'<svg class="fs-chart fs-series"', html)) == 3
    assert html.count('class="fs-dot-flagged"') == 2  # the two drifted hours
    nothing = run("monitor", "report", cwd=make_repo("empty", definitions=None, data={}))
    assert nothing.returncode == 1


def test_export_writes_rules_and_a_dashboard(
    make_repo: Callable[..., Path], tmp_path: Path
) -> None:
    import yaml

    root = _repo(make_repo, drifting=False)
    rules, dashboard = tmp_path / "rules.yml", tmp_path / "dashboard.json"
    done = run(
        "monitor", "export", "--prometheus-rules", str(rules), "--grafana", str(dashboard), cwd=root
    )
    assert done.returncode == 0, done.stderr
    (group,) = yaml.safe_load(rules.read_text())["groups"]
    alerts = [r for r in group["rules"] if "featurestore_alert" in r.get("labels", {})]
    assert [r["labels"]["featurestore_alert"] for r in alerts] == ["amount-drift"]
    assert "featurestore_feature_drift" in alerts[0]["expr"]
    assert json.loads(dashboard.read_text())["panels"]
    missing = run("monitor", "export", cwd=root)
    assert missing.returncode == 2 and "--prometheus-rules" in missing.stderr
