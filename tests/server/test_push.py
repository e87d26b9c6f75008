"""POST /v1/push on a real server process: pushed events move the served window values at
once, the Python client pushes the same way, and bad pushes get a 4xx naming the problem."""

from __future__ import annotations

import datetime as dt
import textwrap
from collections.abc import Iterator

import httpx
import polars as pl
import pytest

from featurestore import Client, FeatureStore, SchemaMismatchError

from .conftest import Server, running_server

BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DEFINITIONS = """
from datetime import timedelta

from featurestore import Entity, FeatureView, FileSource
from featurestore.definitions import Count, Sum

user = Entity("user", join_keys=["user_id"])
txns = FileSource(name="txns", path="data/txns.parquet", timestamp_field="ts")
user_txn = FeatureView(
    name="user_txn",
    entities=[user],
    source=txns,
    owner="tests",
    aggregations=[
        Count(window=timedelta(hours=1), name="count_1h"),
        Sum("amount", window=timedelta(days=1), name="spend_1d"),
    ],
)
"""
ASK = {"features": ["user_txn:count_1h", "user_txn:spend_1d"], "entities": {"user_id": [1, 2]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A repo whose user 1 had one 10.0 payment at BASE, materialized, served."""
    root = tmp_path_factory.mktemp("push") / "repo"
    (root / "data").mkdir(parents=True)
    (root / "featurestore.yaml").write_text("project: push_http\n")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())
    pl.DataFrame(
        {"user_id": [1], "ts": [BASE], "amount": [10.0]},
        schema={"user_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64},
    ).write_parquet(root / "data" / "txns.parquet")
    store = FeatureStore(root)
    store.apply()
    store.materialize(BASE)
    store.close()
    with running_server(root) as running:
        yield running


def served(server: Server) -> dict[str, list[float | int]]:
    """Values 30 minutes after BASE, read from the server's online store through the library
    (the HTTP API serves as of now, when every window of these 2025 events is empty)."""
    store = FeatureStore(server.repo)
    try:
        response = store.get_online_features(**ASK, request_time=BASE + dt.timedelta(minutes=30))
        return response.values
    finally:
        store.close()


def test_push_over_http_moves_the_window_values(server: Server) -> None:
    assert served(server) == {"count_1h": [1, 0], "spend_1d": [10.0, 0.0]}
    body = {
        "source": "txns",
        "rows": [
            {"user_id": 1, "ts": "2025-01-01T00:10:00Z", "amount": 5.0},
            {"user_id": 2, "ts": "2025-01-01T00:20:00", "amount": 7.5},
            {"user_id": 2, "ts": "2024-12-01T00:00:00Z", "amount": 1.0},
        ],
    }
    response = httpx.post(f"{server.url}/v1/push", json=body, timeout=10)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["events"], answer["entities"], answer["late"], answer["compacted"]) == (
        3,
        {"user_txn": 2},
        {"user_txn": 1},  # a month before user 2's newest event: outside every window
        {"user_txn": 0},  # one small appended part each: nothing to fold yet
    )
    assert served(server) == {"count_1h": [2, 1], "spend_1d": [15.0, 7.5]}
    with Client(server.url) as client:
        result = client.push(
            "txns", [{"user_id": 2, "ts": BASE + dt.timedelta(minutes=25), "amount": 2.5}]
        )
    assert result["entities"] == {"user_txn": 1}
    assert served(server) == {"count_1h": [2, 2], "spend_1d": [15.0, 10.0]}


def test_bad_pushes_get_a_4xx_that_names_the_problem(server: Server) -> None:
    before = served(server)
    cases = [
        ({"source": "txns"}, 400, "rows"),
        ({"source": "nope", "rows": [{"user_id": 1}]}, 404, "no feature view reads a source"),
        ({"source": "txns", "rows": [{"user_id": 1, "ts": "2025-01-01T00:00:00Z"}]}, 400, "amount"),
        (
            {"source": "txns", "rows": [{"user_id": 1, "ts": "yesterday", "amount": 1.0}]},
            400,
            "ISO",
        ),
    ]
    for body, status, needle in cases:
        response = httpx.post(f"{server.url}/v1/push", json=body, timeout=10)
        assert response.status_code == status, (body, response.text)
        assert needle in response.json()["error"]["message"], response.text
    with Client(server.url) as client, pytest.raises(SchemaMismatchError, match="amount"):
        client.push("txns", [{"user_id": 1, "ts": BASE}])
    assert served(server) == before
