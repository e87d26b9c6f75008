"""Materialization on every backend: full snapshots, start/end upserts and incremental runs from
the watermark; idempotent re-runs; the guard (row count, null rate, declared rules) that refuses
a broken batch and keeps the previous values online unless forced; failures mid-way."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStore, FeatureStoreError
from featurestore.errors import MaterializationGuardError
from featurestore.online._materialize import MaterializationState

from .conftest import Row

FeatureStoreFactory = Callable[..., FeatureStore]

D = dt.datetime
SIGNUP = D(2023, 1, 1)
USERS = list(range(1, 11))


def day_end(day: int) -> dt.datetime:
    """Noon of a day of February 2024, after that day's rows (at midnight)."""
    return D(2024, 2, day, 12)


def row(user: int, day: int, **values: Any) -> Row:
    """A users source row at midnight of a day of February 2024."""
    base = {"country": "FR", "age": 30 + user, "score": float(user)}
    return {
        "user_id": user,
        "updated_at": D(2024, 2, day),
        "signup_at": SIGNUP,
        **base,
        **values,
    }


# Rows for the window tests: users 1-3 on day 1; user 1 again on day 2, user 2 on day 3, and a
# new user 4 on day 5.
WINDOW_ROWS = [
    row(1, 1, score=1.0),
    row(2, 1, score=1.0),
    row(3, 1, score=1.0),
    row(1, 2, score=2.0),
    row(2, 3, score=3.0),
    row(4, 5, score=5.0),
]

# Rows for the guard tests: users 1-2 on day 1; users 1-10 on day 2 (clean), day 3 (every score
# null) and day 4 (every age out of bounds).
GUARD_ROWS = [
    *(row(u, 1) for u in (1, 2)),
    *(row(u, 2) for u in USERS),
    *(row(u, 3, score=None) for u in USERS),
    *(row(u, 4, age=500) for u in USERS),
]


def online_values(
    store: FeatureStore, feature: str, users: list[int], at: dt.datetime
) -> list[Any]:
    """The online values of ``user_profile:<feature>`` for ``users`` at ``at``."""
    resp = store.get_online_features(
        features=[f"user_profile:{feature}"], entities={"user_id": users}, request_time=at
    )
    return resp.values[feature]


def offline_values(
    store: FeatureStore, feature: str, users: list[int], at: dt.datetime
) -> list[Any]:
    """The training-set values of ``user_profile:<feature>`` for ``users`` at ``at``."""
    spine = pl.DataFrame(
        {"user_id": users, "event_timestamp": [at] * len(users)},
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us")},
    )
    ts = store.get_training_set(spine, features=[f"user_profile:{feature}"])
    return ts.to_polars()[feature].to_list()


def raw_rows(store: FeatureStore, users: list[int]) -> list[bytes | None]:
    """The stored bytes of ``user_profile`` for ``users``."""
    return store.online.read("user_profile", [str(u) for u in users])


def watermark(store: FeatureStore, view: str = "user_profile") -> dt.datetime | None:
    state = MaterializationState.load(store.online, [view]).views.get(view)
    return state.watermark if state else None


def test_full_snapshot_publishes_the_latest_row_per_entity_and_replaces_the_view(
    make_store: FeatureStoreFactory,
) -> None:
    store = make_store(users=WINDOW_ROWS)
    results = store.materialize(end=day_end(5))
    by_view = {r.view: r for r in results}
    assert set(by_view) == {"user_profile", "user_merchant"}
    assert by_view["user_profile"].rows == 4 and by_view["user_profile"].published
    assert by_view["user_profile"].start is None
    assert by_view["user_merchant"].rows == 0
    assert store.online.count("user_profile") == 4
    users = [1, 2, 3, 4, 5]
    assert online_values(store, "score", users, day_end(5)) == [2.0, 3.0, 1.0, 5.0, None]

    store.materialize(end=day_end(3))  # user 4 has no row yet at day 3: the snapshot drops it
    assert store.online.count("user_profile") == 3
    assert online_values(store, "score", users, day_end(3)) == [2.0, 3.0, 1.0, None, None]
    assert online_values(store, "score", users, day_end(3)) == offline_values(
        store, "score", users, day_end(3)
    )
    assert watermark(store) == day_end(3)


def test_start_and_end_upsert_only_entities_with_rows_in_the_window(
    make_store: FeatureStoreFactory,
) -> None:
    store = make_store(users=WINDOW_ROWS)
    store.materialize(end=day_end(1))
    users = [1, 2, 3, 4]
    assert online_values(store, "score", users, day_end(1)) == [1.0, 1.0, 1.0, None]

    [result] = store.materialize(start=D(2024, 2, 3), end=day_end(3), views=["user_profile"])
    assert (result.rows, result.start, result.end) == (1, D(2024, 2, 3), day_end(3))
    # user 2 is updated; user 1's day-2 row lies outside the window, so it keeps day 1's value
    assert online_values(store, "score", users, day_end(3)) == [1.0, 3.0, 1.0, None]
    assert store.online.count("user_profile") == 3

    store.materialize(start=D(2024, 2, 2), end=day_end(5), views=["user_profile"])
    assert online_values(store, "score", users, day_end(5)) == [2.0, 3.0, 1.0, 5.0]
    assert store.online.count("user_profile") == 4


