"""Redis online store: for a fleet of serving replicas sharing one store.

Each view is one hash, ``{key_prefix}{project}:{view}``, field = entity key, so two projects
share a Redis without collisions and a read of many entities is one HMGET. A full snapshot is
built under a temporary key and swapped in with RENAME; an upsert runs in MULTI/EXEC, and an
update (read, change, write) under WATCH, retried when another writer got in between. Either
way readers see the old batch or the new one, and a failure part-way publishes nothing. Old
hashes are dropped with UNLINK, so freeing a million fields never blocks readers.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

from featurestore.errors import OnlineStoreError, OnlineStoreUnavailableError

if TYPE_CHECKING:
    from featurestore.config import OnlineStoreConfig

try:
    import redis
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the redis online store needs the redis client: pip install 'featurestore[redis]'"
    ) from exc

__all__ = ["RedisOnlineStore"]

_CHUNK = 20_000  # field/value pairs per HSET command: fewer, larger commands load faster
_STAGING_TTL_SECONDS = 24 * 3600
_UPDATE_ATTEMPTS = 50  # optimistic retries of update() under concurrent writes


class RedisOnlineStore:
    """Feature rows in Redis hashes, namespaced by project and view."""

    def __init__(self, config: OnlineStoreConfig, project: str) -> None:
        self.url = config.url
        self.prefix = f"{config.key_prefix}{project}:"
        self.client = redis.Redis.from_url(
            config.url,
            socket_timeout=config.timeout_seconds,
            socket_connect_timeout=config.timeout_seconds,
            retry_on_timeout=False,
        )

    def _key(self, view: str) -> str:
        return f"{self.prefix}{view}"

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            raise OnlineStoreUnavailableError(
                f"redis online store at {self.url} is unreachable while {action}: {exc}"
            ) from exc

    def publish(
        self, view: str, keys: Sequence[str], values: Sequence[bytes], *, replace: bool
    ) -> None:
        if len(keys) != len(values):
            raise OnlineStoreError(
                f"publish to {view!r}: {len(keys)} keys but {len(values)} values"
            )
        live = self._key(view)
        target = f"{live}:staging:{uuid.uuid4().hex}" if replace else live
        with self._errors(f"publishing view {view!r}"):
            pipe = self.client.pipeline(transaction=not replace)
            for start in range(0, len(keys), _CHUNK):
                mapping = dict(
                    zip(keys[start : start + _CHUNK], values[start : start + _CHUNK], strict=True)
                )
                pipe.hset(target, mapping=mapping)
                if replace and start == 0:  # a staging key left by a crash expires by itself
                    pipe.expire(target, _STAGING_TTL_SECONDS)
            try:
                pipe.execute()
                if replace:  # UNLINK frees the old hash in the background, inside MULTI/EXEC
                    swap = self.client.pipeline(transaction=True)
                    swap.unlink(live)
                    if keys:
                        swap.rename(target, live)
                        swap.persist(live)
                    swap.execute()
            finally:
                if replace:
                    self.client.unlink(target)

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        if not keys:
            return []
        with self._errors(f"reading view {view!r}"):
            return self.client.hmget(self._key(view), list(keys))

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        if not keys:
            return
        live = self._key(view)
        with self._errors(f"updating view {view!r}"):
            for _ in range(_UPDATE_ATTEMPTS):
                with self.client.pipeline(transaction=True) as pipe:
                    try:
                        pipe.watch(live)  # a concurrent write (or a snapshot swap) retries
                        values = change(pipe.hmget(live, list(keys)))
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
            return int(self.client.hlen(self._key(view)))

    def delete_view(self, view: str) -> None:
        with self._errors(f"deleting view {view!r}"):
            self.client.unlink(self._key(view))

    def ping(self) -> None:
        with self._errors("pinging"):
            self.client.ping()

    def close(self) -> None:
        self.client.close()
