"""The LMDB environment behind :class:`~featurestore.online._lmdb.LmdbOnlineStore`: one per
file per process, shared by every store on that file (LMDB forbids opening a file twice in one
process), opened again in a forked child (an environment must not cross a fork), and a map that
grows on demand without stopping readers in other processes.

Growing the map (``set_mapsize``) replaces the memory map, which no transaction of this process
may be using: transactions pass a gate together, a resize passes it alone.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import lmdb

from featurestore.errors import OnlineStoreError

__all__ = ["Environment", "acquire", "forks", "release"]

INITIAL_MAP_BYTES = 64 << 20  # virtual address space only: the file grows with its data
_MAX_READERS = 1024  # read transactions open at once, over every process on the file


class Environment:
    """An open LMDB file and the gate that keeps its map still while this process reads it."""

    def __init__(self, path: Path, map_size: int) -> None:
        self.path = path
        try:
            self.env = lmdb.open(
                str(path),
                subdir=False,
                map_size=map_size,
                max_readers=_MAX_READERS,
                # each commit flushes the data but not the meta page: a crash of the machine may
                # undo the last commit, never corrupt the file (as SQLite's synchronous=NORMAL)
                metasync=False,
                max_spare_txns=0,  # a cached read slot would be shared with a forked child
            )
        except lmdb.Error as exc:
            raise OnlineStoreError(f"cannot open the LMDB online store {path}: {exc}") from exc
        self.reader_check()
        self.page_size = self.env.stat()["psize"]
        self.users = 0
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._resizing = False

    def reader_check(self) -> None:
        """Free the read slots of processes that died reading: they keep old pages in use."""
        try:
            self.env.reader_check()
        except lmdb.Error as exc:
            raise OnlineStoreError(f"LMDB online store {self.path}: {exc}") from exc

    def enter(self) -> None:
        """Before a transaction: wait while the map is being resized."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._active += 1

    def leave(self) -> None:
        """After a transaction ended (committed or aborted)."""
        with self._cond:
            self._active -= 1
            if self._resizing and not self._active:
                self._cond.notify_all()

    def map_size(self) -> int:
        return self.env.info()["map_size"]

    def free_bytes(self) -> int:
        """Map bytes past the last page in use: what a write may add before the map is full."""
        info = self.env.info()
        return info["map_size"] - (info["last_pgno"] + 1) * self.page_size

    def remap(self, at_least: int) -> None:
        """Grow the map to ``at_least`` bytes (a power-of-two multiple of the page size), or with
        0 adopt the size another process grew it to, once no transaction of this process is
        open. The caller must not be inside the gate."""
        with self._cond:
            while self._resizing:
                self._cond.wait()
            self._resizing = True
            try:
                while self._active:
                    self._cond.wait()
                if at_least == 0:
                    self.env.set_mapsize(0)
                elif at_least > self.map_size():
                    self.env.set_mapsize(_rounded(at_least, self.page_size))
            except lmdb.Error as exc:
                raise OnlineStoreError(
                    f"cannot grow the LMDB online store {self.path} to {at_least:,} bytes: {exc}"
                ) from exc
            finally:
                self._resizing = False
                self._cond.notify_all()


def _rounded(size: int, page: int) -> int:
    """The smallest power of two times ``page`` that holds ``size`` bytes."""
    out = page
    while out < size:
        out *= 2
    return out


_lock = threading.Lock()
_open: dict[str, Environment] = {}
_forks = [0]  # how many forks this process descends from: a store opened before one reopens


def forks() -> int:
    return _forks[0]


def acquire(path: Path, map_size: int = INITIAL_MAP_BYTES) -> Environment:
    """The environment of ``path`` in this process, opened on first use; pair with release."""
    key = os.path.realpath(path)
    with _lock:
        env = _open.get(key)
        if env is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            env = _open[key] = Environment(path, map_size)
        env.users += 1
        return env


def release(env: Environment) -> None:
    """One user fewer; the last one closes the file (it may then be removed or reopened)."""
    with _lock:
        env.users -= 1
        key = os.path.realpath(env.path)
        if env.users <= 0 and _open.get(key) is env:
            del _open[key]
            env.env.close()


def _after_fork_in_child() -> None:
    """Close what the parent had open (the child must open its own) and start afresh."""
    global _lock
    _lock = threading.Lock()
    for env in _open.values():
        env.env.close()
    _open.clear()
    _forks[0] += 1


os.register_at_fork(after_in_child=_after_fork_in_child)
