"""The featurestore command on a repo made by ``featurestore init``: the verbs, exit codes,
JSON output and error messages, run in this process; and once as the installed command."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from featurestore import FeatureStore, TrainingSet
from tests.cli.helpers import boxed_rows, run

STARTER_FEATURES = [
    "customer_stats:orders_30d",
    "customer_stats:avg_order_value",
    "customer_stats:segment",
    "basket_ratio:basket_vs_avg",
]
SOURCE_ROWS = 43  # 10 daily snapshots of 5 customers, the last one stops after 3


def applied_refs(repo: Path) -> list[str]:
    """The features recorded in the repo's registry."""
    store = FeatureStore(repo)
    try:
        return [r.ref for r in store.list_features()]
    finally:
        store.close()


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repo made by 'featurestore init', applied."""
    root = tmp_path_factory.mktemp("cli")
    result = run("init", "starter", cwd=root)
    assert result.returncode == 0, result.stderr
    created = ["featurestore.yaml", "definitions.py", ".gitignore"]
    created += ["data/customer_stats.parquet", "data/spine.parquet"]
    assert result.stdout.splitlines() == [
        "Created feature repo starter for project starter:",
        *(f"  starter/{name}" for name in created),
        "Next:",
        "  cd starter",
        "  featurestore apply",
        "  featurestore training-set --spine data/spine.parquet --service starter_v1 "
        "-o training.parquet",
    ]
    repo = root / "starter"
    assert all((repo / name).is_file() for name in created)
    applied = run("apply", cwd=repo)
    assert applied.returncode == 0, applied.stderr
    lines = applied.stdout.splitlines()
    assert lines[0] == "Applied project starter: 4 added, 0 changed, 0 removed, 0 unchanged."
    assert [ln.rstrip().split(maxsplit=2) for ln in lines[1:]] == [
        ["+", "customer_stats", "orders_30d, avg_order_value, segment"],
        ["+", "basket_ratio", "basket_vs_avg"],
    ]
    assert sorted(applied_refs(repo)) == sorted(STARTER_FEATURES)
    return repo


def test_plan_after_apply_reports_no_changes(starter: Path) -> None:
    result = run("plan", "--json", "--repo", str(starter), cwd=starter.parent)
    assert result.returncode == 0, result.stderr
    diff = json.loads(result.stdout)
    assert diff["project"] == "starter"
    assert diff["added"] == diff["changed"] == diff["removed"] == []
    assert sorted(diff["unchanged"]) == sorted(STARTER_FEATURES)
    text = run("plan", cwd=starter)
    assert text.returncode == 0, text.stderr
    no_changes = "Plan for project starter: no changes (4 feature(s) match the registry)."
    assert text.stdout.splitlines() == [no_changes]


def test_plan_shows_an_edit_without_writing_it(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).returncode == 0
    repo = tmp_path / "repo"
    assert run("apply", cwd=repo).returncode == 0
    registry = (repo / ".featurestore" / "registry.json").read_bytes()
    defs = repo / "definitions.py"
    defs.write_text(defs.read_text().replace("ttl=timedelta(days=7)", "ttl=timedelta(days=3)"))
    for _ in range(2):  # plan writes nothing, so it shows the same change twice
        result = run("plan", "--json", cwd=repo)
        assert result.returncode == 0, result.stderr
        changed = {c["ref"]: c for c in json.loads(result.stdout)["changed"]}
        assert sorted(changed) == sorted(STARTER_FEATURES)  # the on-demand view's input changed
        assert changed["customer_stats:orders_30d"]["fingerprint_changed"] is True
        assert "ttl: 1w -> 3d" in changed["customer_stats:orders_30d"]["reasons"]
    text = run("plan", cwd=repo)
    assert text.stdout.splitlines()[0] == (
        "Plan for project repo: 0 added, 4 changed, 0 removed, 0 unchanged."
    )
    assert "Nothing was written; run 'featurestore apply' to record this." in text.stdout
    assert (repo / ".featurestore" / "registry.json").read_bytes() == registry


def test_list_json_has_every_feature_with_dtype_owner_and_fingerprint(starter: Path) -> None:
    result = run("list", "--json", cwd=starter)
    assert result.returncode == 0, result.stderr
    records = {r["ref"]: r for r in json.loads(result.stdout)}
    assert sorted(records) == sorted(STARTER_FEATURES)
    assert records["customer_stats:orders_30d"]["dtype"] == "Int64"
    assert records["basket_ratio:basket_vs_avg"]["kind"] == "on_demand"
    assert all(r["owner"] == "data-team" and len(r["fingerprint"]) == 16 for r in records.values())
    table = run("list", cwd=starter)
    assert table.returncode == 0, table.stderr
    assert table.stdout.splitlines()[0].strip() == "4 applied feature(s)"
    assert boxed_rows(table.stdout) == [
        [ref, r["kind"].replace("_", "-"), r["dtype"], "data-team", r["fingerprint"]]
        for ref, r in records.items()
    ]


def test_validate_passes_on_the_starter_repo(starter: Path) -> None:
    result = run("validate", cwd=starter)
    assert result.returncode == 0, result.stdout + result.stderr
    assert boxed_rows(result.stdout) == [
        ["customer_stats", "customer_stats", "data/customer_stats.parquet", "43", "ok"]
    ]
    assert f"customer_stats: values of {SOURCE_ROWS} row(s)" in result.stdout
    checked = [ln.split()[0] for ln in result.stdout.splitlines() if ln.strip().endswith("-")]
    assert checked == STARTER_FEATURES[:3]
    assert result.stdout.splitlines()[-1] == (
        "All 1 source(s) match their declarations, values included."
    )


def test_training_set_writes_one_row_per_spine_row(starter: Path, tmp_path: Path) -> None:
    out = tmp_path / "sets" / "train.parquet"
    spine_path = starter / "data" / "spine.parquet"
    result = run(
        "training-set",
        *("--repo", str(starter), "--spine", str(spine_path), "--service", "starter_v1"),
        *("-o", str(out)),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert (
        "8 rows x 4 features, spine 2025-01-02 09:00:00 .. 2025-01-13 10:00:00 UTC "
        "(column 'event_timestamp')" in lines
    )
    assert "values: PRESENT 26 · NOT_FOUND 1 · STALE 3 · DEFAULTED 2 (of 32)" in lines
    assert lines[-1] == f"written to {out}"
    progress = [ln.split()[1:-1] for ln in result.stderr.splitlines()]
    assert ["joining", "1", "view(s)", "onto", "8", "spine", "rows"] in progress
    assert progress[-1] == ["writing", str(out)]
    spine = pl.read_parquet(spine_path)
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
        *("--spine", "data/spine.parquet", "-o", str(out), "--full-feature-names", "--json"),
        *("--features", "customer_stats:orders_30d, customer_stats:segment"),
        cwd=starter,
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["row_count"] == 8 and summary["output"] == str(out)
    columns = ["customer_stats__orders_30d", "customer_stats__segment"]
    assert [f["column"] for f in summary["features"]] == columns
    statuses = summary["features"][0]["statuses"]
    assert statuses == {"PRESENT": 6, "STALE": 1, "DEFAULTED": 1}  # customer 6 is unknown
    assert list(statuses) == ["PRESENT", "STALE", "DEFAULTED"]  # in the order of the enum
    assert pl.read_parquet(out).columns[-2:] == columns


def test_training_set_output_format_follows_the_extension_and_keeps_files(
    starter: Path, tmp_path: Path
) -> None:
    """-o x.csv writes CSV; an existing output is kept unless --force replaces it."""
    args = ("training-set", "--spine", "data/spine.parquet", "--service", "starter_v1")
    parquet, csv = tmp_path / "train.parquet", tmp_path / "train.csv"
    assert run(*args, "-o", str(parquet), cwd=starter).returncode == 0
    assert run(*args, "-o", str(csv), cwd=starter).returncode == 0
    expected = pl.read_parquet(parquet)
    assert pl.read_csv(csv, schema=expected.schema).equals(expected)

    csv.write_text("keep me")
    refused = run(*args, "-o", str(csv), cwd=starter)
    assert refused.returncode == 2
    assert f"{csv} exists; pass --force to replace it" in " ".join(refused.stderr.split())
    assert csv.read_text() == "keep me"
    assert run(*args, "-o", str(csv), "--force", cwd=starter).returncode == 0
    assert pl.read_csv(csv, schema=expected.schema).equals(expected)


def test_training_set_without_a_spine_reads_the_sources_events(
    starter: Path, tmp_path: Path
) -> None:
    """--start/--end: one row per source event in the range, as the library builds it;
    --latest: each customer once, at --end."""
    features = ("--features", "customer_stats:orders_30d,customer_stats:segment")
    source = pl.read_parquet(starter / "data/customer_stats.parquet")
    times = sorted(source["updated_at"].unique())
    start, end = times[2], times[5]
    ranged = run(
        "training-set",
        *features,
        *("--start", start.isoformat(), "--end", end.isoformat()),
        *("-o", str(tmp_path / "range.parquet")),
        cwd=starter,
    )
    assert ranged.returncode == 0, ranged.stderr
    got = TrainingSet.load(tmp_path / "range.parquet")
    in_range = source.filter(pl.col("updated_at").is_between(start, end))
    assert got.metadata.row_count == in_range.height > 0
    store = FeatureStore(starter)
    try:
        same = store.get_training_set(
            features=["customer_stats:orders_30d", "customer_stats:segment"],
            start=start,
            end=end,
        )
    finally:
        store.close()
    assert got.to_polars().equals(same.to_polars())

    latest = run(
        "training-set",
        *features,
        *("--latest", "--end", end.isoformat(), "-o", str(tmp_path / "latest.csv")),
        cwd=starter,
    )
    assert latest.returncode == 0, latest.stderr
    rows = pl.read_csv(tmp_path / "latest.csv")
    assert rows.height == source.filter(pl.col("updated_at") <= end)["customer_id"].n_unique()
    as_of = f"{end:%Y-%m-%dT%H:%M:%S}.000000+0000"  # the range's end, in UTC
    assert rows["event_timestamp"].unique().to_list() == [as_of]


def test_unknown_feature_exits_1_with_a_clean_message(starter: Path, tmp_path: Path) -> None:
    result = run(
        "training-set",
        *("--spine", "data/spine.parquet", "--features", "customer_stats:segmnt"),
        *("-o", str(tmp_path / "x.parquet")),
        cwd=starter,
    )
    assert result.returncode == 1
    message = " ".join(result.stderr.split())
    assert message.startswith("Error: Feature 'customer_stats:segmnt' is not defined")
    assert "Did you mean 'customer_stats:segment'?" in message
    assert result.stdout == ""
    assert not (tmp_path / "x.parquet").exists()


def test_usage_errors_exit_2(starter: Path) -> None:
    both = run(
        "training-set",
        *("--spine", "data/spine.parquet", "--service", "starter_v1"),
        *("--features", "customer_stats:segment", "-o", "x.parquet"),
        cwd=starter,
    )
    assert both.returncode == 2
    assert "Error: pass exactly one of --features REFS or --service NAME" in both.stderr
    assert not (starter / "x.parquet").exists()
    missing = run("training-set", "--service", "starter_v1", "-o", "x.parquet", cwd=starter)
    assert missing.returncode == 2
    assert "give --spine FILE, or --start/--end" in " ".join(missing.stderr.split())
    spine_and_range = run(
        "training-set",
        *("--spine", "data/spine.parquet", "--latest", "--service", "starter_v1"),
        *("-o", "x.parquet"),
        cwd=starter,
    )
    assert spine_and_range.returncode == 2 and "not both" in spine_and_range.stderr
    assert not (starter / "x.parquet").exists()
    unknown = run("no-such-verb", cwd=starter)
    assert unknown.returncode == 2 and "No such command 'no-such-verb'" in unknown.stderr
    check_only = run("apply", "--seed", "3", "--fail-on-flagged", cwd=starter)
    assert check_only.returncode == 2
    assert "--seed and --fail-on-flagged only apply with --check" in check_only.stderr


def test_errors_outside_a_repo_and_on_existing_repo_exit_1(starter: Path, tmp_path: Path) -> None:
    nothing = run("list", cwd=tmp_path)
    assert nothing.returncode == 1 and nothing.stderr.startswith("Error: ")
    assert "featurestore init" in nothing.stderr
    definitions = (starter / "definitions.py").read_text()
    again = run("init", str(starter), cwd=tmp_path)
    assert again.returncode == 1
    assert f"cannot create a feature repo in {starter}" in " ".join(again.stderr.split())
    assert (starter / "definitions.py").read_text() == definitions  # nothing overwritten
    not_a_repo = run("apply", "--repo", str(tmp_path), cwd=starter)
    assert not_a_repo.returncode == 1 and "is not a feature repo" in not_a_repo.stderr
    assert not (tmp_path / ".featurestore").exists()


def test_validate_exits_1_when_a_source_drifts(tmp_path: Path) -> None:
    assert run("init", "repo", cwd=tmp_path).returncode == 0
    repo = tmp_path / "repo"
    source = repo / "data" / "customer_stats.parquet"
    pl.read_parquet(source).drop("segment").write_parquet(source)
    result = run("validate", "--json", cwd=repo)
    assert result.returncode == 1
    (report,) = json.loads(result.stdout)
    assert report["ok"] is False and report["features"] == []
    (problem,) = report["problems"]
    assert "'segment'" in problem
    table = run("validate", cwd=repo)
    assert table.returncode == 1
    assert boxed_rows(table.stdout)[0][-1] == "1 problem(s)"
    assert table.stdout.splitlines()[-1] == "1 of 1 source(s) have problems."
    applied = run("apply", cwd=repo)
    assert applied.returncode == 1 and "nothing was written" in applied.stderr
    assert not (repo / ".featurestore" / "registry.json").exists()


def test_the_installed_command_in_a_real_process(starter: Path) -> None:
    """The one end-to-end check of the console script and ``python -m featurestore.cli``: the
    other tests run the same click group in this process."""
    script = Path(sys.executable).with_name("featurestore")
    usage = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=120)
    assert usage.returncode == 0, usage.stderr
    verbs = {ln.split()[0] for ln in usage.stdout.split("Commands:")[1].splitlines() if ln}
    assert {"apply", "demo", "get-online", "materialize", "serve", "training-set"} <= verbs
    listed = subprocess.run(
        [sys.executable, "-m", "featurestore.cli", "list", "--json"],
        cwd=starter,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert listed.returncode == 0, listed.stderr
    assert [r["ref"] for r in json.loads(listed.stdout)] == applied_refs(starter)


def test_log_level_is_taken_after_the_verb_too(
    starter: Path, caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest
) -> None:
    root = logging.getLogger()
    request.addfinalizer(lambda level=root.level: root.setLevel(level))
    root.setLevel(logging.WARNING)
    assert run("apply", cwd=starter).returncode == 0
    assert not [r for r in caplog.records if r.name == "featurestore._registry"]
    assert run("apply", "--log-level", "info", cwd=starter).returncode == 0
    [applied] = [r for r in caplog.records if r.name == "featurestore._registry"]
    assert applied.getMessage().startswith("applied project=")


def test_errors_under_json_are_json_on_stderr(starter: Path, tmp_path: Path) -> None:
    args = ("training-set", "--spine", "data/spine.parquet", "--json")
    unknown = run(*args, "--features", "customer_stats:segmnt", "-o", "x.parquet", cwd=starter)
    assert unknown.returncode == 1 and unknown.stdout == ""
    error = json.loads(unknown.stderr)["error"]
    assert (error["type"], error["exit_code"]) == ("FeatureReferenceError", 1)
    assert error["message"].startswith("Feature 'customer_stats:segmnt' is not defined.")
    existing = tmp_path / "taken.parquet"
    existing.write_text("keep")
    refused = run(*args, "--service", "starter_v1", "-o", str(existing), cwd=starter)
    assert refused.returncode == 2
    assert json.loads(refused.stderr)["error"] == {
        "type": "UsageError",
        "message": f"{existing} exists; pass --force to replace it",
        "exit_code": 2,
    }


def test_list_shows_each_kind_of_definition(starter: Path) -> None:
    def listed(kind: str) -> list[dict[str, str]]:
        result = run("list", kind, "--json", cwd=starter)
        assert result.returncode == 0, result.stderr
        return list(json.loads(result.stdout))

    assert listed("entities") == [
        {"name": "customer", "join_keys": "customer_id", "description": "A customer account."}
    ]
    assert [(s["name"], s["kind"]) for s in listed("sources")] == [
        ("customer_stats", "file"),
        ("order_request", "request"),
    ]
    views = {v["name"]: v for v in listed("views")}
    assert views["customer_stats"]["kind"] == "batch"
    assert views["customer_stats"]["features"] == "orders_30d, avg_order_value, segment"
    assert views["basket_ratio"]["kind"] == "on-demand"
    assert listed("services") == [
        {"name": "starter_v1", "owner": "", "features": "customer_stats, basket_ratio"}
    ]
    table = run("list", "views", cwd=starter)
    assert table.stdout.splitlines()[0].strip() == "2 views"
    assert run("list", "widgets", cwd=starter).returncode == 2


def test_plan_verbose_diffs_each_changed_record(starter: Path) -> None:
    assert run("apply", cwd=starter).returncode == 0
    code = starter / "definitions.py"
    code.write_text(code.read_text().replace("ttl=timedelta(days=7)", "ttl=timedelta(days=8)"))
    short = run("plan", cwd=starter)
    verbose = run("plan", "--verbose", cwd=starter)
    assert verbose.stdout.startswith(
        short.stdout.removesuffix(short.stdout.splitlines()[-1] + "\n")
    )
    assert '-    "ttl_seconds": 604800.0' in verbose.stdout
    assert '+    "ttl_seconds": 691200.0' in verbose.stdout
    data = json.loads(run("plan", "--verbose", "--json", cwd=starter).stdout)
    first = data["changed"][0]
    assert first["old"]["definition"]["ttl_seconds"] == 604800.0
    assert first["new"]["definition"]["ttl_seconds"] == 691200.0
    assert "old" not in json.loads(run("plan", "--json", cwd=starter).stdout)["changed"][0]


def test_teardown_removes_the_online_data_after_confirmation(starter: Path) -> None:
    import contextlib

    from click.testing import CliRunner

    from featurestore.cli import main

    assert run("apply", cwd=starter).returncode == 0
    assert run("materialize", "--end", "2025-01-14T00:00:00", cwd=starter).returncode == 0

    def held() -> int:
        store = FeatureStore(starter)
        try:
            return store.online.count("customer_stats")
        finally:
            store.close()

    assert held() > 0
    with contextlib.chdir(starter):
        declined = CliRunner().invoke(main, ["teardown"], input="n\n")
    assert declined.exit_code == 1 and held() > 0
    done = run("teardown", "--yes", cwd=starter)
    assert done.returncode == 0, done.stderr
    assert "Removed the online values and events of 1 view(s)" in " ".join(done.stdout.split())
    assert held() == 0
    store = FeatureStore(starter)
    try:
        assert store.newest_values() == {}
        assert store.list_features()  # the registry stays
    finally:
        store.close()
    assert run("materialize", "--end", "2025-01-14T00:00:00", cwd=starter).returncode == 0
    assert held() > 0
