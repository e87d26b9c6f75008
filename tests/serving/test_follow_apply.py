"""A FeatureStore serving online features follows apply: an apply made by another FeatureStore
on the same repo is served within ``serving.reload_interval_seconds`` or at once through
``reload()``, with the new code's on-demand values and the new fingerprints (before the switch,
the old ones), also by a store that started serving only after that apply; code edited but not
applied, or broken, keeps the last consistent version served with a problem naming the feature
and saying to apply or restore; a request in flight finishes on the version it started with; a
changed plain feature keeps its old fingerprint until materialized; an interval of 0 never
switches on its own; the store's own apply applies the code on disk and serves it at once
(without reading the files again when they did not change), and a later edit is reported;
training sets after a switch use the new code."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest
from conftest import USER, source, view, write_repo
from conftest import definitions as assemble

from featurestore import FeatureStore
from featurestore._registry import RegistryState, build_state
from featurestore._repo import load_repo
from featurestore.errors import RegistryError, RepoError
from featurestore.serving import _versions as versions
from featurestore.serving._response import OnlineResponse

GATE_MODULE = "follow_apply_gate"  # imported by the on-demand function at call time

# the on-demand view and the service; FACTOR is replaced by the factor of the version
ON_DEMAND = """
txn = RequestSource("txn", schema={"amount": pl.Float64})


@on_demand_feature_view(sources=[txn, "user_profile:age"], schema={"scaled": pl.Float64})
def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
    import follow_apply_gate

    follow_apply_gate.pause(df.height)
    return df.select((pl.col("amount") * FACTOR).cast(pl.Float64).alias("scaled"))


risk_model = FeatureService(
    "risk_model", features=["user_profile:age", "user_profile:age_plus", "txn_risk:scaled"]
)
"""

SCALED = "txn_risk:scaled"
AGE_PLUS = "user_profile:age_plus"
USERS = [1, 2]
AGES = [30, 45]
AMOUNTS = [10.0, 4.0]
FAST = "serving: {reload_interval_seconds: 0.1}\n"
NEVER = "serving: {reload_interval_seconds: 0}\n"
GUARD = 30.0  # seconds a wait may take before the test fails instead of hanging


def definitions(factor: int, plus: int = 1) -> str:
    """The repo's code: ``txn_risk:scaled`` is amount * factor, ``age_plus`` is age + plus."""
    return assemble(
        USER,
        view(
            "user_profile",
            source("users", "data/users.parquet", "updated_at"),
            owner='"risk-team"',
            features=[
                'Feature("age", pl.Int64)',
                f'Feature("age_plus", pl.Int64, expr=pl.col("age") + {plus})',
            ],
        ),
        ON_DEMAND.replace("FACTOR", str(factor)),
        doc="Definitions of the follow-apply test repo.",
    )


def users() -> pl.DataFrame:
    return pl.DataFrame(
        {"user_id": USERS, "updated_at": [dt.datetime(2024, 1, 1)] * 2, "age": AGES},
        schema_overrides={"updated_at": pl.Datetime("us")},
    )


class Gate:
    """Holds the first on-demand run with rows, once armed, until released."""

    def __init__(self) -> None:
        self.armed = False
        self.entered = threading.Event()
        self.release = threading.Event()

    def pause(self, rows: int) -> None:
        if self.armed and rows:
            self.armed = False
            self.entered.set()
            assert self.release.wait(10), "the gate was never released"


@pytest.fixture(autouse=True)
def gate(monkeypatch: pytest.MonkeyPatch) -> Gate:
    """The gate the repo's on-demand function calls (a module it imports by name)."""
    held = Gate()
    module = types.ModuleType(GATE_MODULE)
    module.pause = held.pause  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, GATE_MODULE, module)
    return held


@pytest.fixture
def make_served(tmp_path: Path) -> Iterator[Callable[[str], tuple[FeatureStore, RegistryState]]]:
    """A factory: the repo written with ``config``, applied and materialized (factor 2, plus
    1), and a FeatureStore that already serves it (closed afterwards)."""
    stores: list[FeatureStore] = []

    def make(config: str) -> tuple[FeatureStore, RegistryState]:
        root = write_repo(
            tmp_path / "repo",
            definitions(2),
            config=f"project: follow\n{config}",
            data={"data/users.parquet": users()},
        )
        applied = apply_code(root, None, materialize=True)
        store = FeatureStore(root)
        stores.append(store)
        assert_old(store, applied)  # starts serving
        return store, applied

    yield make
    for store in stores:
        store.close()


def apply_code(root: Path, code: str | None, *, materialize: bool = False) -> RegistryState:
    """Write ``code`` (None: keep the code on disk) and apply it with another FeatureStore,
    as another process would."""
    if code is not None:
        (root / "definitions.py").write_text(code)
    other = FeatureStore(root)
    try:
        other.apply()
        if materialize:
            other.materialize(end=dt.datetime.now(dt.UTC))
        return other.registry.require()
    finally:
        other.close()


