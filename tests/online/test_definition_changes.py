"""What is served between an apply that changes definitions and the next materialization, on
SQLite and on Redis.

For every kind of change (an argument inside an expression, a dtype, bounds, a default, the
ttl, the source's path or timestamp field, an aggregation window that grows or shrinks, an
on-demand body, an added feature, an on-demand output fed through a ``"view:feature"`` source
by an outdated input), a store that was serving and reloads, and a fresh store, serve every
value either under the applied fingerprint and equal to a training set of the applied
definitions, or under the earlier fingerprint and equal to a training set of the earlier
definitions, with ``outdated`` naming exactly the latter; an added feature is withheld as
STALE. ``status`` flags each changed view until an incremental materialization rebuilds it,
after which online equals the new training set value for value and status for status.

Also the regression test of an expression changed without new source rows: an incremental
materialization used to publish nothing, keeping the old values under the new fingerprint.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import rows_frame

from featurestore import FeatureStatus, FeatureStore
from featurestore.serving._response import OnlineResponse

from .changes_repo import (
    AMOUNTS,
    CHANGES,
    DEFINITIONS,
    ITEMS,
    ITEMS_SCHEMA,
    ITEMS_V2,
    ON_DEMAND_REFS,
    SETTINGS,
    TXNS,
    TXNS_SCHEMA,
    USERS,
    Change,
    D,
    T,
)
from .conftest import online_store_yaml, write_online_repo


@dataclass
class Expected:
    """A training set at T of every entity row: values, statuses and fingerprints by ref."""

    values: dict[str, list[Any]]
    statuses: dict[str, list[FeatureStatus]]
    fingerprints: dict[str, str]


def spine(rows: list[int], at: D) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "user_id": [USERS[i] for i in rows],
            "amount": [AMOUNTS[i] for i in rows],
            "event_timestamp": [at] * len(rows),
        },
        schema={"user_id": pl.Int64, "amount": pl.Float64, "event_timestamp": pl.Datetime("us")},
    )


def column(ref: str) -> str:
    return ref.split(":")[1]


def training(store: FeatureStore, refs: list[str], at: D = T) -> Expected:
    """A training set per entity row (the metadata counts statuses per set, not per row)."""
    expected = Expected({ref: [] for ref in refs}, {ref: [] for ref in refs}, {})
    for i in range(len(USERS)):
        ts = store.get_training_set(spine([i], at), features=refs)
        [row] = ts.to_polars().to_dicts()
        for feature in ts.metadata.features:
            [(status, count)] = feature.statuses.items()
            assert count == 1
            expected.values[feature.ref].append(row[feature.column])
            expected.statuses[feature.ref].append(FeatureStatus(status))
        expected.fingerprints = ts.metadata.fingerprints()
    return expected


def serve(store: FeatureStore, refs: list[str], at: D = T) -> OnlineResponse:
    return store.get_online_features(
        features=refs,
        entities={"user_id": USERS},
        request_data={"amount": AMOUNTS},
        request_time=at,
    )


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
    return a == b and type(a) is type(b)


def assert_equals(resp: OnlineResponse, want: Expected, ref: str, what: str) -> None:
    """Online values and statuses of ``ref`` equal ``want``'s, row for row."""
    for i, user in enumerate(USERS):
        got = (resp.values[column(ref)][i], resp.statuses[column(ref)][i])
        expected = (want.values[ref][i], want.statuses[ref][i])
        assert same(got[0], expected[0]) and got[1] == expected[1], (
            f"{ref} of user {user} served {got} under {resp.fingerprints[ref]}, but {what} "
            f"gives {expected}"
        )


def assert_served_by_what_computed_it(
    resp: OnlineResponse, before: Expected, after: Expected, change: Change
) -> None:
    """Each reference is served under the applied fingerprint with the applied definitions'
    values, or under its earlier fingerprint with the earlier definitions' values; ``outdated``
    names exactly the latter; a withheld reference is STALE where it is not the training set's."""
    outdated = {}
    for ref in after.fingerprints:
        applied = resp.applied_fingerprints[ref]
        assert applied == after.fingerprints[ref], ref
        if resp.fingerprints[ref] == applied:
            want, what = after, "the applied definition"
        else:
            assert resp.fingerprints[ref] == before.fingerprints.get(ref), (
                f"{ref} served under {resp.fingerprints[ref]}: neither the applied fingerprint "
                f"{applied} nor the earlier one {before.fingerprints.get(ref)}"
            )
            want, what = before, "the earlier definition"
            outdated[ref] = applied
        if ref in change.withheld:
            for i, (value, status) in enumerate(
                zip(resp.values[column(ref)], resp.statuses[column(ref)], strict=True)
            ):
                if status != FeatureStatus.STALE:
                    assert same(value, want.values[ref][i]) and status == want.statuses[ref][i]
                else:
                    assert value is None, ref
            assert resp.statuses[column(ref)][0] == FeatureStatus.STALE, ref
            continue
        assert_equals(resp, want, ref, what)
    assert resp.outdated == outdated
    assert set(outdated) == change.outdated


def definitions_problems(store: FeatureStore) -> dict[str, list[str]]:
    """Per view, the problems status finds about values of other definitions."""
    return {
        view.name: [p for p in view.problems if "come from another definition" in p]
        for view in store.status(now=T).views
    }


