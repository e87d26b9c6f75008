"""Fixtures for the feature server tests: a small materialized repo and real server processes.

The repo (SQLite online store) has a view with every served dtype, a default, bounds and a
ttl (``user_profile``), a second entity with a short ttl (``merchant_stats``), an on-demand
view over request data that raises for a negative amount (``txn_risk``), and a service.
Source rows are dated relative to now, so that served values are PRESENT, STALE, INVALID,
NOT_FOUND or DEFAULTED by design. ``serve`` starts ``featurestore serve`` as a subprocess on a
free loopback port, waits for ``/healthz`` and stops it with SIGTERM afterwards.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import polars as pl
import pytest
from conftest import MERCHANT, USER, definitions, source, view, write_repo
from prometheus_client import CollectorRegistry

from featurestore import FeatureStore
from featurestore.server._launch import free_port, wait_until_healthy
from featurestore.server._metrics import _SettledFilesCollector

with warnings.catch_warnings():  # starlette deprecates the httpx-based TestClient it ships
    warnings.filterwarnings("ignore", message=".*starlette.testclient.* is deprecated")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]

TOKEN_ENV = "FEATURESTORE_TOKENS"

DEFINITIONS = definitions(
    USER,
    MERCHANT,
    view(
        "user_profile",
        source("users", "data/users.parquet", "updated_at"),
        owner='"risk-team"',
        description='"Profile of a user."',
        ttl="timedelta(days=30)",
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("age", pl.Int32, ge=0, le=130)',
            'Feature("score", pl.Float64)',
            'Feature("vip", pl.Boolean)',
            'Feature("signup_date", pl.Date)',
            'Feature("last_login", pl.Datetime)',
        ],
    ),
    view(
        "merchant_stats",
        source("merchants", "data/merchants.parquet"),
        entities="merchant",
        owner='"payments"',
        ttl="timedelta(days=1)",
        features=['Feature("n_txn", pl.Int64, default=0)', 'Feature("risk", pl.Float64)'],
    ),
    'txn = RequestSource("txn", schema={"amount": pl.Float64, "txn_date": pl.Date})',
    """
    @on_demand_feature_view(
        sources=[txn, user_profile],
        schema={"amount_per_age": pl.Float64, "days_since_signup": pl.Int64},
    )
    def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
        if (df["amount"] < 0).any():
            raise ValueError("negative amounts are not supported")
        return df.select(
            (pl.col("amount") / pl.col("age")).cast(pl.Float64).alias("amount_per_age"),
            (pl.col("txn_date") - pl.col("signup_date"))
            .dt.total_days()
            .cast(pl.Int64)
            .alias("days_since_signup"),
        )
    """,
    """
    risk_model = FeatureService(
        "risk_model", features=[user_profile, "merchant_stats:n_txn", "txn_risk:amount_per_age"]
    )
    """,
    doc="Definitions of the server test repo.",
)

USER_FEATURES = [
    "user_profile:country",
    "user_profile:age",
    "user_profile:score",
    "user_profile:vip",
    "user_profile:signup_date",
    "user_profile:last_login",
]
ALL_FEATURES = [
    *USER_FEATURES,
    "merchant_stats:n_txn",
    "merchant_stats:risk",
    "txn_risk:amount_per_age",
    "txn_risk:days_since_signup",
]
# users 1-2 fresh, 3 has an out-of-bounds age, 4 is older than the ttl, 5 has no row
FRESH_USERS, INVALID_USER, STALE_USER, MISSING_USER = (1, 2), 3, 4, 5


def users_frame(now: dt.datetime) -> pl.DataFrame:
    day = dt.timedelta(days=1)
    return pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4],
            "updated_at": [now - day, now - 2 * day, now - day, now - 40 * day],
            "country": ["FR", None, "US", "DE"],
            "age": [30, 45, 200, 50],
            "score": [0.5, 1.25, 0.0, 2.0],
            "vip": [True, False, None, True],
            "signup_date": [dt.date(2020, 1, 1), dt.date(2021, 6, 15), None, dt.date(2019, 3, 3)],
            "last_login": [dt.datetime(2024, 5, 1, 12, 30), None, None, None],
        },
        schema_overrides={
            "updated_at": pl.Datetime("us"),
            "age": pl.Int32,
            "last_login": pl.Datetime("us"),
        },
    )


def merchants_frame(now: dt.datetime) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "merchant_id": ["m1", "m2"],
            "ts": [now - dt.timedelta(hours=1), now - dt.timedelta(days=3)],
            "n_txn": [12, 7],
            "risk": [0.25, 0.75],
        },
        schema_overrides={"ts": pl.Datetime("us")},
    )


def server_repo(root: Path, config: str = "") -> Path:
    """Write the server test repo at ``root``: config, definitions and sources as of now."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return write_repo(
        root,
        DEFINITIONS,
        config=f"project: server_tests\n{config}",
        data={
            "data/users.parquet": users_frame(now),
            "data/merchants.parquet": merchants_frame(now),
        },
    )


