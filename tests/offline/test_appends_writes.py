"""How pushes write: atomically (a write that fails part-way leaves nothing visible) and
concurrently (two pushes meeting inside the writer both land), PushSource and the push modes,
and an online store that fails after the part is written.

Aggregation features follow a push online at once; plain features reading the same source
follow only at the next materialization (until then online holds what was materialized, while
training sets already see the pushed rows).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from redis_process import RedisProcess

from featurestore import (
    FeatureReferenceError,
    FeatureStore,
    OnlineRequestError,
)

from .push_repo import (
    AGG_REFS,
    BASE,
    MINUTE,
    PLAIN_REFS,
    USERS,
    H,
    listing,
    offline,
    online,
    stored_events,
    txn,
)

# --- atomicity and concurrency ---------------------------------------------------------


def test_a_write_that_fails_part_way_leaves_nothing_visible(
    make_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    files_before = listing(store)
    offline_before = offline(store, [*AGG_REFS, *PLAIN_REFS], at)
    online_before = online(store, [*AGG_REFS, *PLAIN_REFS], at)
    events_before = stored_events(store, "user_txn")
    written: list[int] = []

    def failing(table: pa.Table, where: Any, **kwargs: Any) -> None:
        where.write(b"PAR1" + b"\x00" * 4096)  # a few bytes of a file, then the disk is full
        where.flush()
        written.append(os.fstat(where.fileno()).st_size)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="No space left"):
        store.push("txns", [txn(2, BASE + MINUTE, 5.0)])
    assert written and written[0] >= 4100  # the failure really came part-way through a file
    assert listing(store) == files_before  # no part, no temporary file
    assert offline(store, [*AGG_REFS, *PLAIN_REFS], at) == offline_before
    assert online(store, [*AGG_REFS, *PLAIN_REFS], at) == online_before
    assert stored_events(store, "user_txn") == events_before
    monkeypatch.undo()
    store.push("txns", [txn(2, BASE + MINUTE, 5.0)])
    assert offline(store, AGG_REFS, at) == {"count_1h": [1, 1, 0], "spend_1d": [10.0, 5.0, 0.0]}


ROUNDS = 10  # pairs of simultaneous pushes


def test_two_pushes_at_the_same_time_both_land(
    make_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds of two pushes from two threads into one store (as the server's thread pool
    runs them): each pair starts together and meets inside the writer, both temporary files
    open, then both written, before either is renamed. Every pair must meet there, and every
    push must land."""
    store = make_store()
    store.materialize(BASE)
    original = pq.write_table
    barriers: dict[str, threading.Barrier] = {}
    met: list[str] = []

    def meet(name: str) -> None:
        barriers[name].wait()
        met.append(name)

    def together(table: pa.Table, where: Any, **kwargs: Any) -> None:
        meet("write")  # both temporary files exist before either is written
        original(table, where, **kwargs)
        meet("rename")  # and both are written before either is renamed

    monkeypatch.setattr(pq, "write_table", together)
    results: list[Any] = []

    def push(user: int, at: dt.datetime) -> None:
        meet("start")
        try:
            results.append(store.push("txns", [txn(user, at, float(user))]))
        except BaseException as exc:
            results.append(exc)
            for barrier in barriers.values():
                barrier.abort()  # the other push need not wait for this one

    for r in range(ROUNDS):
        barriers.update({n: threading.Barrier(2, timeout=30) for n in ("start", "write", "rename")})
        at = BASE + (r + 1) * MINUTE
        threads = [threading.Thread(target=push, args=(u, at)) for u in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of {2 * ROUNDS} pushes failed: {failed[0]}"
    assert sorted(met) == sorted(["start", "write", "rename"] * 2 * ROUNDS)  # every pair met
    files = {r.offline_file for r in results}
    assert len(files) == 2 * ROUNDS and all(Path(f).is_file() for f in files)
    assert not [f for f in listing(store) if f.endswith(".tmp")]
    at = BASE + 30 * MINUTE
    expected = {"count_1h": [1, ROUNDS, ROUNDS], "spend_1d": [10.0, 2.0 * ROUNDS, 3.0 * ROUNDS]}
    assert offline(store, AGG_REFS, at) == expected
    assert online(store, AGG_REFS, at) == expected


# --- PushSource and push modes ----------------------------------------------------------


def test_a_push_source_appends_to_its_batch_source_where_views_see_it(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    result = store.push("click_push", [{"user_id": 2, "ts": BASE + MINUTE, "page": "/cart"}])
    assert result.offline_file is not None
    part = Path(result.offline_file)
    assert part.parent == store.repo.root / "data" / "clicks"
    assert result.entities == {"user_clicks": 1}
    refs = ["user_clicks:clicks_1h", "last_click:page"]
    assert offline(store, refs, at) == {"clicks_1h": [1, 1, 0], "page": ["/", "/cart", None]}
    assert online(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}
    with pytest.raises(FeatureReferenceError, match="Did you mean 'click_push'"):
        store.push("clicks_push", [{"user_id": 2, "ts": BASE, "page": "/"}])


def test_a_push_under_the_batch_sources_own_name_moves_the_push_sources_views_too(
    make_store: Callable[..., FeatureStore],
) -> None:
    """The batch FileSource takes pushes under its own name too (PushSource's docstring); the
    events land in the files that ``user_clicks`` reads through the PushSource, so its online
    window must move with them as with a push under the PushSource's name."""
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    result = store.push("clicks", [{"user_id": 2, "ts": BASE + MINUTE, "page": "/x"}])
    assert result.offline_file is not None
    assert offline(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}
    assert online(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}, (
        f"online behind the files after the push ({result})"
    )


def test_to_offline_writes_the_part_and_leaves_online_alone(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    refs = [*AGG_REFS, *PLAIN_REFS]
    online_before = online(store, refs, at)
    events_before = stored_events(store, "user_txn")
    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0, "b")], to="offline")
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert (result.entities, result.late, result.online_error) == ({}, {}, None)
    assert stored_events(store, "user_txn") == events_before
    assert online(store, refs, at) == online_before
    assert offline(store, refs, at) == {
        "count_1h": [1, 1, 0],
        "spend_1d": [10.0, 5.0, 0.0],
        "amount": [10.0, 5.0, None],
        "merchant": ["a", "b", None],
    }
    store.materialize(BASE + MINUTE, force=True)
    assert online(store, refs, at) == offline(store, refs, at)