def materialize(root: Path) -> None:
    other = FeatureStore(root)
    try:
        other.materialize(end=dt.datetime.now(dt.UTC))
    finally:
        other.close()


def by_service(store: FeatureStore) -> OnlineResponse:
    return store.get_online_features(
        feature_service="risk_model",
        entities={"user_id": USERS},
        request_data={"amount": AMOUNTS},
    )


def by_features(store: FeatureStore) -> OnlineResponse:
    return store.get_online_features(
        features=[SCALED, "user_profile:age"],
        entities={"user_id": USERS},
        request_data={"amount": AMOUNTS},
    )


def fingerprint(state: RegistryState, ref: str) -> str:
    return state.features[ref].fingerprint


def assert_serves(response: OnlineResponse, state: RegistryState, factor: int) -> None:
    """``response`` holds on-demand values of ``factor`` under the fingerprints of ``state``."""
    assert response.values["scaled"] == [a * factor for a in AMOUNTS]
    assert response.values["age"] == AGES
    assert response.fingerprints[SCALED] == fingerprint(state, SCALED)
    assert response.applied_fingerprints[SCALED] == fingerprint(state, SCALED)
    assert response.fingerprints["user_profile:age"] == fingerprint(state, "user_profile:age")


def assert_old(store: FeatureStore, v1: RegistryState) -> None:
    """Both request paths serve version 1 (factor 2)."""
    for response in (by_service(store), by_features(store)):
        assert_serves(response, v1, 2)
    assert by_service(store).values["age_plus"] == [a + 1 for a in AGES]


def assert_new(store: FeatureStore, state: RegistryState, factor: int) -> None:
    for response in (by_service(store), by_features(store)):
        assert_serves(response, state, factor)


def wait_for(condition: Callable[[], bool], timeout: float = GUARD) -> None:
    """Poll ``condition`` until it holds (``timeout``: a guard against hanging, not a claim
    about speed)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


def serves_fingerprint(store: FeatureStore, expected: str) -> bool:
    return by_features(store).fingerprints[SCALED] == expected


def test_follows_an_apply_within_the_interval(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first periodic check that starts after the apply serves it."""
    store, v1 = make_served(FAST)
    assert store.served_registry is not None and store.served_registry.version == 1
    applied = threading.Event()
    first_check_after: list[int] = []  # the version served when that check returned
    checked = threading.Event()
    real_check = versions.VersionWatcher.check

    def check(self: versions.VersionWatcher, force: bool = False) -> versions.ReloadResult:
        after_apply = applied.is_set()
        result = real_check(self, force)
        if after_apply and not checked.is_set():
            first_check_after.append(self.served.applied.version)
            checked.set()
        return result

    monkeypatch.setattr(versions.VersionWatcher, "check", check)
    v2 = apply_code(store.repo.root, definitions(3))
    applied.set()
    assert v2.version == 2
    assert fingerprint(v2, SCALED) != fingerprint(v1, SCALED)
    assert checked.wait(GUARD), "the watcher never checked after the apply"
    assert first_check_after == [2]
    assert serves_fingerprint(store, fingerprint(v2, SCALED))
    assert_new(store, v2, 3)
    assert store.served_registry.version == 2
    assert store.serving_problem is None
    # the next apply is followed too
    v3 = apply_code(store.repo.root, definitions(4))
    wait_for(lambda: serves_fingerprint(store, fingerprint(v3, SCALED)))
    assert_new(store, v3, 4)
    assert store.served_registry.version == 3


