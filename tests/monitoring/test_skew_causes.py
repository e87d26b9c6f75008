"""Each likely cause the skew report names, produced on purpose through a real store (so the
serving log is the one serving writes) and checked with exact row counts and the key phrases
of its reason: a definition changed since serving; values of an earlier definition served
after an apply that was not followed by a materialization; a stale materialization of a plain
view, and a newer row served than the source now holds; online events of an aggregation view
behind the source; events pushed online only; pushed events that reached the files (no
mismatch at all); on-demand outputs naming only the inputs that differed (whole views, and a
``"view:feature"`` input), or blaming the function when no input did."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.monitoring._report import Verdict
from featurestore.monitoring._skew import SkewFeatureResult, SkewReport

D = dt.datetime
BASE = D(2024, 1, 1)  # event time of the first version of every row
MID = D(2024, 1, 15)
T0 = D(2024, 2, 1)  # materialization
LATE = D(2024, 2, 3)  # rows and events that arrive after the materialization
T1 = D(2024, 2, 10)  # requests
T2 = D(2024, 2, 12)
N = 3000  # users: the default min_rows, so a clean feature passes rather than lacks data
CONFIG = "project: skew_causes\nserving_log: {enabled: true}\n"

DEFINITIONS = '''
"""Definitions of the skew cause tests."""

import os
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
from featurestore.definitions import Count, Sum

user = Entity("user", join_keys=["user_id"])

profile = FeatureView(
    name="profile",
    entities=[user],
    owner="growth",
    ttl=timedelta(days=365),
    source=FileSource(name="profiles", path="data/profile/", timestamp_field="updated_at"),
    features=[Feature("age", pl.Int64{age}), Feature("score", pl.Float64)],
)

activity = FeatureView(
    name="activity",
    entities=[user],
    owner="ads",
    ttl=timedelta(days=365),
    source=FileSource(name="activity_src", path="data/activity/", timestamp_field="ts"),
    features=[Feature("clicks", pl.Int64), Feature("spend", pl.Float64)],
)

spend = FeatureView(
    name="spend",
    entities=[user],
    owner="payments",
    source=FileSource(name="txns", path="data/txns/", timestamp_field="ts"),
    aggregations=[
        Count(window=timedelta(days=60), name="n_60d"),
        Sum("amount", window=timedelta(days=60), name="amount_60d"),
    ],
)

txn = RequestSource("txn", schema={{"amount": pl.Float64}})


@on_demand_feature_view(sources=[txn, profile, activity], schema={{"mix": pl.Float64}})
def both(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") + pl.col("age") + pl.col("spend")).alias("mix"))


@on_demand_feature_view(sources=[txn, "activity:spend"], schema={{"spend_x": pl.Float64}})
def one_input(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") * 2 + pl.col("spend")).alias("spend_x"))


@on_demand_feature_view(sources=[txn, profile], schema={{"scaled": pl.Float64}})
def scaled(df: pl.DataFrame) -> pl.DataFrame:
    factor = float(os.environ.get("SKEW_CAUSES_FACTOR", "2"))  # state outside the definition
    return df.select((pl.col("amount") * factor + pl.col("age")).alias("scaled"))
'''

PROFILE = ["profile:age", "profile:score"]
ACTIVITY = ["activity:clicks", "activity:spend"]
SPEND = ["spend:n_60d", "spend:amount_60d"]
FRESHNESS = {
    "definition_changed_rows": 0,
    "earlier_definition_rows": 0,
    "served_older_rows": 0,
    "served_newer_rows": 0,
}
EVENTS = {
    "definition_changed_rows": 0,
    "earlier_definition_rows": 0,
    "served_older_rows": 0,
    "pushed_missing_offline_rows": 0,
}


def definitions(age: str = "") -> str:
    """The module; ``age`` adds keyword arguments to the age feature."""
    return DEFINITIONS.format(age=age)


def profile_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "updated_at": [at] * len(uid),
            "age": 20 + uid % 50 + bump,
            "score": np.sin(uid.astype(float)) * 100 + bump * 0.5,
        },
        schema_overrides={"updated_at": pl.Datetime("us")},
    )


def activity_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "ts": [at] * len(uid),
            "clicks": uid % 7 + bump,
            "spend": np.cos(uid.astype(float)) * 10 + bump,
        },
        schema_overrides={"ts": pl.Datetime("us")},
    )


def txn_rows(ids: range | list[int], at: dt.datetime, amount: float = 1.0) -> pl.DataFrame:
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "ts": [at + dt.timedelta(hours=int(u % 10)) for u in uid],
            "amount": uid / 10 + amount,
        },
        schema_overrides={"ts": pl.Datetime("us")},
    )


@pytest.fixture
def open_store(make_repo: Callable[..., Path]) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores over the repo (serving log on), closed afterwards; also
    closes stores registered with ``open_store.track``."""
    opened: list[FeatureStore] = []

    def make(definitions_text: str | None = None) -> FeatureStore:
        root = make_repo(
            "repo",
            definitions_text or definitions(),
            config=CONFIG,
            data={
                "data/profile/base.parquet": profile_rows(range(N), BASE),
                "data/activity/base.parquet": activity_rows(range(N), BASE),
                "data/txns/base.parquet": txn_rows(range(N), BASE),
            },
        )
        store = FeatureStore(root)
        store.apply()
        opened.append(store)
        return store

    make.track = opened.append  # type: ignore[attr-defined]
    yield make
    for store in opened:
        store.close()


