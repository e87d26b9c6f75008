"""Sampled row-level consistency: logged requests replayed through the offline path, counted
per hour and feature as compared and matched; a deterministic, bounded sample chosen by the
entity keys; features that cannot be replayed skipped; and the match rate in monitor history."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.monitoring import ReportInputs
from featurestore.monitoring._monitor._consistency import sample_records, sampled_consistency
from featurestore.monitoring._monitor._summaries import SUMMARY_SCHEMA
from tests.monitoring.skew_repo import (
    ACTIVITY,
    BASE,
    PROFILE,
    T0,
    T1,
    activity_rows,
    definitions,
    profile_rows,
    serve,
    write,
)

FEATURES = [*PROFILE, *ACTIVITY]
SPEND = "activity:spend"
N = 400  # users, each requested once per hour


def _config(sample: int) -> str:
    return (
        "project: consistency\n"
        "serving_log: {enabled: true}\n"
        f"monitoring: {{reference: ref.parquet, consistency_sample: {sample}}}\n"
    )


def _hour(h: int) -> dt.datetime:
    return T1 + dt.timedelta(hours=h, minutes=10)


@pytest.fixture
def open_served(make_repo: Callable[..., Path]) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied, materialized stores over the skew repo with a reference training
    set saved as ref.parquet, that served every user once in each of ``hours``."""
    opened: list[FeatureStore] = []

    def open_store(hours: int = 2, sample: int = 10_000) -> FeatureStore:
        data = {
            "data/profile.parquet": profile_rows(range(N), BASE),
            "data/activity.parquet": activity_rows(range(N), BASE),
        }
        root = make_repo(definitions=definitions(), config=_config(sample), data=data)
        store = FeatureStore(root)
        opened.append(store)
        store.apply()
        store.materialize(end=T0)
        spine = pl.DataFrame({"user_id": list(range(N)), "event_timestamp": [T0] * N})
        store.get_training_set(spine, FEATURES).save(root / "ref.parquet")
        for h in range(hours):
            serve(store, range(N), _hour(h), FEATURES)
        store.serving_log.flush()
        return store

    yield open_store
    for store in opened:
        store.close()


def _inputs(store: FeatureStore) -> ReportInputs:
    return ReportInputs(store.repo, store.registry, store.offline, store.read_serving_log)


def _counts(rows: pl.DataFrame) -> dict[tuple[int, str], tuple[int, int]]:
    """(hour after T1, feature) -> (compared, matched)."""
    start = T1.replace(tzinfo=dt.UTC)
    return {
        (int((r["hour"] - start) / dt.timedelta(hours=1)), r["feature"]): (
            r["compared"],
            r["matched"],
        )
        for r in rows.iter_rows(named=True)
    }


def _edit_spend(store: FeatureStore) -> None:
    """Rewrite the activity source at the same event time without materializing: spend moves
    by 1 for users 0 mod 4 and by 1e-12 (within the default tolerance) for users 1 mod 4."""
    rows = activity_rows(range(N), BASE)
    uid = rows["user_id"] % 4
    shift = pl.when(uid == 0).then(1.0).when(uid == 1).then(1e-12).otherwise(0.0)
    write(store, "data/activity.parquet", rows.with_columns(pl.col("spend") + shift))


def test_every_record_matches_when_online_equals_offline(
    open_served: Callable[..., FeatureStore],
) -> None:
    store = open_served()
    rows = sampled_consistency(_inputs(store), store.read_serving_log(), FEATURES, 10_000)

    assert rows.schema == pl.Schema(SUMMARY_SCHEMA)
    assert _counts(rows) == {(h, f): (N, N) for h in range(2) for f in FEATURES}
    others = rows.select(pl.exclude("hour", "feature", "compared", "matched", "min", "max"))
    assert all(v in (0, 0.0, []) for row in others.iter_rows() for v in row)
    assert rows["min"].null_count() == rows["max"].null_count() == rows.height


