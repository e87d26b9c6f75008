"""Each online store's bulk-write floor: the seconds the cheapest plain write of a batch of
encoded rows takes in one transaction, outside the store's own code, for the online benchmark
to set a materialization beside. The rows go to a scratch file or key, removed afterwards."""

from __future__ import annotations

import shutil
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

REDIS_URL = "redis://127.0.0.1:6379/0"
_REDIS_CHUNK = 10_000


def floor_seconds(
    backend: str, scratch: Path, keys: Sequence[str], values: Sequence[bytes]
) -> float:
    """The floor of ``backend`` for these rows (keys in the order given)."""
    if scratch.exists():
        shutil.rmtree(scratch)
    scratch.mkdir(parents=True)
    try:
        return {"lmdb": _lmdb, "sqlite": _sqlite, "redis": _redis}[backend](scratch, keys, values)
    finally:
        shutil.rmtree(scratch)


def _lmdb(scratch: Path, keys: Sequence[str], values: Sequence[bytes]) -> float:
    """``txn.put`` of each row in one write transaction and its commit, with the store's
    flags (a fresh file, the map large enough from the start)."""
    import lmdb

    size = 4 * (sum(map(len, values)) + 80 * len(values)) + (64 << 20)
    env = lmdb.open(str(scratch / "floor.lmdb"), subdir=False, map_size=size, metasync=False)
    encoded = [k.encode() for k in keys]
    try:
        started = time.perf_counter()
        with env.begin(write=True) as txn:
            put = txn.put
            for key, value in zip(encoded, values, strict=True):
                put(key, value)
        return time.perf_counter() - started
    finally:
        env.close()


def _sqlite(scratch: Path, keys: Sequence[str], values: Sequence[bytes]) -> float:
    """``executemany`` into a table of their own in one transaction and its commit, with the
    store's settings (WAL, synchronous=NORMAL)."""
    con = sqlite3.connect(scratch / "floor.db", isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        con.execute(
            "CREATE TABLE rows (entity_key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID"
        )
        started = time.perf_counter()
        con.execute("BEGIN IMMEDIATE")
        con.executemany("INSERT INTO rows VALUES (?, ?)", zip(keys, values, strict=True))
        con.execute("COMMIT")
        return time.perf_counter() - started
    finally:
        con.close()


def _redis(scratch: Path, keys: Sequence[str], values: Sequence[bytes]) -> float:
    """Pipelined ``HSET`` of the rows into one hash, in chunks, in one MULTI/EXEC."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    name = f"fsbench:floor:{uuid.uuid4().hex}"
    try:
        started = time.perf_counter()
        pipe = client.pipeline(transaction=True)
        for start in range(0, len(keys), _REDIS_CHUNK):
            end = start + _REDIS_CHUNK
            pipe.hset(name, mapping=dict(zip(keys[start:end], values[start:end], strict=True)))
        pipe.execute()
        return time.perf_counter() - started
    finally:
        client.delete(name)
        client.close()
