"""The online verbs on a copy of the example fraud repo (60 users), run in this process:
materialize (table, JSON, a guard refusal and a forced publish), materialize-incremental from
the watermark, and get-online (table, JSON, bad values, unknown features)."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.cli._render import value_text
from tests.cli.helpers import SERVICE, example_repo, run, table_line

__all__ = ["run"]  # tests of other packages run the command through this module

ONLINE_VIEWS = ["user_profile", "merchant_profile", "user_merchant", "user_spending"]
UNKNOWN_USER = 10_000
ONE_PAIR = ["--service", SERVICE, "--entity", "user_id=1", "--entity", "merchant_id=1001"]
PAIR_COUNT = ["--features", "user_merchant:pair_txn_count"]


def make_repo(target: Path) -> Path:
    """A copy of the example repo with data for 60 users, applied (nothing materialized)."""
    return example_repo(target, users=60, seed=3)


def last_transaction(repo: Path) -> dt.datetime:
    end = pl.read_parquet(repo / "data" / "transactions" / "*.parquet")["event_time"].max()
    assert isinstance(end, dt.datetime)
    return end


def iso(t: dt.datetime) -> str:
    return t.isoformat()


def materialized(repo: Path, at: dt.datetime) -> dict[str, tuple[Any, Any]]:
    """Per online view, as the repo's status reads the online store: the time its values are
    as of (events for aggregations) and the entities it holds."""
    store = FeatureStore(repo)
    try:
        views = store.status(at).views
    finally:
        store.close()
    return {
        v.name: (v.materialized_end or v.events_end, v.online_entities or v.event_entities)
        for v in views
        if v.online
    }


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example repo, materialized as of the last transaction through the CLI."""
    root = make_repo(tmp_path_factory.mktemp("online") / "repo")
    result = run("materialize", "--end", iso(last_transaction(root)), cwd=root)
    assert result.returncode == 0, result.stderr
    return root


def online_tables(text: str, keys: list[str]) -> dict[str, tuple[list[str], list[str], str]]:
    """Per feature column of get-online's tables: its value texts, statuses and fingerprint."""
    found: dict[str, tuple[list[str], list[str], str]] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if line.split()[: len(keys)] != keys:
            continue
        columns = line.split()[len(keys) :]
        next(lines)  # the rule under the header
        rows: list[list[str]] = []
        while (row := next(lines)).strip():
            rows.append(row.split()[0 if row.startswith(" ") else len(keys) :])
        fingerprints = next(lines).split()[1:]
        for i, column in enumerate(columns):
            found[column] = ([r[i] for r in rows[::2]], [r[i] for r in rows[1::2]], fingerprints[i])
    return found


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
    progress = [ln.split()[1:-1] for ln in result.stderr.splitlines()]
    assert ["publishing", "user_merchant", f"({by_view['user_merchant']['rows']}", "rows)"] in (
        progress
    )
    online = materialized(repo, end)
    assert online == {name: (end, r["rows"]) for name, r in by_view.items()}

    table = run("materialize", "--end", iso(end), "--views", "user_profile", cwd=repo)
    assert table.returncode == 0, table.stderr
    title = table.stdout.splitlines()[0].strip()
    assert title.startswith(f"Materialized 1 view(s) as of {end:%Y-%m-%d %H:%M:%S} UTC, 60 rows")
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
    assert "Error: the guard refused to publish view 'user_profile'" in " ".join(err.split())
    check = table_line(err, "declared")
    assert check[:4] == ["declared", "rules", "age", "100.00%"]
    assert "previously published values stay online" in err and "--force" in err
    assert "Not attempted: merchant_profile, user_merchant, user_spending." in err
    assert refused.stdout == ""
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
    checks = str(len(data["refused"]["checks"]))
    assert cells[6] == "forced" and cells[-5:] == ["1", "of", checks, "check(s)", "failed"]
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
    assert materialized(repo, end)["user_merchant"][0] == end - dt.timedelta(days=3)

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
    state = materialized(repo, end)
    assert state["user_merchant"][0] == end
    assert state["user_profile"][0] == end - dt.timedelta(days=3)  # not in --views

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
        *("--service", SERVICE, "--at", iso(end)),
        *("--entity", "user_id=" + ",".join(map(str, users))),
        *("--entity", "merchant_id=" + ",".join(map(str, merchants))),
        *("--request", "amount=" + ",".join(map(str, amounts))),
        *("--request", "channel=" + ",".join(channels)),
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
    assert dt.datetime.fromisoformat(data["request_time"]) == end
    assert data["statuses"]["age"] == ["PRESENT", "PRESENT", "NOT_FOUND"]
    assert data["statuses"]["country"][2] == "DEFAULTED" and data["features"]["country"][2]
    assert data["fingerprints"] == {ref: fingerprints[ref] for ref in data["fingerprints"]}
    assert "user_profile:age" in data["fingerprints"]

    table = run("get-online", *args, cwd=repo)
    assert table.returncode == 0, table.stderr
    out = table.stdout
    assert out.splitlines()[0] == (
        f"3 entity row(s) x 21 feature(s), request time {end:%Y-%m-%d %H:%M:%S} UTC"
    )
    shown = online_tables(out, ["user_id", "merchant_id"])
    assert list(shown) == list(data["features"])  # every feature, view by view
    refs = {ref.partition(":")[2]: ref for ref in data["fingerprints"]}  # names are unique
    for column, (values, statuses, fingerprint) in shown.items():
        assert values == [value_text(v) for v in data["features"][column]], column
        assert statuses == data["statuses"][column], column
        assert fingerprint == data["fingerprints"][refs[column]], column
    assert shown["age"][0][2] == "null" and shown["country"][0][2] == "unknown"  # new user
    totals = Counter(s for column in data["statuses"].values() for s in column)
    counts = " · ".join(f"{s.value} {totals[s.value]}" for s in FeatureStatus if totals[s.value])
    assert out.splitlines()[-1] == f"values: {counts} (of 63)"


