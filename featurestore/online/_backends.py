"""Opening the configured online store: each backend module is imported only when chosen,
so a deployment on SQLite never imports redis."""

from __future__ import annotations

from pathlib import Path

from featurestore._config import OnlineStoreConfig
from featurestore.online._protocol import OnlineStore

__all__ = ["open_online_store"]


def open_online_store(config: OnlineStoreConfig, project: str, data_dir: Path) -> OnlineStore:
    """The configured backend; each backend module is imported only here."""
    if config.type == "redis":
        from featurestore.online._redis import RedisOnlineStore

        return RedisOnlineStore(config, project)
    from featurestore.online._sqlite import SqliteOnlineStore

    return SqliteOnlineStore(data_dir / config.path)
