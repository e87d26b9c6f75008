"""POST /v1/push on a real server process: pushed events move the served window values at
once and land in the source's files (a training set sees them), the Python client pushes the
same way, and bad pushes (including one to a source that cannot take appended files) get a 4xx
naming the problem and write nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
import polars as pl
import pytest
from conftest import USER, definitions, source, view, write_repo

from featurestore import Client, FeatureStore, SchemaMismatchError

from .conftest import Server, running_server

BASE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
DEFINITIONS = definitions(
    USER,
    f"txns = {source('txns', 'data/txns/')}",
    view(
        "profiles",
        source("profile_rows", "data/profiles.parquet"),
        features=['Feature("amount", pl.Float64)'],
    ),
    view(
        "user_txn",
        "txns",
        aggregations=[
            'Count(window=timedelta(hours=1), name="count_1h")',
            'Sum("amount", window=timedelta(days=1), name="spend_1d")',
        ],
    ),
    doc="Definitions of the push server repo.",
)
ASK = {"features": ["user_txn:count_1h", "user_txn:spend_1d"], "entities": {"user_id": [1, 2]}}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A repo whose user 1 had one 10.0 payment at BASE, materialized, served."""
    first = pl.DataFrame(
        {"user_id": [1], "ts": [BASE], "amount": [10.0]},
        schema={"user_id": pl.Int64, "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64},
    )
    root = write_repo(
        tmp_path_factory.mktemp("push") / "repo",
        DEFINITIONS,
        project="push_http",
        data={"data/txns/base.parquet": first, "data/profiles.parquet": first},
    )
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


def offline(server: Server) -> dict[str, list[float | int]]:
    """The same values from a training set, which reads the source's files."""
    store = FeatureStore(server.repo)
    try:
        spine = pl.DataFrame(
            {"user_id": [1, 2], "event_timestamp": [BASE + dt.timedelta(minutes=30)] * 2}
        )
        frame = store.get_training_set(spine, features=ASK["features"]).to_polars()
        return {c: frame[c].to_list() for c in ("count_1h", "spend_1d")}
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
    assert answer["offline"] is True and answer["online_error"] is None
    assert served(server) == {"count_1h": [2, 1], "spend_1d": [15.0, 7.5]}
    assert offline(server) == {"count_1h": [2, 1], "spend_1d": [15.0, 7.5]}
    with Client(server.url) as client:
        result = client.push(
            "txns", [{"user_id": 2, "ts": BASE + dt.timedelta(minutes=25), "amount": 2.5}]
        )
    assert (result.events, result.offline, result.entities) == (1, True, {"user_txn": 1})
    assert result.offline_file is None, "the server does not tell its file names"
    assert served(server) == {"count_1h": [2, 2], "spend_1d": [15.0, 10.0]}
    assert offline(server) == served(server)
    parts = sorted(p.name for p in (server.repo / "data" / "txns").iterdir())
    assert len(parts) == 3 and parts[0] == "base.parquet"
    assert all(p.startswith("push-") and p.endswith(".parquet") for p in parts[1:])


def test_bad_pushes_get_a_4xx_that_names_the_problem(server: Server) -> None:
    before = served(server)
    files = sorted((server.repo / "data").rglob("*.parquet"))
    cases = [
        ({"source": "txns"}, 400, "rows"),
        (
            {
                "source": "profile_rows",
                "rows": [{"user_id": 1, "ts": "2025-01-02T00:00:00Z", "amount": 1.0}],
            },
            400,
            "reads the single file 'data/profiles.parquet'",
        ),
        ({"source": "txns", "rows": [{"user_id": 1}], "to": "sideways"}, 400, "to"),
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
    assert sorted((server.repo / "data").rglob("*.parquet")) == files


def test_the_client_pushes_pandas_frames_and_their_records(server: Server) -> None:
    """A pandas frame, and its records holding pandas Timestamps, go over HTTP as they are."""
    import pandas as pd

    before = served(server)
    frame = pd.DataFrame(
        {
            "user_id": [1, 1],
            "ts": pd.to_datetime(["2025-01-01T00:26:00Z", "2025-01-01T00:27:00Z"]),
            "amount": [1.0, 2.0],
        }
    )
    with Client(server.url) as client:
        first = client.push("txns", frame.iloc[:1])
        second = client.push("txns", frame.iloc[1:].to_dict("records"))
    assert (first.events, second.events) == (1, 1)
    after = served(server)
    assert after["count_1h"] == [before["count_1h"][0] + 2, before["count_1h"][1]]
    assert after["spend_1d"] == [before["spend_1d"][0] + 3.0, before["spend_1d"][1]]
    assert offline(server) == after
