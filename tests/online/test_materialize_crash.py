"""Materialization state is safe under concurrency and crashes, on every backend: the state of
a publish is written in the same transaction as its data, so two runs of different views at once
keep both states (the interleaving that lost one is forced: both read the state before either
publishes), two runs of the same view leave the data of one with its own state, and a run killed
with SIGKILL before, inside or after its publish (each point forced by a hook in the run) leaves
the old snapshot or the new one, in full, with the state that describes it."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import USER, definitions, source, view

from featurestore import FeatureStore
from featurestore.online._state import MaterializationState

from .conftest import online_store_yaml, write_online_repo

UTC = dt.UTC
DAY1 = dt.datetime(2025, 1, 1, tzinfo=UTC)
DAY2 = dt.datetime(2025, 1, 2, tzinfo=UTC)
DEFINITIONS = definitions(
    USER,
    view(
        "first",
        source("first_src", "data/first/"),
        ttl="timedelta(days=30)",
        features=['Feature("x", pl.Float64)'],
    ),
    view(
        "second",
        source("second_src", "data/second/"),
        ttl="timedelta(days=30)",
        features=['Feature("y", pl.Int64)'],
    ),
)


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
        both = pl.concat([rows(n, DAY1, 1), rows(n, DAY2, 2)])
        root = write_online_repo(
            tmp_path / "repo",
            online_store_yaml(backend, redis_prefix, timeout_seconds=5),
            definitions=DEFINITIONS,
            project="crash",
            data={f"data/{name}/part.parquet": both for name in ("first", "second")},
        )
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


def expected(feature: str, n: int, end: dt.datetime) -> list[Any]:
    bump = 1 if end < DAY2 else 2
    return rows(n, DAY1, bump)[feature].to_list()


def state_of(store: FeatureStore, view: str) -> Any:
    return MaterializationState.load(store.online, [view]).views.get(view)


def hold_state_until_both_read(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make two runs read the materialization state before either publishes (the interleaving
    in which a shared state file lost one run's state); returns the views whose runs met at
    the barrier, for the test to check that they did."""
    barrier = threading.Barrier(2, timeout=30)
    real_load = MaterializationState.load.__func__  # type: ignore[attr-defined]
    met: list[str] = []

    def load_then_wait(cls: type, store: Any, views: Any) -> MaterializationState:
        state = real_load(cls, store, views)
        barrier.wait()
        met.extend(views)
        return state

    monkeypatch.setattr(MaterializationState, "load", classmethod(load_then_wait))
    return met


def run_at_once(*runs: Callable[[], None]) -> None:
    """Run each callable in its own thread; raise the first error any of them raised."""
    errors: list[BaseException] = []

    def guarded(run: Callable[[], None]) -> None:
        try:
            run()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(run,)) for run in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


def materializing(root: Path, view: str, end: dt.datetime) -> Callable[[], None]:
    def run() -> None:
        store = FeatureStore(root)
        try:
            store.materialize(end, views=[view])
        finally:
            store.close()

    return run


