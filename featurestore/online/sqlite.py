"""SQLite online store: the embedded default. One file, WAL mode (readers never block the
writer), one row per entity per view; a batch is published in one transaction."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from featurestore.errors import OnlineStoreError

__all__ = ["SqliteOnlineStore"]

_MAX_PARAMS = 900  # keys per IN (...) query, under SQLite's variable limit
_CHUNK = 50_000
_MMAP_BYTES = 1 << 30
_LOAD_CACHE_KIB = 256 * 1024  # page cache of a connection while it publishes a large batch
_DEFAULT_CACHE = -2000  # SQLite's default page cache (about 2 MiB)


class SqliteOnlineStore:
    """Feature rows in ``path``; safe to share between threads (one connection per thread)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")
        con.execute(
            "CREATE TABLE IF NOT EXISTS feature_rows ("
            "view TEXT NOT NULL, entity_key TEXT NOT NULL, value BLOB NOT NULL, "
            "PRIMARY KEY (view, entity_key)) WITHOUT ROWID"
        )
        con.commit()

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            con.execute("PRAGMA synchronous=NORMAL")
            # reads go through the OS page cache without a system call per page
            con.execute(f"PRAGMA mmap_size={_MMAP_BYTES}")
            self._local.con = con
        return con

    def publish(
        self, view: str, keys: Sequence[str], values: Sequence[bytes], *, replace: bool
    ) -> None:
        if len(keys) != len(values):
            raise OnlineStoreError(
                f"publish to {view!r}: {len(keys)} keys but {len(values)} values"
            )
        con = self._con()
        big = len(keys) > _CHUNK
        if big:  # a large batch keeps its changed pages in memory instead of spilling them
            con.execute(f"PRAGMA cache_size=-{_LOAD_CACHE_KIB}")
        con.execute("BEGIN IMMEDIATE")
        try:
            if replace:
                con.execute("DELETE FROM feature_rows WHERE view = ?", (view,))
            sql = "INSERT OR REPLACE INTO feature_rows (view, entity_key, value) VALUES (?, ?, ?)"
            for start in range(0, len(keys), _CHUNK):
                chunk_k = keys[start : start + _CHUNK]
                chunk_v = values[start : start + _CHUNK]
                con.executemany(sql, zip([view] * len(chunk_k), chunk_k, chunk_v, strict=True))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            if big:
                con.execute(f"PRAGMA cache_size={_DEFAULT_CACHE}")

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        con = self._con()
        if len(keys) == 1:
            row = con.execute(
                "SELECT value FROM feature_rows WHERE view = ? AND entity_key = ?", (view, keys[0])
            ).fetchone()
            return [row[0] if row else None]
        found: dict[str, bytes] = {}
        unique = list(dict.fromkeys(keys))
        con.execute("BEGIN")  # one snapshot for every chunk: never a mix of two batches
        try:
            for start in range(0, len(unique), _MAX_PARAMS):
                part = unique[start : start + _MAX_PARAMS]
                marks = ",".join("?" * len(part))
                found.update(
                    con.execute(
                        "SELECT entity_key, value FROM feature_rows "
                        f"WHERE view = ? AND entity_key IN ({marks})",
                        (view, *part),
                    ).fetchall()
                )
        finally:
            con.execute("COMMIT")
        return [found.get(k) for k in keys]

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")  # the write lock first: nothing changes in between
        try:
            found: dict[str, bytes] = {}
            for start in range(0, len(keys), _MAX_PARAMS):
                part = keys[start : start + _MAX_PARAMS]
                found.update(
                    con.execute(
                        "SELECT entity_key, value FROM feature_rows WHERE view = ? "
                        f"AND entity_key IN ({','.join('?' * len(part))})",
                        (view, *part),
                    ).fetchall()
                )
            values = change([found.get(k) for k in keys])
            if len(values) != len(keys):
                raise OnlineStoreError(
                    f"update of {view!r}: {len(keys)} keys but {len(values)} values"
                )
            con.executemany(
                "INSERT OR REPLACE INTO feature_rows (view, entity_key, value) VALUES (?, ?, ?)",
                zip([view] * len(keys), keys, values, strict=True),
            )
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def count(self, view: str) -> int:
        row = self._con().execute("SELECT count(*) FROM feature_rows WHERE view = ?", (view,))
        return int(row.fetchone()[0])

    def delete_view(self, view: str) -> None:
        con = self._con()
        con.execute("DELETE FROM feature_rows WHERE view = ?", (view,))

    def ping(self) -> None:
        self._con().execute("SELECT 1").fetchone()

    def close(self) -> None:
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None
