"""Malformed online requests fail with OnlineRequestError or FeatureReferenceError messages that
name what is wrong; a request for many entities reads the store once per view."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from featurestore import FeatureReferenceError, FeatureStore, FeatureStoreError
from featurestore.errors import OnlineRequestError

from .conftest import ALL_FEATURES, online_store_yaml, write_online_repo

D = dt.datetime
T = D(2024, 3, 1)


def users_rows() -> list[dict[str, Any]]:
    return [
        {"user_id": u, "updated_at": D(2024, 2, 28), "country": "FR", "age": 20 + u, "score": 0.5}
        for u in range(1, 6)
    ]


def pairs_rows() -> list[dict[str, Any]]:
    return [
        {"user_id": u, "merchant_id": f"m{u}", "ts": D(2024, 2, 28), "n_txn": u, "avg_amt": 1.0}
        for u in range(1, 6)
    ]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """The online test repo on SQLite, materialized at T (the checks run before any read)."""
    root = write_online_repo(
        tmp_path_factory.mktemp("errors") / "repo",
        online_store_yaml("sqlite", ""),
        users=users_rows(),
        pairs=pairs_rows(),
    )
    fs = FeatureStore(root)
    fs.apply()
    fs.materialize(end=T)
    yield fs
    fs.close()


def get(store: FeatureStore, **kwargs: Any) -> Any:
    kwargs.setdefault("request_time", T)
    return store.get_online_features(**kwargs)


def test_a_valid_request_works(store: FeatureStore) -> None:
    resp = get(
        store,
        features=ALL_FEATURES,
        entities={"user_id": [1, 2], "merchant_id": ["m1", "m9"]},
        request_data={"amount": [42.0, 1]},  # an int is a valid float
    )
    assert resp.values["age"] == [21, 22]
    assert resp.values["n_txn"] == [1, 0]
    assert resp.values["amount_per_age"] == [2.0, 1 / 22]


def test_unknown_feature_suggests_the_closest_name(store: FeatureStore) -> None:
    with pytest.raises(FeatureReferenceError) as info:
        get(store, features=["user_profile:agee"], entities={"user_id": [1]})
    message = str(info.value)
    assert "'user_profile:agee' is not defined" in message
    assert "Did you mean 'user_profile:age'?" in message
    assert "country, age, score, tenure_days" in message


def test_unknown_view_lists_the_known_views(store: FeatureStore) -> None:
    with pytest.raises(FeatureReferenceError) as info:
        get(store, features=["user_profiles:age"], entities={"user_id": [1]})
    message = str(info.value)
    assert "'user_profiles' is not defined" in message
    assert "txn_risk, user_merchant, user_profile" in message


def test_malformed_references_and_services(store: FeatureStore) -> None:
    with pytest.raises(FeatureReferenceError, match=r"'user_profile\.age' must look like"):
        get(store, features=["user_profile.age"], entities={"user_id": [1]})
    with pytest.raises(FeatureReferenceError, match="no features requested"):
        get(store, features=[], entities={"user_id": [1]})
    with pytest.raises(FeatureReferenceError, match="exactly one of features"):
        get(store, entities={"user_id": [1]})
    with pytest.raises(FeatureReferenceError, match="Known services: risk_model"):
        get(store, feature_service="risk", entities={"user_id": [1]})


def test_missing_join_key_names_the_key_the_view_and_what_was_given(
    store: FeatureStore,
) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(store, features=["user_profile:age"], entities={"userid": [1]})
    message = str(info.value)
    assert "join key 'user_id'" in message
    assert "'user_profile'" in message
    assert "['userid']" in message
    with pytest.raises(OnlineRequestError, match=r"'merchant_id'.*'user_merchant'"):
        get(store, features=["user_merchant:n_txn"], entities={"user_id": [1]})
    with pytest.raises(OnlineRequestError, match="found keys: none"):
        get(store, features=["user_profile:age"])


@pytest.mark.parametrize(
    ("features", "entities", "expected"),
    [
        (
            ["user_profile:age"],
            {"user_id": ["1"]},
            "'user_id' of view 'user_profile' must be an integer, found '1' (str)",
        ),
        (["user_profile:age"], {"user_id": [1, True]}, "must be an integer, found True (bool)"),
        (["user_profile:age"], {"user_id": [1.0]}, "must be an integer, found 1.0 (float)"),
        (
            ["user_merchant:n_txn"],
            {"user_id": [1], "merchant_id": [1]},
            "'merchant_id' of view 'user_merchant' must be a string, found 1 (int)",
        ),
        (
            ["user_profile:age"],
            {"user_id": 1},
            "entities['user_id'] must be a list of values, found int",
        ),
        (
            ["user_profile:age"],
            {"user_id": "12"},
            "entities['user_id'] must be a list of values, found str",
        ),
    ],
    ids=["string-for-int", "bool-for-int", "float-for-int", "int-for-string", "scalar", "string"],
)
def test_wrong_key_types(
    store: FeatureStore, features: list[str], entities: dict[str, Any], expected: str
) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(store, features=features, entities=entities)
    assert expected in str(info.value)


def test_null_keys_are_not_found_rather_than_errors(store: FeatureStore) -> None:
    resp = get(store, features=["user_profile:age"], entities={"user_id": [None, 1]})
    assert resp.values["age"] == [None, 21]
    assert [s.value for s in resp.statuses["age"]] == ["NOT_FOUND", "PRESENT"]


def test_request_data_missing_a_column(store: FeatureStore) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(store, features=["txn_risk:amount_per_age"], entities={"user_id": [1]})
    message = str(info.value)
    assert "lacks column 'amount'" in message
    assert "['txn_risk']" in message
    with pytest.raises(OnlineRequestError, match=r"found: \['amt'\]"):
        get(
            store,
            features=["txn_risk:amount_per_age"],
            entities={"user_id": [1]},
            request_data={"amt": [1.0]},
        )


def test_request_data_of_the_wrong_length(store: FeatureStore) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(
            store,
            features=["txn_risk:amount_per_age"],
            entities={"user_id": [1, 2]},
            request_data={"amount": [1.0, 2.0, 3.0]},
        )
    message = str(info.value)
    assert "equal lengths" in message
    assert "entities['user_id'] has 2" in message
    assert "request_data['amount'] has 3" in message


@pytest.mark.parametrize("bad", [["2.5"], [b"1"], [dt.date(2024, 1, 1)]], ids=repr)
def test_request_data_of_the_wrong_type(store: FeatureStore, bad: Sequence[Any]) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(
            store,
            features=["txn_risk:amount_per_age"],
            entities={"user_id": [1]},
            request_data={"amount": bad},
        )
    message = str(info.value)
    assert "request_data['amount'] must hold Float64 values" in message
    assert "'txn_risk'" in message


def test_request_data_bool_for_a_float_column(store: FeatureStore) -> None:
    with pytest.raises(OnlineRequestError, match="amount"):
        get(
            store,
            features=["txn_risk:amount_per_age"],
            entities={"user_id": [1]},
            request_data={"amount": [True]},
        )


def test_request_data_scalar_instead_of_a_list(store: FeatureStore) -> None:
    with pytest.raises(OnlineRequestError, match="request_data\\['amount'\\] must be a list"):
        get(
            store,
            features=["txn_risk:amount_per_age"],
            entities={"user_id": [1]},
            request_data={"amount": 3.0},
        )


def test_entity_lists_of_unequal_lengths(store: FeatureStore) -> None:
    with pytest.raises(OnlineRequestError) as info:
        get(
            store,
            features=["user_merchant:n_txn"],
            entities={"user_id": [1, 2, 3], "merchant_id": ["m1"]},
        )
    message = str(info.value)
    assert "equal lengths" in message
    assert "entities['user_id'] has 3" in message
    assert "entities['merchant_id'] has 1" in message


def test_errors_are_raised_before_the_store_is_read(
    store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_read(view: str, keys: Sequence[str]) -> list[bytes | None]:
        raise AssertionError("the store was read for a malformed request")

    monkeypatch.setattr(store.online, "read", no_read)
    with pytest.raises(OnlineRequestError):
        get(
            store,
            features=ALL_FEATURES,
            entities={"user_id": [1, 2], "merchant_id": ["m1", "m2"]},
            request_data={"amount": [1.0]},
        )
    assert issubclass(OnlineRequestError, FeatureStoreError)
    assert issubclass(OnlineRequestError, ValueError)


def test_many_entities_read_the_store_once_per_view(
    make_store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fs = make_store(users=users_rows(), pairs=pairs_rows())
    fs.materialize(end=T)
    calls: list[tuple[str, int]] = []
    real_read = fs.online.read

    def spy(view: str, keys: Sequence[str]) -> list[bytes | None]:
        calls.append((view, len(keys)))
        return real_read(view, keys)

    monkeypatch.setattr(fs.online, "read", spy)
    n = 3_000
    users = [i % 7 for i in range(n)]
    resp = fs.get_online_features(
        feature_service="risk_model",
        entities={"user_id": users, "merchant_id": [f"m{u}" for u in users]},
        request_data={"amount": [1.0] * n},
        request_time=T,
    )
    assert sorted(calls) == [("user_merchant", n), ("user_profile", n)]
    assert resp.row_count == n
    assert resp.values["age"][:7] == [None, 21, 22, 23, 24, 25, None]
    assert resp.values["n_txn"][:7] == [0, 1, 2, 3, 4, 5, 0]
