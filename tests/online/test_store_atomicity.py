"""The OnlineStore contract under failures and concurrency, over every backend: a publish that
fails part-way leaves the previous values readable, with their state; reads forced into the
middle of a publish or an append see all of it or none of it; an update or an append landing
inside another update loses nothing."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import redis

from featurestore._config import OnlineStoreConfig
from featurestore.errors import OnlineStoreError
from featurestore.online import _lmdb as lmdb_backend
from featurestore.online import _redis as redis_backend
from featurestore.online import _sqlite as sqlite_backend
from featurestore.online._protocol import META_VIEW, OnlineStore
from featurestore.online._redis import RedisOnlineStore
from featurestore.online._sqlite import SqliteOnlineStore

from .conftest import PROJECT, REDIS_URL, VIEW, batch, versions
from .interleavings import Boom, Hooked, failing_at, inside_a_write, reader_of


class Unconvertible:
    """A value no backend can store: its conversion to a database value raises."""

    def __conform__(self, protocol: object) -> Any:  # sqlite3's adaptation hook
        raise Boom("cannot convert this value")


# Atomicity: a publish that fails part-way leaves the previous values in place.


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_fewer_values_than_keys_publishes_nothing(online_store: OnlineStore, replace: bool) -> None:
    keys = [str(i) for i in range(100)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    with pytest.raises(Exception, match=r"keys|values|argument|length|shorter"):
        online_store.publish(VIEW, [*keys, "new"], batch(2, keys), replace=replace)
    assert online_store.read(VIEW, [*keys, "new"]) == [*batch(1, keys), None]
    assert online_store.count(VIEW) == 100


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_a_value_that_fails_to_convert_publishes_nothing(
    online_store: OnlineStore, replace: bool
) -> None:
    keys = [str(i) for i in range(100)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    values: list[Any] = [*batch(2, keys[:99]), Unconvertible()]
    # SQLite calls __conform__; Redis and LMDB refuse it
    with pytest.raises((Boom, redis.DataError, OnlineStoreError)):
        online_store.publish(VIEW, [*keys[:99], "new"], values, replace=replace)
    assert online_store.read(VIEW, [*keys, "new"]) == [*batch(1, keys), None]
    assert online_store.count(VIEW) == 100


def test_a_failing_update_writes_nothing(online_store: OnlineStore) -> None:
    online_store.publish("v", ["a"], [b"1"], replace=True)

    def fail(current: list[bytes | None]) -> list[bytes]:
        raise Boom("change failed")

    with pytest.raises(Boom):
        online_store.update("v", ["a", "b"], fail)
    with pytest.raises(OnlineStoreError, match="2 keys but 1 values"):
        online_store.update("v", ["a", "b"], lambda current: [b"x"])
    assert online_store.read("v", ["a", "b"]) == [b"1", None]


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make each backend write in chunks of 10 entities, so a batch spans many chunks."""
    monkeypatch.setattr(sqlite_backend, "_CHUNK", 10)
    monkeypatch.setattr(redis_backend, "_CHUNK", 10)
    monkeypatch.setattr(lmdb_backend, "_CHUNK", 10)
    return 10


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_a_failure_after_half_of_the_chunks_publishes_nothing(
    online_store: OnlineStore, small_chunks: int, replace: bool
) -> None:
    keys = [str(i) for i in range(100)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True, meta={"state:v": b"1"})
    taken: list[int] = []
    values = Hooked(batch(2, [*keys, "new"]), failing_at(50, taken))
    with pytest.raises(Boom):
        online_store.publish(VIEW, [*keys, "new"], values, replace=replace, meta={"state:v": b"2"})
    assert taken == [0, 10, 20, 30, 40]  # half of the chunks went through first
    assert online_store.read(VIEW, [*keys, "new"]) == [*batch(1, keys), None]
    assert online_store.count(VIEW) == 100
    assert online_store.read(META_VIEW, ["state:v"]) == [b"1"]  # the state of the old batch
    online_store.publish(VIEW, keys, batch(3, keys), replace=replace)  # the store still works
    assert online_store.read(VIEW, keys) == batch(3, keys)


