"""Fixtures for the online tests: every online store backend and a small feature repo.

SQLite and LMDB live in a temporary directory; Redis is the real server at 127.0.0.1:6379,
each test under its own key prefix, whose keys are deleted afterwards. If Redis is unreachable
the Redis tests fail (never skip) with the command that starts it.

The repo has a view with a created timestamp, a ttl, a default, a bounded feature and an
expression feature (``user_profile``), a view keyed by two entities (``user_merchant``), an
on-demand view over request data and ``user_profile``, and a feature service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import redis
from conftest import (
    MERCHANT,
    TENURE_DAYS,
    USER,
    definitions,
    rows_frame,
    source,
    view,
    write_repo,
)

from featurestore import FeatureStore
from featurestore._config import OnlineStoreConfig
from featurestore.online._lmdb import LmdbOnlineStore
from featurestore.online._protocol import OnlineStore
from featurestore.online._redis import RedisOnlineStore
from featurestore.online._sqlite import SqliteOnlineStore

REDIS_URL = "redis://127.0.0.1:6379/0"
BACKENDS = ("sqlite", "lmdb", "redis")
PROJECT = "online_tests"

ON_DEMAND = """
txn_request = RequestSource("txn_request", schema={"amount": pl.Float64})


@on_demand_feature_view(
    sources=[txn_request, user_profile],
    schema=[Feature("amount_per_age", pl.Float64, ge=0)],
)
def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") / pl.col("age")).cast(pl.Float64).alias("amount_per_age"))


