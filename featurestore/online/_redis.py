"""Redis online store: for a fleet of serving replicas sharing one store.

Each view is one hash, ``{key_prefix}{project}:{view}``, field = entity key, so two projects
share a Redis without collisions and a read of many entities is one HMGET. A full snapshot is
built under a temporary key and swapped in with RENAME; an upsert runs in MULTI/EXEC, and an
update (read, change, write) under WATCH, retried when another writer got in between. Either
way readers see the old batch or the new one, and a failure part-way publishes nothing. Old
hashes are dropped with UNLINK, so freeing a million fields never blocks readers. A staging hash
left by a publish that died (a process killed mid-way) is dropped by the next full publish of
the view once it is older than five minutes (and expires after a day regardless).

A call that times out opens a circuit for ``timeout_seconds`` (at least a second): calls in that
time fail at once with OnlineStoreUnavailableError instead of each waiting out the timeout
against a store that does not answer, so a hung Redis cannot pile up requests; the first call
after it tries the store again. (A refused connection fails at once anyway.)

Appended fragments live in a second hash per view, ``{key_prefix}{project}:{view}:appended``
(``:`` never occurs in a view name), grown by a Lua script so a batch of appends is atomic
without a read into Python; a read takes both hashes in one Lua script (atomic, and as cheap as
one HMGET), and a publish or update of a key removes its fragments in the same transaction.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from featurestore.errors import OnlineStoreError, OnlineStoreUnavailableError
from featurestore.online._protocol import META_VIEW, Parts, check_pairs

if TYPE_CHECKING:
    from redis.typing import EncodableT, FieldT

    from featurestore._config import OnlineStoreConfig

try:
    import redis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the redis online store needs the redis client: pip install 'featurestore[redis]'"
    ) from exc

__all__ = ["RedisOnlineStore", "stage_values"]

_CHUNK = 20_000  # field/value pairs per HSET command: fewer, larger commands load faster
_STAGING_TTL_SECONDS = 24 * 3600
_STALE_STAGING_SECONDS = 300  # a staging hash this old was left by a publish that died
_GLOB_SPECIAL = str.maketrans({c: f"\\{c}" for c in "*?[]\\"})
_UPDATE_ATTEMPTS = 50  # optimistic retries of update() under concurrent writes
# KEYS[1]: the appended hash; ARGV: key, fragment, key, fragment, ... -> appended bytes per key
_APPEND_LUA = """
local sizes = {}
for i = 1, #ARGV, 2 do
  local tail = (redis.call('HGET', KEYS[1], ARGV[i]) or '') .. ARGV[i + 1]
  redis.call('HSET', KEYS[1], ARGV[i], tail)
  sizes[#sizes + 1] = #tail
end
return sizes
"""
# KEYS[1]: values, KEYS[2]: appended; ARGV: keys -> {values, fragments}, in one atomic command
# (about the cost of a plain HMGET; MULTI/EXEC around two HMGETs costs noticeably more)
_READ_LUA = """
local function hmget(hash)
  local out = {}
  for i = 1, #ARGV, 4000 do
    local part = redis.call('HMGET', hash, unpack(ARGV, i, math.min(i + 3999, #ARGV)))
    for j = 1, #part do out[#out + 1] = part[j] end
  end
  return out
end
return {hmget(KEYS[1]), hmget(KEYS[2])}
"""
# KEYS[1]: values, KEYS[2]: appended -> entities with a value or fragments
_COUNT_LUA = """
local n = redis.call('HLEN', KEYS[1])
for _, key in ipairs(redis.call('HKEYS', KEYS[2])) do
  if redis.call('HEXISTS', KEYS[1], key) == 0 then n = n + 1 end
end
return n
"""


class RedisOnlineStore:
    """Feature rows in Redis hashes, namespaced by project and view."""

    def __init__(self, config: OnlineStoreConfig, project: str) -> None:
        self.url = config.url
        self.prefix = f"{config.key_prefix}{project}:"
        self._cooldown = max(config.timeout_seconds, 1.0)
        self._down_until = 0.0  # monotonic time until which calls fail at once
        self.client = redis.Redis.from_url(
            config.url,
            socket_timeout=config.timeout_seconds,
            socket_connect_timeout=config.timeout_seconds,
            retry_on_timeout=False,
        )
        self._read = self.client.register_script(_READ_LUA)
        self._append = self.client.register_script(_APPEND_LUA)
        self._count = self.client.register_script(_COUNT_LUA)

    def _key(self, view: str) -> str:
        return f"{self.prefix}{view}"

    def _appended_key(self, view: str) -> str:
        return f"{self.prefix}{view}:appended"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        wait = self._down_until - time.monotonic()
        if wait > 0:
            raise OnlineStoreUnavailableError(
                f"redis online store at {self.url} is unreachable while {action}: a call "
                f"failed moments ago; it is tried again in {wait:.1f}s"
            )
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if isinstance(exc, redis.TimeoutError):  # a hung store: do not wait on it again
                self._down_until = time.monotonic() + self._cooldown
            raise OnlineStoreUnavailableError(
                f"redis online store at {self.url} is unreachable while {action}: {exc}"
            ) from exc

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
        if replace:
            self.publish_parts(view, lambda: iter([(keys, values)]), meta=lambda: meta or {})
            return
        live, appended = self._key(view), self._appended_key(view)
        with self._errors(f"publishing view {view!r}"):
            clear = self.client.exists(appended)
            pipe = self.client.pipeline(transaction=True)
            for start in range(0, len(keys), _CHUNK):
                mapping: dict[FieldT, EncodableT] = dict(
                    zip(keys[start : start + _CHUNK], values[start : start + _CHUNK], strict=True)
                )
                pipe.hset(live, mapping=mapping)
                if clear:
                    pipe.hdel(appended, *keys[start : start + _CHUNK])
            if meta:
                pipe.hset(self._key(META_VIEW), mapping=_fields(meta))
            pipe.execute()

    def publish_parts(
        self, view: str, parts: Parts, *, meta: Callable[[], Mapping[str, bytes]]
    ) -> None:
        """Each part into a staging hash (a crash leaves it to expire), then one MULTI/EXEC
        swaps it in with the meta entries: readers see the old hash or the new one."""
        live, appended = self._key(view), self._appended_key(view)
        target = f"{live}:staging:{uuid.uuid4().hex}"
        with self._errors(f"publishing view {view!r}"):
            self._drop_stale_staging(live)
            try:
                written = 0
                for keys, values in parts():
                    check_pairs("publish to", view, keys, values)
                    pipe = self.client.pipeline(transaction=False)
                    for start in range(0, len(keys), _CHUNK):
                        mapping: dict[FieldT, EncodableT] = dict(
                            zip(
                                keys[start : start + _CHUNK],
                                values[start : start + _CHUNK],
                                strict=True,
                            )
                        )
                        pipe.hset(target, mapping=mapping)
                    if not written:  # a staging key left by a crash expires by itself
                        pipe.expire(target, _STAGING_TTL_SECONDS)
                    pipe.execute()
                    written += len(keys)
                entries = meta()
                swap = self.client.pipeline(transaction=True)  # UNLINK frees in the background
                swap.unlink(live, appended)
                if written:
                    swap.rename(target, live)
                    swap.persist(live)
                if entries:
                    swap.hset(self._key(META_VIEW), mapping=_fields(entries))
                swap.execute()
            finally:
                self.client.unlink(target)

    def new_staging_key(self, view: str) -> str:
        """A fresh staging hash for a snapshot of ``view`` written by other processes (Spark
        executors, with :func:`stage_values`); stale ones of dead publishes are dropped."""
        live = self._key(view)
        with self._errors(f"publishing view {view!r}"):
            self._drop_stale_staging(live)
        return f"{live}:staging:{uuid.uuid4().hex}"

    def swap_staging(self, view: str, staging: str, meta: Mapping[str, bytes]) -> None:
        """Make the staging hash the view's values, with ``meta``, in one transaction: readers
        see the old hash or the new one (an empty staging hash publishes an empty view)."""
        live, appended = self._key(view), self._appended_key(view)
        with self._errors(f"publishing view {view!r}"):
            swap = self.client.pipeline(transaction=True)
            swap.unlink(live, appended)
            if self.client.exists(staging):
                swap.rename(staging, live)
                swap.persist(live)
            if meta:
                swap.hset(self._key(META_VIEW), mapping=_fields(meta))
            swap.execute()

    def drop_staging(self, staging: str) -> None:
        """Drop a staging hash that will not be published."""
        with self._errors("dropping a staging hash"):
            self.client.unlink(staging)

    def _drop_stale_staging(self, live: str) -> None:
        """Drop the staging hashes of publishes of this view that died mid-way."""
        pattern = f"{live.translate(_GLOB_SPECIAL)}:staging:*"
        for key in self.client.scan_iter(match=pattern, count=100):
            remaining = self.client.ttl(key)
            if remaining >= 0 and _STAGING_TTL_SECONDS - remaining > _STALE_STAGING_SECONDS:
                self.client.unlink(key)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._errors(f"reading view {view!r}"):
            return self._read_whole(view, keys, self.client)

    def _read_whole(self, view: str, keys: Sequence[str], client: Any) -> list[bytes | None]:
        """Each key's value followed by its fragments, read in one atomic command."""
        values, tails = self._read(
            keys=[self._key(view), self._appended_key(view)], args=list(keys), client=client
        )
        return [v if t is None else (v or b"") + t for v, t in zip(values, tails, strict=True)]

    def append(self, view: str, keys: Sequence[str], fragments: Sequence[bytes]) -> list[int]:
        check_pairs("append to", view, keys, fragments)
        if not keys:
            return []
        args = [item for pair in zip(keys, fragments, strict=True) for item in pair]
        with self._errors(f"appending to view {view!r}"):
            return [int(n) for n in self._append(keys=[self._appended_key(view)], args=args)]

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        if not keys:
            return
        live, appended = self._key(view), self._appended_key(view)
        with self._errors(f"updating view {view!r}"):
            for _ in range(_UPDATE_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        # a concurrent write, append or snapshot swap makes EXEC fail: retry
                        # (redis-py leaves Pipeline.watch unannotated)
                        pipe.watch(live, appended)  # type: ignore[no-untyped-call]
                        values = change(self._read_whole(view, keys, pipe))
                        if len(values) != len(keys):
                            raise OnlineStoreError(
                                f"update of {view!r}: {len(keys)} keys but {len(values)} values"
                            )
                        pipe.multi()
                        for start in range(0, len(keys), _CHUNK):
                            pipe.hset(
                                live,
                                mapping=dict(
                                    zip(
                                        keys[start : start + _CHUNK],
                                        values[start : start + _CHUNK],
                                        strict=True,
                                    )
                                ),
                            )
                            pipe.hdel(appended, *keys[start : start + _CHUNK])
                        pipe.execute()
                        return
                    except redis.WatchError:
                        continue
        raise OnlineStoreError(
            f"update of {view!r} lost the race to concurrent writers {_UPDATE_ATTEMPTS} times; "
            "retry it"
        )

    def count(self, view: str) -> int:
        with self._errors(f"counting view {view!r}"):
            return int(self._count(keys=[self._key(view), self._appended_key(view)]))

    def delete_view(self, view: str) -> None:
        with self._errors(f"deleting view {view!r}"):
            self.client.unlink(self._key(view), self._appended_key(view))

    def ping(self) -> None:
        with self._errors("pinging"):
            self.client.ping()

    def close(self) -> None:
        self.client.close()


def stage_values(url: str, staging: str, keys: Sequence[str], values: Sequence[bytes]) -> None:
    """Write ``keys`` -> ``values`` into the staging hash ``staging`` at ``url`` (from any
    process: a Spark executor writes its partition this way); the hash expires after a day
    unless it is swapped in."""
    check_pairs("stage", staging, keys, values)
    client = redis.Redis.from_url(url)
    try:
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(keys), _CHUNK):
            mapping: dict[FieldT, EncodableT] = dict(
                zip(keys[start : start + _CHUNK], values[start : start + _CHUNK], strict=True)
            )
            pipe.hset(staging, mapping=mapping)
        pipe.expire(staging, _STAGING_TTL_SECONDS)
        pipe.execute()
    finally:
        client.close()


def _fields(entries: Mapping[str, bytes]) -> dict[FieldT, EncodableT]:
    """A hash's fields as redis-py's ``hset`` types them (its mapping is invariant in the key)."""
    return dict(entries.items())