def serve(
    store: FeatureStore, features: list[str], ids: range = range(N), at: dt.datetime = T1
) -> None:
    """One logged request for ``ids`` at ``at``; the amount is the user id over 10."""
    on_demand = any(f.split(":")[0] in ("both", "one_input", "scaled") for f in features)
    store.get_online_features(
        features=features,
        entities={"user_id": list(ids)},
        request_data={"amount": [i / 10 for i in ids]} if on_demand else None,
        request_time=at,
    )


def add_file(store: FeatureStore, path: str, frame: pl.DataFrame) -> None:
    """A new file in a source's directory, as an upstream job writes one (not a push)."""
    frame.write_parquet(store.repo.root / path)


def fingerprint(store: FeatureStore, ref: str) -> str:
    return {f.ref: f.fingerprint for f in store.list_features()}[ref]


def assert_clean(report: SkewReport, refs: list[str]) -> None:
    for ref in refs:
        r = report.result(ref)
        assert (r.verdict, r.mismatches, r.null_mismatches, r.reasons) == (
            Verdict.OK,
            0,
            0,
            [],
        ), (ref, r.reasons)


def mismatching(r: SkewFeatureResult) -> int:
    return r.mismatches + r.null_mismatches


# --- definitions ------------------------------------------------------------------------


