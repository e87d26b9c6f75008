"""The skew report on serving logs written by a real store: stale materialization, definition
changes and on-demand functions are flagged with their cause and nothing else is; too few rows;
the window, features= and sample= arguments; the report's shape."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import numpy as np
import polars as pl
import pytest

from featurestore import FeatureReferenceError, FeatureStore, RegistryError
from featurestore.errors import ReportError
from featurestore.monitoring._report import Verdict
from tests.monitoring.skew_repo import (
    ACTIVITY,
    ALL,
    BASE,
    LATE,
    PROFILE,
    T0,
    T1,
    T2,
    activity_rows,
    definitions,
    mismatching_users,
    profile_rows,
    reopen,
    serve,
    write,
)


def test_stale_materialization_is_flagged_with_its_cause_and_nothing_else(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=T0)
    # after the run: new versions for users 0..99 and a new user 3000, not yet online
    write(
        store,
        "data/profile.parquet",
        pl.concat(
            [profile_rows(range(3000), BASE), profile_rows([*range(100), 3000], LATE, bump=1)]
        ),
    )
    serve(store, range(3001), T1)
    report = store.skew_report()

    assert sorted(report.flagged) == sorted(PROFILE)
    for ref in PROFILE:
        r = report.result(ref)
        assert (r.rows_compared, r.mismatches) == (3001, 100)
        assert (r.served_null_offline_value, r.served_value_offline_null) == (1, 0)
        assert r.causes["served_older_rows"] == 101
        assert r.causes["served_newer_rows"] == 0
        assert r.causes["definition_changed_rows"] == 0
        assert r.causes["earlier_definition_rows"] == 0
        assert r.reasons == [
            "100 mismatches and 1 null mismatches in 3,001 rows compared (3.366%) exceed the "
            "0.100% limit",
            "stale materialization: on 101 of 101 mismatching rows the online store served an "
            "older row of view 'profile' than the offline join found at the request time (or "
            "none); materialize more often or check that the job runs",
        ]
        assert r.served_status_shares == {"STALE": 0.0, "DEFAULTED": 0.0, "NOT_FOUND": 1 / 3001}
        assert r.match_rate == pytest.approx(1 - 101 / 3001)
        for example in r.examples:
            assert example["user_id"] in {*range(100), 3000}
            assert example["offline_event_time"] == LATE.replace(tzinfo=dt.UTC).isoformat()
            if example["user_id"] == 3000:
                assert (example["served"], example["status"]) == (None, "NOT_FOUND")
            else:
                assert example["served_event_time"] == BASE.replace(tzinfo=dt.UTC).isoformat()
    age = report.result("profile:age")
    assert [e["offline"] - e["served"] for e in age.examples if e["served"] is not None] == [1] * 5
    for ref in [*ACTIVITY, "risk:amount_x"]:
        r = report.result(ref)
        assert (r.verdict, r.rows_compared, r.mismatches, r.reasons) == (Verdict.OK, 3001, 0, [])
    assert report.to_dict()["summary"] | {"not_replayed": None} == {
        "features": 6,
        "flagged": 3,
        "warn": 0,
        "ok": 3,
        "insufficient_data": 0,
        "log_rows": 3001,
        "rows_replayed": 3001,
        "requests": 1,
        "not_replayed": None,
    }


def test_a_definition_changed_after_serving_is_reported_as_a_fingerprint_mismatch(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=T0)
    serve(store, range(3000), T1)
    served_fp = {f.ref: f.fingerprint for f in store.list_features()}["profile:age"]
    changed = reopen(store, definitions(age=', expr=pl.col("age") + 1'))
    try:
        with pytest.raises(RegistryError, match="differs from the applied registry"):
            changed.skew_report()
        changed.apply()
        new_fp = {f.ref: f.fingerprint for f in changed.list_features()}["profile:age"]
        report = changed.skew_report()
    finally:
        changed.close()

    assert new_fp != served_fp
    assert report.flagged == ["profile:age"]
    age = report.result("profile:age")
    assert (age.rows_compared, age.mismatches) == (3000, 3000)
    assert age.causes == {
        "definition_changed_rows": 3000,
        "earlier_definition_rows": 0,
        "served_older_rows": 0,
        "served_newer_rows": 0,
    }
    assert age.reasons[1] == (
        "definition changed since serving: 3,000 of 3,000 mismatching rows were served while "
        f"fingerprint {served_fp} was applied, the registry now has {new_fp}"
    )
    assert age.abs_diff_quantiles == {"p50": 1.0, "p95": 1.0, "p99": 1.0}
    assert all(report.result(r).verdict == Verdict.OK for r in ALL if r != "profile:age")


def test_an_on_demand_output_that_differs_with_equal_inputs_blames_the_function(
    open_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store()
    store.materialize(end=T0)
    serve(store, range(3000), T1)
    # state the function reads at run time, outside anything a definition can cover
    monkeypatch.setenv("SKEW_TEST_FACTOR", "3")
    report = store.skew_report()

    assert report.flagged == ["risk:amount_x"]
    r = report.result("risk:amount_x")
    assert r.mismatches == 2999  # user 0 requests an amount of 0: 0 * 2 == 0 * 3
    assert r.causes == {
        "definition_changed_rows": 0,
        "earlier_definition_rows": 0,
        "inputs_differ_rows": 0,
    }
    assert r.reasons[1] == (
        "only the on-demand output differs: its inputs (activity:clicks, activity:spend) agree "
        "on all 2,999 mismatching rows, so the function gives different results online and "
        "offline (does it read state outside its inputs?)"
    )
    differences = np.arange(3000) / 10  # amount * 3 - amount * 2, over every row compared
    expected = np.quantile(differences, [0.5, 0.95, 0.99]).tolist()
    assert list(r.abs_diff_quantiles.values()) == pytest.approx(expected, rel=1e-9)


def test_an_on_demand_output_over_stale_inputs_says_its_inputs_differ(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store()
    store.materialize(end=T0)
    write(
        store,
        "data/activity.parquet",
        pl.concat([activity_rows(range(3000), BASE), activity_rows(range(50), LATE, bump=1)]),
    )
    serve(store, range(3000), T1)
    report = store.skew_report()

    assert sorted(report.flagged) == sorted([*ACTIVITY, "risk:amount_x"])
    r = report.result("risk:amount_x")
    assert (r.mismatches, r.causes["inputs_differ_rows"]) == (50, 50)
    assert r.reasons[1] == (
        "on-demand output whose inputs differ: on 50 of 50 mismatching rows these inputs were "
        "not the same online and offline: activity:clicks (50 rows), activity:spend (50 rows)"
    )
    assert report.result("activity:spend").reasons[1] == (
        "stale materialization: on 50 of 50 mismatching rows the online store served an older "
        "row of view 'activity' than the offline join found at the request time (or none); "
        "materialize more often or check that the job runs"
    )
    assert all(report.result(ref).verdict == Verdict.OK for ref in PROFILE)


def test_fewer_rows_than_min_rows_are_insufficient_data_not_a_pass(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(
        definitions(age=", skew=SkewConfig(min_rows=51)", score=", skew=SkewConfig(min_rows=50)"),
        n=50,
    )
    store.materialize(end=T0)
    serve(store, range(50), T1, PROFILE)
    report = store.skew_report()

    assert report.flagged == []
    assert report.result("profile:score").verdict == Verdict.OK
    age = report.result("profile:age")
    assert age.verdict == Verdict.INSUFFICIENT_DATA
    assert age.reasons == [
        "only 50 rows compared: a mismatch rate within 0.100% is not yet supported (it needs "
        "at least 51); so far 0 mismatches and 0 null mismatches in 50 rows compared (0.000%)"
    ]
    country = report.result("profile:country")
    assert country.verdict == Verdict.INSUFFICIENT_DATA
    assert country.reasons == [
        "only 50 rows compared: a mismatch rate within 0.100% is not yet supported (it needs "
        "at least 3,000); so far 0 mismatches and 0 null mismatches in 50 rows compared (0.000%)"
    ]
    settings = report.to_dict()["settings"]
    tolerances = "abs_tol 1e-09, rel_tol 1e-06, max_mismatch_rate 0.001"
    assert settings["per_feature"] == (
        f"profile:age ({tolerances}, min_rows 51); profile:score ({tolerances}, min_rows 50)"
    )
    assert settings["defaults"] == f"{tolerances}, min_rows 3,000"


def test_features_limit_the_report_and_unserved_ones_have_no_rows(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(n=100)
    store.materialize(end=T0)
    serve(store, range(60), T1, ["profile:age"])
    serve(store, range(40), T2, ["activity:clicks", "risk:amount_x"])

    full = store.skew_report()
    assert {r.ref: r.rows_compared for r in full.results} == {
        "profile:age": 60,
        "activity:clicks": 40,
        "risk:amount_x": 40,
    }
    assert all(r.mismatches == 0 for r in full.results)

    some = store.skew_report(features=["risk:amount_x", "profile:score"])
    assert [r.ref for r in some.results] == ["profile:score", "risk:amount_x"]
    score = some.result("profile:score")
    assert (score.rows_compared, score.verdict) == (0, Verdict.INSUFFICIENT_DATA)
    assert score.reasons == ["not served in the window: nothing to compare"]
    assert some.result("risk:amount_x").rows_compared == 40

    with pytest.raises(FeatureReferenceError, match="profile:nope"):
        store.skew_report(features=["profile:nope"])


def test_features_removed_since_serving_are_listed_as_not_replayed(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(n=20)
    store.materialize(end=T0)
    serve(store, range(20), T1, PROFILE)
    without_score = definitions().replace('        Feature("score", pl.Float64),\n', "")
    changed = reopen(store, without_score)
    try:
        changed.apply()
        report = changed.skew_report()
    finally:
        changed.close()
    assert [r.ref for r in report.results] == ["profile:age", "profile:country"]
    assert report.to_dict()["summary"]["not_replayed"] == ["profile:score"]


def test_start_and_end_select_the_requests_in_the_window(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(n=100)
    store.materialize(end=T0)
    serve(store, range(30), T1, ["profile:age"])
    serve(store, range(70), T2, ["profile:age"])

    assert store.skew_report(start=T2).result("profile:age").rows_compared == 70
    assert store.skew_report(end=T2).result("profile:age").rows_compared == 30
    with pytest.raises(ReportError, match=r"no records in .* nothing to compare"):
        store.skew_report(start=T2 + dt.timedelta(days=1))
    empty = store.skew_report(start=T2 + dt.timedelta(days=1), features=["profile:score"])
    assert empty.log_rows == 0
    assert empty.result("profile:score").verdict == "insufficient_data"
    with pytest.raises(ReportError, match="the window is empty"):
        store.skew_report(start=T2, end=T1)


def test_sample_replays_a_seeded_random_subset(open_store: Callable[..., FeatureStore]) -> None:
    store = open_store(n=1000)
    store.materialize(end=T0)
    late = range(0, 1000, 5)  # 200 users have a newer row that is not online
    write(
        store,
        "data/profile.parquet",
        pl.concat([profile_rows(range(1000), BASE), profile_rows(late, LATE, bump=1)]),
    )
    serve(store, range(1000), T1, ["profile:age"])

    full = store.skew_report().result("profile:age")
    assert full.mismatches == 200
    sampled = store.skew_report(sample=300, seed=1)
    age = sampled.result("profile:age")
    assert (sampled.log_rows, sampled.rows_replayed, age.rows_compared) == (1000, 300, 300)
    assert 30 < age.mismatches < 100  # about 60 expected
    assert mismatching_users(sampled, "profile:age") <= set(late)
    again = store.skew_report(sample=300, seed=1).result("profile:age")
    assert (again.mismatches, again.examples) == (age.mismatches, age.examples)
    other = store.skew_report(sample=300, seed=2).result("profile:age")
    assert (other.mismatches, other.examples) != (age.mismatches, age.examples)
    everything = store.skew_report(sample=5000).result("profile:age")
    assert everything.stats() == full.stats()
    with pytest.raises(ReportError, match="sample must be a positive number"):
        store.skew_report(sample=0)


def test_to_dict_has_the_report_shape_and_serializes(
    open_store: Callable[..., FeatureStore],
) -> None:
    store = open_store(n=200)
    store.materialize(end=T0)
    write(
        store,
        "data/profile.parquet",
        pl.concat([profile_rows(range(200), BASE), profile_rows(range(20), LATE, bump=1)]),
    )
    serve(store, range(200), T1)
    report = store.skew_report()
    d = json.loads(report.to_json())

    assert d["kind"] == "skew"
    assert set(d) == {"kind", "title", "generated_at", "summary", "settings", "features"}
    assert [f["verdict"] for f in d["features"]] == ["flagged"] * 3 + ["insufficient_data"] * 3
    assert {f["ref"] for f in d["features"][:3]} == set(PROFILE)
    assert all(isinstance(v, str) for v in d["settings"].values())
    for f in d["features"]:
        assert set(f) == {
            "ref",
            "owner",
            "dtype",
            "kind",
            "verdict",
            "reasons",
            "stats",
            "histogram",
            "examples",
        }
        hist = f["histogram"]
        assert len(hist["labels"]) == len(hist["reference"]) == len(hist["current"])
        assert sum(hist["reference"]) == pytest.approx(1.0)
    country = d["features"][[f["ref"] for f in d["features"]].index("profile:country")]
    assert country["kind"] == "categorical"
    assert len(country["examples"]) == 5
    assert set(country["examples"][0]) == {
        "request_id", "request_time", "user_id", "served", "offline", "status",
        "served_event_time", "offline_event_time",
    }  # fmt: skip
    assert report.to_polars().height == 6