def test_incremental_runs_continue_from_the_watermark(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=WINDOW_ROWS)
    users = [1, 2, 3, 4, 5]

    [first] = store.materialize_incremental(end=day_end(1), views=["user_profile"])
    assert (first.start, first.rows) == (None, 3)  # no watermark yet: a full snapshot
    assert watermark(store) == day_end(1)

    [second] = store.materialize_incremental(end=day_end(2), views=["user_profile"])
    assert (second.start, second.rows) == (day_end(1), 1)
    assert online_values(store, "score", users, day_end(2)) == [2.0, 1.0, 1.0, None, None]

    [third] = store.materialize_incremental(end=day_end(5), views=["user_profile"])
    assert (third.start, third.rows) == (day_end(2), 2)
    assert online_values(store, "score", users, day_end(5)) == offline_values(
        store, "score", users, day_end(5)
    )
    assert store.online.count("user_profile") == 4

    reopened = FeatureStore(store.repo.root)  # the watermark survives the process
    try:
        [again] = reopened.materialize_incremental(end=day_end(5), views=["user_profile"])
        assert (again.start, again.rows) == (day_end(5), 0)
        assert online_values(reopened, "score", users, day_end(5)) == [2.0, 3.0, 1.0, 5.0, None]
    finally:
        reopened.close()


def test_re_runs_are_idempotent(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=WINDOW_ROWS)
    users = [1, 2, 3, 4, 5]
    store.materialize(end=day_end(5))
    first = raw_rows(store, users)
    assert None not in first[:4] and first[4] is None
    store.materialize(end=day_end(5))
    assert raw_rows(store, users) == first
    store.materialize(start=D(2024, 2, 1), end=day_end(5))
    assert raw_rows(store, users) == first
    store.materialize_incremental(end=day_end(5))
    store.materialize_incremental(end=day_end(5))
    assert raw_rows(store, users) == first
    assert store.online.count("user_profile") == 4


# The guard.


def assert_refused(exc: MaterializationGuardError, check: str, feature: str | None) -> None:
    """The error names the view, the failed check and the feature, in the report and message."""
    report = exc.report
    assert report.view == "user_profile"
    assert not report.passed
    failed = [(c.check, c.feature) for c in report.failures]
    assert (check, feature) in failed
    assert all(f == feature for _, f in failed), failed  # nothing else is blamed
    message = str(exc)
    assert "'user_profile'" in message
    assert f"FAILED {check}" in message
    if feature is not None:
        assert f"[{feature}]" in message
    assert "force=True" in message


def test_guard_refuses_a_collapsed_row_count(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=GUARD_ROWS)
    store.materialize(end=day_end(2), views=["user_profile"])
    before = raw_rows(store, USERS)
    with pytest.raises(MaterializationGuardError) as info:
        store.materialize(end=day_end(1), views=["user_profile"])
    assert_refused(info.value, "row count", None)
    assert "2 rows vs 10 in the last full snapshot" in str(info.value)
    assert raw_rows(store, USERS) == before
    assert store.online.count("user_profile") == 10
    assert watermark(store) == day_end(2)

    [forced] = store.materialize(end=day_end(1), views=["user_profile"], force=True)
    assert forced.published and forced.forced
    assert store.online.count("user_profile") == 2


def test_an_incremental_run_does_not_hide_a_collapse_of_the_next_full_snapshot(
    make_store: FeatureStoreFactory,
) -> None:
    store = make_store(users=GUARD_ROWS)
    store.materialize(end=day_end(2), views=["user_profile"])
    [incremental] = store.materialize_incremental(end=day_end(2), views=["user_profile"])
    assert incremental.published
    with pytest.raises(MaterializationGuardError) as info:
        store.materialize(end=day_end(1), views=["user_profile"])
    assert_refused(info.value, "row count", None)
    assert store.online.count("user_profile") == 10


def test_guard_refuses_a_jump_in_the_null_rate(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=GUARD_ROWS)
    store.materialize(end=day_end(2), views=["user_profile"])
    with pytest.raises(MaterializationGuardError) as info:
        store.materialize(end=day_end(3), views=["user_profile"])
    assert_refused(info.value, "null rate", "score")
    assert online_values(store, "score", USERS, day_end(3)) == [float(u) for u in USERS]

    store.materialize(end=day_end(3), views=["user_profile"], force=True)
    assert online_values(store, "score", USERS, day_end(3)) == [None] * 10