def test_redis_snapshot_cut_off_after_half_of_the_chunks_leaves_the_live_view(
    redis_server: redis.Redis,
    redis_prefix: str,
    small_chunks: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The connection drops after half of a snapshot's commands reached the server."""
    config = OnlineStoreConfig(type="redis", url=REDIS_URL, key_prefix=redis_prefix)
    online_store = RedisOnlineStore(config, "proj")
    keys = [str(i) for i in range(100)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    real_execute = redis.client.Pipeline.execute

    def half_then_drop(self: redis.client.Pipeline, raise_on_error: bool = True) -> Any:
        self.command_stack = self.command_stack[: len(self.command_stack) // 2]
        real_execute(self, raise_on_error)
        raise redis.ConnectionError("connection lost")

    monkeypatch.setattr(redis.client.Pipeline, "execute", half_then_drop)
    with pytest.raises(Exception, match="unreachable"):
        online_store.publish(VIEW, keys[:50], batch(2, keys[:50]), replace=True)
    monkeypatch.undo()
    assert online_store.read(VIEW, keys) == batch(1, keys)
    assert online_store.count(VIEW) == 100
    assert list(redis_server.scan_iter(match=f"{redis_prefix}*")) == [
        f"{redis_prefix}proj:{VIEW}".encode()
    ]  # the half-written staging hash is gone
    online_store.close()


def test_redis_staging_key_left_by_a_crash_expires(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    config = OnlineStoreConfig(type="redis", url=REDIS_URL, key_prefix=redis_prefix)
    store = RedisOnlineStore(config, "proj")
    real_pipeline = store.client.pipeline

    class Crash(BaseException):
        """The process dies right after the staging hash was written."""

    def crashing_pipeline(transaction: bool = True) -> redis.client.Pipeline:
        pipe = real_pipeline(transaction=transaction)
        real_execute = pipe.execute

        def execute(raise_on_error: bool = True) -> Any:
            real_execute(raise_on_error)
            raise Crash

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    store.client.pipeline = crashing_pipeline  # type: ignore[method-assign]
    store.client.unlink = lambda *names: 0  # type: ignore[method-assign]  # cleanup never runs
    try:
        with pytest.raises(Crash):
            store.publish(VIEW, ["a", "b"], [b"a", b"b"], replace=True)
    finally:
        store.close()
    staging = [k for k in redis_server.scan_iter(match=f"{redis_prefix}proj:{VIEW}:staging:*")]
    assert len(staging) == 1
    assert redis_server.ttl(staging[0]) > 0
    # a fresh one may be a publish in progress; one older than five minutes is dropped by the
    # next publish of the view
    again = RedisOnlineStore(config, "proj")
    try:
        again.publish(VIEW, ["c"], [b"c"], replace=True)
        assert redis_server.exists(staging[0])
        redis_server.expire(staging[0], 24 * 3600 - 301)
        again.publish(VIEW, ["d"], [b"d"], replace=True)
        assert not redis_server.exists(staging[0])
        assert again.read(VIEW, ["c", "d"]) == [None, b"d"]
    finally:
        again.close()


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_reads_forced_into_a_publish_see_the_previous_batch_whole(
    online_store: OnlineStore, small_chunks: int, replace: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read runs each time the store takes the next chunk of a publish (on SQLite and LMDB,
    with the chunks before it written in the open transaction) and, on Redis, once a snapshot's
    staging hash is written and not yet swapped in: each sees the previous batch, whole."""
    keys = [f"user{i}" for i in range(100)]
    online_store.publish(VIEW, keys, batch(0, keys), replace=True)
    sample = keys[::7]
    seen: list[Any] = []
    read = reader_of(online_store, VIEW, sample, seen)
    real_execute = redis.client.Pipeline.execute

    def execute_then_read(pipe: redis.client.Pipeline, *args: Any, **kwargs: Any) -> Any:
        done = real_execute(pipe, *args, **kwargs)
        if not pipe.transaction:  # the staging hash of a snapshot is written
            read()
        return done

    monkeypatch.setattr(redis.client.Pipeline, "execute", execute_then_read)
    for version in range(1, 4):
        seen.clear()
        values = Hooked(batch(version, keys), lambda start: read() if start else None)
        online_store.publish(VIEW, keys, values, replace=replace)
        assert len(seen) >= 9, "reads were not forced into the publish"
        assert not [v for v in seen if isinstance(v, Exception)], seen
        assert [versions(v) for v in seen] == [{str(version - 1)}] * len(seen)
        assert online_store.read(VIEW, sample) == batch(version, sample)


def test_sqlite_read_of_many_keys_is_one_snapshot(tmp_path: Any) -> None:
    """A publish that commits between the statements of one read must not show through."""
    store = SqliteOnlineStore(tmp_path / "online.db")
    writer = SqliteOnlineStore(tmp_path / "online.db")
    keys = [str(i) for i in range(2_000)]
    store.publish(VIEW, keys, batch(1, keys), replace=True)
    selects = 0

    def publish_after_first_select(sql: str) -> None:
        nonlocal selects
        if sql.lstrip().upper().startswith("SELECT"):
            selects += 1
            if selects == 2:  # after the first part was read, another connection commits
                done = threading.Thread(
                    target=writer.publish,
                    args=(VIEW, keys, batch(2, keys)),
                    kwargs={"replace": True},
                )
                done.start()
                done.join()

    con = store._con()
    con.set_trace_callback(publish_after_first_select)
    try:
        values = store.read(VIEW, keys)
    finally:
        con.set_trace_callback(None)
        store.close()
        writer.close()
    assert versions(values) in ({"1"}, {"2"})


def test_sqlite_large_publish_uses_a_big_page_cache_only_while_it_runs(
    tmp_path: Any, small_chunks: int
) -> None:
    store = SqliteOnlineStore(tmp_path / "online.db")
    con = store._con()
    default = con.execute("PRAGMA cache_size").fetchone()[0]
    sizes: list[int] = []

    def record(sql: str) -> None:
        if sql.startswith("INSERT"):
            sizes.append(con.execute("PRAGMA cache_size").fetchone()[0])

    keys = [str(i) for i in range(35)]  # more than one chunk
    con.set_trace_callback(record)
    try:
        store.publish(VIEW, keys, batch(1, keys), replace=True)
    finally:
        con.set_trace_callback(None)
    assert sizes and set(sizes) == {-sqlite_backend._LOAD_CACHE_KIB}
    assert con.execute("PRAGMA cache_size").fetchone()[0] == default
    with pytest.raises(Boom):  # restored after a failed publish too
        store.publish(VIEW, keys, Hooked(batch(2, keys), failing_at(20, [])), replace=True)
    assert con.execute("PRAGMA cache_size").fetchone()[0] == default
    assert store.read(VIEW, keys) == batch(1, keys)
    store.close()


def test_an_update_landing_inside_another_loses_no_increment(open_store: Any) -> None:
    """While one update is between its read and its write, a second store updates the same
    keys: SQLite and LMDB make the second wait for the first's write lock, Redis lets it through
    and the first retries under WATCH. Both increments survive, the second built on the first."""
    first, second = open_store(PROJECT), open_store(PROJECT)
    first.publish("counter", ["k1", "k2"], [b"0", b"0"], replace=True)
    seen: list[list[bytes | None]] = []
    others: list[threading.Thread] = []

    def add_one(current: list[bytes | None]) -> list[bytes]:
        seen.append(current)
        return [b"%d" % (int(v or b"0") + 1) for v in current]

    def add_one_while_the_other_adds(current: list[bytes | None]) -> list[bytes]:
        if not others:  # the first attempt only: a retry runs alone
            others.append(
                inside_a_write(second, lambda: second.update("counter", ["k1", "k2"], add_one))
            )
        return add_one(current)

    first.update("counter", ["k1", "k2"], add_one_while_the_other_adds)
    others[0].join()
    assert first.read("counter", ["k1", "k2"]) == [b"2", b"2"]
    assert [b"1", b"1"] in seen  # one of them read what the other wrote


def test_an_append_landing_inside_a_fold_is_kept_once(open_store: Any) -> None:
    """While a fold of the keys' fragments is between its read and its write, a second store
    appends to the same keys: SQLite and LMDB make the append wait for the fold's write lock,
    Redis lets it through and the fold retries under WATCH. The appended bytes survive, once."""
    folder, appender = open_store(PROJECT), open_store(PROJECT)
    folder.publish("tail", ["k1", "k2"], [b"x", b"x"], replace=True)
    folder.append("tail", ["k1", "k2"], [b"a", b"a"])
    others: list[threading.Thread] = []

    def fold_while_appending(current: list[bytes | None]) -> list[bytes]:
        if not others:  # the first attempt only: a retry runs alone
            append = lambda: appender.append("tail", ["k1", "k2"], [b"b", b"b"])  # noqa: E731
            others.append(inside_a_write(appender, append))
        return [(v or b"").upper() for v in current]

    folder.update("tail", ["k1", "k2"], fold_while_appending)
    others[0].join()
    assert folder.read("tail", ["k1", "k2"]) in ([b"XA" + b"b"] * 2, [b"XAB"] * 2)


def test_a_read_forced_into_an_append_sees_all_of_it_or_none(online_store: OnlineStore) -> None:
    """A read runs once an append of 2,000 keys has taken half of its fragments (on SQLite and
    LMDB, with those written in the open transaction; on Redis the append is one script the server
    runs whole, so the read lands before it): it sees no key appended, and a read after it
    sees every key appended."""
    keys = [f"k{i}" for i in range(2_000)]
    online_store.publish("tail", keys, [b""] * len(keys), replace=True)
    seen: list[Any] = []
    read = reader_of(online_store, "tail", keys, seen)
    for n in range(1, 4):
        seen.clear()
        midway = Hooked([b"+"] * len(keys), lambda i: read() if i == len(keys) // 2 else None)
        online_store.append("tail", keys, midway)
        assert seen, "no read was forced into the append"
        assert not [v for v in seen if isinstance(v, Exception)], seen
        assert [set(v) for v in seen] == [{b"+" * (n - 1)}] * len(seen)
        assert set(online_store.read("tail", keys)) == {b"+" * n}
