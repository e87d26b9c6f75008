"""Serving when Redis is down: an address where nothing listens fails with a typed error, a server
that accepts connections but never answers fails after ``timeout_seconds`` on one connection
and is then not waited on again (no second connection), and ``fallback: defaults`` serves
declared defaults (status DEFAULTED) with a warning instead of failing."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.errors import OnlineStoreError, OnlineStoreUnavailableError

from .conftest import ALL_FEATURES, online_store_yaml, write_online_repo

T = dt.datetime(2024, 3, 1)
REFUSED_URL = "redis://127.0.0.1:1/0"  # port 1: nothing listens, connections are refused
TIMEOUT = 0.3
ENTITIES = {"user_id": [1, 2], "merchant_id": ["m1", "m2"]}
REQUEST = {"amount": [10.0, 20.0]}


class SilentServer:
    """A Redis URL whose server accepts connections (the kernel's backlog) but never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.url = f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"
        self.connections = 0

    def count_connections(self) -> int:
        """The connections made so far (each is taken from the backlog and closed)."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return self.connections
            conn.close()
            self.connections += 1


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    server = SilentServer()
    yield server
    server.sock.close()


@pytest.fixture
def store_at(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores of the online test repo whose Redis is at ``url``."""
    stores: list[FeatureStore] = []

    def make(url: str, fallback: str = "error") -> FeatureStore:
        online = online_store_yaml(
            "redis", "fstest:down:", url=url, timeout_seconds=TIMEOUT, fallback=fallback
        )
        root = write_online_repo(tmp_path / f"repo{len(stores)}", online)
        fs = FeatureStore(root)
        fs.apply()
        stores.append(fs)
        return fs

    yield make
    for fs in stores:
        fs.close()


def timed(call: Callable[[], Any]) -> tuple[Any, BaseException | None, float]:
    """Run ``call``: its result or error, and how long it took."""
    started = time.perf_counter()
    try:
        return call(), None, time.perf_counter() - started
    except Exception as exc:
        return None, exc, time.perf_counter() - started


def serve(fs: FeatureStore) -> Callable[[], Any]:
    return lambda: fs.get_online_features(
        features=ALL_FEATURES, entities=ENTITIES, request_data=REQUEST, request_time=T
    )


def test_a_refused_connection_is_a_transient_unavailable_store(
    store_at: Callable[..., FeatureStore],
) -> None:
    fs = store_at(REFUSED_URL)
    _, error, _ = timed(serve(fs))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)
    assert error.transient
    assert isinstance(error, OnlineStoreError)
    assert REFUSED_URL in str(error)
    assert "unreachable" in str(error)
    assert "user_profile" in str(error) or "user_merchant" in str(error)


def test_silent_server_fails_after_the_timeout_and_is_not_waited_on_again(
    store_at: Callable[..., FeatureStore], silent_server: SilentServer
) -> None:
    fs = store_at(silent_server.url)
    _, error, elapsed = timed(serve(fs))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)
    assert silent_server.url in str(error)
    assert "Timeout" in str(error)
    assert elapsed >= TIMEOUT * 0.8  # it waited for the answer before giving up
    assert silent_server.count_connections() == 1  # on one connection, without retrying
    _, again, _ = timed(serve(fs))
    assert isinstance(again, OnlineStoreUnavailableError), repr(again)
    assert "failed moments ago" in str(again)
    assert silent_server.count_connections() == 1  # the open circuit did not call it


def test_materialize_does_not_fall_back(store_at: Callable[..., FeatureStore]) -> None:
    fs = store_at(REFUSED_URL, fallback="defaults")
    _, error, _ = timed(lambda: fs.materialize(end=T))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)


def assert_defaults(resp: Any) -> None:
    """Declared defaults where there are some, null elsewhere; nothing claims to be found."""
    assert resp.values["country"] == ["unknown", "unknown"]
    assert resp.values["n_txn"] == [0, 0]
    for column in ("country", "n_txn"):
        assert resp.statuses[column] == [FeatureStatus.DEFAULTED] * 2, column
    for column in ("age", "score", "tenure_days", "avg_amt"):
        assert resp.values[column] == [None, None], column
        assert set(resp.statuses[column]) <= {FeatureStatus.DEFAULTED, FeatureStatus.NOT_FOUND}
    assert resp.values["amount_per_age"] == [None, None]  # computed from the missing age


@pytest.mark.parametrize("where", ["refused", "silent"])
def test_fallback_serves_declared_defaults_with_a_warning(
    store_at: Callable[..., FeatureStore],
    silent_server: SilentServer,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    fs = store_at(REFUSED_URL if where == "refused" else silent_server.url, fallback="defaults")
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        resp, error, _ = timed(serve(fs))
    assert error is None, repr(error)
    assert_defaults(resp)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    messages = " ".join(r.getMessage() for r in warnings)
    assert "unavailable" in messages
    assert "fallback=defaults" in messages
    assert {"view=user_profile", "view=user_merchant"} <= set(messages.split())
    frame = resp.to_polars(include_statuses=True)
    assert frame["country__status"].to_list() == ["DEFAULTED", "DEFAULTED"]