def test_to_online_writes_no_part(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    files = listing(store)
    offline_before = offline(store, [*AGG_REFS, *PLAIN_REFS], at)
    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0)], to="online")
    assert result.offline_file is None
    assert result.entities == {"user_txn": 1}
    assert listing(store) == files
    assert offline(store, [*AGG_REFS, *PLAIN_REFS], at) == offline_before
    assert online(store, AGG_REFS, at) == {"count_1h": [1, 1, 0], "spend_1d": [10.0, 5.0, 0.0]}
    # a source with no aggregation view online: an online push would change nothing
    with pytest.raises(FeatureReferenceError, match="to='online_and_offline'"):
        store.push("profile_rows", [{"user_id": 2, "ts": BASE, "age": 20}], to="online")
    assert listing(store) == files


def test_an_unknown_push_mode_is_refused(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    files, events = listing(store), stored_events(store, "user_txn")
    with pytest.raises(OnlineRequestError) as caught:
        store.push("txns", [txn(2, BASE)], to="both")  # type: ignore[arg-type]
    assert "push to='both' is not a push mode" in str(caught.value)
    assert "'online_and_offline' (the default), 'online' or 'offline'" in str(caught.value)
    assert (listing(store), stored_events(store, "user_txn")) == (files, events)


def test_a_source_of_plain_views_only_changes_online_at_the_next_materialization(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + H
    assert online(store, ["profiles:age"], at) == {"age": [30, None, None]}
    result = store.push(
        "profile_rows",
        [{"user_id": 1, "ts": BASE + MINUTE, "age": 31}, {"user_id": 2, "ts": BASE, "age": 20}],
    )
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert (result.entities, result.online_error) == ({}, None)
    assert offline(store, ["profiles:age"], at) == {"age": [31, 20, None]}
    assert online(store, ["profiles:age"], at) == {"age": [30, None, None]}
    store.materialize(BASE + MINUTE)
    assert online(store, ["profiles:age"], at) == {"age": [31, 20, None]}


# --- an online store that fails after the part is written -------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisProcess(directory)
    server.start()
    yield server
    server.stop()


def test_an_online_store_failure_after_the_part_is_written_keeps_the_push(
    make_store: Callable[..., FeatureStore], own_redis: RedisProcess
) -> None:
    online_yaml = (
        f"online_store: {{type: redis, url: '{own_redis.url}', key_prefix: 'fsown:', "
        "timeout_seconds: 0.5}\n"
    )
    store = make_store(online=online_yaml)
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    refs = [*AGG_REFS, *PLAIN_REFS]
    assert online(store, refs, at) == offline(store, refs, at)
    own_redis.stop()

    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0, "b"), txn(1, BASE + 2 * MINUTE, 1.0)])
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert result.online_error is not None
    assert own_redis.url in result.online_error, result.online_error
    assert result.online_error.endswith(
        "the events are in the source's files, and the next materialization brings them online"
    )
    assert pl.read_parquet(result.offline_file).height == 2
    expected = {
        "count_1h": [2, 1, 0],
        "spend_1d": [11.0, 5.0, 0.0],
        "amount": [1.0, 5.0, None],
        "merchant": ["m", "b", None],
    }
    assert offline(store, refs, at) == expected

    own_redis.start()  # the data saved at shutdown comes back
    store.materialize(BASE + 2 * MINUTE, force=True)
    assert online(store, refs, at) == expected
    assert online(store, refs, BASE + 2 * H) == offline(store, refs, BASE + 2 * H)