def test_a_definition_changed_since_serving(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    store.materialize(end=T0)
    served_fp = fingerprint(store, "profile:age")
    serve(store, [*PROFILE, *ACTIVITY])
    store.close()
    (store.repo.root / "definitions.py").write_text(definitions(age=', expr=pl.col("age") * 2'))
    changed = FeatureStore(store.repo.root)
    open_store.track(changed)  # type: ignore[attr-defined]
    changed.apply()
    new_fp = fingerprint(changed, "profile:age")
    report = changed.skew_report()

    assert new_fp != served_fp
    assert report.flagged == ["profile:age"]
    age = report.result("profile:age")
    assert (age.rows_compared, age.mismatches) == (N, N)
    assert age.causes == {**FRESHNESS, "definition_changed_rows": N}
    assert age.reasons[1] == (
        f"definition changed since serving: {N:,} of {N:,} mismatching rows were served while "
        f"fingerprint {served_fp} was applied, the registry now has {new_fp}"
    )
    assert len(age.reasons) == 2
    assert_clean(report, ["profile:score", *ACTIVITY])


@pytest.mark.parametrize("how", ["reload", "reopen"])
def test_values_of_an_earlier_definition_served_after_an_apply_without_materializing(
    open_store: Callable[..., FeatureStore], how: str
) -> None:
    store = open_store()
    store.materialize(end=T0)
    old_fp = fingerprint(store, "profile:age")
    serving = store
    serving.reload()  # serving the applied definitions (nothing logged yet)
    root = store.repo.root
    (root / "definitions.py").write_text(definitions(age=', expr=pl.col("age") * 2'))
    applier = FeatureStore(root)  # another process applies; nobody materializes
    open_store.track(applier)  # type: ignore[attr-defined]
    applier.apply()
    new_fp = fingerprint(applier, "profile:age")
    if how == "reload":
        serving.reload()
    else:
        serving.close()
        serving = FeatureStore(root)
        open_store.track(serving)  # type: ignore[attr-defined]
    response = serving.get_online_features(
        features=PROFILE, entities={"user_id": [7]}, request_time=T1
    )
    assert response.fingerprints["profile:age"] == old_fp  # the online store's values
    serve(serving, PROFILE, range(1, N))
    report = serving.skew_report()

    assert new_fp != old_fp
    assert report.flagged == ["profile:age"]
    age = report.result("profile:age")
    assert (age.rows_compared, age.mismatches) == (N, N)
    assert age.causes == {**FRESHNESS, "earlier_definition_rows": N}
    assert age.reasons[1] == (
        f"values of an earlier definition: on {N:,} of {N:,} mismatching rows the online store "
        f"served values computed by fingerprint {old_fp}, not the definition applied at the "
        "time; materialize after every apply that changes a feature"
    )
    assert len(age.reasons) == 2
    assert_clean(report, ["profile:score"])
    # once materialized, the same requests match
    serving.materialize(end=T0)
    serve(serving, PROFILE)
    after = serving.skew_report(start=T1, features=["profile:age"])
    assert after.result("profile:age").mismatches == N  # the earlier rows are still logged
    assert after.result("profile:age").rows_compared == 2 * N


# --- freshness of plain views -----------------------------------------------------------


def test_a_stale_materialization_of_a_plain_view(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    store.materialize(end=T0)
    add_file(store, "data/profile/late.parquet", profile_rows(range(100), LATE, bump=1))
    serve(store, [*PROFILE, *ACTIVITY])
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(PROFILE)
    for ref in PROFILE:
        r = report.result(ref)
        assert (r.rows_compared, r.mismatches, r.null_mismatches) == (N, 100, 0)
        assert r.causes == {**FRESHNESS, "served_older_rows": 100}
        assert r.reasons[1] == (
            "stale materialization: on 100 of 100 mismatching rows the online store served an "
            "older row of view 'profile' than the offline join found at the request time (or "
            "none); materialize more often or check that the job runs"
        )
        assert len(r.reasons) == 2
        assert {e["user_id"] for e in r.examples} <= set(range(100))
    assert_clean(report, ACTIVITY)


def test_a_newer_row_served_than_the_source_now_holds(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    add_file(store, "data/profile/mid.parquet", profile_rows(range(40), MID, bump=3))
    store.materialize(end=T0)
    (store.repo.root / "data/profile/mid.parquet").unlink()  # the newer rows are taken back
    serve(store, PROFILE)
    report = store.skew_report()

    for ref in PROFILE:
        r = report.result(ref)
        assert (r.rows_compared, r.mismatches) == (N, 40)
        assert r.causes == {**FRESHNESS, "served_newer_rows": 40}
        assert r.reasons[1] == (
            "on 40 of 40 mismatching rows the online store served a newer row of view "
            "'profile' than the offline join found at the request time: values materialized "
            "after the request time, or source rows removed since"
        )


# --- events of aggregation views --------------------------------------------------------


def test_stale_events_of_an_aggregation_view(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store()
    store.materialize(end=T0)
    add_file(store, "data/txns/late.parquet", txn_rows(range(50), LATE, amount=5.0))
    serve(store, SPEND)
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(SPEND)
    for ref in SPEND:
        r = report.result(ref)
        assert (r.rows_compared, r.mismatches, r.null_mismatches) == (N, 50, 0)
        assert r.causes == {**EVENTS, "served_older_rows": 50}
        assert r.reasons[1] == (
            "online events behind the source: on 50 of 50 mismatching rows the newest event "
            "the online store held for view 'spend' was older than the source's at the "
            "request time; materialize, and push new events as they happen"
        )
        assert len(r.reasons) == 2
    examples = report.result("spend:n_60d").examples
    assert [(e["served"], e["offline"]) for e in examples] == [(1, 2)] * 5


def test_events_pushed_online_only_are_named_missing_offline_not_stale(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=T0)
    pushed = txn_rows(range(50), LATE, amount=5.0)
    result = store.push("txns", pushed, to="online")
    assert (result.offline_file, result.entities) == (None, {"spend": 50})
    serve(store, SPEND)
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(SPEND)
    for ref in SPEND:
        r = report.result(ref)
        assert (r.rows_compared, r.mismatches, r.null_mismatches) == (N, 50, 0)
        assert r.causes == {**EVENTS, "pushed_missing_offline_rows": 50}
        assert r.reasons[1] == (
            "pushed events not yet in the offline source: on 50 of 50 mismatching rows the "
            "online store held events of view 'spend' that the source's files lack (pushed "
            "with to='online', or removed from the files since); push with "
            "to='online_and_offline', the default, so training sets and materializations see "
            "them"
        )
        assert len(r.reasons) == 2
        assert not any("behind the source" in reason for reason in r.reasons)
    examples = report.result("spend:n_60d").examples
    assert [(e["served"], e["offline"]) for e in examples] == [(2, 1)] * 5


def test_events_pushed_to_both_stores_give_no_mismatch(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=T0)
    result = store.push("txns", txn_rows(range(50), LATE, amount=5.0))
    assert result.offline_file is not None and result.entities == {"spend": 50}
    serve(store, SPEND)
    report = store.skew_report()

    assert report.flagged == []
    for ref in SPEND:
        r = report.result(ref)
        assert r.rows_compared == N
        assert r.causes == EVENTS
    assert_clean(report, SPEND)


# --- on-demand outputs ------------------------------------------------------------------


def stale_activity(
    open_store: Callable[..., FeatureStore], ids: range | list[int] = range(60)
) -> FeatureStore:
    """A store whose activity rows of users ``ids`` changed after the materialization
    (profile rows did not)."""
    store = open_store()
    store.materialize(end=T0)
    add_file(store, "data/activity/late.parquet", activity_rows(ids, LATE, bump=1))
    return store


def test_an_on_demand_output_over_two_views_names_only_the_stale_ones_inputs(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = stale_activity(open_store)
    serve(store, ["both:mix", *PROFILE, *ACTIVITY])
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(["both:mix", *ACTIVITY])
    mix = report.result("both:mix")
    assert (mix.rows_compared, mix.mismatches) == (N, 60)
    assert mix.causes == {
        "definition_changed_rows": 0,
        "earlier_definition_rows": 0,
        "inputs_differ_rows": 60,
    }
    assert mix.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: activity:clicks (60 rows), activity:spend (60 rows)"
    )
    assert "profile" not in mix.reasons[1]
    assert_clean(report, PROFILE)


def test_an_on_demand_output_served_alone_names_the_stale_view(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = stale_activity(open_store)
    serve(store, ["both:mix"])
    mix = store.skew_report().result("both:mix")

    assert mix.mismatches == 60
    assert mix.causes["inputs_differ_rows"] == 60
    assert mix.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: rows of view 'activity' (60 rows)"
    )


def test_an_on_demand_output_with_a_view_feature_input_names_that_reference(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = stale_activity(open_store)
    # activity:clicks differs too, but is no input of one_input
    serve(store, ["one_input:spend_x", *ACTIVITY])
    report = store.skew_report()

    r = report.result("one_input:spend_x")
    assert (r.rows_compared, r.mismatches) == (N, 60)
    assert r.causes["inputs_differ_rows"] == 60
    assert r.reasons[1] == (
        "on-demand output whose inputs differ: on 60 of 60 mismatching rows these inputs were "
        "not the same online and offline: activity:spend (60 rows)"
    )
    assert report.result("activity:clicks").mismatches == 60
    # served alone (a later request), the stored rows of its one view decide
    serve(store, ["one_input:spend_x"], at=T2)
    alone = store.skew_report(start=T2).result("one_input:spend_x")
    assert (alone.rows_compared, alone.causes["inputs_differ_rows"]) == (N, 60)
    assert alone.reasons[1].endswith(
        "these inputs were not the same online and offline: rows of view 'activity' (60 rows)"
    )


def test_an_on_demand_output_served_with_and_without_its_inputs_blames_the_inputs_on_both(
    open_store: Callable[..., FeatureStore],
) -> None:
    """Some requests ask for the inputs too, others only for the output: on the latter the
    inputs' values were not served, so the stored rows must decide, not the function."""
    store = stale_activity(open_store, [*range(30), *range(N // 2, N // 2 + 30)])
    serve(store, ["both:mix", *ACTIVITY], range(N // 2))
    serve(store, ["both:mix"], range(N // 2, N))
    mix = store.skew_report().result("both:mix")

    assert (mix.rows_compared, mix.mismatches) == (N, 60)
    assert mix.causes["inputs_differ_rows"] == 60, mix.reasons
    assert not any("only the on-demand output differs" in reason for reason in mix.reasons)


def test_an_on_demand_output_that_differs_with_equal_inputs_blames_the_function(
    open_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store()
    store.materialize(end=T0)
    serve(store, ["scaled:scaled", *PROFILE])
    monkeypatch.setenv("SKEW_CAUSES_FACTOR", "3")  # read at run time: not in any fingerprint
    report = store.skew_report()

    assert report.flagged == ["scaled:scaled"]
    r = report.result("scaled:scaled")
    assert r.mismatches == N - 1  # user 0 asks for an amount of 0: 0 * 2 == 0 * 3
    assert r.causes == {
        "definition_changed_rows": 0,
        "earlier_definition_rows": 0,
        "inputs_differ_rows": 0,
    }
    assert r.reasons[1] == (
        "only the on-demand output differs: its inputs (profile:age, profile:score) agree on "
        f"all {N - 1:,} mismatching rows, so the function gives different results online and "
        "offline (does it read state outside its inputs?)"
    )
    assert_clean(report, PROFILE)