risk_model = FeatureService(
    "risk_model", features=[user_profile, user_merchant, "txn_risk:amount_per_age"]
)
"""
DEFINITIONS = definitions(
    USER,
    MERCHANT,
    view(
        "user_profile",
        source("users", "data/users.parquet", "updated_at", created="created"),
        ttl="timedelta(days=10)",
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("age", pl.Int64, ge=0, le=130)',
            'Feature("score", pl.Float64)',
            TENURE_DAYS,
        ],
    ),
    view(
        "user_merchant",
        source("user_merchant_src", "data/user_merchant.parquet"),
        entities="user, merchant",
        features=['Feature("n_txn", pl.Int64, default=0)', 'Feature("avg_amt", pl.Float64, ge=0)'],
    ),
    ON_DEMAND,
    doc="Definitions of the online test repo.",
)

USER_FEATURES = [
    "user_profile:country",
    "user_profile:age",
    "user_profile:score",
    "user_profile:tenure_days",
]
PAIR_FEATURES = ["user_merchant:n_txn", "user_merchant:avg_amt"]
ALL_FEATURES = [*USER_FEATURES, *PAIR_FEATURES, "txn_risk:amount_per_age"]

USERS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "updated_at": pl.Datetime("us"),
    "created": pl.Datetime("us"),
    "signup_at": pl.Datetime("us"),
    "country": pl.String(),
    "age": pl.Int64(),
    "score": pl.Float64(),
}
PAIRS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "merchant_id": pl.String(),
    "ts": pl.Datetime("us"),
    "n_txn": pl.Int64(),
    "avg_amt": pl.Float64(),
}

Row = dict[str, Any]
VIEW = "user_stats"  # the view the store contract tests write


def batch(version: int, keys: Sequence[str]) -> list[bytes]:
    """One value per key, tagged with a version marker: ``b"<version>:<key>"``."""
    return [f"{version}:{k}".encode() for k in keys]


def versions(values: Sequence[bytes | None]) -> set[str]:
    """The version markers found in ``values`` (None for an absent key)."""
    return {v.split(b":", 1)[0].decode() if v is not None else "None" for v in values}


def source_frames(users: Sequence[Row] = (), pairs: Sequence[Row] = ()) -> dict[str, pl.DataFrame]:
    """Both source files of the online test repo, by path."""
    return {
        "data/users.parquet": rows_frame(USERS_SCHEMA, users),
        "data/user_merchant.parquet": rows_frame(PAIRS_SCHEMA, pairs),
    }


def write_sources(root: Path, users: Sequence[Row], pairs: Sequence[Row]) -> None:
    """Replace both source files of the online test repo at ``root``."""
    for rel, frame in source_frames(users, pairs).items():
        frame.write_parquet(root / rel)


def unique_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"fstest:{uuid.uuid4().hex[:12]}:"


def drop_prefix(client: redis.Redis, prefix: str) -> None:
    """Delete every Redis key under ``prefix``."""
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


def online_store_yaml(backend: str, prefix: str, **extra: Any) -> str:
    """The ``online_store`` block of featurestore.yaml for ``backend``."""
    settings: dict[str, Any] = {"type": backend}
    if backend == "redis":
        settings |= {"url": REDIS_URL, "key_prefix": prefix}
    settings |= extra
    inner = ", ".join(
        f"{k}: {v!r}" if isinstance(v, str) else f"{k}: {v}" for k, v in settings.items()
    )
    return f"online_store: {{{inner}}}\n"


def write_online_repo(
    root: Path,
    online: str,
    *,
    definitions: str = DEFINITIONS,
    project: str = PROJECT,
    users: Sequence[Row] = (),
    pairs: Sequence[Row] = (),
    data: dict[str, pl.DataFrame] | None = None,
) -> Path:
    """The online test repo (or ``definitions`` with ``data``) at ``root``, with the
    ``online`` block of featurestore.yaml."""
    config = f"project: {project}\n{online}"
    return write_repo(root, definitions, config=config, data=data or source_frames(users, pairs))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[redis.Redis]:
    """A client of the Redis the tests use; fails the test with how to start Redis if down."""
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    problem = None
    try:
        client.ping()
    except redis.RedisError as exc:
        problem = str(exc)
    if problem is not None:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({problem}). The Redis online store tests "
            "need a local Redis: start one with 'redis-server --port 6379 --daemonize yes' "
            "and run the tests again.",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    """Each online store backend in turn; asking for Redis checks that it is up."""
    if request.param == "redis":
        request.getfixturevalue("redis_server")
    return request.param


@pytest.fixture
def redis_prefix(request: pytest.FixtureRequest) -> Iterator[str]:
    """A unique Redis key prefix; its keys are deleted after the test (when Redis was used)."""
    prefix = unique_prefix()
    yield prefix
    if "redis_server" in request.fixturenames:
        drop_prefix(request.getfixturevalue("redis_server"), prefix)


@pytest.fixture
def open_store(
    backend: str, tmp_path: Path, redis_prefix: str
) -> Iterator[Callable[[str], OnlineStore]]:
    """A factory of online stores of the current backend, by project name, closed afterwards:
    a SQLite or LMDB file per project, or one Redis key prefix shared by every project."""
    opened: list[OnlineStore] = []

    def open_(project: str = PROJECT) -> OnlineStore:
        store: OnlineStore
        if backend == "redis":
            config = OnlineStoreConfig(type="redis", url=REDIS_URL, key_prefix=redis_prefix)
            store = RedisOnlineStore(config, project)
        elif backend == "lmdb":
            store = LmdbOnlineStore(tmp_path / f"{project}.lmdb")
        else:
            store = SqliteOnlineStore(tmp_path / f"{project}.db")
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def online_store(open_store: Callable[[str], OnlineStore]) -> OnlineStore:
    """One online store of the current backend."""
    return open_store(PROJECT)


@pytest.fixture
def make_store(
    backend: str, tmp_path: Path, redis_prefix: str
) -> Iterator[Callable[..., FeatureStore]]:
    """A factory: write the online test repo for the current backend (kwargs go to
    write_online_repo), apply it and return the FeatureStore; every store is closed afterwards."""
    stores: list[FeatureStore] = []

    def make(name: str = "repo", **kwargs: Any) -> FeatureStore:
        online = online_store_yaml(backend, redis_prefix)
        root = write_online_repo(tmp_path / name, online, **kwargs)
        store = FeatureStore(root)
        store.apply()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()
