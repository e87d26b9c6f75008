"""LMDB online store: the embedded default. One memory-mapped file; every write is one write
transaction, and readers (threads or processes) read a snapshot without taking a lock, so they
never wait for a writer and never see part of a write (LMDB's MVCC).

One key space, a range per view: ``r<view>\\0<entity>`` holds the entity's value, ``n<view>``
how many entities the view holds (kept in each write, so a count is one read), and
``t<view>\\0<entity>`` how many bytes were appended to the value since it was last written whole.
A full snapshot overwrites the view's range in place and deletes only the entities it no longer
has (the count tells whether there are any). Named sub-databases would make dropping a view
cheaper, but their handles can only be opened durably inside a write transaction, which would
make a reader wait for a materialization in progress.
"""

from __future__ import annotations

import functools
import operator
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import lmdb

from featurestore.errors import OnlineStoreError
from featurestore.online._lmdb_env import INITIAL_MAP_BYTES, Environment, acquire, forks, release
from featurestore.online._protocol import META_VIEW, Parts, check_pairs

__all__ = ["LmdbOnlineStore"]

if TYPE_CHECKING:
    Txn = lmdb.Transaction[bytes]

T = TypeVar("T")
_CHUNK = 50_000  # values taken from the caller at a time
_MAX_MAP_BYTES = 1 << 40  # a map that would grow past this is refused, not grown
_PARTS_MAP_BYTES = 1 << 37  # the map a snapshot written in parts starts from: 128 GiB
_ROW_OVERHEAD = 64  # bytes of page space per entry beyond its key and value, generously


class _MapTooSmall(Exception):
    """The batch being written needs a bigger map: abort, grow to ``need`` bytes, write again."""

    def __init__(self, need: int) -> None:
        self.need = need


@functools.lru_cache(maxsize=4096)
def _prefixes(view: str) -> tuple[bytes, bytes, bytes]:
    """The view's value prefix, appended-size prefix and count key."""
    if "\x00" in view:
        raise OnlineStoreError(f"view name {view!r} contains a NUL character")
    name = view.encode()
    return b"r" + name + b"\x00", b"t" + name + b"\x00", b"n" + name


def _encoded(prefix: bytes, keys: Sequence[str]) -> list[bytes]:
    return list(map(prefix.__add__, map(str.encode, keys)))


def _count(txn: Txn, key: bytes) -> int:
    return int.from_bytes(txn.get(key) or b"", "little")


def _set_count(txn: Txn, key: bytes, count: int) -> None:
    txn.put(key, count.to_bytes(8, "little"))


def _distinct(rows: list[bytes]) -> int:
    """How many distinct keys: a batch in key order has no repeats."""
    if all(map(operator.lt, rows, rows[1:])):
        return len(rows)
    return len(set(rows))


def _delete_range(txn: Txn, prefix: bytes, keep: set[bytes] | None = None) -> int:
    """Delete every key starting with ``prefix`` except those in ``keep``; returns how many."""
    cursor = txn.cursor()
    deleted = 0
    if not cursor.set_range(prefix):
        return 0
    key = cursor.key()
    while key.startswith(prefix):
        if keep is not None and key in keep:
            if not cursor.next():
                break
        else:
            cursor.delete()  # moves to the next key, if any
            deleted += 1
        key = cursor.key()
    return deleted


def _forget_appended(txn: Txn, view: str, rows: Sequence[bytes]) -> None:
    """Drop the appended sizes of ``rows`` (just written whole); a view without appended
    fragments, the usual case, costs one lookup."""
    rows_prefix, tails_prefix, _ = _prefixes(view)
    cursor = txn.cursor()
    if not cursor.set_range(tails_prefix) or not cursor.key().startswith(tails_prefix):
        return
    written = set(rows)
    start = len(tails_prefix)
    key = cursor.key()
    while key.startswith(tails_prefix):
        if rows_prefix + key[start:] in written:
            cursor.delete()
        elif not cursor.next():
            break
        key = cursor.key()


