"""featurestore.yaml: the repo's settings. Only ``project`` is required."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from featurestore._times import parse_duration
from featurestore.definitions._base import did_you_mean, identifier
from featurestore.errors import ConfigError

CONFIG_FILE = "featurestore.yaml"


class OfflineStoreConfig(BaseModel):
    """The engine of training sets: DuckDB on this machine (the default; unset values keep
    DuckDB's defaults), or Apache Spark (``master``: ``local[2]``, ``spark://host:7077``,
    ``yarn``...; ``conf``: Spark settings). Reports and checks of local files use DuckDB."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["duckdb", "spark"] = "duckdb"
    threads: int | None = Field(default=None, ge=1)
    memory_limit: str | None = None
    master: str = "local[*]"  # spark
    app_name: str = "featurestore"  # spark
    conf: dict[str, str] = Field(default_factory=dict)  # spark


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


MonitorStatistic = Literal["psi", "ks_d", "linf", "true_rate_change", "null_rate_change"]
MonitorWindow = Literal["1h", "1d", "7d"]


def _positive_duration(text: str, what: str) -> str:
    if text.strip() not in ("0", "0s") and parse_duration(text) is None:
        raise ValueError(f"{what} must be a duration such as 30m, 6h or 1d (or 0), found {text!r}")
    return text


class AlertRule(BaseModel):
    """One alert of ``monitor run``: fires when ``statistic`` of a feature is past its
    threshold in ``consecutive`` windows in a row, once per incident, and resolves when a
    window is back under it; ``cooldown`` is the quiet time after a resolve before the same
    feature can fire again."""

    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(min_length=1)]
    features: Literal["all"] | list[str] = "all"
    statistic: MonitorStatistic = "psi"
    threshold: Literal["calibrated"] | Annotated[float, Field(ge=0)] = "calibrated"
    window: MonitorWindow = "1h"
    consecutive: int = Field(default=1, ge=1)
    cooldown: str = "0s"
    severity: Literal["info", "warning", "critical"] = "warning"
    webhook: str | None = None  # a JSON POST per state change; always logged too

    @model_validator(mode="after")
    def _durations(self) -> AlertRule:
        _positive_duration(self.cooldown, "cooldown")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ValueError(f"webhook must be an http:// or https:// URL, found {self.webhook!r}")
        return self


class MonitoringConfig(BaseModel):
    """Continuous monitoring (``featurestore monitor run``): hourly summaries of the serving
    log against a reference, drift over time, and alerts."""

    model_config = ConfigDict(extra="forbid")

    # a saved training set (relative to the repo) or a serving log window log:START..END
    reference: str | None = None
    features: Literal["all"] | list[str] = "all"
    alerts: list[AlertRule] = Field(default_factory=list)
    # per view owner, a webhook that also receives the alerts of that owner's features
    owner_webhooks: dict[str, str] = Field(default_factory=dict)
    webhook_timeout_seconds: float = Field(default=5.0, gt=0)
    webhook_retries: int = Field(default=3, ge=0)
    # logged requests replayed through the offline path per run (the same entities every run)
    consistency_sample: int = Field(default=200, ge=0)

    @model_validator(mode="after")
    def _unique_names(self) -> MonitoringConfig:
        names = [a.name for a in self.alerts]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"alert names must be unique; repeated: {', '.join(repeated)}")
        return self


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
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)


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