def test_guard_refuses_values_breaking_declared_bounds(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=GUARD_ROWS)
    store.materialize(end=day_end(2), views=["user_profile"])
    with pytest.raises(MaterializationGuardError) as info:
        store.materialize(end=day_end(4), views=["user_profile"])
    assert_refused(info.value, "declared rules", "age")
    assert "100.00% of values break" in str(info.value)
    assert online_values(store, "age", USERS, day_end(4)) == [30 + u for u in USERS]

    store.materialize(end=day_end(4), views=["user_profile"], force=True)
    resp = store.get_online_features(
        features=["user_profile:age"], entities={"user_id": USERS}, request_time=day_end(4)
    )
    assert resp.values["age"] == [None] * 10
    assert {s.value for s in resp.statuses["age"]} == {"INVALID"}


def test_guard_checks_declared_rules_on_the_first_batch(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=[row(u, 1, age=-5) for u in USERS])
    with pytest.raises(MaterializationGuardError) as info:
        store.materialize(end=day_end(1), views=["user_profile"])
    assert_refused(info.value, "declared rules", "age")
    assert info.value.report.previous_rows is None
    assert store.online.count("user_profile") == 0
    assert watermark(store) is None


def test_a_failed_publish_keeps_the_previous_values_and_watermark(
    make_store: FeatureStoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store(users=WINDOW_ROWS)
    store.materialize_incremental(end=day_end(1), views=["user_profile"])
    before = raw_rows(store, [1, 2, 3, 4])

    def broken_publish(*args: Any, **kwargs: Any) -> None:
        raise FeatureStoreError("disk full")

    monkeypatch.setattr(store.online, "publish", broken_publish)
    with pytest.raises(FeatureStoreError, match="disk full"):
        store.materialize(end=day_end(5), views=["user_profile"])
    with pytest.raises(FeatureStoreError, match="disk full"):
        store.materialize_incremental(end=day_end(5), views=["user_profile"])
    monkeypatch.undo()

    assert raw_rows(store, [1, 2, 3, 4]) == before
    assert online_values(store, "score", [1, 2, 3, 4], day_end(1)) == [1.0, 1.0, 1.0, None]
    assert watermark(store) == day_end(1)
    [retry] = store.materialize_incremental(end=day_end(5), views=["user_profile"])
    assert retry.start == day_end(1)
    assert online_values(store, "score", [1, 2, 3, 4], day_end(5)) == [2.0, 3.0, 1.0, 5.0]


def test_end_may_be_time_zone_aware(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=WINDOW_ROWS)
    store.materialize(end=day_end(3))
    naive = raw_rows(store, [1, 2, 3, 4])
    plus_one = dt.timezone(dt.timedelta(hours=1))
    store.materialize(end=day_end(3).replace(hour=13, tzinfo=plus_one))  # the same instant
    assert raw_rows(store, [1, 2, 3, 4]) == naive
    [result] = store.materialize_incremental(end=day_end(5), views=["user_profile"])
    assert result.start == day_end(3).replace(tzinfo=dt.UTC)
    assert online_values(store, "score", [1, 2, 3, 4], day_end(5)) == [2.0, 3.0, 1.0, 5.0]


def test_only_batch_views_can_be_materialized(make_store: FeatureStoreFactory) -> None:
    store = make_store(users=WINDOW_ROWS)
    with pytest.raises(FeatureStoreError, match="'txn_risk' is an on-demand view"):
        store.materialize(end=day_end(5), views=["txn_risk"])
    with pytest.raises(FeatureStoreError, match="'user_profiles' is not defined"):
        store.materialize(end=day_end(5), views=["user_profiles"])
    assert store.online.count("user_profile") == 0


def test_two_projects_sharing_an_online_store_stay_apart(make_store: FeatureStoreFactory) -> None:
    fraud = make_store("fraud", project="fraud", users=[row(1, 1, score=1.0)])
    churn = make_store("churn", project="churn", users=[row(1, 1, score=9.0), row(2, 1)])
    fraud.materialize(end=day_end(1))
    churn.materialize(end=day_end(1))
    assert online_values(fraud, "score", [1, 2], day_end(1)) == [1.0, None]
    assert online_values(churn, "score", [1, 2], day_end(1)) == [9.0, 2.0]
    fraud.materialize(end=day_end(1), start=D(2024, 2, 1))
    churn.online.delete_view("user_profile")
    assert online_values(fraud, "score", [1, 2], day_end(1)) == [1.0, None]


def test_batches_are_published_in_entity_key_order(
    make_store: FeatureStoreFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    users = [*range(12, 0, -1), 100, 7_000, 25]  # source order is neither numeric nor key order
    store = make_store(users=[row(u, 1, age=40, score=float(u)) for u in users])
    published: list[list[str]] = []
    real_publish = store.online.publish

    def spy(view: str, keys: Any, values: Any, *, replace: bool, meta: Any = None) -> None:
        if view == "user_profile":
            published.append(list(keys))
        real_publish(view, keys, values, replace=replace, meta=meta)

    monkeypatch.setattr(store.online, "publish", spy)
    store.materialize(end=day_end(2))
    assert published == [sorted(str(u) for u in users)]  # text order: "100" < "12" < "2"
    assert online_values(store, "score", users, day_end(2)) == [float(u) for u in users]