def test_reload_switches_at_once_and_an_interval_of_0_never_on_its_own(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    v2 = apply_code(store.repo.root, definitions(3))
    time.sleep(0.5)
    assert_old(store, v1)  # nothing looks for the new registry
    assert store.served_registry is not None and store.served_registry.version == 1
    result = store.reload()
    assert (result.version, result.applied_at) == (2, v2.applied_at)
    assert (result.switched, result.code_matches, result.problem) == (True, True, None)
    assert_new(store, v2, 3)
    assert store.served_registry.version == 2
    again = store.reload()
    assert (again.version, again.switched, again.code_matches) == (2, False, True)


def test_code_edited_but_not_applied_keeps_the_old_version(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    root = store.repo.root
    (root / "definitions.py").write_text(definitions(5))
    result = store.reload()
    assert (result.version, result.switched, result.code_matches) == (1, False, False)
    assert result.problem is not None
    assert "txn_risk:scaled changed" in result.problem
    assert "user_profile:age" not in result.problem  # only what changed is named
    assert "apply the code on disk" in result.problem
    assert "restore the applied code" in result.problem
    assert store.serving_problem == result.problem
    assert_old(store, v1)
    assert store.served_registry is not None and store.served_registry.version == 1
    # nothing changed since: a check finds the same problem
    assert store.reload().problem == result.problem

    v2 = apply_code(root, None)  # the edit is applied
    switched = store.reload()
    assert (switched.version, switched.switched, switched.code_matches) == (2, True, True)
    assert switched.problem is None
    assert store.serving_problem is None
    assert_new(store, v2, 5)


def test_the_watcher_reports_an_unapplied_edit_and_follows_its_apply(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(FAST)
    root = store.repo.root
    (root / "definitions.py").write_text(definitions(5))
    wait_for(lambda: store.serving_problem is not None)
    assert "txn_risk:scaled changed" in (store.serving_problem or "")
    assert_old(store, v1)
    v2 = apply_code(root, None)
    wait_for(lambda: serves_fingerprint(store, fingerprint(v2, SCALED)))
    assert store.serving_problem is None
    assert_new(store, v2, 5)


def test_broken_code_keeps_the_old_version_served(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(FAST)
    path = store.repo.root / "definitions.py"
    good = path.read_text()
    path.write_text(good + "\ndef broken(:\n    pass\n")
    wait_for(lambda: store.serving_problem is not None)  # the watcher survives the error
    problem = store.serving_problem or ""
    assert "definitions.py" in problem and "SyntaxError" in problem
    assert "still serving registry version 1" in problem
    assert_old(store, v1)
    result = store.reload()
    assert (result.version, result.switched, result.code_matches) == (1, False, False)
    assert "SyntaxError" in (result.problem or "")
    assert_old(store, v1)
    path.write_text(good)  # restored
    wait_for(lambda: store.serving_problem is None)
    assert_old(store, v1)
    # and an apply made after the breakage is still followed
    v2 = apply_code(store.repo.root, definitions(3))
    wait_for(lambda: serves_fingerprint(store, fingerprint(v2, SCALED)))
    assert_new(store, v2, 3)


def test_a_request_in_flight_finishes_on_its_version(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]], gate: Gate
) -> None:
    store, v1 = make_served(NEVER)
    out: dict[str, OnlineResponse | BaseException] = {}

    def request() -> None:
        try:
            out["response"] = by_service(store)
        except BaseException as exc:  # reported by the main thread
            out["response"] = exc

    gate.armed = True
    thread = threading.Thread(target=request)
    thread.start()
    try:
        assert gate.entered.wait(5), "the request never reached the on-demand function"
        v2 = apply_code(store.repo.root, definitions(3))
        assert store.reload().switched
        after = by_service(store)  # started after the switch (the gate is disarmed)
    finally:
        gate.release.set()
        thread.join(10)
    assert not thread.is_alive()
    in_flight = out["response"]
    assert isinstance(in_flight, OnlineResponse), in_flight
    assert_serves(in_flight, v1, 2)
    assert in_flight.fingerprints == in_flight.applied_fingerprints
    assert_serves(after, v2, 3)


def test_a_plain_feature_changed_by_apply_keeps_its_old_fingerprint_until_materialized(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    v2 = apply_code(store.repo.root, definitions(2, plus=100))
    assert fingerprint(v2, AGE_PLUS) != fingerprint(v1, AGE_PLUS)
    assert fingerprint(v2, SCALED) == fingerprint(v1, SCALED)
    assert store.reload().switched
    response = by_service(store)
    assert response.values["age_plus"] == [a + 1 for a in AGES]  # the stored values
    assert response.fingerprints[AGE_PLUS] == fingerprint(v1, AGE_PLUS)
    assert response.outdated == {AGE_PLUS: fingerprint(v2, AGE_PLUS)}
    materialize(store.repo.root)
    response = by_service(store)
    assert response.values["age_plus"] == [a + 100 for a in AGES]
    assert response.fingerprints[AGE_PLUS] == fingerprint(v2, AGE_PLUS)
    assert response.outdated == {}


def test_the_stores_own_apply_switches_without_loading_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_repo(
        tmp_path / "repo",
        definitions(2),
        config=f"project: follow\n{NEVER}",
        data={"data/users.parquet": users()},
    )
    v1 = apply_code(root, None, materialize=True)
    (root / "definitions.py").write_text(definitions(3))  # edited, not applied yet
    store = FeatureStore(root)  # loads the edited code
    try:
        with pytest.raises(RegistryError, match="txn_risk:scaled"):
            by_features(store)  # the loaded code is not what was applied
        assert store.serving_problem is not None
        assert store.served_registry is not None and store.served_registry.version == 1

        def no_loading(*args: object, **kwargs: object) -> None:
            raise AssertionError("apply must not load the repo again")

        monkeypatch.setattr(versions, "load_repo", no_loading)
        store.apply()
        assert store.serving_problem is None
        assert store.served_registry.version == 2
        v2 = store.registry.require()
        assert fingerprint(v2, SCALED) != fingerprint(v1, SCALED)
        assert_new(store, v2, 3)
    finally:
        store.close()


def test_training_sets_after_a_switch_use_the_new_definitions(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    spine = pl.DataFrame(
        {
            "user_id": USERS,
            "event_timestamp": [dt.datetime(2024, 6, 1)] * 2,
            "amount": AMOUNTS,
        },
        schema_overrides={"event_timestamp": pl.Datetime("us")},
    )
    refs = [SCALED, AGE_PLUS]
    before = store.get_training_set(spine, features=refs)
    assert before.to_polars()["scaled"].to_list() == [a * 2 for a in AMOUNTS]
    assert before.to_polars()["age_plus"].to_list() == [a + 1 for a in AGES]
    v2 = apply_code(store.repo.root, definitions(3, plus=100))
    assert store.reload().switched
    after = store.get_training_set(spine, features=refs)
    assert after.to_polars()["scaled"].to_list() == [a * 3 for a in AMOUNTS]
    assert after.to_polars()["age_plus"].to_list() == [a + 100 for a in AGES]
    assert {f.ref: f.fingerprint for f in after.metadata.features} == {
        ref: fingerprint(v2, ref) for ref in refs
    }
    assert {f.ref: f.fingerprint for f in before.metadata.features} == {
        ref: fingerprint(v1, ref) for ref in refs
    }


def test_a_repo_error_is_a_problem_not_an_exception(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    (store.repo.root / "definitions.py").write_text(definitions(2) + "\nraise ValueError('no')\n")
    with pytest.raises(RepoError):
        FeatureStore(store.repo.root)  # what the reload meets
    result = store.reload()
    assert not result.code_matches and not result.switched
    assert "ValueError: no" in (result.problem or "")
    assert_old(store, v1)


def test_a_store_that_starts_serving_after_another_apply_serves_it_on_reload(
    tmp_path: Path,
) -> None:
    root = write_repo(
        tmp_path / "repo",
        definitions(2),
        config=f"project: follow\n{NEVER}",
        data={"data/users.parquet": users()},
    )
    apply_code(root, None, materialize=True)
    store = FeatureStore(root)  # loads the code of version 1
    try:
        v2 = apply_code(root, definitions(3))  # applied elsewhere before it serves
        result = store.reload()  # starts serving and checks: the code on disk matches
        assert (result.version, result.code_matches, result.problem) == (2, True, None)
        assert store.serving_problem is None
        assert_new(store, v2, 3)
    finally:
        store.close()


def test_a_store_that_starts_serving_after_another_apply_follows_it(tmp_path: Path) -> None:
    root = write_repo(
        tmp_path / "repo",
        definitions(2),
        config=f"project: follow\n{FAST}",
        data={"data/users.parquet": users()},
    )
    apply_code(root, None, materialize=True)
    store = FeatureStore(root)  # loads the code of version 1
    try:
        v2 = apply_code(root, definitions(3))  # applied elsewhere before it serves

        def serves_v2() -> bool:
            try:
                return serves_fingerprint(store, fingerprint(v2, SCALED))
            except RegistryError:  # "run 'featurestore apply'": it ran
                return False

        wait_for(serves_v2)
        assert_new(store, v2, 3)
        assert store.serving_problem is None
    finally:
        store.close()


def code_fingerprint(root: Path, ref: str) -> str:
    """The fingerprint the code on disk gives ``ref`` (a fresh load)."""
    return build_state(load_repo(root), {}).features[ref].fingerprint


def test_the_stores_own_apply_applies_the_code_on_disk_and_serves_it(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, v1 = make_served(NEVER)
    (store.repo.root / "definitions.py").write_text(definitions(5))  # edited after loading
    on_disk = code_fingerprint(store.repo.root, SCALED)
    assert on_disk != fingerprint(v1, SCALED)
    store.apply()
    v2 = store.registry.require()
    assert fingerprint(v2, SCALED) == on_disk
    assert_new(store, v2, 5)


def test_an_edit_on_disk_after_the_stores_own_apply_is_reported(
    make_served: Callable[[str], tuple[FeatureStore, RegistryState]],
) -> None:
    store, _ = make_served(FAST)
    (store.repo.root / "definitions.py").write_text(definitions(5))
    wait_for(lambda: store.serving_problem is not None)
    store.apply()  # applies the edit: the code on disk is the applied code again
    assert code_fingerprint(store.repo.root, SCALED) == fingerprint(
        store.registry.require(), SCALED
    )
    assert store.serving_problem is None
    (store.repo.root / "definitions.py").write_text(definitions(7))
    wait_for(lambda: store.serving_problem is not None)
    assert "txn_risk:scaled" in (store.serving_problem or "")
