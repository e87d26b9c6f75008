"""``featurestore demo`` end to end in a fresh directory, twice, as a new user runs it; and its
one usage error."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from featurestore import TrainingSet
from featurestore.serving import read_serving_log
from tests.cli.helpers import run as run_in_process


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``featurestore ARGS`` in a new interpreter. The demo runs this way, unlike the other
    verbs' tests: it is what a new user runs first, so nothing imported or set up by earlier
    tests may help it along; and it starts, signals and waits for server processes of its own,
    whose exit it reports."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "featurestore.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_demo_refuses_fewer_than_one_user(tmp_path: Path) -> None:
    result = run_in_process("demo", "--users", "0", cwd=tmp_path)
    assert result.returncode == 2
    assert "Invalid value for --users: must be at least 1" in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing copied or generated


def test_demo_runs_end_to_end_in_a_fresh_directory(tmp_path: Path) -> None:
    result = run("demo", "--users", "300", "--seed", "3", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    repo = tmp_path / "featurestore-demo"
    assert (repo / "featurestore.yaml").is_file() and (repo / "generate_data.py").is_file()
    out = result.stdout
    for expected in ["Applied project fraud_detection", "fraud_detection_v1", "Done in"]:
        assert expected in out
    ts = TrainingSet.load(repo / "data" / "training_sets" / "fraud_v1.parquet")
    txns = pl.read_parquet(repo / "data" / "transactions" / "*.parquet")
    before_drift = txns.filter(pl.col("event_time") < dt.datetime(2025, 2, 15, tzinfo=dt.UTC))
    assert ts.metadata.row_count == before_drift.height > 0
    assert f"{before_drift.height:,} rows x 21 features" in out
    assert "pair_txn_count" in out and "defaulted" in out and ts.metadata.profiles
    online = check_online_step(out)
    check_http_step(out, sample_rows=online)
    assert "  featurestore serve --repo featurestore-demo" in out.splitlines()
    check_windows_step(out)
    check_definition_change_step(out)

    again = run("demo", "--users", "300", "--seed", "3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Using the existing copy" in again.stdout and "no changes" in again.stdout
    assert "online == offline for 105 values" in again.stdout
    assert "refused" not in again.stdout  # the same data passes the guard
    check_http_step(again.stdout, sample_rows=online)
    logged = read_serving_log(repo / ".featurestore" / "logs")
    served = logged.filter(~pl.col("request_id").str.starts_with("demo-"))
    # per run: the HTTP step's 21 requests of 5 rows, the definition step's 3 of 5 rows
    assert served.height == 2 * (105 + 15) and served["request_id"].n_unique() == 2 * (21 + 3)
    # the reports step: one run's records (the second run replaced the first's)
    assert logged.height - served.height == min(txns.height, 4_000)
    check_reports_step(again.stdout, repo)
    check_status_step(again.stdout)


def check_online_step(out: str) -> str:
    """Every online view materialized, five payments served with every kind of status, and
    each served value equal to a training set's at the same time; returns the step's text."""
    online = out[out.index("Materialize and serve online") : out.index("Serve over HTTP")]
    assert "Materialized 4 view(s) as of" in online
    assert any(ln.startswith("user_spending ") for ln in online.splitlines())
    for view in ["user_profile", "merchant_profile", "user_merchant"]:
        assert len([ln for ln in online.splitlines() if ln.startswith(f"{view} ")]) >= 2
    assert "5 entity row(s) x 21 feature(s)" in online
    statuses = online.split()
    assert {"PRESENT", "NOT_FOUND", "DEFAULTED"} <= set(statuses) and "fingerprint" in statuses
    assert "online == offline for 105 values (5 rows x 21 features" in online
    assert "online != offline" not in online
    return online


def check_windows_step(out: str) -> None:
    """Window values equal offline ones, rise with a pushed burst and land in the files."""
    windows = out[out.index("Windowed aggregations and pushes") : out.index("Serve over HTTP")]
    assert "online window values equal the training set's" in windows
    assert "+3 pushed" in windows and "1 day later" in windows
    assert "the push also landed in the source's files" in windows
    assert "holds the same values" in windows


def check_definition_change_step(out: str) -> None:
    """The edit is planned and applied, the server switches, and the values it serves say
    which definition computed them before and after the rebuild."""
    change = " ".join(
        out[out.index("Change a definition") : out.index("Check the repo's status")].split()
    )
    assert "0 added, 1 changed, 0 removed" in change
    assert "expr.Function.function.Round.decimals: 3 -> 2" in change
    assert "switched=True, now serving registry version" in change
    assert "before the rebuild: user_merchant:pair_chargeback_rate served under" in change
    assert "with applied_fingerprint" in change and "full rebuild" in change
    assert "after the rebuild: user_merchant:pair_chargeback_rate served" in change
    assert "the applied one: every value was computed by the new definition" in change
    assert "restored, applied and user_merchant re-published" in change


def check_status_step(out: str) -> None:
    """Every view is ok once the demo is done."""
    status = out[out.index("Check the repo's status") :]
    for view in ["user_profile", "merchant_profile", "user_merchant", "user_spending", "txn_risk"]:
        assert any(
            ln.startswith(f"{view} ") and ln.split()[-1] == "ok" for ln in status.splitlines()
        )
    assert "No problems found." in status


def check_reports_step(out: str, repo: Path) -> None:
    """The injected skew (a stalled view) and drift (two merchant features) are flagged, and
    nothing else; both HTML reports are written."""
    reports = out[
        out.index("Report training/serving skew and drift") : out.index("Check the repo's")
    ]
    skew_part = reports[: reports.index("expected:")]
    flagged = {ln.split()[1] for ln in skew_part.splitlines() if ln.strip().startswith("flagged")}
    assert flagged == {"merchant_profile:risk_score"}
    assert "stale materialization" in (repo / "data" / "reports" / "skew.html").read_text()
    drift_part = reports[reports.index("expected:") :]
    flagged = {ln.split()[1] for ln in drift_part.splitlines() if ln.strip().startswith("flagged")}
    assert flagged == {"merchant_profile:risk_score", "merchant_profile:online_only"}
    for name in ("skew.html", "drift.html"):
        page = (repo / "data" / "reports" / name).read_text()
        assert page.count('class="fs-chart"') >= 10


def check_http_step(out: str, sample_rows: str) -> None:
    """The demo's HTTP step: the served rows equal in-process ones, the metrics count the
    requests, the server is gone and its serving log holds one record per served row."""
    http = out[out.index("Serve over HTTP") : out.index("Done in")]
    lines = http.splitlines()
    ready = next(ln for ln in lines if "ready at http://127.0.0.1:" in ln)
    pid = int(re.search(r"\(pid (\d+)\)", ready).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):  # stopped, not left running
        os.kill(pid, 0)
    # the table: one line per sample row, with the same keys as the in-process step
    rows = [ln.split()[:2] for ln in lines if re.match(r"\d+ +\d+ ", ln)]
    in_process = [ln.split()[:2] for ln in sample_rows.splitlines() if re.match(r"\d+ +\d+ ", ln)]
    assert len(rows) == 5 and rows == in_process[:5]
    assert "statuses of the 21 features" in http
    assert "HTTP == in-process for 105 values (5 rows x 21 features" in http
    assert "HTTP != in-process" not in http
    # the first request, then 20 timed ones: 21 requests of 5 rows x 21 features
    counter = 'featurestore_http_requests_total{endpoint="/v1/online-features",status="200"} 21.0'
    assert f"  {counter}" in lines
    served = next(ln for ln in lines if "featurestore_served_values_total summed by status:" in ln)
    counts = re.findall(r"([A-Z_]+) ([\d,]+)", served.partition(":")[2])
    assert {s for s, _ in counts} <= {"PRESENT", "NOT_FOUND", "DEFAULTED", "STALE", "INVALID"}
    assert sum(int(n.replace(",", "")) for _, n in counts) == 21 * 105
    assert "stopped the server with SIGTERM: graceful shutdown, serving log flushed" in http
    assert "serving log: 105 record(s) from this server (21 request(s)" in http
    curl = next(ln.strip() for ln in lines if ln.strip().startswith("curl "))
    assert curl.startswith("curl -s http://127.0.0.1:6566/v1/online-features ")
    body = json.loads(shlex.split(curl)[-1])
    assert body["feature_service"] == "fraud_detection_v1"
    assert body["entities"] == {"user_id": [int(rows[0][0])], "merchant_id": [int(rows[0][1])]}
    assert set(body["request_data"]) == {"amount", "channel"}