def changed_refs(before: Expected, after: Expected, refs: list[str]) -> list[str]:
    return [
        r
        for r in refs
        if r in after.fingerprints and before.fingerprints.get(r) != after.fingerprints[r]
    ]


@pytest.fixture
def open_store() -> Iterator[Callable[[Path], FeatureStore]]:
    """A factory of FeatureStores, each closed afterwards."""
    opened: list[FeatureStore] = []

    def open_(root: Path) -> FeatureStore:
        store = FeatureStore(root)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


@pytest.fixture
def root(backend: str, tmp_path: Path, redis_prefix: str) -> Path:
    """The repo of these tests with its sources, for the current backend, not yet applied."""
    online = online_store_yaml(backend, redis_prefix) + SETTINGS
    data = {
        "data/items.parquet": rows_frame(ITEMS_SCHEMA, ITEMS),
        "data/items_v2.parquet": rows_frame(ITEMS_SCHEMA, ITEMS_V2),
        "data/txns.parquet": rows_frame(TXNS_SCHEMA, TXNS),
    }
    return write_online_repo(
        tmp_path / "repo", online, definitions=DEFINITIONS, project="changes", data=data
    )


def edit(root: Path, change: Change) -> None:
    path = root / "definitions.py"
    text = path.read_text()
    for old, new in change.edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path.write_text(text)


@pytest.mark.parametrize("change", CHANGES.values(), ids=list(CHANGES))
def test_values_are_served_under_the_fingerprint_of_the_definition_that_computed_them(
    change: Change, root: Path, open_store: Callable[[Path], FeatureStore]
) -> None:
    serving = open_store(root)
    serving.apply()
    serving.materialize(end=T)
    refs = [f.ref for f in serving.list_features()]
    before = training(serving, refs)
    baseline = serve(serving, refs)
    assert baseline.fingerprints == before.fingerprints
    for ref in refs:
        assert_equals(baseline, before, ref, "the training set")

    edit(root, change)
    editor = open_store(root)
    editor.apply()
    new_refs = [f.ref for f in editor.list_features()]
    after = training(editor, new_refs)
    changed = changed_refs(before, after, new_refs)
    edited = [r for r in changed if r not in ON_DEMAND_REFS] or changed
    for ref in edited:
        if ref in refs:
            assert not all(
                same(before.values[ref][i], after.values[ref][i])
                and before.statuses[ref][i] == after.statuses[ref][i]
                for i in range(len(USERS))
            ), f"the change of {ref} changes no value: the test could not tell them apart"
    assert serving.reload().switched
    fresh = open_store(root)
    for store in (serving, fresh):
        assert_served_by_what_computed_it(serve(store, new_refs), before, after, change)

    assert_flagged_until_materialized(editor, changed)
    for store in (serving, fresh, editor):
        resp = serve(store, new_refs)
        assert resp.fingerprints == after.fingerprints
        assert resp.outdated == {}
        for ref in new_refs:
            assert_equals(resp, after, ref, "the training set")
    assert all(not p for p in definitions_problems(editor).values())


def assert_flagged_until_materialized(editor: FeatureStore, changed: list[str]) -> None:
    """``status`` names the changed features of each view; an incremental materialization
    rebuilds a view of changed plain features in full, saying why."""
    problems = definitions_problems(editor)
    for name, kind in (("items", "values"), ("txns", "events")):
        in_view = [r for r in changed if r.startswith(f"{name}:")]
        assert problems[name] == (
            [
                f"online {kind} of {', '.join(in_view)} come from another definition than the "
                "applied one; run 'featurestore materialize'"
            ]
            if in_view
            else []
        )
    results = {r.view: r for r in editor.materialize_incremental(end=T)}
    in_items = [r for r in changed if r.startswith("items:")]
    assert results["items"].rebuilt == (
        f"the definitions of {', '.join(in_items)} changed since its values were published, "
        "so every entity is recomputed"
        if in_items
        else None
    )
    if in_items:
        assert results["items"].start is None
        assert results["items"].rows == editor.online.count("items")


def test_an_expression_changed_without_new_rows_is_republished_by_an_incremental_run(
    root: Path, open_store: Callable[[Path], FeatureStore]
) -> None:
    later = T + dt.timedelta(minutes=30)  # no source row in [T, later]
    store = open_store(root)
    store.apply()
    store.materialize(end=T)
    edit(root, CHANGES["expression_argument"])
    editor = open_store(root)
    editor.apply()
    assert editor.status(now=later).flagged == [
        "view 'items': online values of items:in_stock come from another definition than the "
        "applied one; run 'featurestore materialize'"
    ]
    [result, _] = editor.materialize_incremental(end=later)
    assert result.view == "items"
    assert result.rows == 5
    after = training(editor, ["items:in_stock"], later)
    resp = serve(editor, ["items:in_stock"], later)
    assert resp.fingerprints == after.fingerprints
    assert resp.outdated == {}
    assert_equals(resp, after, "items:in_stock", "the training set")
    assert resp.values["in_stock"][1] is False  # user 2: stock 6
    assert editor.status(now=later).flagged == []
