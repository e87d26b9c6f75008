"""What the LMDB online store adds to the shared contract: its map grows by itself (ahead of a
large publish, and when a write finds it full), a reader in another process forced into the
middle of a publish sees the old values or the new ones and is not kept waiting, a writer killed
inside its transaction leaves the previous values readable and the file writable, two processes
publishing different views at once both land, a forked child opens its own environment, and
its failures are typed errors."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.errors import OnlineStoreError
from featurestore.online import _lmdb as lmdb_backend
from featurestore.online._lmdb import LmdbOnlineStore
from featurestore.online._protocol import META_VIEW

from .conftest import VIEW, batch, versions
from .interleavings import Hooked

TINY_MAP = 1 << 16  # 64 KiB: sixteen pages

# A store in another process, driven by one JSON command per line on stdin: it answers each
# with one line. A publish with "hold" set stops once the chunk starting there is taken (the
# chunks before it written in its open transaction), says "inside", and goes on at the next
# line.
PEER = """
import json, sys
from pathlib import Path
from featurestore.online import _lmdb
from featurestore.online._lmdb import LmdbOnlineStore

_lmdb._CHUNK = 10
store = LmdbOnlineStore(Path(sys.argv[1]), map_size=int(sys.argv[2]))


class Held(list):
    def __init__(self, values, hold):
        super().__init__(values)
        self.hold = hold

    def __getitem__(self, index):
        if isinstance(index, slice) and index.start == self.hold:
            print("inside", flush=True)
            sys.stdin.readline()
        return super().__getitem__(index)


print("ready", flush=True)
for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "read":
        found = store.read(cmd["view"], cmd["keys"])
        print(json.dumps([v and v.decode() for v in found]), flush=True)
    else:
        values = Held([v.encode() for v in cmd["values"]], cmd.get("hold"))
        meta = {k: v.encode() for k, v in cmd.get("meta", {}).items()}
        store.publish(cmd["view"], cmd["keys"], values, replace=True, meta=meta)
        print("published", flush=True)
"""


class Peer:
    """A store on the same file in another process (see PEER)."""

    def __init__(self, path: Path, map_size: int = lmdb_backend.INITIAL_MAP_BYTES) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", PEER, str(path), str(map_size)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.answer() == "ready"

    def send(self, **command: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()

    def answer(self, timeout: float = 30.0) -> Any:
        """The next line the peer prints; fails the test if none comes within ``timeout``."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        assert ready, f"the other process did not answer within {timeout} s"
        line = self.process.stdout.readline().strip()
        return json.loads(line) if line.startswith("[") else line

    def read(self, view: str, keys: list[str]) -> list[bytes | None]:
        self.send(op="read", view=view, keys=keys)
        return [v if v is None else v.encode() for v in self.answer()]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


@pytest.fixture
def peers() -> Iterator[list[Peer]]:
    """Peers started by the test, stopped afterwards."""
    started: list[Peer] = []
    yield started
    for peer in started:
        peer.stop()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "online.lmdb"


def test_a_publish_larger_than_the_map_grows_it_first(path: Path) -> None:
    store = LmdbOnlineStore(path, map_size=TINY_MAP)
    keys = [f"user{i:05d}" for i in range(20_000)]
    values = [v + b"." * 200 for v in batch(1, keys)]
    store.publish(VIEW, keys, values, replace=True, meta={"state:v": b"1"})
    assert store._environment().map_size() > 20_000 * 200
    assert store.read(VIEW, keys[::997]) == values[::997]
    assert (store.count(VIEW), store.read(META_VIEW, ["state:v"])) == (20_000, [b"1"])
    store.close()


