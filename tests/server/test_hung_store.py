"""A Redis that hangs (SIGSTOP: connections stay open, nothing answers) never blocks the server:
while requests wait for the hung store, /healthz answers and the requests beyond
``max_pending_requests`` are shed with 503 and Retry-After before any waiting one is answered;
every request gets its 503 (or the declared defaults with ``fallback: defaults``) rather than a
hang; and serving recovers when Redis does. No wall-clock bound: each wait below is bounded only
by the guard that keeps a broken server from hanging the test."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import polars as pl
import pytest
from conftest import USER, definitions, source, view, write_repo
from redis_process import RedisProcess

from featurestore import FeatureStore

from .conftest import running_server

TIMEOUT = 0.5  # the online store's timeout_seconds
CONCURRENT = 50
GUARD = 60.0  # seconds a wait may take before the test fails instead of hanging
BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DEFINITIONS = definitions(
    USER,
    view(
        "profile",
        source("profiles", "data/profiles.parquet"),
        ttl="timedelta(days=3650)",
        features=['Feature("age", pl.Int64, default=-1)'],
    ),
    doc="Definitions of the hung-store server repo.",
)
ASK = {"features": ["profile:age"], "entities": {"user_id": [1, 2]}}
SHED = "waiting for the online store"


def build_repo(
    root: Path, redis_url: str, extra: str = "", timeout: float = TIMEOUT, server: str = ""
) -> Path:
    """Write the repo (Redis online store, ``extra`` appended to its options, ``server`` to
    the config), apply and materialize it."""
    config = (
        f"project: hung\nonline_store: {{type: redis, url: '{redis_url}', key_prefix: 'hung:', "
        f"timeout_seconds: {timeout}{extra}}}\n{server}"
    )
    profiles = pl.DataFrame(
        {"user_id": [1, 2], "ts": [BASE, BASE], "age": [30, 40]},
        schema={"user_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "age": pl.Int64},
    )
    write_repo(root, DEFINITIONS, config=config, data={"data/profiles.parquet": profiles})
    store = FeatureStore(root)
    store.apply()
    store.materialize(BASE)
    store.close()
    return root


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisProcess(directory)
    server.start()
    yield server
    if server.process is not None:
        server.resume()  # a test that failed while Redis was paused
    server.stop()


class Storm:
    """``n`` online-features requests sent at once, each on its own connection, in threads;
    the responses in the order they arrived."""

    def __init__(self, url: str, n: int) -> None:
        self.url = url
        self.n = n
        self.arrived: list[httpx.Response] = []
        self.changed = threading.Condition()
        self._barrier = threading.Barrier(n)
        self._pool = ThreadPoolExecutor(n)
        self._futures = [self._pool.submit(self._one) for _ in range(n)]

    def _one(self) -> None:
        with httpx.Client(base_url=self.url, timeout=GUARD, trust_env=False) as client:
            self._barrier.wait()
            response = client.post("/v1/online-features", json=ASK)
        with self.changed:
            self.arrived.append(response)
            self.changed.notify_all()

    def wait_for(self, count: int) -> list[httpx.Response]:
        """The first ``count`` responses, once they arrived."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.arrived) >= count, GUARD), (
                f"{len(self.arrived)} of {count} responses arrived"
            )
            return list(self.arrived[:count])

    def finish(self) -> list[httpx.Response]:
        """Every response, once all arrived."""
        for future in self._futures:
            future.result(GUARD)
        self._pool.shutdown()
        return list(self.arrived)


def recovered(url: str) -> httpx.Response:
    """The first 200 once Redis is back (after the circuit's cool-down), or the last answer
    when the guard runs out."""
    deadline = time.monotonic() + GUARD
    while True:
        answer = httpx.post(f"{url}/v1/online-features", json=ASK)
        if answer.status_code == 200 or time.monotonic() > deadline:
            return answer
        time.sleep(0.2)


def test_a_hung_redis_gives_every_request_its_503(tmp_path: Path, own_redis: RedisProcess) -> None:
    repo = build_repo(tmp_path / "repo", own_redis.url)
    with running_server(repo) as server:
        assert httpx.post(f"{server.url}/v1/online-features", json=ASK).status_code == 200
        own_redis.pause()
        try:
            results = Storm(server.url, CONCURRENT).finish()
        finally:
            own_redis.resume()
        assert {r.status_code for r in results} == {503}, [r.text for r in results]
        for response in results:
            assert response.headers["retry-after"] == "1"
            assert "unreachable" in response.json()["error"]["message"]
        answer = recovered(server.url)
        assert answer.status_code == 200, answer.text
        assert answer.json()["features"]["age"]["values"] == [30, 40]


def test_a_hung_redis_with_fallback_serves_defaults(
    tmp_path: Path, own_redis: RedisProcess
) -> None:
    repo = build_repo(tmp_path / "repo", own_redis.url, ", fallback: defaults")
    with running_server(repo) as server:
        assert httpx.post(f"{server.url}/v1/online-features", json=ASK).status_code == 200
        own_redis.pause()
        try:
            results = Storm(server.url, CONCURRENT).finish()
        finally:
            own_redis.resume()
    assert {r.status_code for r in results} == {200}
    for response in results:
        age = response.json()["features"]["age"]
        assert (age["values"], age["statuses"]) == ([-1, -1], ["DEFAULTED", "DEFAULTED"])


def test_while_requests_wait_for_a_hung_store_healthz_answers_and_the_excess_is_shed(
    tmp_path: Path, own_redis: RedisProcess
) -> None:
    """The store's timeout outlasts the test's steps, so the requests that reached the store
    can only be answered once Redis resumes: the 25 shed answers, then /healthz, all come
    while those 5 still wait."""
    root = build_repo(
        tmp_path / "repo",
        own_redis.url,
        timeout=GUARD,
        server="server: {max_pending_requests: 5, store_threads: 2}\n",
    )
    with running_server(root) as server:
        assert httpx.post(f"{server.url}/v1/online-features", json=ASK).status_code == 200
        own_redis.pause()
        try:
            storm = Storm(server.url, 30)
            shed = storm.wait_for(30 - 5)
            with httpx.Client(base_url=server.url, timeout=GUARD, trust_env=False) as client:
                health = client.get("/healthz")
            waiting_then = storm.n - len(storm.arrived)
        finally:
            own_redis.resume()
        results = storm.finish()
    assert health.status_code == 200
    assert waiting_then == 5  # /healthz answered while the 5 still waited for the store
    for response in shed:
        assert response.status_code == 503, response.text
        assert SHED in response.json()["error"]["message"]
        assert response.headers["retry-after"] == "1"
    for response in results[len(shed) :]:  # answered once Redis was back
        assert response.status_code == 200, response.text
        assert response.json()["features"]["age"]["values"] == [30, 40]