# --- pandas in, pandas out ---------------------------------------------------------------


@pytest.mark.parametrize("form", ["pandas", "pandas records", "arrow batch", "lazy"])
def test_a_push_takes_pandas_and_arrow_rows_as_a_polars_frame(
    make_store: Callable[..., FeatureStore], form: str
) -> None:
    """The same two events as a pandas frame (with a missing amount), its records (pandas
    Timestamps), an Arrow record batch or a lazy frame: the same part, the same values."""
    frame = pl.DataFrame(
        [txn(2, BASE + MINUTE, 5.0, "b"), txn(3, BASE + 2 * MINUTE, None, "c")],
        schema={"user_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64,
                "merchant": pl.String},
    )  # fmt: skip
    rows = {
        "pandas": lambda: frame.to_pandas(),
        "pandas records": lambda: (
            frame.to_pandas().astype({"amount": "Float64"}).to_dict("records")
        ),
        "arrow batch": lambda: frame.to_arrow().to_batches()[0],
        "lazy": lambda: frame.lazy(),
    }[form]()
    store = make_store()
    store.materialize(BASE)
    result = store.push("txns", rows, to="offline")
    assert result.events == 2 and result.offline_file is not None
    written = pl.read_parquet(result.offline_file)
    assert written.select(frame.columns).equals(frame)
    at = BASE + 30 * MINUTE
    assert offline(store, PLAIN_REFS, at) == {
        "amount": [10.0, 5.0, None],
        "merchant": ["a", "b", "c"],
    }


def test_an_online_response_converts_to_pandas_with_nullable_dtypes(
    make_store: Callable[..., FeatureStore],
) -> None:
    import pandas as pd

    store = make_store()
    store.materialize(BASE)
    response = store.get_online_features(
        features=AGG_REFS, entities={"user_id": USERS}, request_time=BASE + 30 * MINUTE
    )
    pdf = response.to_pandas(include_statuses=True)
    assert str(pdf["count_1h"].dtype) == "Int64" and str(pdf["user_id"].dtype) == "Int64"
    assert pl.from_pandas(pdf).equals(response.to_polars(include_statuses=True))
    assert pdf.columns.tolist() == response.to_polars(include_statuses=True).columns
    assert isinstance(pdf, pd.DataFrame)
