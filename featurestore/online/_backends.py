"""Opening the configured online store: each backend module is imported only when chosen,
so a deployment on an embedded store never imports redis."""

from __future__ import annotations

import logging
from pathlib import Path

from featurestore._config import OnlineStoreConfig
from featurestore.online._protocol import OnlineStore

__all__ = ["open_online_store"]

log = logging.getLogger(__name__)


def open_online_store(config: OnlineStoreConfig, project: str, data_dir: Path) -> OnlineStore:
    """The configured backend; each backend module is imported only here."""
    if config.type == "redis":
        from featurestore.online._redis import RedisOnlineStore

        return RedisOnlineStore(config, project)
    if config.type == "lmdb":
        from featurestore.online._lmdb import LmdbOnlineStore

        _warn_of_a_left_sqlite_file(config, data_dir)
        return LmdbOnlineStore(data_dir / config.path)
    from featurestore.online._sqlite import SqliteOnlineStore

    return SqliteOnlineStore(data_dir / config.path)


def _warn_of_a_left_sqlite_file(config: OnlineStoreConfig, data_dir: Path) -> None:
    """A repo that relied on the former default (SQLite) now opens a new, empty LMDB store:
    say how to keep the old file, or to fill the new one."""
    if "type" in config.model_fields_set or (data_dir / config.path).exists():
        return
    if (data_dir / "online.db").exists():
        log.warning(
            "the default online store is now LMDB (%s), which is empty; %s holds the values of "
            "the SQLite store: set 'online_store: {type: sqlite}' in featurestore.yaml to keep "
            "serving them, or run 'featurestore materialize' to fill the new store",
            data_dir / config.path,
            data_dir / "online.db",
        )