def test_a_write_that_finds_the_map_full_is_run_again_on_a_bigger_map(
    path: Path, monkeypatch: pytest.MonkeyPatch, peers: list[Peer]
) -> None:
    """Without the room check, a publish and appends fill the map part-way: each is aborted
    and run again from its first value on a map twice as big. A process that opened the file
    before adopts the grown map when it next reads."""
    peers.append(Peer(path, TINY_MAP))
    store = LmdbOnlineStore(path, map_size=TINY_MAP)
    monkeypatch.setattr(LmdbOnlineStore, "_check_room", lambda self, chunk, total: None)
    keys = [f"k{i:05d}" for i in range(5_000)]
    taken: list[int] = []
    store.publish(VIEW, keys, Hooked(batch(1, keys), taken.append), replace=True)
    assert taken.count(0) > 1  # the values were taken again from the start
    for _ in range(3):
        store.append(VIEW, keys, [b"+" * 40] * len(keys))
    assert store._environment().map_size() >= 4 * TINY_MAP
    expected = [v + b"+" * 120 for v in batch(1, keys)]
    assert store.read(VIEW, keys) == expected
    assert store.count(VIEW) == 5_000
    assert peers[0].read(VIEW, keys[-3:]) == expected[-3:]
    store.close()


def test_a_reader_in_another_process_inside_a_publish_sees_old_or_new_never_a_mix(
    path: Path, monkeypatch: pytest.MonkeyPatch, peers: list[Peer]
) -> None:
    """The other process reads each time this one takes the next chunk of a publish, with the
    chunks before it written in the open write transaction: it answers at once (a reader never
    waits for the writer) and sees the previous batch, whole."""
    monkeypatch.setattr(lmdb_backend, "_CHUNK", 10)
    store = LmdbOnlineStore(path)
    keys = [f"user{i}" for i in range(100)]
    store.publish(VIEW, keys, batch(0, keys), replace=True, meta={"state:v": b"0"})
    peer = Peer(path)
    peers.append(peer)
    seen: list[set[str]] = []

    def read_in_the_peer(start: int) -> None:
        if start:
            started = time.monotonic()
            seen.append(versions(peer.read(VIEW, keys)))
            assert peer.read(META_VIEW, ["state:v"]) == [b"0"]
            assert time.monotonic() - started < 5

    store.publish(
        VIEW,
        keys,
        Hooked(batch(1, keys), read_in_the_peer),
        replace=True,
        meta={"state:v": b"1"},
    )
    assert seen == [{"0"}] * 9
    assert versions(peer.read(VIEW, keys)) == {"1"}
    assert peer.read(META_VIEW, ["state:v"]) == [b"1"]
    store.close()


def test_a_writer_killed_inside_its_transaction_leaves_the_previous_values(
    path: Path, peers: list[Peer]
) -> None:
    store = LmdbOnlineStore(path)
    keys = [f"user{i}" for i in range(100)]
    store.publish(VIEW, keys, batch(1, keys), replace=True, meta={"state:v": b"1"})
    writer = Peer(path)
    peers.append(writer)
    values = [v.decode() for v in batch(2, keys)]
    writer.send(op="publish", view=VIEW, keys=keys, values=values, hold=50, meta={"state:v": "2"})
    assert writer.answer() == "inside"  # five chunks written, the transaction open
    os.kill(writer.process.pid, signal.SIGKILL)
    writer.process.wait()
    assert store.read(VIEW, keys) == batch(1, keys)
    assert (store.count(VIEW), store.read(META_VIEW, ["state:v"])) == (100, [b"1"])
    # the dead writer's lock is taken over: the next write goes through
    done = threading.Thread(
        target=store.publish, args=(VIEW, keys, batch(3, keys)), kwargs={"replace": True}
    )
    done.start()
    done.join(timeout=30)
    assert not done.is_alive(), "the write lock of the killed writer was never released"
    assert store.read(VIEW, keys) == batch(3, keys)
    store.close()


