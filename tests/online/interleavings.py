"""Hooks that force a failure, a read or another write into the middle of an online store's
write, for the tests of its atomicity and concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from featurestore.online._lmdb import LmdbOnlineStore
from featurestore.online._protocol import OnlineStore
from featurestore.online._sqlite import SqliteOnlineStore


class Boom(RuntimeError):
    """The failure the tests inject into a publish."""


class Hooked(Sequence[bytes]):
    """Values that call ``hook(i)`` before the store takes a chunk of them starting at ``i``,
    and before each value when it iterates them: failures and reads forced into a write."""

    def __init__(self, values: list[bytes], hook: Callable[[int], None]) -> None:
        self.values = values
        self.hook = hook

    def __len__(self) -> int:
        return len(self.values)

    def __getitem__(self, index: Any) -> Any:  # an item or, for a slice, a list
        self.hook((index.start or 0) if isinstance(index, slice) else index)
        return self.values[index]

    def __iter__(self) -> Iterator[bytes]:
        for i, value in enumerate(self.values):
            self.hook(i)
            yield value


def failing_at(item: int, taken: list[int]) -> Callable[[int], None]:
    """A hook failing once a chunk starting at or after ``item`` is taken; ``taken`` records
    the starts of the chunks taken before."""

    def hook(start: int) -> None:
        if start >= item:
            raise Boom(f"failure at item {start}")
        taken.append(start)

    return hook


def reader_of(
    store: OnlineStore, view: str, keys: list[str], seen: list[Any]
) -> Callable[[], None]:
    """A read of ``keys`` run to completion in another thread (another connection), noting
    what it saw, or the error it raised, in ``seen``."""

    def read_into_seen() -> None:
        try:
            seen.append(store.read(view, keys))
        except Exception as exc:
            seen.append(exc)

    def read() -> None:
        thread = threading.Thread(target=read_into_seen)
        thread.start()
        thread.join()

    return read


def inside_a_write(store: OnlineStore, write: Callable[[], None]) -> threading.Thread:
    """Start ``write`` (through ``store``) in another thread and wait until it has finished or,
    on SQLite and LMDB, is about to ask for the write lock (it then waits for the caller's
    write); the caller joins the returned thread once its own write is done."""
    asked = threading.Event()

    def run() -> None:
        if isinstance(store, SqliteOnlineStore):
            con = store._con()  # this thread's connection: trace its BEGIN IMMEDIATE
            con.set_trace_callback(lambda sql: asked.set() if sql.startswith("BEGIN") else None)
        if isinstance(store, LmdbOnlineStore):
            begin = store._begin_write

            def asking(env: Any) -> Any:
                asked.set()
                return begin(env)

            store._begin_write = asking  # type: ignore[method-assign]
        try:
            write()
        finally:
            asked.set()

    thread = threading.Thread(target=run)
    thread.start()
    asked.wait()
    return thread