def test_get_online_features_full_names_and_broadcast_values(repo: Path) -> None:
    end = iso(last_transaction(repo))
    data = online_json(
        repo,
        *("--features", "user_profile:age,user_merchant:pair_txn_count"),
        *("--entity", "user_id=1,2", "--entity", "merchant_id=1001"),
        *("--at", end, "--full-feature-names"),
    )
    assert list(data["features"]) == ["user_profile__age", "user_merchant__pair_txn_count"]
    assert data["entities"] == {"user_id": [1, 2], "merchant_id": [1001, 1001]}
    assert sorted(data["fingerprints"]) == ["user_merchant:pair_txn_count", "user_profile:age"]
    said = run(
        "get-online",
        *("--features", "user_profile:age", "--entity", "user_id=1,2,3"),
        *("--entity", "merchant_id=1001", "--at", end),
        cwd=repo,
    )
    assert said.returncode == 0, said.stderr
    assert "note: --entity merchant_id=1001 used for each of the 3 rows" in said.stderr


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
    assert bad_key.stdout == unknown.stdout == ""


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
        (ONE_PAIR, "lacks column 'amount'"),
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
    result = run("get-online", "--repo", str(repo), *args, cwd=repo.parent)
    assert result.returncode == 2, result.stdout
    assert message in " ".join(result.stderr.split())


def test_materialize_usage_errors(repo: Path) -> None:
    on_demand = run("materialize", "--views", "txn_risk", cwd=repo)
    assert on_demand.returncode == 2 and "'txn_risk' is an on-demand view" in on_demand.stderr
    unknown = run("materialize", "--views", "users", cwd=repo)
    assert unknown.returncode == 1 and "Feature view 'users' is not defined" in unknown.stderr
    backwards = run("materialize", "--start", "2025-03-02", "--end", "2025-03-01", cwd=repo)
    assert backwards.returncode == 2 and "is after the end" in backwards.stderr
    assert on_demand.stdout == unknown.stdout == backwards.stdout == ""