def test_two_processes_publishing_different_views_at_once_both_land(
    path: Path, peers: list[Peer]
) -> None:
    """The first holds its write transaction open while the second starts its own publish
    (which waits for the write lock); both views and both states are there afterwards."""
    first, second = Peer(path), Peer(path)
    peers += [first, second]
    keys = [f"user{i}" for i in range(100)]
    first.send(
        op="publish",
        view="v1",
        keys=keys,
        values=[v.decode() for v in batch(1, keys)],
        hold=50,
        meta={"state:v1": "1"},
    )
    assert first.answer() == "inside"
    second.send(
        op="publish",
        view="v2",
        keys=keys[:60],
        values=[v.decode() for v in batch(2, keys[:60])],
        meta={"state:v2": "2"},
    )
    time.sleep(0.3)  # the second is waiting for the write lock
    first.send(op="continue")
    assert first.answer() == "published"
    assert second.answer() == "published"
    store = LmdbOnlineStore(path)
    assert store.read("v1", keys) == batch(1, keys)
    assert store.read("v2", keys[:60]) == batch(2, keys[:60])
    assert (store.count("v1"), store.count("v2")) == (100, 60)
    assert store.read(META_VIEW, ["state:v1", "state:v2"]) == [b"1", b"2"]
    store.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_environment(path: Path) -> None:
    store = LmdbOnlineStore(path)
    store.publish(VIEW, ["a"], [b"1"], replace=True)
    pid = os.fork()
    if pid == 0:  # the child: the same store object reads and writes through a new environment
        code = 1
        try:
            if store.read(VIEW, ["a"]) == [b"1"]:
                store.publish(VIEW, ["b"], [b"child"], replace=False)
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert store.read(VIEW, ["a", "b"]) == [b"1", b"child"]
    store.publish(VIEW, ["c"], [b"parent"], replace=False)
    assert store.count(VIEW) == 3
    store.close()


def test_stores_on_one_file_share_its_environment(path: Path) -> None:
    """LMDB refuses a file opened twice in one process: stores on it share one environment,
    which closes with the last of them."""
    one, two = LmdbOnlineStore(path), LmdbOnlineStore(path)
    assert one._environment() is two._environment()
    one.publish(VIEW, ["a"], [b"1"], replace=True)
    one.close()
    assert two.read(VIEW, ["a"]) == [b"1"]
    two.close()
    again = LmdbOnlineStore(path)
    assert again.read(VIEW, ["a"]) == [b"1"]
    again.close()
    assert one.read(VIEW, ["a"]) == [b"1"]  # a closed store opens the file again when used
    one.close()


def test_a_snapshot_keeps_the_count_exact_when_entities_leave_or_repeat(path: Path) -> None:
    store = LmdbOnlineStore(path)
    store.publish(VIEW, ["a", "b", "c"], [b"1", b"2", b"3"], replace=True)
    store.append(VIEW, ["b", "d"], [b"+", b"+"])
    store.publish(VIEW, ["c", "e"], [b"c2", b"e2"], replace=True)
    assert store.read(VIEW, ["a", "b", "c", "d", "e"]) == [None, None, b"c2", None, b"e2"]
    assert store.count(VIEW) == 2
    store.publish(VIEW, ["e", "e"], [b"x", b"y"], replace=True)  # a repeated key: the last wins
    assert (store.read(VIEW, ["c", "e"]), store.count(VIEW)) == ([None, b"y"], 1)
    assert store.append(VIEW, ["e"], [b"!"]) == [1]
    store.close()


def test_failures_are_typed_errors(path: Path, tmp_path: Path) -> None:
    store = LmdbOnlineStore(path)
    with pytest.raises(OnlineStoreError, match=r"longer than the \d+ bytes LMDB allows"):
        store.publish(VIEW, ["k" * 600], [b"v"], replace=True)
    assert store.read(VIEW, ["k" * 600, "absent"]) == [None, None]
    with pytest.raises(OnlineStoreError, match="values must be bytes"):
        store.publish(VIEW, ["a"], ["text"], replace=True)  # type: ignore[list-item]
    store.close()
    (tmp_path / "a_directory").mkdir()
    with pytest.raises(OnlineStoreError, match="cannot open the LMDB online store"):
        LmdbOnlineStore(tmp_path / "a_directory")
