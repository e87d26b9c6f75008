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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.serving._response import OnlineResponse

from .conftest import Row, frame, online_store_yaml, write_repo

D = dt.datetime
H = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
T = D(2024, 3, 1)
SETTINGS = "materialization: {max_invalid_rate: 0.5}\nserving: {reload_interval_seconds: 0}\n"

DEFINITIONS = '''
"""Definitions of the definition-change tests."""

from datetime import timedelta

import polars as pl

from featurestore import (
    Entity,
    Feature,
    FeatureView,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions import Count, Max, Mean, Sum

user = Entity("user", join_keys=["user_id"])

items = FeatureView(
    name="items",
    entities=[user],
    owner="tests",
    ttl=timedelta(days=10),
    source=FileSource(name="items_src", path="data/items.parquet", timestamp_field="ts"),
    features=[
        Feature("country", pl.String, default="unknown"),
        Feature("stock", pl.Int64, ge=0, le=100),
        Feature("price", pl.Float64),
        Feature("in_stock", pl.Boolean, expr=pl.col("stock") > 5),
        Feature("ratio", pl.Float64, expr=(pl.col("price") / 3).round(3)),
    ],
)

txns = FeatureView(
    name="txns",
    entities=[user],
    owner="tests",
    source=FileSource(name="txns_src", path="data/txns.parquet", timestamp_field="ts"),
    aggregations=[
        Count(window=timedelta(days=1), name="n_1d"),
        Sum("amount", window=timedelta(hours=6), name="spend_6h"),
        Mean("amount", window=timedelta(hours=12), name="mean_12h"),
        Max("amount", window=timedelta(hours=12), name="max_12h"),
    ],
)

basket_request = RequestSource("basket_request", schema={"amount": pl.Float64})


@on_demand_feature_view(
    sources=[basket_request, items], schema=[Feature("per_unit", pl.Float64)]
)
def basket(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") / pl.col("price")).alias("per_unit"))


@on_demand_feature_view(
    sources=[basket_request, "items:ratio"], schema=[Feature("scaled", pl.Float64)]
)
def scaling(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") * pl.col("ratio")).alias("scaled"))
'''

ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us"),
    "ts2": pl.Datetime("us"),
    "country": pl.String(),
    "stock": pl.Int64(),
    "price": pl.Float64(),
}
TXNS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us"),
    "amount": pl.Float64(),
    "qty": pl.Int64(),
}


def item(uid: int, ts: D, ts2: D, country: str | None, stock: int, price: float) -> Row:
    return dict(zip(ITEMS_SCHEMA, (uid, ts, ts2, country, stock, price), strict=True))


# ts and ts2 pick different latest rows; user 2 is 5 days old (fresh under a 10-day ttl, stale
# under 3 days), user 3 20 days old, user 4's stock breaks le=20, user 5 has a row after T
ITEMS = [
    item(1, T - 4 * DAY, T - DAY, "FR", 10, 2.5),
    item(1, T - DAY, T - 4 * DAY, "FR", 12, 3.0),
    item(2, T - 5 * DAY, T - 5 * DAY, None, 6, 1.0),
    item(3, T - 20 * DAY, T - 2 * DAY, "GB", 3, 4.0),
    item(4, T - 2 * DAY, T - 2 * DAY, "DE", 50, 7.777),
    item(5, T - 2 * H, T - 2 * H, "US", 7, 1 / 3),
    item(5, T + DAY, T + DAY, "US", 99, 9.0),
]
ITEMS_V2 = [
    item(1, T - DAY, T - DAY, "NL", 30, 9.5),
    item(2, T - DAY, T - DAY, None, 1, 2.0),
    item(4, T - 6 * H, T - 6 * H, "IT", 5, 0.5),
    item(5, T - 2 * DAY, T - 2 * DAY, "ES", 8, 5.0),
]
TXNS: list[Row] = [
    dict(zip(TXNS_SCHEMA, event, strict=True))
    for event in [
        (1, T, 1000.0, 1),
        (1, T - H, 10.0, 2),
        (1, T - 5 * H, 20.0, 3),
        (1, T - 10 * H, 5.0, 4),
        (1, T - 20 * H, 1.0, 5),
        (1, T - 30 * H, 100.0, 6),
        (1, T - 3 * DAY, 7.0, 7),
        (2, T - 2 * H, 3.0, None),
        (2, T - 40 * H, 7.0, 8),
        (3, T - 36 * H, 2.0, 9),
        (4, T - 3 * H, 2.0, 10),
        (4, T + H, 9.0, 11),
        (5, T - 7 * H, None, 12),
    ]
]
USERS = [1, 2, 3, 4, 5, 6]  # user 6 has no data
AMOUNTS = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
ITEM_REFS = [f"items:{f}" for f in ("country", "stock", "price", "in_stock", "ratio")]
ON_DEMAND_REFS = ["basket:per_unit", "scaling:scaled"]


