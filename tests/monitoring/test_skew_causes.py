"""Each likely cause the skew report names for a batch view, produced on purpose through a real
store (so the serving log is the one serving writes) and checked with exact row counts and the
text of its reason: a definition changed since serving; values of an earlier definition served
after an apply that was not followed by a materialization; a stale materialization of a plain
view, and a newer row served than the source now holds; online events of an aggregation view
behind the source; events pushed online only; pushed events that reached the files (no
mismatch at all)."""

from __future__ import annotations

import pytest

from featurestore import FeatureStore
from tests.monitoring.skew_causes_repo import (
    ACTIVITY,
    EVENTS,
    FRESHNESS,
    LATE,
    MID,
    PROFILE,
    SPEND,
    T0,
    T1,
    N,
    Stores,
    add_file,
    assert_clean,
    definitions,
    fingerprint,
    profile_rows,
    serve,
    txn_rows,
)

# --- definitions ------------------------------------------------------------------------


def test_a_definition_changed_since_serving(open_causes_store: Stores) -> None:
    store = open_causes_store()
    store.materialize(end=T0)
    served_fp = fingerprint(store, "profile:age")
    serve(store, [*PROFILE, *ACTIVITY])
    store.close()
    (store.repo.root / "definitions.py").write_text(definitions(age=', expr=pl.col("age") * 2'))
    changed = FeatureStore(store.repo.root)
    open_causes_store.track(changed)
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
    open_causes_store: Stores, how: str
) -> None:
    store = open_causes_store()
    store.materialize(end=T0)
    old_fp = fingerprint(store, "profile:age")
    serving = store
    serving.reload()  # serving the applied definitions (nothing logged yet)
    root = store.repo.root
    (root / "definitions.py").write_text(definitions(age=', expr=pl.col("age") * 2'))
    applier = FeatureStore(root)  # another process applies; nobody materializes
    open_causes_store.track(applier)
    applier.apply()
    new_fp = fingerprint(applier, "profile:age")
    if how == "reload":
        serving.reload()
    else:
        serving.close()
        serving = FeatureStore(root)
        open_causes_store.track(serving)
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


def test_a_stale_materialization_of_a_plain_view(open_causes_store: Stores) -> None:
    store = open_causes_store()
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
    open_causes_store: Stores,
) -> None:
    store = open_causes_store()
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


def test_stale_events_of_an_aggregation_view(open_causes_store: Stores) -> None:
    store = open_causes_store()
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
    open_causes_store: Stores,
) -> None:
    store = open_causes_store()
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
        assert r.reasons[0] == (
            "50 mismatches and 0 null mismatches in 3,000 rows compared (1.667%) exceed the "
            "0.100% limit"
        )
        assert len(r.reasons) == 2  # the events are not also called behind the source
    examples = report.result("spend:n_60d").examples
    assert [(e["served"], e["offline"]) for e in examples] == [(2, 1)] * 5


def test_events_pushed_to_both_stores_give_no_mismatch(
    open_causes_store: Stores,
) -> None:
    store = open_causes_store()
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
