"""The OnlineStore contract, run over every backend: round trips, ordered reads with absent keys,
upsert vs replace, counts, deletes, project isolation, atomic publishes (a failed publish
leaves the previous values readable; a concurrent reader never sees a mix of two batches), and
appends that follow a value until a publish or an update writes it whole, under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import pytest
import redis

from featurestore._config import OnlineStoreConfig
from featurestore.errors import OnlineStoreError
from featurestore.online import _redis as redis_backend
from featurestore.online import _sqlite as sqlite_backend
from featurestore.online._protocol import META_VIEW, OnlineStore
from featurestore.online._redis import RedisOnlineStore
from featurestore.online._sqlite import SqliteOnlineStore

from .conftest import PROJECT, REDIS_URL

VIEW = "user_stats"


def batch(version: int, keys: Sequence[str]) -> list[bytes]:
    """One value per key, tagged with a version marker: ``b"<version>:<key>"``."""
    return [f"{version}:{k}".encode() for k in keys]


def versions(values: Sequence[bytes | None]) -> set[str]:
    """The version markers found in ``values`` (None for an absent key)."""
    return {v.split(b":", 1)[0].decode() if v is not None else "None" for v in values}


class Boom(RuntimeError):
    """The failure the tests inject into a publish."""


class Unconvertible:
    """A value neither backend can store: its conversion to a database value raises."""

    def __conform__(self, protocol: object) -> Any:  # sqlite3's adaptation hook
        raise Boom("cannot convert this value")


class FailingAfter(Sequence[bytes]):
    """Values that raise once a chunk starting at or after ``fail_at`` is taken."""

    def __init__(self, values: list[bytes], fail_at: int) -> None:
        self.values = values
        self.fail_at = fail_at
        self.taken: list[int] = []

    def __len__(self) -> int:
        return len(self.values)

    @overload
    def __getitem__(self, index: int) -> bytes: ...

    @overload
    def __getitem__(self, index: slice) -> list[bytes]: ...

    def __getitem__(self, index: int | slice) -> bytes | list[bytes]:
        start = (index.start or 0) if isinstance(index, slice) else index
        if start >= self.fail_at:
            raise Boom(f"failure at item {start}")
        self.taken.append(start)
        return self.values[index]

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.values)


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_a_publish_writes_its_meta_with_it(online_store: OnlineStore, replace: bool) -> None:
    keys = ["a", "b"]
    online_store.publish(VIEW, keys, batch(1, keys), replace=replace, meta={"state:v": b"1"})
    online_store.publish("other", ["x"], [b"x"], replace=True, meta={"state:other": b"o"})
    assert online_store.read(META_VIEW, ["state:v", "state:other", "absent"]) == [
        b"1",
        b"o",
        None,
    ]
    online_store.publish(VIEW, ["c"], batch(2, ["c"]), replace=replace, meta={"state:v": b"2"})
    assert online_store.read(META_VIEW, ["state:v", "state:other"]) == [b"2", b"o"]
    assert online_store.count(VIEW) == (1 if replace else 3)


def test_publish_then_read_round_trips(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["1", "2"], [b'{"a": 1}', b"\x00\xffbinary"], replace=True)
    assert online_store.read(VIEW, ["1", "2"]) == [b'{"a": 1}', b"\x00\xffbinary"]
    assert online_store.read(VIEW, ["2"]) == [b"\x00\xffbinary"]
    assert online_store.count(VIEW) == 2


def test_read_keeps_request_order_with_none_for_absent_keys(online_store: OnlineStore) -> None:
    keys = [str(i) for i in range(2_500)]  # more keys than one SQL statement may bind
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    wanted = ["2499", "missing", "0", "2499", "1200", "", "7|x"]
    assert online_store.read(VIEW, wanted) == [
        b"1:2499",
        None,
        b"1:0",
        b"1:2499",
        b"1:1200",
        None,
        None,
    ]
    shuffled = [*keys[::-1], "nope"]
    assert online_store.read(VIEW, shuffled) == [*batch(1, keys[::-1]), None]
    assert online_store.read(VIEW, []) == []
    assert online_store.read("never_published", ["0", "1"]) == [None, None]


def test_keys_with_separators_and_unicode_are_distinct(online_store: OnlineStore) -> None:
    keys = ["1|a", "1\\|a", "1|a\\", "é|ü", "1", " 1"]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    assert online_store.read(VIEW, keys[::-1]) == batch(1, keys[::-1])
    assert online_store.count(VIEW) == len(keys)


def test_upsert_keeps_other_entities_and_replace_drops_them(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a", "b"], [b"a1", b"b1"], replace=True)
    online_store.publish(VIEW, ["b", "c"], [b"b2", b"c2"], replace=False)
    assert online_store.read(VIEW, ["a", "b", "c"]) == [b"a1", b"b2", b"c2"]
    assert online_store.count(VIEW) == 3
    online_store.publish(VIEW, ["c", "d"], [b"c3", b"d3"], replace=True)
    assert online_store.read(VIEW, ["a", "b", "c", "d"]) == [None, None, b"c3", b"d3"]
    assert online_store.count(VIEW) == 2


def test_an_upsert_into_an_empty_view_creates_it(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a"], [b"a1"], replace=False)
    assert online_store.read(VIEW, ["a"]) == [b"a1"]
    assert online_store.count(VIEW) == 1


def test_empty_batches(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a", "b"], [b"a1", b"b1"], replace=True)
    online_store.publish(VIEW, [], [], replace=False)
    assert online_store.read(VIEW, ["a", "b"]) == [b"a1", b"b1"]
    online_store.publish(VIEW, [], [], replace=True)  # an empty snapshot empties the view
    assert online_store.read(VIEW, ["a", "b"]) == [None, None]
    assert online_store.count(VIEW) == 0
    online_store.publish(VIEW, ["c"], [b"c1"], replace=False)
    assert online_store.read(VIEW, ["a", "c"]) == [None, b"c1"]


def test_views_are_independent(online_store: OnlineStore) -> None:
    online_store.publish("v1", ["a", "b"], [b"v1a", b"v1b"], replace=True)
    online_store.publish("v2", ["a"], [b"v2a"], replace=True)
    online_store.publish("v1", ["z"], [b"v1z"], replace=True)
    assert online_store.read("v2", ["a"]) == [b"v2a"]
    assert online_store.read("v1", ["a", "z"]) == [None, b"v1z"]
    assert (online_store.count("v1"), online_store.count("v2")) == (1, 1)
    online_store.delete_view("v1")
    assert online_store.read("v1", ["z"]) == [None]
    assert (online_store.count("v1"), online_store.count("v2")) == (0, 1)
    assert online_store.read("v2", ["a"]) == [b"v2a"]


def test_count_and_delete_view(online_store: OnlineStore) -> None:
    assert online_store.count(VIEW) == 0
    keys = [str(i) for i in range(1_234)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    online_store.publish(VIEW, keys[:10], batch(2, keys[:10]), replace=False)
    assert online_store.count(VIEW) == 1_234
    online_store.delete_view(VIEW)
    assert online_store.count(VIEW) == 0
    assert online_store.read(VIEW, keys[:3]) == [None, None, None]
    online_store.delete_view(VIEW)  # deleting an absent view is fine
    online_store.ping()


def test_a_new_connection_sees_published_values(
    open_store: Callable[[str], OnlineStore],
) -> None:
    writer = open_store("proj")
    writer.publish(VIEW, ["a"], [b"a1"], replace=True)
    writer.close()
    reader = open_store("proj")
    assert reader.read(VIEW, ["a"]) == [b"a1"]


def test_two_projects_on_one_redis_do_not_see_each_other(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    config = OnlineStoreConfig(type="redis", url=REDIS_URL, key_prefix=redis_prefix)
    fraud, churn = RedisOnlineStore(config, "fraud"), RedisOnlineStore(config, "churn")
    try:
        fraud.publish(VIEW, ["1", "2"], [b"fraud1", b"fraud2"], replace=True)
        churn.publish(VIEW, ["1"], [b"churn1"], replace=True)
        assert fraud.read(VIEW, ["1", "2"]) == [b"fraud1", b"fraud2"]
        assert churn.read(VIEW, ["1", "2"]) == [b"churn1", None]
        churn.publish(VIEW, ["3"], [b"churn3"], replace=True)
        churn.publish(VIEW, ["2"], [b"churn2"], replace=False)
        assert fraud.read(VIEW, ["1", "2", "3"]) == [b"fraud1", b"fraud2", None]
        assert (fraud.count(VIEW), churn.count(VIEW)) == (2, 2)
        churn.delete_view(VIEW)
        assert fraud.read(VIEW, ["1"]) == [b"fraud1"]
        keys = {k.decode() for k in redis_server.scan_iter(match=f"{redis_prefix}*")}
        assert keys == {f"{redis_prefix}fraud:{VIEW}"}
    finally:
        fraud.close()
        churn.close()


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
    with pytest.raises((Boom, redis.DataError)):  # SQLite calls __conform__; Redis refuses it
        online_store.publish(VIEW, [*keys[:99], "new"], values, replace=replace)
    assert online_store.read(VIEW, [*keys, "new"]) == [*batch(1, keys), None]
    assert online_store.count(VIEW) == 100


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> int:
    """Make each backend write in chunks of 10 entities, so a batch spans many chunks."""
    monkeypatch.setattr(sqlite_backend, "_CHUNK", 10)
    monkeypatch.setattr(redis_backend, "_CHUNK", 10)
    return 10


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_a_failure_after_half_of_the_chunks_publishes_nothing(
    online_store: OnlineStore, small_chunks: int, replace: bool
) -> None:
    keys = [str(i) for i in range(100)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True, meta={"state:v": b"1"})
    values = FailingAfter(batch(2, [*keys, "new"]), fail_at=50)
    with pytest.raises(Boom):
        online_store.publish(VIEW, [*keys, "new"], values, replace=replace, meta={"state:v": b"2"})
    assert values.taken == [0, 10, 20, 30, 40]  # half of the chunks went through first
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
def test_readers_see_whole_batches_during_large_publishes(
    online_store: OnlineStore, replace: bool
) -> None:
    keys = [f"user{i}" for i in range(20_000)]
    online_store.publish(VIEW, keys, batch(0, keys), replace=True)
    sample = keys[::40]  # 500 keys spread over the batch, read in one call
    seen: list[set[str]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def read_loop() -> None:
        try:
            while not stop.is_set():
                seen.append(versions(online_store.read(VIEW, sample)))
        except BaseException as exc:
            errors.append(exc)

    reader = threading.Thread(target=read_loop, daemon=True)
    reader.start()
    try:
        for version in range(1, 6):
            online_store.publish(VIEW, keys, batch(version, keys), replace=replace)
    finally:
        stop.set()
        reader.join(timeout=30)
    assert not reader.is_alive()
    assert not errors
    assert seen, "the reader never completed a read"
    mixed = [s for s in seen if len(s) != 1]
    assert not mixed, f"{len(mixed)} of {len(seen)} reads mixed batches, e.g. {mixed[0]}"
    assert online_store.read(VIEW, sample) == batch(5, sample)


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
        store.publish(VIEW, keys, FailingAfter(batch(2, keys), fail_at=20), replace=True)
    assert con.execute("PRAGMA cache_size").fetchone()[0] == default
    assert store.read(VIEW, keys) == batch(1, keys)
    store.close()


def test_update_reads_changes_and_writes_back(online_store: OnlineStore) -> None:
    online_store.publish("v", ["a", "b"], [b"1", b"2"], replace=True)
    seen: list[list[bytes | None]] = []

    def change(current: list[bytes | None]) -> list[bytes]:
        seen.append(current)
        return [b"%d" % (int(v or b"0") + 10) for v in current]

    online_store.update("v", ["b", "c"], change)
    assert seen == [[b"2", None]]
    assert online_store.read("v", ["a", "b", "c"]) == [b"1", b"12", b"10"]
    online_store.update("v", [], lambda current: [])
    assert online_store.count("v") == 3


def test_a_failing_update_writes_nothing(online_store: OnlineStore) -> None:
    online_store.publish("v", ["a"], [b"1"], replace=True)

    def fail(current: list[bytes | None]) -> list[bytes]:
        raise Boom("change failed")

    with pytest.raises(Boom):
        online_store.update("v", ["a", "b"], fail)
    with pytest.raises(OnlineStoreError, match="2 keys but 1 values"):
        online_store.update("v", ["a", "b"], lambda current: [b"x"])
    assert online_store.read("v", ["a", "b"]) == [b"1", None]


def test_concurrent_updates_lose_no_increment(open_store: Any) -> None:
    """Four threads, each with its own store, add 1 to the same keys 25 times: every
    increment survives (SQLite takes the write lock first, Redis retries under WATCH)."""
    stores = [open_store(PROJECT) for _ in range(4)]
    stores[0].publish("counter", ["k1", "k2"], [b"0", b"0"], replace=True)

    def add_one(current: list[bytes | None]) -> list[bytes]:
        return [b"%d" % (int(v or b"0") + 1) for v in current]

    def work(store: OnlineStore) -> None:
        for _ in range(25):
            store.update("counter", ["k1", "k2"], add_one)

    threads = [threading.Thread(target=work, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert stores[0].read("counter", ["k1", "k2"]) == [b"100", b"100"]


def test_appended_fragments_follow_the_value_until_it_is_written_whole(
    online_store: OnlineStore,
) -> None:
    online_store.publish("v", ["a", "b"], [b"A", b"B"], replace=True)
    assert online_store.append("v", ["a", "c"], [b"+1", b"+x"]) == [2, 2]
    assert online_store.append("v", ["a"], [b"+22"]) == [5]
    assert online_store.read("v", ["a", "b", "c", "d"]) == [b"A+1+22", b"B", b"+x", None]
    assert online_store.read("v", ["a"]) == [b"A+1+22"]
    assert online_store.read("v", ["c"]) == [b"+x"]
    assert online_store.count("v") == 3  # "c" has only fragments
    # an upsert replaces the key's fragments; other keys keep theirs
    online_store.publish("v", ["a"], [b"A2"], replace=False)
    assert online_store.read("v", ["a", "c"]) == [b"A2", b"+x"]
    assert online_store.append("v", ["a"], [b"+3"]) == [2]
    # an update sees the whole value and writes it back folded
    seen: list[list[bytes | None]] = []

    def fold(current: list[bytes | None]) -> list[bytes]:
        seen.append(current)
        return [(v or b"").upper() for v in current]

    online_store.update("v", ["a", "c"], fold)
    assert seen == [[b"A2+3", b"+x"]]
    assert online_store.read("v", ["a", "c"]) == [b"A2+3", b"+X"]
    assert online_store.append("v", ["c"], [b"!"]) == [1]
    # a full snapshot drops every fragment
    online_store.publish("v", ["b"], [b"B2"], replace=True)
    assert online_store.read("v", ["a", "b", "c"]) == [None, b"B2", None]
    assert online_store.count("v") == 1
    online_store.append("v", ["z"], [b"+z"])
    online_store.delete_view("v")
    assert (online_store.read("v", ["b", "z"]), online_store.count("v")) == ([None, None], 0)
    assert online_store.append("v", [], []) == []
    with pytest.raises(OnlineStoreError, match="2 keys but 1 fragments"):
        online_store.append("v", ["a", "b"], [b"x"])


def test_appends_of_one_view_stay_in_that_view(online_store: OnlineStore) -> None:
    online_store.publish("v1", ["a"], [b"1"], replace=True)
    online_store.publish("v2", ["a"], [b"2"], replace=True)
    online_store.append("v1", ["a"], [b"+"])
    assert online_store.read("v1", ["a"]) + online_store.read("v2", ["a"]) == [b"1+", b"2"]
    online_store.publish("v2", ["a"], [b"3"], replace=True)
    assert online_store.read("v1", ["a"]) == [b"1+"]


def test_concurrent_appends_and_folds_lose_nothing(open_store: Any) -> None:
    """Two threads append one byte to the same keys 40 times each while two others fold the
    keys' fragments into their values: every appended byte survives exactly once."""
    stores = [open_store(PROJECT) for _ in range(4)]
    stores[0].publish("tail", ["k1", "k2"], [b"", b""], replace=True)

    def append(store: OnlineStore, marker: bytes) -> None:
        for _ in range(40):
            store.append("tail", ["k1", "k2"], [marker, marker])

    def fold(store: OnlineStore) -> None:
        for _ in range(20):
            store.update("tail", ["k1", "k2"], lambda current: [v or b"" for v in current])

    threads = [
        threading.Thread(target=append, args=(stores[0], b"a")),
        threading.Thread(target=append, args=(stores[1], b"b")),
        threading.Thread(target=fold, args=(stores[2],)),
        threading.Thread(target=fold, args=(stores[3],)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for value in stores[0].read("tail", ["k1", "k2"]):
        assert value is not None
        assert (value.count(b"a"), value.count(b"b"), len(value)) == (40, 40, 80)


def test_readers_see_whole_appends(open_store: Any) -> None:
    """A reader of 2,000 keys during 30 appends to all of them always sees every key with the
    same number of fragments: never part of an append."""
    writer, reader = open_store(PROJECT), open_store(PROJECT)
    keys = [f"k{i}" for i in range(2_000)]
    writer.publish("tail", keys, [b""] * len(keys), replace=True)
    done = threading.Event()
    seen: list[set[int]] = []

    def read() -> None:
        while not done.is_set():
            seen.append({len(v or b"") for v in reader.read("tail", keys)})

    thread = threading.Thread(target=read)
    thread.start()
    try:
        for _ in range(30):
            writer.append("tail", keys, [b"+"] * len(keys))
    finally:
        done.set()
        thread.join()
    assert seen and all(len(lengths) == 1 for lengths in seen)
    assert reader.read("tail", keys[:1]) == [b"+" * 30]