def test_only_the_disagreeing_feature_loses_matches(
    open_served: Callable[..., FeatureStore],
) -> None:
    store = open_served()
    serve(store, range(50), _hour(0), PROFILE)  # activity not served: not compared
    store.serving_log.flush()
    _edit_spend(store)
    rows = sampled_consistency(_inputs(store), store.read_serving_log(), FEATURES, 10_000)

    counts = _counts(rows)
    for h in range(2):
        assert counts[h, SPEND] == (N, N - N // 4)
        assert counts[h, "activity:clicks"] == (N, N)
        for ref in PROFILE:
            assert counts[h, ref] == (N + 50 * (h == 0),) * 2


def test_the_sample_is_the_same_entities_whatever_the_order(
    open_served: Callable[..., FeatureStore],
) -> None:
    store = open_served(hours=3)
    _edit_spend(store)
    log = store.read_serving_log()
    shuffled = log.sample(fraction=1.0, shuffle=True, seed=7)
    chosen = sample_records(log, 100)

    def records(frame: pl.DataFrame) -> set[tuple[str, int]]:
        return set(frame.select("request_id", "row").iter_rows())

    assert records(sample_records(log, 100)) == records(chosen)
    assert records(sample_records(shuffled, 100)) == records(chosen)
    by_hour = chosen.group_by(pl.col("request_time").dt.truncate("1h")).agg("entity_keys")
    assert len({frozenset(keys) for keys in by_hour["entity_keys"].to_list()}) == 1
    inputs = _inputs(store)
    first = sampled_consistency(inputs, log, FEATURES, 100)
    assert first.equals(sampled_consistency(inputs, shuffled, FEATURES, 100))
    users = chosen["entity_keys"].str.json_decode(pl.Struct({"user_id": pl.Int64}))
    hours = chosen.select(pl.col("request_time").dt.truncate("1h").alias("hour"))
    expected = (
        pl.concat([hours, users.struct.unnest()], how="horizontal")
        .group_by("hour")
        .agg(pl.len().alias("compared"), (pl.col("user_id") % 4 != 0).sum().alias("matched"))
    )
    spend = first.filter(pl.col("feature") == SPEND).select("hour", "compared", "matched")
    assert spend.sort("hour").equals(
        expected.sort("hour").cast({"compared": pl.Int64, "matched": pl.Int64})
    )
    assert spend["matched"].sum() < spend["compared"].sum()


def test_the_sample_is_bounded(open_served: Callable[..., FeatureStore]) -> None:
    store = open_served(hours=3)
    log = store.read_serving_log()
    assert log.height == 3 * N
    for k in (10, 100, 500):
        chosen = sample_records(log, k)
        assert k // 2 <= chosen.height <= k
        rows = sampled_consistency(_inputs(store), log, FEATURES, k)
        per_feature = rows.group_by("feature").agg(pl.col("compared").sum())
        assert dict(per_feature.iter_rows()) == dict.fromkeys(FEATURES, chosen.height)
    assert sample_records(log, 10_000).height == log.height
    empty = sampled_consistency(_inputs(store), log, FEATURES, 0)
    assert empty.is_empty() and empty.schema == pl.Schema(SUMMARY_SCHEMA)


def test_a_feature_that_cannot_be_replayed_is_skipped(
    open_served: Callable[..., FeatureStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = open_served(hours=1)
    (store.repo.root / "data/activity.parquet").unlink()
    with caplog.at_level(logging.WARNING, "featurestore.monitoring"):
        rows = sampled_consistency(_inputs(store), store.read_serving_log(), FEATURES, 10_000)

    assert _counts(rows) == {(0, f): (N, N) for f in PROFILE}
    assert _skipped(caplog) == ACTIVITY


def test_a_feature_no_longer_defined_is_skipped(
    open_served: Callable[..., FeatureStore], caplog: pytest.LogCaptureFixture
) -> None:
    store = open_served(hours=1)
    renamed = {SPEND: "gone:spend"}
    log = store.read_serving_log().with_columns(
        pl.col("features").list.eval(pl.element().replace(renamed)),
        pl.col("values").str.replace(SPEND, "gone:spend", literal=True),
        pl.col("statuses").str.replace(SPEND, "gone:spend", literal=True),
    )
    features = [*FEATURES, "gone:spend"]
    with caplog.at_level(logging.WARNING, "featurestore.monitoring"):
        rows = sampled_consistency(_inputs(store), log, features, 10_000)

    assert _counts(rows) == {(0, f): (N, N) for f in FEATURES if f != SPEND}
    assert _skipped(caplog) == ["gone:spend"]


def _skipped(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The features the consistency check warned it skipped."""
    messages = [r.getMessage() for r in caplog.records if "consistency check skips" in r.msg]
    return [m.split()[3].rstrip(":") for m in messages]


def test_monitor_records_the_match_rate_in_history(
    open_served: Callable[..., FeatureStore],
) -> None:
    store = open_served(hours=3)
    _edit_spend(store)
    run = store.monitor(until=_hour(4))
    assert run.records == 3 * N

    def rates(ref: str) -> list[float | None]:
        history = store.monitor_history(ref, "1h")
        return history.filter(pl.col("rows") > 0)["match_rate"].to_list()

    assert rates(SPEND) == [0.75] * 3
    assert rates("activity:clicks") == [1.0] * 3
    assert rates("profile:age") == [1.0] * 3
    again = store.monitor(until=_hour(4))  # nothing new: nothing replayed twice
    assert again.records == 0
    assert rates(SPEND) == [0.75] * 3
    daily = store.monitor_history(SPEND, "1d").filter(pl.col("rows") > 0)
    assert daily["rows"].to_list() == [3 * N] and daily["match_rate"].to_list() == [0.75]
