"""Materialization state is safe under concurrency and crashes, on SQLite and Redis: the state of
a publish is written in the same transaction as its data, so two runs of different views at once
keep both states (the interleaving that lost one is forced: both read the state before either
publishes), two runs of the same view leave the data of one with its own state, and a run killed
with SIGKILL at random points leaves the old snapshot or the new one, in full, with the state
that describes it."""

from __future__ import annotations

import datetime as dt
import random
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.online._materialize import MaterializationState

from .conftest import online_store_yaml

UTC = dt.UTC
DAY1 = dt.datetime(2025, 1, 1, tzinfo=UTC)
DAY2 = dt.datetime(2025, 1, 2, tzinfo=UTC)
DEFINITIONS = """
from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource

user = Entity("user", join_keys=["user_id"])
first = FeatureView(
    name="first",
    entities=[user],
    owner="tests",
    ttl=timedelta(days=30),
    source=FileSource(name="first_src", path="data/first/", timestamp_field="ts"),
    features=[Feature("x", pl.Float64)],
)
second = FeatureView(
    name="second",
    entities=[user],
    owner="tests",
    ttl=timedelta(days=30),
    source=FileSource(name="second_src", path="data/second/", timestamp_field="ts"),
    features=[Feature("y", pl.Int64)],
)
"""


def rows(n: int, day: dt.datetime, bump: int) -> pl.DataFrame:
    ids = np.arange(n, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": ids,
            "ts": pl.Series([day] * n, dtype=pl.Datetime("us", "UTC")),
            "x": ids * 0.5 + bump,
            "y": ids + bump,
        }
    )


@pytest.fixture
def make_repo(backend: str, tmp_path: Path, redis_prefix: str) -> Iterator[Callable[[int], Path]]:
    """A repo of two views over ``n`` users: version 1 of each row on DAY1, version 2 on DAY2
    (so a materialization as of DAY1 and one as of DAY2 publish different values)."""
    stores: list[FeatureStore] = []

    def make(n: int) -> Path:
        root = tmp_path / "repo"
        for name in ("first", "second"):
            (root / "data" / name).mkdir(parents=True)
            pl.concat([rows(n, DAY1, 1), rows(n, DAY2, 2)]).write_parquet(
                root / "data" / name / "part.parquet"
            )
        online = online_store_yaml(backend, redis_prefix, timeout_seconds=5)
        (root / "featurestore.yaml").write_text(f"project: crash\n{online}")
        (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())
        store = FeatureStore(root)
        store.apply()
        stores.append(store)
        return root

    yield make
    for store in stores:
        store.close()


def served(store: FeatureStore, view: str, feature: str, n: int) -> list[Any]:
    resp = store.get_online_features(
        features=[f"{view}:{feature}"],
        entities={"user_id": list(range(n))},
        request_time=DAY2 + dt.timedelta(hours=1),
    )
    return resp.values[feature]


def expected(view: str, feature: str, n: int, end: dt.datetime) -> list[Any]:
    bump = 1 if end < DAY2 else 2
    frame = rows(n, DAY1, bump)
    return frame[feature].to_list()


def state_of(store: FeatureStore, view: str) -> Any:
    return MaterializationState.load(store.online, [view]).views.get(view)