def build_repo(root: Path, config: str = "") -> Path:
    """Write, apply and materialize (as of now) the server test repo at ``root``."""
    store = FeatureStore(server_repo(root, config))
    try:
        store.apply()
        # user 3's age breaks its bounds on purpose: force past the publish guard
        store.materialize(end=dt.datetime.now(dt.UTC), force=True)
    finally:
        store.close()
    return root


@dataclass
class Server:
    """A running ``featurestore serve`` process."""

    process: subprocess.Popen[bytes]
    url: str
    repo: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20) -> int:
        """SIGTERM, then wait for the graceful shutdown; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"server did not stop within {timeout} s:\n{self.log()}") from None


def server_env(tokens: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a server process: no tokens unless given, a wide console (its banner
    is matched by tests)."""
    env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, "PROMETHEUS_MULTIPROC_DIR")}
    env["COLUMNS"] = "200"
    if tokens is not None:
        env[TOKEN_ENV] = tokens
    return env | extra


@contextmanager
def running_server(
    repo: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> Iterator[Server]:
    """``featurestore serve --repo REPO`` on a free port, ready once /healthz answers."""
    port = free_port()
    log_path = repo.parent / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "featurestore.cli",
                "serve",
                "--repo",
                str(repo),
                "--port",
                str(port),
                *args,
            ],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env if env is not None else server_env(),
        )
    server = Server(process, f"http://127.0.0.1:{port}", repo, log_path)
    try:
        wait_healthy(server, timeout)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def wait_healthy(server: Server, timeout: float) -> None:
    port = int(server.url.rsplit(":", 1)[1])
    wait_until_healthy(server.process, port, timeout, output=server.log)


@pytest.fixture(scope="session")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The server test repo, applied and materialized (shared by the tests)."""
    return build_repo(tmp_path_factory.mktemp("server") / "repo")


@pytest.fixture(scope="session")
def server(repo: Path) -> Iterator[Server]:
    """A server process over ``repo`` without auth."""
    with running_server(repo) as srv:
        yield srv


@pytest.fixture(scope="session")
def env_token_server(repo: Path) -> Iterator[Server]:
    """A server process over ``repo`` whose tokens (tok-1, tok-2) come from the environment."""
    with running_server(repo, env=server_env(tokens="tok-1,tok-2")) as srv:
        yield srv


@pytest.fixture(scope="session")
def http(server: Server) -> Iterator[httpx.Client]:
    """An HTTP client of ``server``."""
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def local(repo: Path) -> Iterator[FeatureStore]:
    """An in-process FeatureStore over the same repo, to compare the server with."""
    store = FeatureStore(repo)
    yield store
    store.close()


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of FeatureStores over fresh copies of the test repo (closed afterwards)."""
    stores: list[FeatureStore] = []

    def make(config: str = "", name: str = "repo", materialized: bool = True) -> FeatureStore:
        root = tmp_path / name
        (build_repo if materialized else server_repo)(root, config)
        store = FeatureStore(root)
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def post(client: Any, body: Any, **kwargs: Any) -> httpx.Response:
    """POST /v1/online-features with ``body``: a dict as JSON, bytes or chunks as they are."""
    if isinstance(body, dict):
        return client.post("/v1/online-features", json=body, **kwargs)
    return client.post("/v1/online-features", content=body, **kwargs)


ONLINE_200 = (
    "featurestore_http_requests_total",
    {"endpoint": "/v1/online-features", "status": "200"},
)


def served_by_worker(
    directory: Path, scratch: Path, sample: tuple[str, dict[str, str]] = ONLINE_200
) -> dict[str, float]:
    """A metric sample of each worker (default: online-features requests answered), read from
    its own sample files."""
    out = {}
    for pid in {p.stem.rsplit("_", 1)[-1] for p in directory.glob("*.db")}:
        one = scratch / pid
        shutil.rmtree(one, ignore_errors=True)
        one.mkdir(parents=True)
        for path in directory.glob(f"*_{pid}.db"):
            shutil.copy(path, one / path.name)
        registry = CollectorRegistry()
        _SettledFilesCollector(registry, path=str(one))
        out[pid] = registry.get_sample_value(*sample) or 0.0
    return out
