"""``store.status()`` and ``featurestore status``: each problem is found when, and only when, its
cause is there (nothing applied, code changed since apply, never materialized, materialized by
another definition, values past the ttl with or without newer source data, a source that is
missing, changed, empty or without recent events, values lost from the online store, a view
removed from the code, an unreachable store), on LMDB, SQLite and the real Redis; the counts it
shows equal what the stores and the serving log hold."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
import redis
from click.testing import CliRunner
from conftest import DEFINITIONS, PROJECT, users_frame, view

from featurestore import FeatureStore
from featurestore.cli._main import main
from featurestore.monitoring._status import RepoStatus, ViewStatus
from featurestore.online._event_state import events_store_name

REDIS_URL = "redis://127.0.0.1:6379/0"
UTC = dt.UTC
END = dt.datetime(2024, 2, 10, tzinfo=UTC)
NEWEST = dt.datetime(2024, 2, 1, tzinfo=UTC)  # the newest row of the users source
TTL = dt.timedelta(days=30)  # user_profile's ttl

# one more view over the same source: aggregations keep recent events online
UPDATES = view(
    "user_updates",
    "users_source",
    owner='"risk-team"',
    aggregations=['Count(window=timedelta(days=60), name="updates_60d")'],
)
WITH_EVENTS = f"{DEFINITIONS}\n{UPDATES}"


@pytest.fixture(params=["lmdb", "sqlite", "redis"])
def online_yaml(request: pytest.FixtureRequest) -> Iterator[str]:
    """The ``online_store`` block of each backend; Redis keys are removed afterwards."""
    if request.param != "redis":  # lmdb is the default
        yield "" if request.param == "lmdb" else "online_store: {type: sqlite}\n"
        return
    prefix = f"fs-status-{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis must run on 127.0.0.1:6379 (redis-server --daemonize yes): {exc}")
    yield f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
    keys = list(client.scan_iter(f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def open_store(
    make_repo: Callable[..., Path], online_yaml: str
) -> Iterator[Callable[..., FeatureStore]]:
    """``open_store(definitions=..., apply=True, data=...)``: a store over a repo written anew
    in the same directory on every call, so a second call sees the first one's registry and
    online values."""
    opened: list[FeatureStore] = []

    def make(
        definitions: str = DEFINITIONS,
        apply: bool = True,
        data: dict[str, pl.DataFrame] | None = None,
    ) -> FeatureStore:
        config = f"project: {PROJECT}\n{online_yaml}"
        root = make_repo(definitions=definitions, config=config, data=data)
        store = FeatureStore(root)
        opened.append(store)
        if apply:
            store.apply()
        return store

    yield make
    for store in opened:
        store.close()


def view(status: RepoStatus, name: str) -> ViewStatus:
    return next(v for v in status.views if v.name == name)


def test_a_repo_never_applied_says_so_once(open_store: Callable[..., FeatureStore]) -> None:
    status = open_store(apply=False).status(END)
    assert status.applied_at is None
    assert status.flagged == ["nothing has been applied yet; run 'featurestore apply'"]
    assert all(not v.applied and not v.problems for v in status.views)


def test_a_missing_source_is_flagged_before_anything_is_applied(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(apply=False)
    (store.repo.root / "data" / "users.parquet").unlink()
    status = store.status(END)
    assert status.flagged[0] == "nothing has been applied yet; run 'featurestore apply'"
    [problem] = view(status, "user_profile").problems
    assert problem.startswith("its source cannot be used: source 'users': path ")
    assert "matches no file" in problem


def test_applied_views_wait_for_materialization(open_store: Callable[..., FeatureStore]) -> None:
    status = open_store().status(END)
    assert status.applied_at is not None
    assert status.online_store_error is None
    assert status.problems == []
    profile = view(status, "user_profile")
    assert profile.applied and profile.changed == []
    assert profile.problems == [
        "its features were never materialized; run 'featurestore materialize'"
    ]
    assert profile.online_entities == 0
    assert view(status, "txn_risk").kind == "on_demand"
    assert view(status, "txn_risk").problems == []


def test_freshness_is_measured_against_the_ttl(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    store.materialize(end=END)
    status = store.status(END)
    profile = view(status, "user_profile")
    assert status.flagged == []
    assert profile.materialized_end == END
    assert profile.newest_event_time == NEWEST
    assert profile.age_seconds == (END - NEWEST).total_seconds()
    assert profile.ttl_seconds == TTL.total_seconds()
    assert profile.online_entities == store.online.count("user_profile") == 3
    # the ttl is inclusive, as in training sets: a value exactly ttl old is still served
    assert view(store.status(NEWEST + TTL), "user_profile").problems == []
    late = view(store.status(NEWEST + TTL + dt.timedelta(seconds=1)), "user_profile")
    assert len(late.problems) == 1
    assert "beyond the ttl of 4w 2d" in late.problems[0]
    assert "served STALE" in late.problems[0]


def test_stale_values_name_their_fix_by_what_the_source_holds(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=END)
    later = NEWEST + TTL + dt.timedelta(days=20)
    [problem] = view(store.status(later), "user_profile").problems
    assert problem.endswith("source 'users' has nothing newer: check what writes it")

    row = users_frame().head(1).with_columns(updated_at=pl.lit(later.replace(tzinfo=None)))
    newer = users_frame().vstack(row)
    store = open_store(data={"data/users.parquet": newer}, apply=False)
    profile = view(store.status(later), "user_profile")
    assert profile.source_newest_event_time == later
    assert profile.stale
    assert profile.problems == [
        "the newest online value is 7w 1d old, beyond the ttl of 4w 2d: every value of the view "
        f"is served STALE; its source has newer events (up to {later:%Y-%m-%d %H:%M:%S} UTC); "
        "run 'featurestore materialize'"
    ]
    store.materialize(end=later)
    assert store.status(later).flagged == []


def test_a_source_without_recent_events_is_flagged_before_materialization(
    open_store: Callable[..., FeatureStore],
) -> None:
    profile = view(open_store().status(NEWEST + TTL + dt.timedelta(days=1)), "user_profile")
    assert not profile.stale
    assert profile.problems == [
        "its features were never materialized; run 'featurestore materialize'",
        "the newest event in source 'users' is 4w 3d old, beyond the ttl of 4w 2d: no "
        "materialization can serve fresh values; check what writes the source",
    ]


def test_a_broken_source_is_flagged_with_its_cause(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    changed = users_frame().with_columns(pl.col("age").cast(pl.String))
    store = open_store(data={"data/users.parquet": changed}, apply=False)
    profile = view(store.status(END), "user_profile")
    assert profile.source_error is not None and "age" in profile.source_error
    assert profile.problems[0].startswith("its source cannot be used: ")
    assert "'age'" in profile.problems[0] and "String" in profile.problems[0]

    (store.repo.root / "data" / "users.parquet").unlink()
    profile = view(store.status(END), "user_profile")
    assert profile.source_newest_event_time is None
    assert "matches no file" in profile.problems[0]

    users_frame().clear().write_parquet(store.repo.root / "data" / "users.parquet")
    assert view(store.status(END), "user_profile").problems == [
        "its source 'users' holds no rows",
        "its features were never materialized; run 'featurestore materialize'",
    ]


def test_code_changes_then_outdated_online_values(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=END)
    changed = DEFINITIONS.replace(".dt.total_days()", ".dt.total_days() + 1")
    store = open_store(definitions=changed, apply=False)
    profile = view(store.status(END), "user_profile")
    assert profile.changed == ["user_profile:tenure_days"]
    assert profile.problems == [
        "user_profile:tenure_days differ from the applied definitions; run 'featurestore apply'"
    ]
    # the on-demand view reads user_profile: its fingerprint follows its inputs
    assert view(store.status(END), "txn_risk").changed == ["txn_risk:amount_per_age"]

    store.apply()
    profile = view(store.status(END), "user_profile")
    assert profile.changed == []
    assert profile.problems == [
        "online values of user_profile:tenure_days come from another definition than the "
        "applied one; run 'featurestore materialize'"
    ]
    store.materialize(end=END)
    assert store.status(END).flagged == []


def test_a_view_removed_from_the_code(open_store: Callable[..., FeatureStore]) -> None:
    open_store()
    without = DEFINITIONS[: DEFINITIONS.index("@on_demand_feature_view")]
    status = open_store(definitions=without, apply=False).status(END)
    gone = view(status, "txn_risk")
    assert gone.changed == ["txn_risk:amount_per_age"]
    assert gone.problems == [
        "applied but no longer defined in the code; run 'featurestore apply' to remove it"
    ]


def test_values_lost_from_the_online_store(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    store.materialize(end=END)
    store.online.delete_view("user_profile")  # what a restarted Redis without persistence does
    profile = view(store.status(END), "user_profile")
    assert profile.online_entities == 0
    assert profile.problems == [
        "the online store holds 0 entities but the last full materialization published 3: "
        "values were lost (e.g. a store that restarted without persistence); run "
        "'featurestore materialize'"
    ]
    store.materialize(end=END)
    assert store.status(END).flagged == []


def test_aggregation_views_report_their_events(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store(definitions=WITH_EVENTS)
    assert view(store.status(END), "user_updates").problems == [
        "its aggregations were never materialized; run 'featurestore materialize'"
    ]
    store.materialize(end=END)
    updates = view(store.status(END), "user_updates")
    assert updates.problems == []
    assert updates.events_end == END
    # users 1, 2 and 3 have updates within 60 days of END
    assert updates.event_entities == store.online.count(events_store_name("user_updates")) == 3
    assert updates.online_entities is None  # no plain features: no latest values

    store.online.delete_view(events_store_name("user_updates"))
    assert "events were lost" in view(store.status(END), "user_updates").problems[0]
    store.materialize(end=END)

    store = open_store(definitions=WITH_EVENTS.replace("days=60", "days=90"))  # applied
    assert view(store.status(END), "user_updates").problems == [
        "online events of user_updates:updates_60d come from another definition than the "
        "applied one; run 'featurestore materialize'"
    ]


def test_an_unreachable_store_is_a_problem_not_a_crash(make_repo: Callable[..., Path]) -> None:
    config = (
        f"project: {PROJECT}\n"
        "online_store: {type: redis, url: 'redis://:s3cret@127.0.0.1:1/2', timeout_seconds: 0.2}\n"
    )
    store = FeatureStore(make_repo(config=config))
    store.apply()
    try:
        status = store.status(END)
    finally:
        store.close()
    assert status.online_store == "redis 127.0.0.1:1/2 prefix 'fs:'"  # no password shown
    assert status.online_store_error is not None
    assert status.problems[0].startswith("the online store is unreachable: ")
    assert view(status, "user_profile").online_entities is None


def test_serving_log_files_days_and_last_day_records(make_repo: Callable[..., Path]) -> None:
    config = f"project: {PROJECT}\nserving_log: {{enabled: true}}\n"
    store = FeatureStore(make_repo(config=config))
    try:
        store.apply()
        empty = store.status(END).serving_log
        assert (empty.files, empty.bytes, empty.last_day, empty.last_day_records) == (0, 0, None, 0)
        store.materialize(end=END)
        next_day = END + dt.timedelta(days=1)
        for ids, at in (([1, 2, 3], END), ([4, 1], next_day), ([2], next_day)):
            store.get_online_features(
                features=["user_profile:age"], entities={"user_id": ids}, request_time=at
            )
        served = store.read_serving_log()
        log = store.status(END).serving_log
    finally:
        store.close()
    files = sorted((store.serving_log_dir).glob("date=*/*.parquet"))
    assert log.files == len(files) >= 2
    assert log.bytes == sum(f.stat().st_size for f in files)
    assert (log.first_day, log.last_day) == (END.date(), next_day.date())
    on_last_day = served.filter(pl.col("request_time").dt.date() == next_day.date())
    assert log.last_day_records == on_last_day.height == 3
    newest = max(f.stat().st_mtime for f in files)
    assert log.last_written == dt.datetime.fromtimestamp(newest, UTC)


def test_cli_status_json_and_exit_codes(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    repo = str(store.repo.root)
    runner = CliRunner(env={"COLUMNS": "200"})  # the table's width, whatever ran before

    result = runner.invoke(main, ["status", "--repo", repo, "--at", "2024-02-10", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["flagged"] == [
        "view 'user_profile': its features were never materialized; run 'featurestore materialize'"
    ]
    gate = ["status", "--repo", repo, "--at", "2024-02-10", "--fail-on-flagged"]
    result = runner.invoke(main, gate)
    assert result.exit_code == 3
    assert "never materialized" in result.output

    store.materialize(end=END)
    result = runner.invoke(main, gate)
    assert result.exit_code == 0, result.output
    assert "No problems found." in result.output
    assert "user_profile" in result.output
    result = runner.invoke(main, ["status", "--repo", repo, "--at", "2024-04-01"])
    assert result.exit_code == 0  # problems are shown; only --fail-on-flagged gates
    assert "served STALE" in result.output
