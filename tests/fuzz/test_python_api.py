"""Fuzzing the Python API: definitions of every kind with random and invalid arguments,
training sets of random spines, online requests of random shapes and types, and pushes of
random rows. Every failure must be a FeatureStoreError subclass, never a raw exception, and
nothing stored for the known entities may change. A bounded budget here;
``python benchmarks/fuzz.py`` runs the same fuzzers for longer."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from polars.testing import assert_frame_equal

from featurestore import FeatureStore

from .checks import check_definition, check_online, check_push, check_training
from .repo import Snapshot, build_repo, snapshot
from .strategies import Call, definitions, online_args, push_args, training_args

pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")

# examples per fuzzer: the whole module runs in about 15 s; CI draws the same examples on
# every run (new ones are the benchmark's job), elsewhere each run draws new ones
FUZZ = settings(
    max_examples=int(os.environ.get("FEATURESTORE_FUZZ_EXAMPLES", "300")),
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
    database=None if os.environ.get("CI") == "true" else settings.default.database,
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FeatureStore, Snapshot]]:
    """The fuzzing repo (applied, materialized), a store over it, and what the known entities
    get before any fuzzing."""
    root = build_repo(tmp_path_factory.mktemp("fuzz") / "repo")
    store = FeatureStore(root)
    yield store, snapshot(store)
    store.close()


@pytest.fixture(scope="module")
def store(fuzzed: tuple[FeatureStore, Snapshot]) -> FeatureStore:
    return fuzzed[0]


@pytest.fixture(scope="module")
def spines(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder for spines written to files."""
    return tmp_path_factory.mktemp("spines")


@FUZZ
@given(call=definitions())
def test_definitions_raise_only_definition_errors(call: Call) -> None:
    check_definition(call)


@FUZZ
@given(kwargs=training_args())
def test_training_sets_of_random_spines(
    store: FeatureStore, spines: Path, kwargs: dict[str, Any]
) -> None:
    check_training(store, kwargs, spines)


@FUZZ
@given(kwargs=online_args())
def test_online_requests_of_random_shapes(store: FeatureStore, kwargs: dict[str, Any]) -> None:
    check_online(store, kwargs)


@FUZZ
@given(kwargs=push_args())
def test_pushes_of_random_rows(store: FeatureStore, kwargs: dict[str, Any]) -> None:
    check_push(store, kwargs)


def test_nothing_stored_was_lost(fuzzed: tuple[FeatureStore, Snapshot]) -> None:
    """After the fuzzers (this test runs last in the module), the known entities get the same
    online values and statuses and the same training set, from a store opened afresh too."""
    store, (values, statuses, training) = fuzzed
    fresh = FeatureStore(store.repo.root)
    try:
        for current in (store, fresh):
            now_values, now_statuses, now_training = snapshot(current)
            assert now_values == values
            assert now_statuses == statuses
            assert_frame_equal(now_training, training)
    finally:
        fresh.close()