def hold_state_until_both_read(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make two runs read the materialization state before either publishes (the interleaving
    in which a shared state file lost one run's state)."""
    barrier = threading.Barrier(2, timeout=30)
    real_load = MaterializationState.load.__func__  # type: ignore[attr-defined]

    def load_then_wait(cls: type, store: Any, views: Any) -> MaterializationState:
        state = real_load(cls, store, views)
        barrier.wait()
        return state

    monkeypatch.setattr(MaterializationState, "load", classmethod(load_then_wait))


def test_two_runs_of_different_views_at_once_keep_both_states(
    make_repo: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(50)
    hold_state_until_both_read(monkeypatch)
    errors: list[BaseException] = []

    def run(view: str, end: dt.datetime) -> None:
        store = FeatureStore(root)
        try:
            store.materialize(end, views=[view])
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            store.close()

    threads = [
        threading.Thread(target=run, args=("first", DAY1)),
        threading.Thread(target=run, args=("second", DAY2)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    assert not errors, errors
    store = FeatureStore(root)
    try:
        assert state_of(store, "first").watermark == DAY1
        assert state_of(store, "second").watermark == DAY2
        assert served(store, "first", "x", 50) == expected("first", "x", 50, DAY1)
        assert served(store, "second", "y", 50) == expected("second", "y", 50, DAY2)
        assert [r.view for r in store.materialize_incremental(DAY2)] == ["first", "second"]
    finally:
        store.close()


def test_two_runs_of_the_same_view_leave_one_snapshot_with_its_own_state(
    make_repo: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(50)
    hold_state_until_both_read(monkeypatch)

    def run(end: dt.datetime) -> None:
        store = FeatureStore(root)
        try:
            store.materialize(end, views=["first"])
        finally:
            store.close()

    threads = [threading.Thread(target=run, args=(end,)) for end in (DAY1, DAY2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    monkeypatch.undo()
    store = FeatureStore(root)
    try:
        end = state_of(store, "first").watermark
        assert end in (DAY1, DAY2)
        assert served(store, "first", "x", 50) == expected("first", "x", 50, end)
    finally:
        store.close()


RUNNER = """
import sys, datetime as dt
from featurestore import FeatureStore
store = FeatureStore(sys.argv[1])
print("started", flush=True)
store.materialize(dt.datetime.fromisoformat(sys.argv[2]), views=["first"], force=True)
print("done", flush=True)
"""


def test_a_run_killed_at_random_points_leaves_a_whole_snapshot_and_its_state(
    make_repo: Callable[[int], Path],
) -> None:
    n = 60_000
    root = make_repo(n)
    store = FeatureStore(root)
    store.materialize(DAY1, views=["first"])
    store.close()
    # how long a whole run takes here, to spread the kills over it
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", RUNNER, str(root), DAY2.isoformat()], check=True)
    whole = time.monotonic() - started
    rng = random.Random(7)
    ends = [DAY1, DAY2]
    outcomes = []
    for attempt in range(4):
        end = ends[attempt % 2]
        process = subprocess.Popen(
            [sys.executable, "-c", RUNNER, str(root), end.isoformat()],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert process.stdout is not None
        assert process.stdout.readline().strip() == b"started"
        time.sleep(rng.uniform(0.0, whole * 0.8))
        process.kill()
        process.wait()
        store = FeatureStore(root)
        try:
            state = state_of(store, "first")
            assert state is not None and state.watermark in ends
            assert served(store, "first", "x", n) == expected("first", "x", n, state.watermark)
            assert store.online.count("first") == n
            outcomes.append(state.watermark)
        finally:
            store.close()
    assert len(outcomes) == 4


def test_two_runs_opening_a_new_sqlite_store_at_once_both_succeed(tmp_path: Path) -> None:
    """SQLite does not wait on its busy timeout to switch a new file to WAL mode: the opener
    that loses the race tries again instead of failing with 'database is locked'."""
    from featurestore.online._protocol import META_VIEW
    from featurestore.online._sqlite import SqliteOnlineStore

    for attempt in range(30):
        path = tmp_path / f"online-{attempt}.db"
        barrier = threading.Barrier(2, timeout=30)
        errors: list[BaseException] = []
        threads = [
            threading.Thread(target=_open_and_write, args=(path, name, barrier, errors))
            for name in ("a", "b")
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, (attempt, errors)
        store = SqliteOnlineStore(path)
        assert store.read(META_VIEW, ["state:a", "state:b"]) == [b"{}", b"{}"]
        store.close()


def _open_and_write(
    path: Path, name: str, barrier: threading.Barrier, errors: list[BaseException]
) -> None:
    from featurestore.online._sqlite import SqliteOnlineStore

    try:
        barrier.wait()
        store = SqliteOnlineStore(path)
        store.publish(name, ["k"], [b"v"], replace=True, meta={f"state:{name}": b"{}"})
        store.close()
    except BaseException as exc:
        errors.append(exc)
