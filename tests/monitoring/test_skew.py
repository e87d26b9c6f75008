"""The skew report on serving logs written by a real store: stale materialization, definition
changes and on-demand functions are flagged with their cause and nothing else is; tolerance
boundaries; null mismatches both ways; statistics against numpy; too few rows; the window,
features= and sample= arguments."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from featurestore import FeatureReferenceError, FeatureStore, RegistryError
from featurestore.errors import ReportError
from featurestore.monitoring._report import Verdict
from featurestore.monitoring._skew import SkewReport

D = dt.datetime
BASE = D(2024, 1, 1)  # event time of the first version of every row
T0 = D(2024, 2, 1)  # materialization
LATE = D(2024, 2, 3)  # rows that arrive after the materialization
T1 = D(2024, 2, 10)  # requests
T2 = D(2024, 2, 20)
CONFIG = "project: skew\nserving_log: {enabled: true}\n"

DEFINITIONS = '''
"""Definitions of the skew test repo."""

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
from featurestore.definitions._monitoring import SkewConfig

user = Entity("user", join_keys=["user_id"])

profile = FeatureView(
    name="profile",
    entities=[user],
    owner="growth",
    ttl=timedelta(days=365),
    source=FileSource(name="profiles", path="data/profile.parquet", timestamp_field="updated_at"),
    features=[
        Feature("country", pl.String),
        Feature("age", pl.Int64{age}),
        Feature("score", pl.Float64{score}),
    ],
)

activity = FeatureView(
    name="activity",
    entities=[user],
    owner="ads",
    source=FileSource(name="activity_src", path="data/activity.parquet", timestamp_field="ts"),
    features=[Feature("clicks", pl.Int64), Feature("spend", pl.Float64)],
)

txn = RequestSource("txn", schema={{"amount": pl.Float64}})


@on_demand_feature_view(sources=[txn, activity], schema={{"amount_x": pl.Float64}})
def risk(df: pl.DataFrame) -> pl.DataFrame:
    factor = float(os.environ.get("SKEW_TEST_FACTOR", "2"))  # state outside the definition
    return df.select((pl.col("amount") * factor + pl.col("spend")).alias("amount_x"))
'''

# one view whose values the tests set pair by pair: served first, then rewritten at the same
# event time, so only the value differs (no stale row, no definition change)
PAIRS_DEFINITIONS = '''
"""Definitions of the tolerance test repo."""

from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource
from featurestore.definitions._monitoring import SkewConfig

user = Entity("user", join_keys=["user_id"])

m = FeatureView(
    name="m",
    entities=[user],
    owner="tests",
    ttl=timedelta(days=60),
    source=FileSource(name="m_src", path="data/m.parquet", timestamp_field="ts"),
    features=[
        Feature("a", pl.Float64, skew=SkewConfig(abs_tol=0.5, rel_tol=0.0)),
        Feature("r", pl.Float64, skew=SkewConfig(abs_tol=0.0, rel_tol=0.25)),
        Feature("d", pl.Float64),
        Feature("n", pl.Int64),
        Feature("c", pl.String),
    ],
)
'''
PAIR_COLUMNS = {"a": pl.Float64, "r": pl.Float64, "d": pl.Float64, "n": pl.Int64, "c": pl.String}
PROFILE = ["profile:country", "profile:age", "profile:score"]
ACTIVITY = ["activity:clicks", "activity:spend"]
ALL = [*PROFILE, *ACTIVITY, "risk:amount_x"]
COUNTRIES = ["FR", "US", "DE", "IT"]


def definitions(age: str = "", score: str = "") -> str:
    """The skew test repo's module; ``age``/``score`` add keyword arguments to those features."""
    return DEFINITIONS.format(age=age, score=score)


def profile_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    """One profile row per user; ``bump`` shifts every value (a newer version of the row)."""
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "updated_at": [at] * len(uid),
            "country": [COUNTRIES[(i + bump) % 4] for i in uid],
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


