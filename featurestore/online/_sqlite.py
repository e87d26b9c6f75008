"""SQLite online store: the embedded default. One file, WAL mode (readers never block the
writer), one row per entity per view; a batch is published in one transaction.

Appended fragments (:meth:`SqliteOnlineStore.append`) go to their own table in arrival order,
found by view id and entity through a small index that also holds their sizes, so an append
writes a few bytes at the end of the file instead of rewriting each entity's whole value in
place; a read returns the stored value followed by its fragments, and a publish or update of a
key clears its fragments.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from featurestore.errors import OnlineStoreError
from featurestore.online._protocol import META_VIEW, Parts, check_pairs

__all__ = ["SqliteOnlineStore"]

_OPEN_SECONDS = 30.0  # as the busy timeout: how long opening may wait for another opener
_MAX_PARAMS = 900  # keys per IN (...) query, under SQLite's variable limit
_CHUNK = 50_000
_MMAP_BYTES = 1 << 30
_LOAD_CACHE_KIB = 256 * 1024  # page cache of a connection while it publishes a large batch
_DEFAULT_CACHE = -2000  # SQLite's default page cache (about 2 MiB)
# the view's id in fragment_views: fragments carry a small integer instead of the view's name,
# which keeps their index small (an append lands on fewer of its pages)
_VIEW_ID = "(SELECT id FROM fragment_views WHERE view = ?)"
_VIEW_ID1 = "(SELECT id FROM fragment_views WHERE view = ?1)"
# one key: its value (if any) first, then its fragments in the order they were appended
_READ_ONE = (
    "SELECT 0 AS seq, value FROM feature_rows WHERE view = ?1 AND entity_key = ?2 "
    "UNION ALL SELECT seq, fragment FROM fragments "
    f"WHERE view_id = {_VIEW_ID1} AND entity_key = ?2 ORDER BY seq"
)


def _chunks(keys: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(keys), _MAX_PARAMS):
        yield keys[start : start + _MAX_PARAMS]


def _marks(part: Sequence[str]) -> str:
    return ",".join("?" * len(part))


def _rows_by_keys(
    con: sqlite3.Connection, select: str, view: str, keys: Sequence[str]
) -> Iterator[tuple[str, Any]]:
    """Rows of ``select`` over ``keys``, chunk by chunk: its parameters are the view, then the
    chunk's keys, whose placeholders replace ``{marks}``."""
    for part in _chunks(keys):
        yield from con.execute(select.format(marks=_marks(part)), (view, *part))


