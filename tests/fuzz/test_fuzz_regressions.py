"""Raw exceptions (not FeatureStoreError) the fuzzers found, each kept as a regression test with
its smallest known input: every one now comes out as a FeatureStoreError subclass. A new one is
added here marked ``xfail(strict=True, raises=RawError)`` with an entry in ``KNOWN_BUGS``
(tests/fuzz/checks.py), which the fuzzers skip until it is fixed."""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStore, OnlineRequestError

from .checks import KNOWN_BUGS, check_online, check_push, check_training
from .repo import build_repo, known_spine


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    store = FeatureStore(build_repo(tmp_path_factory.mktemp("known") / "repo"))
    yield store
    store.close()


def test_every_known_bug_has_its_test() -> None:
    here = Path(__file__).read_text()
    for bug in KNOWN_BUGS:
        name = bug.test.split("::")[-1]
        assert f"def {name}(" in here, bug


# --- get_training_set (featurestore/_selection.py, _repo.py, offline/_engine.py) -------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"features": 1.0},
        {"features": True},
        {"features": ["user_profile:age"], "full_feature_names": pl.col("x")},
    ],
    ids=["float", "bool", "expr-flag"],
)
def test_training_features_not_a_list(store: FeatureStore, kwargs: dict[str, Any]) -> None:
    check_training(store, {"spine": known_spine(), **kwargs}, Path("."), strict=True)


def test_training_service_unhashable(store: FeatureStore) -> None:
    check_training(store, {"spine": known_spine(), "feature_service": [0]}, Path("."), strict=True)


@pytest.mark.parametrize("what", ["directory", "empty file"])
def test_spine_path_not_parquet(store: FeatureStore, tmp_path: Path, what: str) -> None:
    path = tmp_path
    if what == "empty file":
        path = tmp_path / "spine.parquet"
        path.write_bytes(b"")
    check_training(store, {"spine": path, "features": ["user_profile:age"]}, tmp_path, strict=True)


# --- get_online_features (featurestore/serving/_retrieval/) ----------------------------------

ENTITIES = {"user_id": [700001]}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"features": 0},
        {"feature_service": []},
        {"features": ["user_profile:age"], "full_feature_names": pl.col("x")},
    ],
    ids=["int-features", "list-service", "expr-flag"],
)
def test_online_features_wrong(store: FeatureStore, kwargs: dict[str, Any]) -> None:
    check_online(store, {"entities": ENTITIES, **kwargs}, strict=True)


def test_online_entities_frame(store: FeatureStore) -> None:
    entities = pl.DataFrame({"user_id": [700001]})
    check_online(store, {"features": ["user_profile:age"], "entities": entities}, strict=True)


def test_online_entities_str(store: FeatureStore) -> None:
    check_online(store, {"features": ["user_profile:age"], "entities": "user_id"}, strict=True)


@pytest.mark.parametrize("field", ["entities", "request_data"])
def test_online_columns_named_by_a_non_string(store: FeatureStore, field: str) -> None:
    """A key that is no column name (here 0, beside a missing join key) is a typed error."""
    given = {"merchant_id": None, 0: [1]}
    kwargs = {"entities": given} if field == "entities" else {"entities": ENTITIES, field: given}
    check_online(store, {"features": ["user_profile:age"], **kwargs}, strict=True)
    with pytest.raises(OnlineRequestError, match="key 0 \\(int\\)"):
        store.get_online_features(["user_profile:age"], **kwargs)


# --- push (featurestore/online/_push.py, _store.py, sources/_appends.py) ---------------------


def test_push_source_unhashable(store: FeatureStore) -> None:
    check_push(store, {"source": [], "rows": []}, strict=True)


def test_push_mode_expression(store: FeatureStore) -> None:
    check_push(store, {"source": "txns", "rows": [], "to": pl.col("x")}, strict=True)


@pytest.mark.parametrize(
    "rows",
    [
        [{"user_id": 5, "amount": decimal.Decimal("Infinity")}],
        {"user_id": [5], "amount": [decimal.Decimal("NaN")]},
    ],
    ids=["records", "columns"],
)
def test_push_decimal_infinity(store: FeatureStore, rows: Any) -> None:
    check_push(store, {"source": "txns", "rows": rows}, strict=True)


def test_push_key_time_overflow(store: FeatureStore) -> None:
    late = dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    check_push(store, {"source": "txns", "rows": {"user_id": [late]}}, strict=True)
