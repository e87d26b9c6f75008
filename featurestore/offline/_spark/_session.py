"""The Spark session of a repo whose ``offline_store`` is ``type: spark``: created from the
config (or given by the caller), with the settings the engine relies on (UTC session time)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from featurestore._config import OfflineStoreConfig
from featurestore.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["REQUIRED_CONF", "spark_session"]

# the engine reads naive timestamps as UTC and compares instants: the session must be in UTC
REQUIRED_CONF = {"spark.sql.session.timeZone": "UTC"}
_DEFAULT_CONF = {
    "spark.ui.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
}


def _pyspark() -> Any:
    try:
        import pyspark.sql
    except ImportError:
        raise ConfigError(
            "offline_store.type is spark but pyspark is not installed; install it with "
            "pip install 'featurestore[spark]' (and Java 17), or set offline_store.type: duckdb"
        ) from None
    return pyspark.sql


def spark_session(cfg: OfflineStoreConfig, session: SparkSession | None = None) -> SparkSession:
    """``session`` (checked to be in UTC), else the process's session built from ``cfg``."""
    if session is None:
        builder = _pyspark().SparkSession.builder.master(cfg.master).appName(cfg.app_name)
        for key, value in {**_DEFAULT_CONF, **cfg.conf, **REQUIRED_CONF}.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
    zone = session.conf.get("spark.sql.session.timeZone")
    if zone != "UTC":
        session.conf.set("spark.sql.session.timeZone", "UTC")
    return session