class SqliteOnlineStore:
    """Feature rows in ``path``; safe to share between threads (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = self._con()
        self._enter_wal(con)
        con.execute(
            "CREATE TABLE IF NOT EXISTS feature_rows ("
            "view TEXT NOT NULL, entity_key TEXT NOT NULL, value BLOB NOT NULL, "
            "PRIMARY KEY (view, entity_key)) WITHOUT ROWID"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS fragment_views "
            "(id INTEGER PRIMARY KEY, view TEXT NOT NULL UNIQUE)"
        )
        con.execute(
            "CREATE TABLE IF NOT EXISTS fragments (seq INTEGER PRIMARY KEY, "
            "view_id INTEGER NOT NULL, entity_key TEXT NOT NULL, size INTEGER NOT NULL, "
            "fragment BLOB NOT NULL)"
        )
        # sizes are summed from the index alone, without visiting the fragments
        con.execute(
            "CREATE INDEX IF NOT EXISTS fragments_by_key ON fragments (view_id, entity_key, size)"
        )

    @staticmethod
    def _enter_wal(con: sqlite3.Connection) -> None:
        """Switch the file to WAL mode. SQLite does not wait on the busy timeout for this
        switch: when two processes open a new file at once, one is told the database is
        locked; it tries again until the other has made the switch."""
        deadline = time.monotonic() + _OPEN_SECONDS
        while True:
            try:
                con.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.execute("PRAGMA synchronous=NORMAL")
            # reads go through the OS page cache without a system call per page
            con.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
            self._local.con = con
        return con

    def _has_appended(self, con: sqlite3.Connection, view: str) -> bool:
        row = con.execute(
            f"SELECT 1 FROM fragments WHERE view_id = {_VIEW_ID} LIMIT 1", (view,)
        ).fetchone()
        return row is not None

    def _clear_appended(self, con: sqlite3.Connection, view: str, keys: Sequence[str]) -> None:
        for part in _chunks(keys):
            con.execute(
                f"DELETE FROM fragments WHERE view_id = {_VIEW_ID} "
                f"AND entity_key IN ({_marks(part)})",
                (view, *part),
            )

    def _read_many(
        self, con: sqlite3.Connection, view: str, keys: Sequence[str]
    ) -> list[bytes | None]:
        """Whole values of distinct ``keys``, inside the caller's transaction."""
        found = dict(
            _rows_by_keys(
                con,
                "SELECT entity_key, value FROM feature_rows "
                "WHERE view = ? AND entity_key IN ({marks})",
                view,
                keys,
            )
        )
        if self._has_appended(con, view):
            for key, fragment in _rows_by_keys(
                con,
                "SELECT entity_key, fragment FROM fragments "
                f"WHERE view_id = {_VIEW_ID} AND entity_key IN ({{marks}}) ORDER BY seq",
                view,
                keys,
            ):
                found[key] = found.get(key, b"") + fragment
        return [found.get(k) for k in keys]

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
        con = self._con()
        big = len(keys) > _CHUNK
        if big:  # a large batch keeps its changed pages in memory instead of spilling them
            con.execute(f"PRAGMA cache_size=-{_LOAD_CACHE_KIB}")
        con.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                con.execute("DELETE FROM feature_rows WHERE view = ?", (view,))
                con.execute(f"DELETE FROM fragments WHERE view_id = {_VIEW_ID}", (view,))
            elif self._has_appended(con, view):
                self._clear_appended(con, view, keys)
            sql = "INSERT OR REPLACE INTO feature_rows (view, entity_key, value) VALUES (?, ?, ?)"
            for start in range(0, len(keys), _CHUNK):
                chunk_k = keys[start : start + _CHUNK]
                chunk_v = values[start : start + _CHUNK]
                con.executemany(sql, zip([view] * len(chunk_k), chunk_k, chunk_v, strict=True))
            if meta:
                con.executemany(sql, [(META_VIEW, k, v) for k, v in meta.items()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            if big:
                con.execute(f"PRAGMA cache_size={_DEFAULT_CACHE}")

    def publish_parts(
        self, view: str, parts: Parts, *, meta: Callable[[], Mapping[str, bytes]]
    ) -> None:
        con = self._con()
        con.execute(f"PRAGMA cache_size=-{_LOAD_CACHE_KIB}")
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM feature_rows WHERE view = ?", (view,))
            con.execute(f"DELETE FROM fragments WHERE view_id = {_VIEW_ID}", (view,))
            sql = "INSERT OR REPLACE INTO feature_rows (view, entity_key, value) VALUES (?, ?, ?)"
            for keys, values in parts():
                check_pairs("publish to", view, keys, values)
                con.executemany(sql, zip([view] * len(keys), keys, values, strict=True))
            con.executemany(sql, [(META_VIEW, k, v) for k, v in meta().items()])
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            con.execute(f"PRAGMA cache_size={_DEFAULT_CACHE}")

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        con = self._con()
        if len(keys) == 1:
            rows = con.execute(_READ_ONE, (view, keys[0])).fetchall()
            if len(rows) <= 1:
                return [rows[0][1] if rows else None]
            return [b"".join(r[1] for r in rows)]
        unique = list(dict.fromkeys(keys))
        con.execute("BEGIN")  # one snapshot for every chunk: never a mix of two batches
        try:
            found = dict(zip(unique, self._read_many(con, view, unique), strict=True))
        finally:
            con.execute("COMMIT")
        return [found[k] for k in keys]

    def append(self, view: str, keys: Sequence[str], fragments: Sequence[bytes]) -> list[int]:
        check_pairs("append to", view, keys, fragments)
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("INSERT OR IGNORE INTO fragment_views (view) VALUES (?)", (view,))
            (view_id,) = con.execute(f"SELECT {_VIEW_ID}", (view,)).fetchone()
            con.executemany(
                "INSERT INTO fragments (view_id, entity_key, size, fragment) VALUES (?, ?, ?, ?)",
                zip([view_id] * len(keys), keys, map(len, fragments), fragments, strict=True),
            )
            sizes = dict(
                _rows_by_keys(
                    con,
                    "SELECT entity_key, sum(size) FROM fragments "
                    f"WHERE view_id = {_VIEW_ID} AND entity_key IN ({{marks}}) GROUP BY entity_key",
                    view,
                    keys,
                )
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return [sizes[k] for k in keys]

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")  # the write lock first: nothing changes in between
        try:
            values = change(self._read_many(con, view, keys))
            if len(values) != len(keys):
                raise OnlineStoreError(
                    f"update of {view!r}: {len(keys)} keys but {len(values)} values"
                )
            if self._has_appended(con, view):
                self._clear_appended(con, view, keys)
            con.executemany(
                "INSERT OR REPLACE INTO feature_rows (view, entity_key, value) VALUES (?, ?, ?)",
                zip([view] * len(keys), keys, values, strict=True),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def count(self, view: str) -> int:
        con = self._con()
        sql = "SELECT count(*) FROM feature_rows WHERE view = ?1"
        if self._has_appended(con, view):
            sql = (
                "SELECT count(*) FROM (SELECT entity_key FROM feature_rows WHERE view = ?1 "
                f"UNION SELECT entity_key FROM fragments WHERE view_id = {_VIEW_ID1})"
            )
        return int(con.execute(sql, (view,)).fetchone()[0])

    def delete_view(self, view: str) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            con.execute("DELETE FROM feature_rows WHERE view = ?", (view,))
            con.execute(f"DELETE FROM fragments WHERE view_id = {_VIEW_ID}", (view,))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def ping(self) -> None:
        self._con().execute("SELECT 1").fetchone()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