@dataclass(frozen=True)
class Change:
    """An edit of the definitions and the references it leaves served under their earlier
    fingerprint (``outdated``) or withheld as STALE (``withheld``) until rebuilt."""

    edits: tuple[tuple[str, str], ...]
    outdated: frozenset[str]
    withheld: frozenset[str] = field(default_factory=frozenset)


CHANGES = {
    "expression_argument": Change(
        (('pl.col("stock") > 5', 'pl.col("stock") > 6'),),
        frozenset({"items:in_stock", "basket:per_unit"}),
    ),
    "expression_round_feeds_a_view_feature_source": Change(
        ((".round(3)", ".round(2)"),),
        frozenset({"items:ratio", "basket:per_unit", "scaling:scaled"}),
    ),
    "dtype": Change(
        (('Feature("stock", pl.Int64', 'Feature("stock", pl.Float64'),),
        frozenset({"items:stock", "basket:per_unit"}),
    ),
    "bounds": Change(
        (("ge=0, le=100", "ge=0, le=20"),),
        frozenset({"items:stock", "basket:per_unit"}),
    ),
    "default": Change(
        (('default="unknown"', 'default="none"'),),
        frozenset({"items:country", "basket:per_unit"}),
    ),
    "ttl": Change(
        (("ttl=timedelta(days=10)", "ttl=timedelta(days=3)"),),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "source_path": Change(
        (("data/items.parquet", "data/items_v2.parquet"),),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "source_timestamp_field": Change(
        (
            (
                'path="data/items.parquet", timestamp_field="ts"',
                'path="data/items.parquet", timestamp_field="ts2"',
            ),
        ),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "window_grows": Change(
        (
            ("Count(window=timedelta(days=1)", "Count(window=timedelta(days=2)"),
            ('Sum("amount", window=timedelta(hours=6)', 'Sum("amount", window=timedelta(hours=12)'),
        ),
        frozenset({"txns:n_1d"}),
    ),
    "window_shrinks": Change(
        (
            ("Count(window=timedelta(days=1)", "Count(window=timedelta(hours=8)"),
            (
                'Mean("amount", window=timedelta(hours=12)',
                'Mean("amount", window=timedelta(hours=3)',
            ),
        ),
        frozenset(),
    ),
    "on_demand_body": Change(
        (('pl.col("amount") / pl.col("price")', 'pl.col("amount") * pl.col("price")'),),
        frozenset(),
    ),
    "added_feature": Change(
        (
            (
                '        Feature("in_stock"',
                '        Feature("doubled", pl.Float64, expr=pl.col("price") * 2),\n'
                '        Feature("in_stock"',
            ),
            (
                '        Max("amount", window=timedelta(hours=12), name="max_12h"),',
                '        Max("amount", window=timedelta(hours=12), name="max_12h"),\n'
                '        Max("amount", window=timedelta(hours=2), name="max_2h"),\n'
                '        Sum("qty", window=timedelta(hours=6), name="qty_6h", dtype="Int64"),',
            ),
        ),
        frozenset(),
        frozenset({"items:doubled", "txns:qty_6h"}),
    ),
}


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
    root = write_repo(tmp_path / "repo", online, definitions=DEFINITIONS, project="changes")
    frame(ITEMS_SCHEMA, ITEMS).write_parquet(root / "data" / "items.parquet")
    frame(ITEMS_SCHEMA, ITEMS_V2).write_parquet(root / "data" / "items_v2.parquet")
    frame(TXNS_SCHEMA, TXNS).write_parquet(root / "data" / "txns.parquet")
    return root


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

    problems = definitions_problems(editor)
    for view, kind in (("items", "values"), ("txns", "events")):
        in_view = [r for r in changed if r.startswith(f"{view}:")]
        assert problems[view] == (
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
    for store in (serving, fresh, editor):
        resp = serve(store, new_refs)
        assert resp.fingerprints == after.fingerprints
        assert resp.outdated == {}
        for ref in new_refs:
            assert_equals(resp, after, ref, "the training set")
    assert all(not p for p in definitions_problems(editor).values())


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