class LmdbOnlineStore:
    """Feature rows in the LMDB file ``path`` (and its ``-lock`` file beside it); safe to share
    between threads, and between processes each opening the file. ``map_size`` is where the
    map starts: it grows by itself."""

    def __init__(self, path: Path, *, map_size: int = INITIAL_MAP_BYTES) -> None:
        self.path = path
        self._map_size = map_size
        self._lock = threading.Lock()
        self._env: Environment | None = None
        self._forks = -1
        self._environment()

    def _environment(self) -> Environment:
        """This process's environment of the file, opened again after a fork or a close."""
        env = self._env
        if env is not None and self._forks == forks():
            return env
        with self._lock:
            if self._env is None or self._forks != forks():
                self._env = acquire(self.path, self._map_size)
                self._forks = forks()
            return self._env

    def _begin_write(self, env: Environment) -> Txn:
        """Wait for the file's write lock (held by at most one transaction of any process)."""
        return env.env.begin(write=True)

    def _run(self, work: Callable[[Txn], T], *, write: bool) -> T:
        """``work`` in one transaction, committed if ``write``; run again from the start after
        the map was grown (by this write or by another process)."""
        env = self._environment()
        while True:
            grow = 0
            env.enter()
            try:
                txn = self._begin_write(env) if write else env.env.begin()
                try:
                    out = work(txn)
                except BaseException:
                    txn.abort()
                    raise
                if write:
                    txn.commit()
                else:
                    txn.abort()
                return out
            except lmdb.MapResizedError:
                pass  # another process grew the map past this one's: adopt its size
            except lmdb.MapFullError:
                grow = 2 * env.map_size()
            except _MapTooSmall as short:
                grow = short.need
            except lmdb.Error as exc:
                raise OnlineStoreError(f"LMDB online store {self.path}: {exc}") from exc
            finally:
                env.leave()
            if grow > _MAX_MAP_BYTES:
                raise OnlineStoreError(
                    f"LMDB online store {self.path}: a write needs a map of {grow:,} bytes, "
                    f"more than the {_MAX_MAP_BYTES:,} allowed"
                )
            env.remap(grow)

    def _put(self, txn: Txn, view: str, rows: list[bytes], values: Sequence[bytes]) -> int:
        """Write ``values`` under ``rows``, a chunk of values at a time; returns how many of the
        keys are new. The first chunk tells whether the map has room for all of them."""
        before = txn.stat()["entries"]
        cursor = txn.cursor()
        for start in range(0, len(rows), _CHUNK):
            chunk = values[start : start + _CHUNK]
            try:
                if start == 0 and chunk:
                    self._check_room(chunk, len(rows))
                cursor.putmulti(zip(rows[start : start + _CHUNK], chunk, strict=True))
            except TypeError as exc:
                raise OnlineStoreError(
                    f"publish to {view!r}: values must be bytes ({exc})"
                ) from exc
            except lmdb.BadValsizeError as exc:
                longest = self._environment().env.max_key_size() - len(_prefixes(view)[0])
                raise OnlineStoreError(
                    f"publish to {view!r}: an entity key is longer than the {longest} bytes "
                    "LMDB allows for this view"
                ) from exc
        return txn.stat()["entries"] - before

    def _check_room(self, chunk: Sequence[bytes], total: int) -> None:
        """Raise _MapTooSmall unless the map has room for ``total`` values like ``chunk``
        (twice over: the pages a write replaces stay until readers are done with them)."""
        env = self._environment()
        size = sum(map(len, chunk)) + _ROW_OVERHEAD * len(chunk)
        need = 2 * size * total // len(chunk)
        if need > env.free_bytes():
            raise _MapTooSmall(env.map_size() + need)

    def _publish(
        self, txn: Txn, view: str, rows: list[bytes], values: Sequence[bytes], replace: bool
    ) -> None:
        rows_prefix, tails_prefix, count_key = _prefixes(view)
        old = _count(txn, count_key)
        count = old + self._put(txn, view, rows, values)
        if replace:
            # every key of the batch is in the view now: any more are entities it no longer has
            if old and count != _distinct(rows):
                count -= _delete_range(txn, rows_prefix, keep=set(rows))
            _delete_range(txn, tails_prefix)
        else:
            _forget_appended(txn, view, rows)
        _set_count(txn, count_key, count)

    def publish(
        self,
        view: str,
        keys: Sequence[str],
        values: Sequence[bytes],
        *,
        replace: bool,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        check_pairs("publish to", view, keys, values)
        rows = _encoded(_prefixes(view)[0], keys)
        meta_rows = _encoded(_prefixes(META_VIEW)[0], list(meta or {}))
        if replace:  # free the read slots of processes that died reading: they pin old pages
            self._environment().reader_check()

        def write(txn: Txn) -> None:
            self._publish(txn, view, rows, values, replace)
            if meta:
                self._publish(txn, META_VIEW, meta_rows, list(meta.values()), False)

        self._run(write, write=True)

    def publish_parts(
        self, view: str, parts: Parts, *, meta: Callable[[], Mapping[str, bytes]]
    ) -> None:
        """The view's range emptied, then each part written, in one write transaction. The map
        is first grown to a size parts rarely outgrow (address space only: the file grows with
        its data), since outgrowing it runs the write again from the first part."""
        rows_prefix, tails_prefix, count_key = _prefixes(view)
        env = self._environment()
        env.reader_check()
        env.remap(_PARTS_MAP_BYTES)

        def write(txn: Txn) -> None:
            _delete_range(txn, rows_prefix)
            _delete_range(txn, tails_prefix)
            count = 0
            for keys, values in parts():
                check_pairs("publish to", view, keys, values)
                count += self._put(txn, view, _encoded(rows_prefix, keys), values)
            _set_count(txn, count_key, count)
            entries = meta()
            meta_rows = _encoded(_prefixes(META_VIEW)[0], list(entries))
            self._publish(txn, META_VIEW, meta_rows, list(entries.values()), False)

        self._run(write, write=True)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        prefix = _prefixes(view)[0]

        def read_all(txn: Txn) -> list[bytes | None]:
            get = txn.get  # a key too long to store is not found, as any absent key
            return [get(prefix + k.encode()) for k in keys]

        return self._run(read_all, write=False)

    def append(self, view: str, keys: Sequence[str], fragments: Sequence[bytes]) -> list[int]:
        check_pairs("append to", view, keys, fragments)
        rows_prefix, tails_prefix, count_key = _prefixes(view)
        names = list(map(str.encode, keys))

        def write(txn: Txn) -> list[int]:
            get, put = txn.get, txn.put
            sizes: list[int] = []
            new = 0
            for name, fragment in zip(names, fragments, strict=True):
                row, tail = rows_prefix + name, tails_prefix + name
                value = get(row)
                new += value is None
                put(row, (value or b"") + fragment)
                size = int.from_bytes(get(tail) or b"", "little") + len(fragment)
                put(tail, size.to_bytes(8, "little"))
                sizes.append(size)
            if new:
                _set_count(txn, count_key, _count(txn, count_key) + new)
            return sizes

        return self._run(write, write=True)

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        rows_prefix, _, count_key = _prefixes(view)
        rows = _encoded(rows_prefix, keys)

        def write(txn: Txn) -> None:
            current = [txn.get(r) for r in rows]
            values = change(current)
            if len(values) != len(rows):
                raise OnlineStoreError(
                    f"update of {view!r}: {len(keys)} keys but {len(values)} values"
                )
            for row, value in zip(rows, values, strict=True):
                txn.put(row, value)
            _forget_appended(txn, view, rows)
            new = current.count(None)
            if new:
                _set_count(txn, count_key, _count(txn, count_key) + new)

        self._run(write, write=True)

    def count(self, view: str) -> int:
        count_key = _prefixes(view)[2]
        return self._run(lambda txn: _count(txn, count_key), write=False)

    def delete_view(self, view: str) -> None:
        rows_prefix, tails_prefix, count_key = _prefixes(view)

        def write(txn: Txn) -> None:
            _delete_range(txn, rows_prefix)
            _delete_range(txn, tails_prefix)
            txn.delete(count_key)

        self._run(write, write=True)

    def ping(self) -> None:
        self._run(lambda txn: None, write=False)

    def close(self) -> None:
        with self._lock:
            env, self._env = self._env, None
            if env is not None and self._forks == forks():
                release(env)
