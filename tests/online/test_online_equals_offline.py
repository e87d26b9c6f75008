"""The online path and the training-set path give the same values and statuses, on every backend:
``get_online_features(request_time=T)`` after ``materialize(end=T)`` equals ``get_training_set``
with spine time T, on a hand-made repo and on random source tables made by hypothesis."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStatus, FeatureStore
from featurestore.serving._response import OnlineResponse

from .conftest import (
    ALL_FEATURES,
    BACKENDS,
    PAIR_FEATURES,
    USER_FEATURES,
    Row,
    drop_prefix,
    online_store_yaml,
    unique_prefix,
    write_online_repo,
    write_sources,
)

D = dt.datetime
T = D(2024, 3, 1)
TTL = dt.timedelta(days=10)
US = dt.timedelta(microseconds=1)
SIGNUP = D(2023, 1, 1)


def user(uid: int, at: dt.datetime, created: dt.datetime | None = None, **values: Any) -> Row:
    base = {"signup_at": SIGNUP, "country": "FR", "age": 30, "score": 1.0}
    return {"user_id": uid, "updated_at": at, "created": created, **base, **values}


def pair(uid: int, merchant: str, at: dt.datetime, **values: Any) -> Row:
    return {"user_id": uid, "merchant_id": merchant, "ts": at, **values}


USERS = [
    user(1, D(2024, 2, 20), country="FR", age=30, score=1.5),
    user(1, D(2024, 2, 25), country="FR", age=31, score=2.5),
    # three rows tied on event time: the latest created wins, a null created loses
    user(2, D(2024, 2, 26), D(2024, 2, 26, 11), country="CA", age=41, score=0.2),
    user(2, D(2024, 2, 26), D(2024, 2, 26, 10), country="US", age=40, score=0.1),
    user(2, D(2024, 2, 26), None, country="DE", age=42, score=0.3),
    user(3, D(2024, 1, 1), country="GB", age=50, score=3.0),  # older than the ttl
    user(4, D(2024, 2, 27), country=None, age=200, score=None),  # default; out of bounds
    user(5, D(2024, 3, 5), country="ES", age=20),  # only after T
    user(7, D(2024, 2, 28), signup_at=None, country="IT", age=0, score=-1.0),  # amount / 0
    user(8, T - TTL, country="PT", age=60, score=0.25),  # exactly at the ttl edge
    user(9, T - TTL - US, country="NL", age=61, score=0.5),  # one microsecond too old
    user(10, T, country="BE", age=62, score=1 / 3),  # exactly at T
]
PAIRS = [
    pair(1, "m1", D(2024, 2, 1), n_txn=3, avg_amt=10.0),
    pair(1, "m1", D(2024, 2, 28), n_txn=5, avg_amt=12.5),
    pair(1, "m2", D(2024, 2, 10), n_txn=None, avg_amt=-1.0),  # default; out of bounds
    pair(2, "m1", D(2024, 3, 2), n_txn=1, avg_amt=1.0),  # only after T
    pair(3, "a|b", D(2024, 2, 10), n_txn=7, avg_amt=0.1),  # separators in a key
    pair(3, "a", D(2024, 2, 10), n_txn=8, avg_amt=0.2),
    pair(3, "x\\", D(2024, 2, 10), n_txn=9, avg_amt=0.1 + 0.2),
]
# user 6 has no row at all
ENTITIES = {
    "user_id": [1, 1, 2, 3, 3, 3, 4, 5, 6, 7, 8, 9, 10, 1],
    "merchant_id": [
        "m1",
        "m2",
        "m1",
        "a|b",
        "a",
        "x\\",
        "m1",
        "m1",
        "m1",
        "m1",
        "a",
        "m1",
        "b",
        "m1",
    ],
}
AMOUNTS = [10.0, 10.0, 82.0, 1.0, 2.0, 3.0, 5.0, 7.0, 9.0, 11.0, -6.0, 13.0, 31.0, 10.0]

P, NF, ST, DF, IV = (
    FeatureStatus.PRESENT,
    FeatureStatus.NOT_FOUND,
    FeatureStatus.STALE,
    FeatureStatus.DEFAULTED,
    FeatureStatus.INVALID,
)
# The statuses the contract (DESIGN.md section 3) gives each entity row of ENTITIES at T.
EXPECTED_STATUSES = {
    "country": [P, P, P, ST, ST, ST, DF, DF, DF, P, P, ST, P, P],
    "age": [P, P, P, ST, ST, ST, IV, NF, NF, P, P, ST, P, P],
    "n_txn": [P, DF, DF, P, P, P, DF, DF, DF, DF, DF, DF, DF, P],
    "avg_amt": [P, IV, NF, P, P, P, NF, NF, NF, NF, NF, NF, NF, P],
    "amount_per_age": [P, P, P, P, P, P, P, P, P, IV, IV, P, P, P],
}
EXPECTED_VALUES = {
    "country": ["FR", "FR", "CA", *["unknown"] * 6, "IT", "PT", "unknown", "BE", "FR"],
    "age": [31, 31, 41, None, None, None, None, None, None, 0, 60, None, 62, 31],
    "n_txn": [5, 0, 0, 7, 8, 9, 0, 0, 0, 0, 0, 0, 0, 5],
    "avg_amt": [12.5, None, None, 0.1, 0.2, 0.1 + 0.2, *[None] * 7, 12.5],
}


def spine_at(entities: dict[str, list[Any]], amounts: list[float], at: dt.datetime) -> pl.DataFrame:
    return pl.DataFrame(
        {**entities, "amount": amounts, "event_timestamp": [at] * len(amounts)},
        schema_overrides={"event_timestamp": pl.Datetime("us"), "amount": pl.Float64},
    )


def offline_statuses(
    store: FeatureStore,
    entities: dict[str, list[Any]],
    amounts: list[float],
    at: dt.datetime,
    features: list[str],
) -> dict[str, list[str]]:
    """Per-row statuses of the training-set path: one single-row spine per entity row."""
    out: dict[str, list[str]] = {f.split(":")[1]: [] for f in features}
    for i, amount in enumerate(amounts):
        one = {k: [v[i]] for k, v in entities.items()}
        ts = store.get_training_set(spine_at(one, [amount], at), features=features)
        for feature in ts.metadata.features:
            [(status, count)] = feature.statuses.items()
            assert count == 1
            out[feature.column].append(status)
    return out


def assert_same(resp: OnlineResponse, frame: pl.DataFrame, columns: list[str]) -> None:
    """Value for value equality (floats bit for bit) between the two paths."""
    online = resp.to_polars()
    assert online.columns[: len(resp.entities)] == list(resp.entities)
    for column in columns:
        assert online.schema[column] == frame.schema[column], column
        assert resp.values[column] == frame[column].to_list(), column


def test_fixed_repo_online_equals_training_set(make_store: Any, backend: str) -> None:
    store = make_store(users=USERS, pairs=PAIRS)
    store.materialize(end=T, force=True)  # users 4 and 1|m2 break bounds on purpose
    resp = store.get_online_features(
        features=ALL_FEATURES,
        entities=ENTITIES,
        request_data={"amount": AMOUNTS},
        request_time=T,
    )
    ts = store.get_training_set(spine_at(ENTITIES, AMOUNTS, T), features=ALL_FEATURES)
    columns = [f.split(":")[1] for f in ALL_FEATURES]
    assert_same(resp, ts.to_polars(), columns)
    assert resp.fingerprints == ts.metadata.fingerprints()
    assert resp.to_dict()["user_id"] == ENTITIES["user_id"]

    online_statuses = {c: [s.value for s in resp.statuses[c]] for c in columns}
    assert online_statuses == offline_statuses(store, ENTITIES, AMOUNTS, T, ALL_FEATURES)
    for column, expected in EXPECTED_STATUSES.items():
        assert resp.statuses[column] == expected, column
    for column, expected in EXPECTED_VALUES.items():
        assert resp.values[column] == expected, column
    assert resp.values["amount_per_age"][0] == 10.0 / 31


def test_fixed_repo_with_a_service_and_full_names(make_store: Any, backend: str) -> None:
    store = make_store(users=USERS, pairs=PAIRS)
    store.materialize(end=T, force=True)
    resp = store.get_online_features(
        feature_service="risk_model",
        entities=ENTITIES,
        request_data={"amount": AMOUNTS},
        full_feature_names=True,
        request_time=T.replace(tzinfo=dt.UTC),
    )
    ts = store.get_training_set(
        spine_at(ENTITIES, AMOUNTS, T), feature_service="risk_model", full_feature_names=True
    )
    columns = [r.replace(":", "__") for r in ALL_FEATURES]
    assert list(resp.values) == columns
    assert_same(resp, ts.to_polars(), columns)
    counts = {c: dict(Counter(s.value for s in resp.statuses[c])) for c in columns}
    assert counts == {f.column: f.statuses for f in ts.metadata.features}


def test_composite_key_view_alone(make_store: Any, backend: str) -> None:
    store = make_store(users=USERS, pairs=PAIRS)
    store.materialize(end=T, views=["user_merchant"], force=True)
    assert store.online.count("user_merchant") == 5  # 2|m1 has rows only after T
    entities = {"user_id": [3, 3, 3, 1, 1, 2], "merchant_id": ["a", "x\\", "a|b", "m1", "m2", "a"]}
    resp = store.get_online_features(features=PAIR_FEATURES, entities=entities, request_time=T)
    spine = pl.DataFrame({**entities, "event_timestamp": [T] * 6})
    ts = store.get_training_set(spine, features=PAIR_FEATURES)
    assert_same(resp, ts.to_polars(), ["n_txn", "avg_amt"])
    assert resp.values["n_txn"] == [8, 9, 7, 5, 0, 0]
    assert resp.entities == entities


# Random source tables and request times.

BASE = D(2024, 2, 10)
STEP = dt.timedelta(hours=12)
grid = st.builds(
    lambda k, j: BASE + k * STEP + j * US, st.integers(0, 40), st.sampled_from([0, 0, 0, 1, -1])
)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy, strategy, strategy)


user_rows = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from([1, 2, 3, 4, 5, None]),
        "updated_at": st.one_of(grid, grid, grid, grid, st.none()),
        "created": maybe(grid),
        "signup_at": maybe(st.sampled_from([SIGNUP, D(2024, 2, 1, 7, 30)])),
        "country": maybe(st.sampled_from(["FR", "US", "é|x"])),
        "age": maybe(st.sampled_from([-1, 0, 7, 30, 130, 131])),
        "score": maybe(st.sampled_from([0.1, 1 / 3, -2.5, 0.0, 1e300, float("nan"), float("inf")])),
    }
)
pair_rows = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from([1, 2, 3]),
        "merchant_id": st.sampled_from(["m1", "a|b", "a", "b\\"]),
        "ts": grid,
        "n_txn": maybe(st.sampled_from([-1, 0, 5])),
        "avg_amt": maybe(st.sampled_from([-1.0, 0.0, 2.5, 0.1 + 0.2])),
    }
)


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Source rows, with rows tied in keys and all timestamps (true duplicates, where either
    may win) dropped; and a request time on the grid or at a ttl edge of a drawn row."""
    users = draw(
        st.lists(
            user_rows,
            max_size=14,
            unique_by=lambda r: (r["user_id"], r["updated_at"], r["created"]),
        )
    )
    pairs = draw(
        st.lists(
            pair_rows, max_size=10, unique_by=lambda r: (r["user_id"], r["merchant_id"], r["ts"])
        )
    )
    times = [r["updated_at"] for r in users if r["updated_at"] is not None]
    edges = [t + d for t in times for d in (dt.timedelta(0), TTL, TTL + US, TTL - US)]
    at = draw(st.sampled_from(edges) if edges and draw(st.booleans()) else grid)
    amounts = draw(st.lists(st.sampled_from([1.0, 0.0, -3.0, 12.5]), min_size=1, max_size=1))
    return {"users": users, "pairs": pairs, "at": at, "amount": amounts[0]}


