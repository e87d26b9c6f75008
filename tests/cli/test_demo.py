"""``featurestore demo`` end to end in a fresh directory, twice, as a new user runs it; its
one usage error; and, in this process with its clock pinned, what it prints by default and with
--verbose, and that only the times of its data follow the clock."""

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
import polars.selectors as cs
import pytest

from featurestore import TrainingSet
from featurestore.cli._demo import load_generator
from featurestore.cli._demo._setup import NOW_ENV
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


def drift_start(out: str) -> dt.datetime:
    """The time the demo says its injected drift starts at (its data ends 15 days later)."""
    found = re.search(r"injected drift from (\S+ \S+) UTC on", out)
    assert found, out
    return dt.datetime.fromisoformat(found[1]).replace(tzinfo=dt.UTC)


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
    before_drift = txns.filter(pl.col("event_time") < drift_start(out))
    assert ts.metadata.row_count == before_drift.height > 0
    assert f"{before_drift.height:,} rows x 21 features" in out
    assert "pair_txn_count" in out and "defaulted" in out and ts.metadata.profiles
    online = check_online_step(out)
    check_http_step(out, sample_rows=online)
    assert "  featurestore serve --repo featurestore-demo" in out.splitlines()
    check_windows_step(out)
    check_monitoring_step(out, repo)
    check_definition_change_step(out)

    again = run("demo", "--users", "300", "--seed", "3", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "Using the existing copy" in again.stdout and "no changes" in again.stdout
    assert "online == offline for 105 values" in again.stdout
    assert "refused" not in again.stdout  # the same data passes the guard
    check_http_step(again.stdout, sample_rows=check_online_step(again.stdout))
    logged = read_serving_log(repo / ".featurestore" / "logs")
    week = logged.filter(pl.col("request_id").str.starts_with("week-"))
    served = logged.filter(
        ~pl.col("request_id").str.starts_with("demo-")
        & ~pl.col("request_id").str.starts_with("week-")
    )
    # per run: the HTTP step's 21 requests of 5 rows, the definition step's 3 of 5 rows
    assert served.height == 2 * (105 + 15) and served["request_id"].n_unique() == 2 * (21 + 3)
    # the monitoring step: a simulated week of 100 payments an hour, per run
    assert week.height == 2 * 7 * 24 * 50
    # the reports step: each run logged its payments as of its own last one
    assert logged.height - served.height - week.height == 2 * min(txns.height, 4_000)
    check_reports_step(again.stdout, repo)
    check_status_step(again.stdout)


def check_monitoring_step(out: str, repo: Path) -> None:
    """A simulated week with amounts 2.5 times larger from day 5: one alert, on the watched
    feature, for the window of day 6 (the rule wants two days in a row); none before; the
    daily history and an HTML report with a series per monitored feature."""
    step = out[out.index("Monitor a week of serving") : out.index("Change a definition")]
    fired = [ln for ln in step.splitlines() if ln.startswith("FIRING ")]
    assert len(fired) == 1 and "payment-amounts txn_risk:amount_vs_ticket: ks_d" in fired[0]
    assert "RESOLVED" not in step and "Firing now: payment-amounts" in step
    (line,) = [ln for ln in step.splitlines() if ln.strip().startswith("verdicts: ")]
    verdicts = line.split()[2::2]  # "verdicts:", then a date and a verdict per day
    assert verdicts[-3:] == ["flagged"] * 3 and verdicts[-7:-3] == ["ok"] * 4
    page = (repo / "data" / "reports" / "monitoring.html").read_text()
    assert page.count('<svg class="fs-chart fs-series"') == 3


def check_online_step(out: str) -> str:
    """Every online view materialized, five payments served with every kind of status, and
    each served value equal to a training set's at the same time; returns the step's text."""
    online = out[out.index("Materialize and serve online") : out.index("Windowed aggregations")]
    materialized = next(ln for ln in online.splitlines() if ln.startswith("Materialized 4 view"))
    for view in ["user_profile", "merchant_profile", "user_merchant", "user_spending"]:
        assert re.search(rf"\b{view} [\d,]+ rows\b", materialized), materialized
    assert "guards passed" in materialized
    assert "statuses of the 21 features" in online
    assert len([ln for ln in online.splitlines() if re.match(r"\d+ +\d+ ", ln)]) == 5
    statuses = online.split()
    assert {"PRESENT", "NOT_FOUND", "DEFAULTED"} <= set(statuses) and "STALE" not in statuses
    assert "online == offline for 105 values (5 rows x 21 features" in online
    assert "online != offline" not in online
    return online


def check_windows_step(out: str) -> None:
    """Window values equal offline ones, rise with a pushed burst and land in the files."""
    windows = out[out.index("Windowed aggregations and pushes") : out.index("Serve over HTTP")]
    assert "online window values equal offline ones" in windows
    assert "+3 pushed" in windows and "1 day later" in windows
    assert "pushed rows land offline too" in windows and "holds the same values" in windows


def check_definition_change_step(out: str) -> None:
    """The edit is applied, the server switches, and the values it serves say which
    definition computed them before and after the rebuild."""
    change = " ".join(
        out[out.index("Change a definition") : out.index("Check the repo's status")].split()
    )
    assert "0 added, 1 changed, 0 removed" in change
    assert "expr.Function.function.Round.decimals: 3 -> 2" in change
    assert "switched=True, now serving registry version" in change
    assert "before the rebuild: served under fingerprint" in change
    assert "with applied_fingerprint" in change and "(full rebuild)" in change
    assert "after the rebuild: served under" in change
    assert "the applied fingerprint: every value is the new definition's" in change
    assert "restored, applied and user_merchant re-published" in change


def check_status_step(out: str) -> None:
    """Every view is ok, measured now, once the demo is done."""
    status = out[out.index("Check the repo's status") :]
    line = next(ln for ln in status.splitlines() if ln.startswith("status at "))
    for view in ["user_profile", "merchant_profile", "user_merchant", "user_spending", "txn_risk"]:
        assert f"{view} ok" in line, line
    assert "No problems found." in status


def check_reports_step(out: str, repo: Path) -> None:
    """The injected skew (a stalled view) and drift (two merchant features) are flagged, and
    nothing else; the others are summed up in one line; both HTML reports are written."""
    reports = out[
        out.index("Report training/serving skew and drift") : out.index("Check the repo's")
    ]
    skew_part = reports[: reports.index("expected:")]
    flagged = {ln.split()[1] for ln in skew_part.splitlines() if ln.strip().startswith("flagged")}
    assert flagged == {"merchant_profile:risk_score"}
    assert "20 other features: no skew" in skew_part
    assert "stale materialization" in (repo / "data" / "reports" / "skew.html").read_text()
    drift_part = reports[reports.index("expected:") :]
    flagged = {ln.split()[1] for ln in drift_part.splitlines() if ln.strip().startswith("flagged")}
    assert flagged == {"merchant_profile:risk_score", "merchant_profile:online_only"}
    assert re.search(r"\d+ other features: no drift", drift_part)
    for name in ("skew.html", "drift.html"):
        page = (repo / "data" / "reports" / name).read_text()
        assert page.count('class="fs-chart"') >= 10


def check_http_step(out: str, sample_rows: str) -> None:
    """The demo's HTTP step: the served values are fresh and equal in-process ones, the
    metrics count the requests, the server is gone and its serving log holds one record per
    served row."""
    http = out[out.index("Serve over HTTP") : out.index("Done in")]
    lines = http.splitlines()
    ready = next(ln for ln in lines if "ready at http://127.0.0.1:" in ln)
    pid = int(re.search(r"\(pid (\d+)\)", ready).group(1))  # type: ignore[union-attr]
    with pytest.raises(ProcessLookupError):  # stopped, not left running
        os.kill(pid, 0)
    served = http_statuses(out)
    assert served == {"PRESENT": 94, "NOT_FOUND": 5, "DEFAULTED": 6}
    assert "HTTP == in-process for 105 values" in http and "HTTP != in-process" not in http
    # the first request, then 20 timed ones: 21 requests of 5 rows x 21 features
    metrics = next(ln for ln in lines if ln.startswith("GET /metrics: "))
    assert "online requests 21 answered 200;" in metrics
    counts = re.findall(r"([A-Z_]+) ([\d,]+)", metrics.partition("values:")[2])
    assert {s for s, _ in counts} == {"PRESENT", "NOT_FOUND", "DEFAULTED"}
    assert sum(int(n.replace(",", "")) for _, n in counts) == 21 * 105
    assert "stopped the server with SIGTERM: graceful shutdown, serving log flushed" in http
    assert "serving log: 105 record(s) from this server (21 request(s)" in http
    curl = next(ln.strip() for ln in lines if ln.strip().startswith("curl "))
    assert curl.startswith("curl -s http://127.0.0.1:6566/v1/online-features ")
    body = json.loads(shlex.split(curl)[-1])
    assert body["feature_service"] == "fraud_detection_v1"
    first = next(ln.split()[:2] for ln in sample_rows.splitlines() if re.match(r"\d+ +\d+ ", ln))
    assert body["entities"] == {"user_id": [int(first[0])], "merchant_id": [int(first[1])]}
    assert set(body["request_data"]) == {"amount", "channel"}


def http_statuses(out: str) -> dict[str, int]:
    """The statuses of the values served over HTTP, as the demo printed them."""
    http = out[out.index("Serve over HTTP") : out.index("Report training/serving skew")]
    lines = http.splitlines()
    asked = next(i for i, ln in enumerate(lines) if ln.startswith("POST /v1/online-features"))
    totals = lines[asked + 1]
    assert totals.startswith("values: "), totals
    found = re.findall(r"([A-Z_]+) ([\d,]+)", totals.partition(" (of ")[0])
    return {status: int(n.replace(",", "")) for status, n in found}


# the in-process runs below pin the demo's clock: the default one to now, the verbose one to
# a time SHIFT earlier, so that their data can be compared time for time
SHIFT = dt.timedelta(days=3, hours=4, minutes=5, seconds=6)
MAX_LINES = 130  # the default output, at 200 columns


def run_demo(
    tmp_path_factory: pytest.TempPathFactory, name: str, now: dt.datetime, *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``featurestore demo ARGS`` in this process, in a new directory, its data ending at
    ``now``; its result and the repo it left behind."""
    cwd = tmp_path_factory.mktemp(name)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(NOW_ENV, now.isoformat())
        result = run_in_process("demo", "--users", "300", "--seed", "3", *args, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, cwd / "featurestore-demo"


@pytest.fixture(scope="module")
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def default_run(
    tmp_path_factory: pytest.TempPathFactory, now: dt.datetime
) -> tuple[subprocess.CompletedProcess[str], Path]:
    return run_demo(tmp_path_factory, "default", now)


@pytest.fixture(scope="module")
def verbose_run(
    tmp_path_factory: pytest.TempPathFactory, now: dt.datetime
) -> tuple[subprocess.CompletedProcess[str], Path]:
    return run_demo(tmp_path_factory, "verbose", now - SHIFT, "--verbose")


def test_demo_serves_fresh_values_over_http(
    default_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    out = default_run[0].stdout
    http = out[out.index("Serve over HTTP") : out.index("Report training/serving skew")]
    assert "STALE" not in http
    assert http_statuses(out) == {"PRESENT": 94, "NOT_FOUND": 5, "DEFAULTED": 6}
    check_online_step(out)


def test_demo_prints_about_a_screenful_and_sums_up_what_is_ok(
    default_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    result, repo = default_run
    lines = result.stdout.splitlines()
    assert len(lines) <= MAX_LINES, len(lines)
    assert not any(ln.lstrip().startswith("✓ ") for ln in lines)  # no progress lines
    assert "entity row(s) x 21 feature(s)" not in result.stdout  # no full online table
    check_reports_step(result.stdout, repo)
    check_status_step(result.stdout)


def test_demo_verbose_prints_every_table_in_full(
    default_run: tuple[subprocess.CompletedProcess[str], Path],
    verbose_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    full, short = verbose_run[0].stdout, default_run[0].stdout
    assert len(full.splitlines()) > 2 * MAX_LINES
    reports = full[full.index("Report training/serving skew") : full.index("Monitor a week")]
    verdicts: dict[str, set[str]] = {}
    for words in (ln.split() for ln in reports.splitlines()):
        if words[:1] in (["ok"], ["warn"], ["flagged"]):
            verdicts.setdefault(words[1], set()).add(words[0])
    ok = {ref for ref, seen in verdicts.items() if seen == {"ok"}}  # in both reports
    assert len(ok) >= 15 and "user_profile:kyc_level" in ok
    short_reports = short[short.index("Report training/serving") : short.index("Monitor a week")]
    assert not {ref for ref in ok if ref in short_reports}  # named only with --verbose
    assert "5 entity row(s) x 21 feature(s)" in full and "fingerprint" in full.split()
    assert "  ✓ joining 3 view(s) onto" in full
    assert 'featurestore_http_requests_total{endpoint="/v1/online-features",status="200"}' in full


def test_demo_data_follows_the_clock_and_nothing_else(
    now: dt.datetime,
    default_run: tuple[subprocess.CompletedProcess[str], Path],
    verbose_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    (early, early_repo), (late, late_repo) = verbose_run, default_run
    assert drift_start(late.stdout) == now - dt.timedelta(days=15)
    assert drift_start(early.stdout) == now - SHIFT - dt.timedelta(days=15)
    assert f"60 days of payments up to now, {now:%Y-%m-%d %H:%M:%S} UTC" in late.stdout
    files = load_generator(late_repo).FILES
    assert set(files) == {"users", "merchants", "transactions", "user_merchant_daily"}
    for name, path in files.items():
        later = pl.read_parquet(late_repo / "data" / path)
        earlier = pl.read_parquet(early_repo / "data" / path)
        assert later.height > 0 and later.schema == earlier.schema
        assert not later.equals(earlier), name
        moved = earlier.with_columns(cs.datetime() + SHIFT)
        assert moved.equals(later), name
    payments = pl.read_parquet(late_repo / "data" / files["transactions"])["event_time"]
    assert now - dt.timedelta(hours=1) < payments.max() < now  # type: ignore[operator]
