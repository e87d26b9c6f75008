"""Serving when Redis is down: an address where nothing listens fails fast, a server that accepts
connections but never answers fails after about ``timeout_seconds``, and ``fallback: defaults``
serves declared defaults (status DEFAULTED) with a warning instead of failing."""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.errors import OnlineStoreError, OnlineStoreUnavailableError

from .conftest import ALL_FEATURES, online_store_yaml, write_repo

T = dt.datetime(2024, 3, 1)
REFUSED_URL = "redis://127.0.0.1:1/0"  # port 1: nothing listens, connections are refused
TIMEOUT = 0.3
ENTITIES = {"user_id": [1, 2], "merchant_id": ["m1", "m2"]}
REQUEST = {"amount": [10.0, 20.0]}


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A Redis URL whose server accepts connections (the kernel's backlog) but never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"
    sock.close()


@pytest.fixture
def store_at(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores of the online test repo whose Redis is at ``url``."""
    stores: list[FeatureStore] = []

    def make(url: str, fallback: str = "error") -> FeatureStore:
        online = online_store_yaml(
            "redis", "fstest:down:", url=url, timeout_seconds=TIMEOUT, fallback=fallback
        )
        root = write_repo(tmp_path / f"repo{len(stores)}", online)
        fs = FeatureStore(root)
        fs.apply()
        stores.append(fs)
        return fs

    yield make
    for fs in stores:
        fs.close()


def timed(call: Callable[[], Any], limit: float = 10.0) -> tuple[Any, BaseException | None, float]:
    """Run ``call`` in a thread; fail if it is still running after ``limit`` seconds."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except BaseException as exc:
            outcome["error"] = exc

    started = time.perf_counter()
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    elapsed = time.perf_counter() - started
    assert not thread.is_alive(), f"the call still hangs after {limit} s"
    return outcome.get("result"), outcome.get("error"), elapsed


def serve(fs: FeatureStore) -> Callable[[], Any]:
    return lambda: fs.get_online_features(
        features=ALL_FEATURES, entities=ENTITIES, request_data=REQUEST, request_time=T
    )


def test_refused_connection_fails_fast(store_at: Callable[..., FeatureStore]) -> None:
    fs = store_at(REFUSED_URL)
    _, error, elapsed = timed(serve(fs))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)
    assert error.transient
    assert isinstance(error, OnlineStoreError)
    assert REFUSED_URL in str(error)
    assert "unreachable" in str(error)
    assert "user_profile" in str(error) or "user_merchant" in str(error)
    assert elapsed < 3.0


def test_silent_server_fails_after_about_the_timeout(
    store_at: Callable[..., FeatureStore], silent_server: str
) -> None:
    fs = store_at(silent_server)
    _, error, elapsed = timed(serve(fs))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)
    assert silent_server in str(error)
    assert TIMEOUT * 0.8 <= elapsed < 3.0


def test_materialize_does_not_fall_back(store_at: Callable[..., FeatureStore]) -> None:
    fs = store_at(REFUSED_URL, fallback="defaults")
    _, error, elapsed = timed(lambda: fs.materialize(end=T))
    assert isinstance(error, OnlineStoreUnavailableError), repr(error)
    assert elapsed < 3.0


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
    silent_server: str,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    fs = store_at(REFUSED_URL if where == "refused" else silent_server, fallback="defaults")
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        resp, error, elapsed = timed(serve(fs))
    assert error is None, repr(error)
    assert_defaults(resp)
    assert elapsed < 3.0
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    messages = " ".join(r.getMessage() for r in warnings)
    assert "unavailable" in messages
    assert "fallback=defaults" in messages
    assert {"view=user_profile", "view=user_merchant"} <= set(messages.split())
    frame = resp.to_polars(include_statuses=True)
    assert frame["country__status"].to_list() == ["DEFAULTED", "DEFAULTED"]