@pytest.fixture
def open_store(make_repo: Callable[..., Path]) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores over a repo written with the serving log on; closed after."""
    opened: list[FeatureStore] = []

    def make(
        definitions_text: str | None = None,
        data: dict[str, pl.DataFrame] | None = None,
        n: int = 3000,
        name: str = "repo",
    ) -> FeatureStore:
        root = make_repo(
            name,
            definitions_text or definitions(),
            config=CONFIG,
            data=data
            or {
                "data/profile.parquet": profile_rows(range(n), BASE),
                "data/activity.parquet": activity_rows(range(n), BASE),
            },
        )
        store = FeatureStore(root)
        store.apply()
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def serve(
    store: FeatureStore, ids: range | list[int], at: dt.datetime, features: list[str] = ALL
) -> None:
    """One logged request for ``ids`` at ``at``; the amount is the user id over 10."""
    request = {"amount": [i / 10 for i in ids]} if "risk:amount_x" in features else None
    store.get_online_features(
        features=features,
        entities={"user_id": list(ids)},
        request_data=request,
        request_time=at,
    )


def write(store: FeatureStore, path: str, frame: pl.DataFrame) -> None:
    frame.write_parquet(store.repo.root / path)


def reopen(store: FeatureStore, definitions_text: str) -> FeatureStore:
    """Close ``store`` (flushing its log), change the definitions and load the repo again."""
    store.close()
    (store.repo.root / "definitions.py").write_text(definitions_text.lstrip())
    return FeatureStore(store.repo.root)


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
        assert r.reasons[1].startswith("stale materialization: on 101 of 101 mismatching rows")
        assert len(r.reasons) == 2
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
    assert r.reasons[1].startswith(
        "only the on-demand output differs: its inputs (activity:clicks, activity:spend) agree "
        "on all 2,999 mismatching rows"
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
    assert report.result("activity:spend").reasons[1].startswith("stale materialization")
    assert all(report.result(ref).verdict == Verdict.OK for ref in PROFILE)


def pairs_frame(columns: dict[str, list[Any]], at: dt.datetime = BASE) -> pl.DataFrame:
    n = max(len(v) for v in columns.values())
    padding = {"a": 1.0, "r": 1.0, "d": 1.0, "n": 1, "c": "FR"}
    data: dict[str, Any] = {"user_id": list(range(n)), "ts": [at] * n}
    for name, dtype in PAIR_COLUMNS.items():
        values = columns.get(name, [])
        data[name] = pl.Series(values + [padding[name]] * (n - len(values)), dtype=dtype)
    return pl.DataFrame(data, schema_overrides={"ts": pl.Datetime("us")})


def run_pairs(
    open_store: Callable[..., FeatureStore],
    pairs: dict[str, list[tuple[Any, Any]]],
    served_at: dt.datetime = BASE,
) -> tuple[SkewReport, int]:
    """Serve the first value of each pair, rewrite the source with the second, report."""
    served = {k: [p[0] for p in v] for k, v in pairs.items()}
    offline = {k: [p[1] for p in v] for k, v in pairs.items()}
    first = pairs_frame(served, served_at)
    store = open_store(PAIRS_DEFINITIONS, {"data/m.parquet": first})
    store.materialize(end=T0)
    write(store, "data/m.parquet", pairs_frame(offline, served_at))
    serve(store, range(first.height), T1, [f"m:{c}" for c in PAIR_COLUMNS])
    return store.skew_report(), first.height


def mismatching_users(report: SkewReport, ref: str) -> set[int]:
    return {e["user_id"] for e in report.result(ref).examples}


def test_tolerance_boundaries_are_inclusive_and_relative_to_the_offline_value(
    open_store: Callable[..., FeatureStore],
) -> None:
    pairs = {
        # abs_tol 0.5, rel_tol 0: a difference of exactly 0.5 matches
        "a": [(10.0, 10.5), (10.0, 10.5000001), (10.5, 10.0), (-3.0, -2.5), (0.0, 0.50000001)],
        # abs_tol 0, rel_tol 0.25 of |offline|: 1 <= 0.25 * 4 matches; 1.1 > 1 does not,
        # although 1.1 <= 0.25 * 5.1 (the served value) would
        "r": [(5.0, 4.0), (5.1, 4.0), (4.0, 5.0), (3.0, 4.0), (2.9, 4.0), (0.0, 0.0)],
        # defaults: abs_tol 1e-9, rel_tol 1e-6
        "d": [
            (1e6 + 0.9, 1e6),
            (1e6 + 1.5, 1e6),
            (1e-10, 0.0),
            (2e-9, 0.0),
            (1.0, 1 + 5e-7),
            (1.0, 1 + 2e-6),
        ],
        # integers are exact, whatever their size
        "n": [(10**12, 10**12 + 1), (7, 7), (-1, 1)],
    }
    report, n = run_pairs(open_store, pairs)
    expected = {"a": {1, 4}, "r": {1, 4}, "d": {1, 3, 5}, "n": {0, 2}}
    for name, users in expected.items():
        r = report.result(f"m:{name}")
        assert r.rows_compared == n
        assert r.mismatches == len(users)
        assert r.null_mismatches == 0
        assert mismatching_users(report, f"m:{name}") == users
        assert r.verdict == Verdict.FLAGGED  # a real difference is flagged even on few rows
    assert report.result("m:c").verdict == Verdict.INSUFFICIENT_DATA


def test_null_mismatches_are_counted_in_each_direction(
    open_store: Callable[..., FeatureStore],
) -> None:
    pairs = {
        "d": [(None, 1.0), (None, 2.0), (3.0, None), (None, None), (4.0, 4.5)],
        "c": [("FR", "US")] * 3 + [(None, "DE")] * 2 + [("IT", None), (None, None), ("FR", "FR")],
    }
    report, n = run_pairs(open_store, pairs)
    d = report.result("m:d")
    assert (d.mismatches, d.served_null_offline_value, d.served_value_offline_null) == (1, 2, 1)
    assert mismatching_users(report, "m:d") == {0, 1, 2, 4}
    assert d.mismatch_rate == pytest.approx(4 / n)
    c = report.result("m:c")
    assert (c.mismatches, c.served_null_offline_value, c.served_value_offline_null) == (3, 2, 1)
    assert c.top_pairs == [("FR", "US", 3), (None, "DE", 2), ("IT", None, 1)]
    assert c.stats()["top_mismatch_pairs"] == "'FR' -> 'US' x3; null -> 'DE' x2; 'IT' -> null x1"
    served = Counter(p[0] for p in pairs["c"]) + Counter({"FR": n - len(pairs["c"])})
    offline = Counter(p[1] for p in pairs["c"]) + Counter({"FR": n - len(pairs["c"])})
    hist = c.histogram
    assert hist is not None
    for label, s_share, o_share in zip(
        hist["labels"], hist["current"], hist["reference"], strict=True
    ):
        key = None if label == "null" else label
        assert (s_share, o_share) == (served[key] / n, offline[key] / n)


def test_statistics_match_numpy_on_random_values(
    open_store: Callable[..., FeatureStore],
) -> None:
    rng = np.random.default_rng(7)
    n = 600
    a = rng.normal(0, 10, n)
    kind = rng.choice(["same", "tiny", "noisy", "zero", "a_null", "b_null", "stale"], n)
    b = np.where(kind == "tiny", a * (1 + 1e-8), a)
    b = np.where(kind == "noisy", a + rng.normal(0, 1, n), b)
    a = np.where(kind == "zero", 0.0, a)
    b = np.where(kind == "zero", 0.0, b)
    a = np.where(kind == "a_null", np.nan, a)
    b = np.where(kind == "b_null", np.nan, b)
    served = [None if np.isnan(x) else float(x) for x in a]
    offline = [None if np.isnan(x) else float(x) for x in b]
    stale = kind == "stale"
    pairs_served = pairs_frame({"d": served}).with_columns(
        pl.when(pl.Series(stale)).then(pl.lit(D(2023, 6, 1))).otherwise("ts").alias("ts")
    )
    store = open_store(PAIRS_DEFINITIONS, {"data/m.parquet": pairs_served})
    store.materialize(end=T0)
    write(store, "data/m.parquet", pairs_served.with_columns(d=pl.Series(offline)))
    serve(store, range(n), T1, ["m:d"])
    r = store.skew_report().result("m:d")

    # rows older than the 60-day ttl are withheld both online and offline: two nulls match
    a, b = np.where(stale, np.nan, a), np.where(stale, np.nan, b)
    both = ~np.isnan(a) & ~np.isnan(b)
    x, y = a[both], b[both]
    diff = np.abs(x - y)
    equal = diff <= 1e-9 + 1e-6 * np.abs(y)
    match = (np.isnan(a) & np.isnan(b)).sum() + equal.sum()
    denominator = np.abs(x) + np.abs(y)
    smape = np.mean(
        np.divide(200 * diff, denominator, out=np.zeros_like(diff), where=denominator > 0)
    )
    assert r.rows_compared == n
    assert r.match_rate == pytest.approx(match / n, rel=1e-12)
    assert r.mismatches == int((~equal).sum())
    assert r.served_null_offline_value == int((np.isnan(a) & ~np.isnan(b)).sum())
    assert r.served_value_offline_null == int((~np.isnan(a) & np.isnan(b)).sum())
    assert r.smape_pct == pytest.approx(float(smape), rel=1e-9)
    expected_q = np.quantile(diff, [0.5, 0.95, 0.99])
    assert list(r.abs_diff_quantiles.values()) == pytest.approx(expected_q.tolist(), rel=1e-9)
    assert r.served_status_shares["STALE"] == pytest.approx(stale.mean())
    hist = r.histogram
    assert hist is not None and hist["labels"][-1] == "null"
    assert sum(hist["current"]) == pytest.approx(1.0)
    assert hist["current"][-1] == pytest.approx(np.isnan(a).mean())
    assert hist["reference"][-1] == pytest.approx(np.isnan(b).mean())


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
    assert "it needs at least 3,000" in country.reasons[0]
    settings = report.to_dict()["settings"]
    assert (
        "profile:age (abs_tol 1e-09, rel_tol 1e-06, max_mismatch_rate 0.001, min_rows 51)"
        in (settings["per_feature"])
    )


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
