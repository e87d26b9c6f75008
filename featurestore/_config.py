"""featurestore.yaml: the repo's settings. Only ``project`` is required."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from featurestore.definitions._base import did_you_mean, identifier
from featurestore.errors import ConfigError

CONFIG_FILE = "featurestore.yaml"


class OfflineStoreConfig(BaseModel):
    """DuckDB settings for training sets; unset values keep DuckDB's defaults."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["duckdb"] = "duckdb"
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None


class OnlineStoreConfig(BaseModel):
    """Where materialized values live: ``lmdb`` (the embedded default: the fastest to publish
    and to read, as measured in benchmarks/online.py), ``sqlite`` (embedded) or ``redis``."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["lmdb", "sqlite", "redis"] = "lmdb"
    # embedded stores: the file, relative to data_dir; unset, online.lmdb (lmdb) or online.db
    path: str = ""
    url: str = "redis://127.0.0.1:6379/0"  # redis
    key_prefix: str = "fs:"  # redis: keys are {key_prefix}{project}:{view}
    timeout_seconds: float = Field(default=0.5, gt=0)
    fallback: Literal["error", "defaults"] = "error"

    @model_validator(mode="after")
    def _default_path(self) -> OnlineStoreConfig:
        """Each embedded store has its own default file, so switching type never reads the
        other store's file."""
        if not self.path:
            self.path = "online.lmdb" if self.type == "lmdb" else "online.db"
        return self


class MaterializationConfig(BaseModel):
    """Limits of the guard that checks a batch before it is published online."""

    model_config = ConfigDict(extra="forbid")

    max_invalid_rate: float = Field(default=0.01, ge=0, le=1)
    min_row_ratio: float = Field(default=0.5, ge=0, le=1)
    max_null_rate_increase: float = Field(default=0.2, ge=0, le=1)
    # a full snapshot of a view whose source holds more rows is read, checked and written in
    # parts of about this many rows, so memory holds one part (still one atomic publish)
    part_rows: int = Field(default=1_000_000, ge=1)


class ServingLogConfig(BaseModel):
    """The serving log: every served request, appended to Parquet under data_dir/logs."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = False  # in-process get_online_features; the HTTP server always logs
    path: str = "logs"  # relative to data_dir
    queue_size: int = Field(default=100_000, ge=1)  # responses waiting; beyond, dropped
    batch_size: int = Field(default=5_000, ge=1)  # records per Parquet file at most
    flush_interval_seconds: float = Field(default=1.0, gt=0)


class ServingConfig(BaseModel):
    """How long-lived processes (the server, a FeatureStore serving online features) follow
    apply: how often they look for a newly applied registry; 0 never looks."""

    model_config = ConfigDict(extra="forbid")

    reload_interval_seconds: float = Field(default=5.0, ge=0)


class ServerConfig(BaseModel):
    """The HTTP feature server (``featurestore serve``)."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=6566, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    auth_tokens: list[str] = Field(default_factory=list)  # bearer tokens; empty = no auth
    auth_tokens_env: str | None = "FEATURESTORE_TOKENS"  # comma-separated tokens, added
    max_body_bytes: int = Field(default=1_000_000, ge=1)
    max_entities: int = Field(default=1_000, ge=1)
    # a network online store (redis) is read in worker threads, at most store_threads at once;
    # beyond max_pending_requests waiting for it, requests are shed with 503 and Retry-After
    store_threads: int = Field(default=32, ge=1)
    max_pending_requests: int = Field(default=256, ge=1)


class RepoConfig(BaseModel):
    """The parsed featurestore.yaml."""

    model_config = ConfigDict(extra="forbid")

    project: Annotated[str, identifier("project")]
    data_dir: str = ".featurestore"
    offline_store: OfflineStoreConfig = Field(default_factory=OfflineStoreConfig)
    online_store: OnlineStoreConfig = Field(default_factory=OnlineStoreConfig)
    materialization: MaterializationConfig = Field(default_factory=MaterializationConfig)
    serving_log: ServingLogConfig = Field(default_factory=ServingLogConfig)
    serving: ServingConfig = Field(default_factory=ServingConfig)
    server: ServerConfig = Field(default_factory=ServerConfig)


def load_config(repo_dir: Path) -> RepoConfig:
    """Read and validate ``repo_dir/featurestore.yaml``."""
    path = repo_dir / CONFIG_FILE
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist; create it with at least 'project: NAME'"
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must be a mapping such as 'project: fraud', found {raw!r:.60}")
    try:
        return RepoConfig.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(_problem(e["loc"], e["type"], e["msg"]) for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None


def _problem(loc: tuple[int | str, ...], kind: str, message: str) -> str:
    """One validation problem; an unknown key names the known ones, and the closest."""
    where = ".".join(str(p) for p in loc) or "file"
    if kind != "extra_forbidden":
        return f"{where}: {message}"
    known = _known_keys(loc[:-1])
    hint = did_you_mean(str(loc[-1]), known)
    return f"{where}: unknown key.{hint} Known keys here: {', '.join(known)}"


def _known_keys(parent: tuple[int | str, ...]) -> list[str]:
    """The keys a mapping at ``parent`` (a path of keys from the top) may hold."""
    model: type[BaseModel] = RepoConfig
    for key in parent:
        field = model.model_fields.get(str(key))
        if field is None or not (
            isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
        ):
            return []
        model = field.annotation
    return sorted(model.model_fields)