def test_two_runs_of_different_views_at_once_keep_both_states(
    make_repo: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(50)
    met = hold_state_until_both_read(monkeypatch)
    run_at_once(materializing(root, "first", DAY1), materializing(root, "second", DAY2))
    monkeypatch.undo()
    assert sorted(met) == ["first", "second"]  # both read the state before either published
    store = FeatureStore(root)
    try:
        assert state_of(store, "first").watermark == DAY1
        assert state_of(store, "second").watermark == DAY2
        assert served(store, "first", "x", 50) == expected("x", 50, DAY1)
        assert served(store, "second", "y", 50) == expected("y", 50, DAY2)
        assert [r.view for r in store.materialize_incremental(DAY2)] == ["first", "second"]
    finally:
        store.close()


def test_two_runs_of_the_same_view_leave_one_snapshot_with_its_own_state(
    make_repo: Callable[[int], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo(50)
    met = hold_state_until_both_read(monkeypatch)
    run_at_once(materializing(root, "first", DAY1), materializing(root, "first", DAY2))
    monkeypatch.undo()
    assert met == ["first", "first"]
    store = FeatureStore(root)
    try:
        end = state_of(store, "first").watermark
        assert end in (DAY1, DAY2)
        assert served(store, "first", "x", 50) == expected("x", 50, end)
    finally:
        store.close()


# The run stops at ``point`` in its publish of view "first" and says so; the test kills it
# there. Inside the publish: on SQLite and LMDB, with the first chunk of rows written in the open
# transaction (the values of the next chunk are being taken); on Redis, with the staging hash
# written and the swap to the live hash not yet sent.
RUNNER = """
import sys, time, datetime as dt
import redis
from featurestore import FeatureStore

root, end, point = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2]), sys.argv[3]
store = FeatureStore(root)
online = store.online


def stop(at):
    if at == point:
        print(point, flush=True)
        time.sleep(600)


class StopOnNextChunk(list):
    def __getitem__(self, index):
        if isinstance(index, slice) and index.start:
            stop("inside the publish")
        return super().__getitem__(index)


publish = online.publish


def hooked(view, keys, values, *, replace, meta=None):
    if view != "first":
        return publish(view, keys, values, replace=replace, meta=meta)
    stop("before the publish")
    if hasattr(online, "client"):
        execute = redis.client.Pipeline.execute

        def swap_after_staging(pipe, *args, **kwargs):
            if pipe.transaction:
                stop("inside the publish")
            return execute(pipe, *args, **kwargs)

        redis.client.Pipeline.execute = swap_after_staging
    else:
        values = StopOnNextChunk(values)
    publish(view, keys, values, replace=replace, meta=meta)
    stop("after the publish")


online.publish = hooked
store.materialize(end, views=["first"], force=True)
"""


@pytest.mark.parametrize(
    ("point", "kept"),
    [("before the publish", DAY1), ("inside the publish", DAY1), ("after the publish", DAY2)],
)
def test_a_run_killed_before_inside_or_after_its_publish_leaves_one_whole_snapshot(
    make_repo: Callable[[int], Path], point: str, kept: dt.datetime
) -> None:
    n = 60_000  # more than one chunk of writes on either backend
    root = make_repo(n)
    store = FeatureStore(root)
    store.materialize(DAY1, views=["first"])
    store.close()
    process = subprocess.Popen(
        [sys.executable, "-c", RUNNER, str(root), DAY2.isoformat(), point],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    try:
        assert process.stdout.readline().decode().strip() == point  # it stopped there
    finally:
        process.kill()
        process.wait()
    store = FeatureStore(root)
    try:
        assert state_of(store, "first").watermark == kept
        assert served(store, "first", "x", n) == expected("x", n, kept)
        assert store.online.count("first") == n
    finally:
        store.close()


def test_two_runs_opening_a_new_sqlite_store_at_once_both_succeed(tmp_path: Path) -> None:
    """SQLite does not wait on its busy timeout to switch a new file to WAL mode: the opener
    that loses the race tries again instead of failing with 'database is locked'."""
    from featurestore.online._protocol import META_VIEW
    from featurestore.online._sqlite import SqliteOnlineStore

    for attempt in range(30):
        path = tmp_path / f"online-{attempt}.db"
        barrier = threading.Barrier(2, timeout=30)

        def open_and_write(name: str, path: Path = path, barrier: Any = barrier) -> None:
            barrier.wait()
            store = SqliteOnlineStore(path)
            store.publish(name, ["k"], [b"v"], replace=True, meta={f"state:{name}": b"{}"})
            store.close()

        run_at_once(lambda: open_and_write("a"), lambda: open_and_write("b"))
        store = SqliteOnlineStore(path)
        assert store.read(META_VIEW, ["state:a", "state:b"]) == [b"{}", b"{}"]
        store.close()


# The run materializes view "first" in parts and stops between its second and third part (the
# first two written in the open transaction, or on Redis into the staging hash); the test
# kills it there.
PARTS_RUNNER = """
import sys, time, datetime as dt
from featurestore import FeatureStore

root, end = sys.argv[1], dt.datetime.fromisoformat(sys.argv[2])
store = FeatureStore(root)
online = store.online
publish_parts = online.publish_parts


def hooked(view, parts, *, meta):
    def stopping():
        for i, part in enumerate(parts()):
            if i == 2:
                print("between two parts", flush=True)
                time.sleep(600)
            yield part

    return publish_parts(view, stopping, meta=meta)


online.publish_parts = hooked
store.materialize(end, views=["first"], force=True)
"""


def test_a_run_killed_between_two_parts_leaves_the_previous_snapshot(
    make_repo: Callable[[int], Path],
) -> None:
    n = 30_000
    root = make_repo(n)
    store = FeatureStore(root)
    store.materialize(DAY1, views=["first"])
    store.close()
    config = root / "featurestore.yaml"
    config.write_text(config.read_text() + "materialization: {part_rows: 10000}\n")  # 6 parts
    process = subprocess.Popen(
        [sys.executable, "-c", PARTS_RUNNER, str(root), DAY2.isoformat()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        said = process.stdout.readline().decode().strip()
        assert said == "between two parts", process.stderr.read().decode()[-2000:]
    finally:
        process.kill()
        process.wait()
    store = FeatureStore(root)
    try:
        assert state_of(store, "first").watermark == DAY1
        assert served(store, "first", "x", n) == expected("x", n, DAY1)
        assert store.online.count("first") == n
        [result] = store.materialize(DAY2, views=["first"])  # and the next run lands whole
        assert result.rows == n
        assert served(store, "first", "x", n) == expected("x", n, DAY2)
    finally:
        store.close()