@pytest.fixture(scope="module", params=BACKENDS)
def random_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FeatureStore]:
    """The online test repo, applied once per backend; each example rewrites its sources."""
    prefix = unique_prefix()
    client = request.getfixturevalue("redis_server") if request.param == "redis" else None
    root = write_online_repo(
        tmp_path_factory.mktemp("random") / "repo",
        online_store_yaml(request.param, prefix),
        users=[user(1, BASE)],
        pairs=[pair(1, "m1", BASE, n_txn=1, avg_amt=1.0)],
    )
    store = FeatureStore(Path(root))
    store.apply()
    yield store
    store.close()
    if client is not None:
        drop_prefix(client, prefix)


RANDOM_ENTITIES = {
    "user_id": [u for u in (1, 2, 3, 4, 5, 6) for _ in range(4)],
    "merchant_id": ["m1", "a|b", "a", "zz"] * 6,
}


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(scenario=scenarios())
def test_random_tables_online_equals_training_set(
    random_store: FeatureStore, scenario: dict[str, Any]
) -> None:
    check_random_scenario(random_store, scenario)


def check_random_scenario(store: FeatureStore, scenario: dict[str, Any]) -> None:
    """Write the scenario's sources, materialize at its time and assert the online response
    there equals the training set at that time, values and status counts."""
    at = scenario["at"]
    write_sources(store.repo.root, scenario["users"], scenario["pairs"])
    store.materialize(end=at, force=True)
    n = len(RANDOM_ENTITIES["user_id"])
    amounts = [scenario["amount"]] * n
    resp = store.get_online_features(
        features=ALL_FEATURES,
        entities=RANDOM_ENTITIES,
        request_data={"amount": amounts},
        request_time=at,
    )
    ts = store.get_training_set(spine_at(RANDOM_ENTITIES, amounts, at), features=ALL_FEATURES)
    columns = [f.split(":")[1] for f in ALL_FEATURES]
    assert_same(resp, ts.to_polars(), columns)
    counts = {c: dict(Counter(s.value for s in resp.statuses[c])) for c in columns}
    assert counts == {f.column: f.statuses for f in ts.metadata.features}
    assert set(USER_FEATURES) | set(PAIR_FEATURES) <= set(resp.refs.values())
