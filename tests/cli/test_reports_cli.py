"""The report verbs, run in this process, on a copy of the example repo with injected drift and
a stalled view: ``skew`` and ``drift`` in table, JSON and HTML form, ``--fail-on-flagged`` exit
codes, and clear errors for bad sides and windows."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.cli._demo import load_generator
from tests.cli.helpers import SERVICE, example_repo, run

DRIFT_AT = dt.datetime(2025, 2, 15, tzinfo=dt.UTC)
DRIFTED = {"merchant_profile:risk_score", "merchant_profile:online_only"}
SERVED = 3_500


def report_rows(text: str) -> dict[str, list[str]]:
    """A report table's first line of each feature: verdict, feature, owner, first statistic."""
    verdicts = {"flagged", "warn", "insufficient_data", "ok"}
    text = text.replace("insufficient data", "insufficient_data")
    lines = [line.split() for line in text.splitlines()]
    return {words[1]: words for words in lines if words[:1] and words[0] in verdicts}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 users with drift from DRIFT_AT; a training set before it; merchant_profile published
    8 days late; the last 3,500 payments served as of the end and logged."""
    root = example_repo(tmp_path_factory.mktemp("reports") / "repo", 300, 5, drift_at=DRIFT_AT)
    spine = load_generator(root).training_spine(root / "data")
    end = spine["event_timestamp"].max()
    store = FeatureStore(root)
    store.get_training_set(
        spine.filter(pl.col("event_timestamp") < DRIFT_AT), feature_service=SERVICE
    ).save(root / "train.parquet")
    store.materialize(end)
    store.materialize(end - dt.timedelta(days=8), views=["merchant_profile"], force=True)
    served = spine.tail(SERVED)
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
    assert flagged[0]["stats"]["rows_compared"] == SERVED
    assert page.read_text().count('class="fs-chart"') >= 10
    # without --fail-on-flagged the same report exits 0, as a table
    table = run("skew", "--features", "merchant_profile:category", cwd=repo)
    assert table.returncode == 0, table.stderr
    row = report_rows(table.stdout)["merchant_profile:category"]
    assert row == ["ok", "merchant_profile:category", "merchant-risk", "rows_compared", "3500", "-"]
    assert (
        table.stdout.splitlines()[-1] == "1 features: 0 flagged, 0 warn, 0 insufficient data, 1 ok"
    )


def test_skew_since_an_empty_window_is_a_clear_error(repo: Path) -> None:
    result = run("skew", "--since", "1h", cwd=repo)  # the log holds 2025 requests only
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("Error: the serving log has no records in [")
    assert "so there is nothing to compare; widen the window" in " ".join(result.stderr.split())
    bad = run("skew", "--since", "soon", cwd=repo)
    assert bad.returncode == 2
    assert "Invalid value for '--since': 'soon' is not a duration such as 30m" in bad.stderr
    both = run("skew", "--since", "1d", "--start", "2025-03-01", cwd=repo)
    assert both.returncode == 2 and "pass --since or --start, not both" in both.stderr


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
    assert table.returncode == 0, table.stderr
    rows = report_rows(table.stdout)
    assert list(rows) == [f["ref"] for f in report["features"]]  # the same order
    assert {ref for ref, row in rows.items() if row[0] == "flagged"} == DRIFTED
    n = len(report["features"])
    assert table.stdout.splitlines()[-1] == (
        f"{n} features: 2 flagged, 0 warn, 0 insufficient data, {n - 2} ok"
    )


def test_drift_between_source_windows_before_the_injection_is_quiet(repo: Path) -> None:
    result = run(
        "drift",
        *("--reference", "source:user_profile:2024-01-01..2025-01-20"),
        *("--current", "source:user_profile:2025-01-20..2025-02-15"),
        *("--json", "--fail-on-flagged"),
        cwd=repo,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert {f["ref"].split(":")[0] for f in report["features"]} == {"user_profile"}
    assert all(f["verdict"] != "flagged" for f in report["features"])


def test_drift_with_a_bad_side_says_what_forms_exist(repo: Path) -> None:
    result = run("drift", "--reference", "nowhere:7d", "--current", "log:7d", cwd=repo)
    assert result.returncode == 1 and result.stdout == ""
    message = " ".join(result.stderr.split())
    assert message.startswith("Error: cannot read 'nowhere:7d' as a drift side; expected")
    for form in ("path.parquet", "log:7d", "source:VIEW:"):
        assert form in message
