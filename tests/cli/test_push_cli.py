"""``featurestore push SOURCE --file``: events from Parquet, CSV or JSON lines reach the
source's files and the online aggregation state, as store.push does."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from conftest import USER, definitions, source, view, write_repo

from featurestore import FeatureStore
from tests.cli.helpers import run

T0 = dt.datetime(2025, 1, 1, 12, tzinfo=dt.UTC)
SCHEMA = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64()}
DEFINITIONS = definitions(
    USER,
    f"txns = {source('txns', 'data/txns/')}",
    view(
        "user_txn",
        "txns",
        aggregations=['Count(window=timedelta(hours=1), name="count_1h")'],
    ),
)


def events(*minutes: int) -> pl.DataFrame:
    times = [T0 + dt.timedelta(minutes=m) for m in minutes]
    return pl.DataFrame(
        {"user_id": [1] * len(times), "ts": times, "amount": [1.0] * len(times)}, schema=SCHEMA
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = write_repo(
        tmp_path / "repo", DEFINITIONS, data={"data/txns/part-0.parquet": events(0, 1)}
    )
    store = FeatureStore(root)
    try:
        store.apply()
        store.materialize(end=T0 + dt.timedelta(minutes=2))
    finally:
        store.close()
    return root


def count_1h(root: Path) -> object:
    store = FeatureStore(root)
    try:
        response = store.get_online_features(
            ["user_txn:count_1h"],
            entities={"user_id": [1]},
            request_time=T0 + dt.timedelta(minutes=30),
        )
        return response.to_dict()["count_1h"][0]
    finally:
        store.close()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_push_a_file_of_events(repo: Path, tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"new{suffix}"
    frame = events(5, 6, 7)
    {".csv": frame.write_csv, ".jsonl": frame.write_ndjson, ".parquet": frame.write_parquet}[
        suffix
    ](path)
    assert count_1h(repo) == 2
    result = run("push", "txns", "--file", str(path), "--json", cwd=repo)
    assert result.returncode == 0, result.stderr
    done = json.loads(result.stdout)
    assert (done["source"], done["events"], done["entities"]) == ("txns", 3, {"user_txn": 1})
    assert done["online_error"] is None
    written = Path(done["offline_file"])
    assert written.is_file() and written.parent == (repo / "data" / "txns").resolve()
    assert count_1h(repo) == 5
    assert pl.read_parquet(repo / "data" / "txns").height == 5


def test_push_refuses_a_file_it_cannot_read(repo: Path, tmp_path: Path) -> None:
    odd = tmp_path / "new.xlsx"
    odd.write_text("x")
    result = run("push", "txns", "--file", str(odd), cwd=repo)
    assert result.returncode == 1
    assert "give a .parquet, .csv or .jsonl file" in " ".join(result.stderr.split())
    assert count_1h(repo) == 2
