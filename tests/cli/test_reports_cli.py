"""The report verbs as real subprocesses on a copy of the example repo with injected drift and a
stalled view: ``skew`` and ``drift`` in table, JSON and HTML form, ``--fail-on-flagged`` exit
codes, and clear errors for bad sides and windows."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.cli._demo import NOT_COPIED, load_generator
from tests.cli.test_online_cli import EXAMPLE, SERVICE, run

DRIFT_AT = dt.datetime(2025, 2, 15, tzinfo=dt.UTC)
DRIFTED = {"merchant_profile:risk_score", "merchant_profile:online_only"}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 users with drift from DRIFT_AT; a training set before it; merchant_profile published
    8 days late; the last 3,500 payments served as of the end and logged."""
    root = Path(
        shutil.copytree(
            EXAMPLE,
            tmp_path_factory.mktemp("reports") / "repo",
            ignore=shutil.ignore_patterns(*NOT_COPIED),
        )
    )
    gen = load_generator(root)
    gen.generate(root / "data", n_users=300, seed=5, drift_at=DRIFT_AT)
    store = FeatureStore(root)
    store.apply()
    spine = gen.training_spine(root / "data")
    end = spine["event_timestamp"].max()
    store.get_training_set(
        spine.filter(pl.col("event_timestamp") < DRIFT_AT), feature_service=SERVICE
    ).save(root / "train.parquet")
    store.materialize(end)
    store.materialize(end - dt.timedelta(days=8), views=["merchant_profile"], force=True)
    served = spine.tail(3_500)
    for i in range(0, served.height, 100):
        batch = served.slice(i, 100)
        request = {c: batch[c].to_list() for c in ("amount", "channel")}
        resp = store.get_online_features(
            feature_service=SERVICE,
            entities={k: batch[k].to_list() for k in ("user_id", "merchant_id")},
            request_data=request,
            request_time=end,
        )
        store.serving_log.log(resp, request_id=f"r{i}", latency_us=1, request_data=request)
    store.close()
    return root


def test_skew_json_names_the_stale_feature_and_fails_when_asked(repo: Path, tmp_path: Path) -> None:
    page = tmp_path / "skew.html"
    result = run("skew", "--json", "--html", str(page), "--fail-on-flagged", cwd=repo)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["kind"] == "skew"
    flagged = [f for f in report["features"] if f["verdict"] == "flagged"]
    assert [f["ref"] for f in flagged] == ["merchant_profile:risk_score"]
    assert any("stale materialization" in r for r in flagged[0]["reasons"])
    assert flagged[0]["stats"]["rows_compared"] == 3_500
    assert page.read_text().count('class="fs-chart"') >= 10
    # without --fail-on-flagged the same report exits 0, as a table
    table = run("skew", "--features", "merchant_profile:category", cwd=repo)
    assert table.returncode == 0, table.stderr
    assert "merchant_profile:category" in table.stdout and "1 features" in table.stdout


def test_skew_since_an_empty_window_is_a_clear_error(repo: Path) -> None:
    result = run("skew", "--since", "1h", cwd=repo)  # the log holds 2025 requests only
    assert result.returncode == 1
    assert "Error:" in result.stderr and "no records" in result.stderr
    bad = run("skew", "--since", "soon", cwd=repo)
    assert bad.returncode == 2 and "not a duration" in bad.stderr


def test_drift_of_the_log_against_the_training_set(repo: Path, tmp_path: Path) -> None:
    page = tmp_path / "drift.html"
    args = ["--reference", "train.parquet", "--current", "log:2025-01-01..2026-01-01"]
    result = run("drift", *args, "--json", "--html", str(page), "--fail-on-flagged", cwd=repo)
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    flagged = {f["ref"] for f in report["features"] if f["verdict"] == "flagged"}
    assert flagged == DRIFTED
    assert report["features"][0]["verdict"] == "flagged"  # worst first
    assert page.read_text().count('class="fs-chart"') == len(report["features"])
    table = run("drift", *args, cwd=repo)
    assert table.returncode == 0
    assert "merchant_profile:risk_score" in table.stdout and "2 flagged" in table.stdout


def test_drift_between_source_windows_before_the_injection_is_quiet(repo: Path) -> None:
    result = run(
        "drift",
        "--reference",
        "source:user_profile:2024-01-01..2025-01-20",
        "--current",
        "source:user_profile:2025-01-20..2025-02-15",
        "--json",
        "--fail-on-flagged",
        cwd=repo,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {f["ref"].split(":")[0] for f in report["features"]} == {"user_profile"}


def test_drift_with_a_bad_side_says_what_forms_exist(repo: Path) -> None:
    result = run("drift", "--reference", "nowhere:7d", "--current", "log:7d", cwd=repo)
    assert result.returncode == 1
    assert "log:" in result.stderr and "source:" in result.stderr
