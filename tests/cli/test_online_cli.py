"""The online verbs run as real subprocesses on a copy of the example fraud repo (60 users):
materialize (table, JSON, a guard refusal and a forced publish), materialize-incremental from
the watermark, and get-online (table, JSON, bad values, unknown features)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli._demo import NOT_COPIED, load_generator
from featurestore.cli._main import main

EXAMPLE = Path(__file__).resolve().parents[2] / "feature_definitions"
SERVICE = "fraud_detection_v1"
ONLINE_VIEWS = ["user_profile", "merchant_profile", "user_merchant", "user_spending"]
UNKNOWN_USER = 10_000
ONE_PAIR = ["--service", SERVICE, "--entity", "user_id=1", "--entity", "merchant_id=1001"]
PAIR_COUNT = ["--features", "user_merchant:pair_txn_count"]


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``featurestore ARGS`` in ``cwd``, as a user would run it."""
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "featurestore.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def make_repo(target: Path) -> Path:
    """A copy of the example repo with data for 60 users, applied (nothing materialized)."""
    root = Path(shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*NOT_COPIED)))
    load_generator(root).generate(root / "data", n_users=60, seed=3)
    store = FeatureStore(root)
    store.apply()
    store.close()
    return root


def last_transaction(repo: Path) -> dt.datetime:
    end = pl.read_parquet(repo / "data" / "transactions" / "*.parquet")["event_time"].max()
    assert isinstance(end, dt.datetime)
    return end


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def table_line(text: str, first: str) -> list[str]:
    """The cells of the table line that starts with ``first``."""
    (line,) = [ln for ln in text.splitlines() if ln.split()[:1] == [first]]
    return line.split()


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example repo, materialized as of the last transaction through the CLI."""
    root = make_repo(tmp_path_factory.mktemp("online") / "repo")
    result = run("materialize", "--end", iso(last_transaction(root)), cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def online_json(repo: Path, *args: str) -> dict[str, Any]:
    result = run("get-online", *args, "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_materialize_shows_each_view_and_json_reports_the_same_rows(repo: Path) -> None:
    end = last_transaction(repo)
    users = pl.read_parquet(repo / "data" / "users.parquet")
    known_users = users.filter(pl.col("updated_at") <= end)["user_id"].n_unique()

    result = run("materialize", "--end", iso(end), "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["refused"] is None
    by_view = {r["view"]: r for r in data["results"]}
    assert list(by_view) == ONLINE_VIEWS
    assert by_view["user_profile"]["rows"] == known_users == 60
    for r in by_view.values():
        assert r["published"] is True and r["forced"] is False and r["start"] is None
        assert r["guard"]["passed"] is True and r["guard"]["checks"]
        assert dt.datetime.fromisoformat(r["end"]) == end
        assert r["rows_per_second"] > 0
    assert "publishing user_merchant" in result.stderr  # the progress display

    table = run("materialize", "--end", iso(end), "--views", "user_profile", cwd=repo)
    assert table.returncode == 0, table.stderr
    assert "Materialized 1 view(s) as of" in table.stdout
    cells = table_line(table.stdout, "user_profile")
    assert cells[1:4] == ["full", "snapshot", "60"] and cells[6] == "yes"
    assert cells[-2:] == ["check(s)", "passed"] and int(cells[-3]) >= 6  # a rule per feature
    assert "merchant_profile" not in table.stdout


def test_guard_refusal_exits_1_keeps_the_old_values_and_force_publishes(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    end = iso(last_transaction(repo))
    assert run("materialize", "--end", end, cwd=repo).returncode == 0
    ask = ("--features", "user_profile:age", "--entity", "user_id=1,2", "--at", end)
    before = online_json(repo, *ask)
    assert all(isinstance(a, int) for a in before["features"]["age"])

    users = repo / "data" / "users.parquet"
    pl.read_parquet(users).with_columns(age=pl.lit(500, pl.Int32)).write_parquet(users)
    refused = run("materialize", "--end", end, cwd=repo)
    assert refused.returncode == 1
    err = refused.stderr
    assert "the guard refused to publish view 'user_profile'" in err
    check = table_line(err, "declared")
    assert check[:4] == ["declared", "rules", "age", "100.00%"]
    assert "previously published values stay online" in err and "--force" in err
    assert "Not attempted: merchant_profile, user_merchant, user_spending." in err
    assert "Traceback" not in err
    assert online_json(repo, *ask)["features"] == before["features"]

    as_json = run("materialize", "--end", end, "--json", cwd=repo)
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert data["results"] == [] and data["refused"]["view"] == "user_profile"
    failed = [c for c in data["refused"]["checks"] if not c["passed"]]
    assert [(c["check"], c["feature"]) for c in failed] == [("declared rules", "age")]

    forced = run("materialize", "--end", end, "--force", cwd=repo)
    assert forced.returncode == 0, forced.stderr
    cells = table_line(forced.stdout, "user_profile")
    assert "forced" in cells and "failed" in cells
    assert "user_profile: declared rules [age]: 100.00% of values" in forced.stdout
    assert table_line(forced.stdout, "user_merchant")[-2:] == ["check(s)", "passed"]
    after = online_json(repo, *ask)
    assert after["features"]["age"] == [None, None]
    assert after["statuses"]["age"] == ["INVALID", "INVALID"]


def test_materialize_incremental_starts_at_the_watermark(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    end = last_transaction(repo)
    first = run("materialize-incremental", "--end", iso(end - dt.timedelta(days=3)), cwd=repo)
    assert first.returncode == 0, first.stderr
    assert table_line(first.stdout, "user_merchant")[1:3] == ["full", "snapshot"]

    later = run(
        "materialize-incremental", "--end", iso(end), "--views", "user_merchant", "--json", cwd=repo
    )
    assert later.returncode == 0, later.stderr
    (result,) = json.loads(later.stdout)["results"]
    assert result["view"] == "user_merchant"
    assert dt.datetime.fromisoformat(result["start"]) == end - dt.timedelta(days=3)
    pairs = pl.read_parquet(repo / "data" / "user_merchant_daily.parquet")
    window = pl.col("snapshot_at").is_between(end - dt.timedelta(days=3), end)
    changed = pairs.filter(window).select("user_id", "merchant_id").unique().height
    assert result["rows"] == changed > 0

    text = run("materialize-incremental", "--end", iso(end), "--views", "user_merchant", cwd=repo)
    assert text.returncode == 0, text.stderr
    since = ["since", end.strftime("%Y-%m-%d"), end.strftime("%H:%M:%S")]
    assert table_line(text.stdout, "user_merchant")[1:4] == since


def test_get_online_table_and_json_match_a_training_set(repo: Path) -> None:
    end = last_transaction(repo)
    txns = pl.read_parquet(repo / "data" / "transactions" / "*.parquet").tail(2)
    users = [*txns["user_id"].to_list(), UNKNOWN_USER]
    merchants = [*txns["merchant_id"].to_list(), txns["merchant_id"][0]]
    amounts = [*txns["amount"].to_list(), 12.5]
    channels = [*txns["channel"].to_list(), "pos"]
    args = [
        "--service",
        SERVICE,
        "--entity",
        "user_id=" + ",".join(map(str, users)),
        "--entity",
        "merchant_id=" + ",".join(map(str, merchants)),
        "--request",
        "amount=" + ",".join(map(str, amounts)),
        "--request",
        "channel=" + ",".join(channels),
        "--at",
        iso(end),
    ]
    data = online_json(repo, *args)
    spine = pl.DataFrame(
        {
            "user_id": users,
            "merchant_id": merchants,
            "event_timestamp": [end] * 3,
            "amount": amounts,
            "channel": channels,
        }
    )
    store = FeatureStore(repo)
    try:
        offline = store.get_training_set(spine, feature_service=SERVICE).to_polars()
        fingerprints = {r.ref: r.fingerprint for r in store.list_features()}
    finally:
        store.close()
    assert len(data["features"]) == 21
    for column, values in data["features"].items():
        assert values == offline[column].to_list(), column
    assert data["entities"] == {"user_id": users, "merchant_id": merchants}
    assert data["statuses"]["age"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert data["statuses"]["country"][2] == "DEFAULTED" and data["features"]["country"][2]
    assert data["fingerprints"] == {ref: fingerprints[ref] for ref in data["fingerprints"]}
    assert "user_profile:age" in data["fingerprints"]

    table = run("get-online", *args, cwd=repo)
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert "3 entity row(s) x 21 feature(s)" in out
    for name in ["age", "pair_txn_count", "amount_vs_ticket", "card_not_present"]:
        assert name in out
    assert fingerprints["user_profile:age"] in out and "fingerprint" in out
    unknown = [ln.split() for ln in out.splitlines() if ln.startswith(str(UNKNOWN_USER))]
    assert unknown and unknown[0][2:4] == ["null", "unknown"]  # age, country of the new user
    assert "NOT_FOUND" in out and "DEFAULTED" in out and "PRESENT" in out


def test_get_online_features_full_names_and_broadcast_values(repo: Path) -> None:
    end = iso(last_transaction(repo))
    data = online_json(
        repo,
        "--features",
        "user_profile:age,user_merchant:pair_txn_count",
        "--entity",
        "user_id=1,2",
        "--entity",
        "merchant_id=1001",
        "--at",
        end,
        "--full-feature-names",
    )
    assert list(data["features"]) == ["user_profile__age", "user_merchant__pair_txn_count"]
    assert data["entities"] == {"user_id": [1, 2], "merchant_id": [1001, 1001]}
    assert sorted(data["fingerprints"]) == ["user_merchant:pair_txn_count", "user_profile:age"]


def test_get_online_rejects_a_wrong_key_type_and_an_unknown_feature(repo: Path) -> None:
    bad_key = run(
        "get-online", "--features", "user_profile:age", "--entity", "user_id=abc", cwd=repo
    )
    assert bad_key.returncode == 2
    expected = "Invalid value for --entity: join key 'user_id' takes Int64 values; 'abc' is not one"
    assert expected in bad_key.stderr
    unknown = run(
        "get-online", "--features", "user_profile:agee", "--entity", "user_id=1", cwd=repo
    )
    assert unknown.returncode == 1
    assert "Error: Feature 'user_profile:agee' is not defined" in unknown.stderr
    assert "Did you mean 'user_profile:age'?" in unknown.stderr
    for result in (bad_key, unknown):
        assert "Traceback" not in result.stderr + result.stdout and not result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", SERVICE, "--entity", "uid=1"], "unknown join key 'uid'; known: merchant_id"),
        (["--features", "user_profile:age", "--entity", "user_id=1=2"], "takes Int64 values"),
        (["--features", "user_profile:age", "--entity", "user_id"], "is not NAME=VALUE"),
        (
            [*ONE_PAIR, "--request", "amount=lots", "--request", "channel=pos"],
            "request column 'amount' takes Float64 values; 'lots' is not one",
        ),
        (
            ONE_PAIR,
            "lacks column 'amount'",
        ),
        (
            [*PAIR_COUNT, "--entity", "user_id=1,2", "--entity", "merchant_id=1001,1002,1003"],
            "needs 3 value(s), or 1 used for every row: --entity user_id has 2",
        ),
        (
            ["--features", "user_profile:age", "--entity", "user_id=1", "--entity", "user_id=2"],
            "'user_id' is given twice",
        ),
        (["--features", "user_profile:age", "--at", "soon"], "'soon' is not an ISO datetime"),
        (["--entity", "user_id=1"], "exactly one of --features REFS or --service NAME"),
    ],
)
def test_get_online_usage_errors_exit_2(repo: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["get-online", "--repo", str(repo), *args])
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


def test_materialize_usage_errors(repo: Path) -> None:
    on_demand = CliRunner().invoke(
        main, ["materialize", "--repo", str(repo), "--views", "txn_risk"]
    )
    assert on_demand.exit_code == 2 and "'txn_risk' is an on-demand view" in on_demand.stderr
    unknown = CliRunner().invoke(main, ["materialize", "--repo", str(repo), "--views", "users"])
    assert unknown.exit_code == 1 and "Feature view 'users' is not defined" in unknown.stderr
    backwards = CliRunner().invoke(
        main, ["materialize", "--repo", str(repo), "--start", "2025-03-02", "--end", "2025-03-01"]
    )
    assert backwards.exit_code == 2 and "is after the end" in backwards.stderr
