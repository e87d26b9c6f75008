"""The featurestore command run as a real subprocess: the verbs, exit codes, JSON output and
the demo, each in a temporary directory."""

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
from featurestore.serving._serving_log import read_serving_log

STARTER_FEATURES = [
    "customer_stats:orders_30d",
    "customer_stats:avg_order_value",
    "customer_stats:segment",
    "basket_ratio:basket_vs_avg",
]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``featurestore ARGS`` in ``cwd``, as a user would run it."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "featurestore.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo made by 'featurestore init', applied."""
    root = tmp_path_factory.mktemp("cli")
    result = run("init", "starter", cwd=root)
    assert result.returncode == 0, result.stderr
    assert "featurestore apply" in result.stdout
    repo = root / "starter"
    assert (repo / "featurestore.yaml").is_file() and (repo / "data" / "spine.parquet").is_file()
    applied = run("apply", cwd=repo)
    assert applied.returncode == 0, applied.stderr
    assert "4 added" in applied.stdout
    return repo


def test_plan_after_apply_reports_no_changes(starter: Path) -> None:
    result = run("plan", "--json", "--repo", str(starter), cwd=starter.parent)
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["added"] == diff["changed"] == diff["removed"] == []
    assert sorted(diff["unchanged"]) == sorted(STARTER_FEATURES)
    text = run("plan", cwd=starter)
    assert text.returncode == 0 and "no changes" in text.stdout


def test_plan_shows_an_edit_without_writing_it(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).returncode == 0
    repo = tmp_path / "repo"
    assert run("apply", cwd=repo).returncode == 0
    defs = repo / "definitions.py"
    defs.write_text(defs.read_text().replace("ttl=timedelta(days=7)", "ttl=timedelta(days=3)"))
    for _ in range(2):  # plan writes nothing, so it shows the same change twice
        result = run("plan", "--json", cwd=repo)
        assert result.returncode == 0, result.stderr
        changed = {c["ref"]: c for c in json.loads(result.stdout)["changed"]}
        assert changed["customer_stats:orders_30d"]["fingerprint_changed"] is True
        assert "ttl: 1w -> 3d" in changed["customer_stats:orders_30d"]["reasons"]


def test_list_json_has_every_feature_with_dtype_owner_and_fingerprint(starter: Path) -> None:
    result = run("list", "--json", cwd=starter)
    assert result.returncode == 0, result.stderr
    records = {r["ref"]: r for r in json.loads(result.stdout)}
    assert sorted(records) == sorted(STARTER_FEATURES)
    assert records["customer_stats:orders_30d"]["dtype"] == "Int64"
    assert records["basket_ratio:basket_vs_avg"]["kind"] == "on_demand"
    assert all(r["owner"] == "data-team" and len(r["fingerprint"]) == 16 for r in records.values())
    table = run("list", cwd=starter)
    assert table.returncode == 0 and "customer_stats:segment" in table.stdout


def test_validate_passes_on_the_starter_repo(starter: Path) -> None:
    result = run("validate", cwd=starter)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok" in result.stdout


def test_training_set_writes_one_row_per_spine_row(starter: Path, tmp_path: Path) -> None:
    out = tmp_path / "sets" / "train.parquet"
    result = run(
        "training-set",
        "--repo",
        str(starter),
        "--spine",
        str(starter / "data" / "spine.parquet"),
        "--service",
        "starter_v1",
        "-o",
        str(out),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "8 rows x 4 features" in result.stdout and str(out) in result.stdout
    assert "joining 1 view(s)" in result.stderr  # the progress display
    spine = pl.read_parquet(starter / "data" / "spine.parquet")
    df = pl.read_parquet(out)
    assert df.height == spine.height
    features = ["orders_30d", "avg_order_value", "segment", "basket_vs_avg"]
    assert df.columns == [*spine.columns, *features]
    assert df.select(spine.columns).equals(spine)
    assert TrainingSet.load(out).metadata.row_count == 8


def test_training_set_features_json_and_full_names(starter: Path, tmp_path: Path) -> None:
    out = tmp_path / "train.parquet"
    result = run(
        "training-set",
        "--spine",
        "data/spine.parquet",
        "--features",
        "customer_stats:orders_30d, customer_stats:segment",
        "--full-feature-names",
        "-o",
        str(out),
        "--json",
        cwd=starter,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["row_count"] == 8 and summary["output"] == str(out)
    assert [f["column"] for f in summary["features"]] == [
        "customer_stats__orders_30d",
        "customer_stats__segment",
    ]
    statuses = summary["features"][0]["statuses"]
    assert sum(statuses.values()) == 8 and statuses["DEFAULTED"] == 1  # customer 6 is unknown
    assert pl.read_parquet(out).columns[-2:] == [
        "customer_stats__orders_30d",
        "customer_stats__segment",
    ]


def test_unknown_feature_exits_1_with_a_clean_message(starter: Path, tmp_path: Path) -> None:
    result = run(
        "training-set",
        "--spine",
        "data/spine.parquet",
        "--features",
        "customer_stats:segmnt",
        "-o",
        str(tmp_path / "x.parquet"),
        cwd=starter,
    )
    assert result.returncode == 1
    assert "Error: Feature 'customer_stats:segmnt' is not defined" in result.stderr
    assert "Did you mean 'customer_stats:segment'?" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "x.parquet").exists()


def test_usage_errors_exit_2(starter: Path) -> None:
    both = run(
        "training-set",
        "--spine",
        "data/spine.parquet",
        "--service",
        "starter_v1",
        "--features",
        "customer_stats:segment",
        "-o",
        "x.parquet",
        cwd=starter,
    )
    assert both.returncode == 2 and "exactly one of" in both.stderr
    assert run("training-set", "--service", "starter_v1", cwd=starter).returncode == 2
    assert run("no-such-verb", cwd=starter).returncode == 2


def test_errors_outside_a_repo_and_on_existing_repo_exit_1(starter: Path, tmp_path: Path) -> None:
    nothing = run("list", cwd=tmp_path)
    assert nothing.returncode == 1 and "featurestore init" in nothing.stderr
    assert "Traceback" not in nothing.stderr
    again = run("init", str(starter), cwd=tmp_path)
    assert again.returncode == 1 and "already exist" in again.stderr
    not_a_repo = run("apply", "--repo", str(tmp_path), cwd=starter)
    assert not_a_repo.returncode == 1 and "is not a feature repo" in not_a_repo.stderr


def test_validate_exits_1_when_a_source_drifts(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).returncode == 0
    repo = tmp_path / "repo"
    source = repo / "data" / "customer_stats.parquet"
    pl.read_parquet(source).drop("segment").write_parquet(source)
    result = run("validate", "--json", cwd=repo)
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["ok"] is False and "'segment'" in report["problems"][0]
    applied = run("apply", cwd=repo)
    assert applied.returncode == 1 and "nothing was written" in applied.stderr
    assert not (repo / ".featurestore" / "registry.json").exists()


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
    check_http_step(out, sample_rows=online)
    assert "  featurestore serve --repo featurestore-demo" in out.splitlines()
    windows = out[out.index("Windowed aggregations and pushes") : out.index("Serve over HTTP")]
    assert "online window values equal the training set's" in windows
    assert "+3 pushed" in windows and "1 day later" in windows
    assert "the push also landed in the source's files" in windows
    assert "holds the same values" in windows
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
    status = again.stdout[again.stdout.index("Check the repo's status") :]
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
