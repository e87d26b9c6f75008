"""The parity check (``store.check_parity``, ``featurestore apply --check``) on a repo with plain
features (expressions, defaults, a ttl, bounds that make values INVALID, a created timestamp),
a view keyed by two entities, aggregations of several kinds over a directory source and correct
on-demand views: nothing is flagged; on-demand functions whose per-row result differs from
their batch result (a mean over the frame, a rank, a function that fails on one row) are, with
examples of both values, and the correct outputs beside them are not. The online side's store
holds byte for byte what materialization writes; ``apply --check --fail-on-flagged`` exits 3
and writes nothing when a feature is flagged; samples are deterministic; a spine is used as
given; request values come from the serving log when it has some."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli._main import main
from featurestore.monitoring._report import Verdict
from featurestore.monitoring.parity import ParityReport
from featurestore.monitoring.parity._as_of import as_of_store
from featurestore.online._codec import encode_key
from featurestore.online._event_state import events_store_name
from tests.cli.test_online_cli import run

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 60
USERS = 40
MERCHANTS = 8
SAMPLE = 300
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

DEFINITIONS = '''
"""Definitions of the parity test repo."""

from datetime import timedelta

import polars as pl

from featurestore import (
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions import Count, CountDistinct, Last, Max, Mean, StdDev, Sum
from featurestore.definitions._monitoring import SkewConfig

user = Entity("user", join_keys=["user_id"])
merchant = Entity("merchant", join_keys=["merchant_id"])

user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    owner="tests",
    ttl=timedelta(days=10),
    source=FileSource(
        name="users",
        path="data/users.parquet",
        timestamp_field="updated_at",
        created_timestamp_field="created",
    ),
    features=[
        Feature("country", pl.String, default="unknown"),
        Feature("age", pl.Int64, ge=0, le=130),
        Feature("score", pl.Float64, skew=SkewConfig(abs_tol=0.0, rel_tol=0.0)),
        Feature(
            "tenure_days",
            pl.Int64,
            expr=(pl.col("updated_at") - pl.col("signup_at")).dt.total_days(),
        ),
    ],
)

user_merchant = FeatureView(
    name="user_merchant",
    entities=[user, merchant],
    owner="tests",
    ttl=timedelta(days=20),
    source=FileSource(name="pairs", path="data/pairs.parquet", timestamp_field="ts"),
    features=[
        Feature("n_txn", pl.Int64, default=0),
        Feature("avg_amt", pl.Float64, ge=0.0, expr=pl.col("total") / pl.col("n")),
    ],
)

spending = FeatureView(
    name="spending",
    entities=[user],
    owner="tests",
    source=FileSource(name="txns", path="data/txns/", timestamp_field="ts"),
    aggregations=[
        Count(window=timedelta(hours=6), name="txn_count_6h"),
        Sum("amount", window=timedelta(days=1), name="spend_1d"),
        Mean("amount", window=timedelta(days=7), name="amount_mean_7d"),
        Max("amount", window=timedelta(days=3), name="amount_max_3d"),
        Last("amount", window=timedelta(days=2), name="amount_last_2d"),
        StdDev("amount", window=timedelta(days=7), name="amount_std_7d"),
        CountDistinct("merchant_id", window=timedelta(days=7), name="merchants_7d"),
    ],
)

merchant_activity = FeatureView(
    name="merchant_activity",
    entities=[merchant],
    owner="tests",
    source=FileSource(name="merchant_txns", path="data/txns/", timestamp_field="ts"),
    aggregations=[Count(window=timedelta(days=1), name="merchant_txns_1d")],
)

txn = RequestSource("txn", schema={"amount": pl.Float64, "channel": pl.String})


@on_demand_feature_view(
    sources=[txn, "user_profile:age", "merchant_activity:merchant_txns_1d"],
    schema={"busy_for_age": pl.Float64},
)
def cross(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("merchant_txns_1d") / pl.col("age")).cast(pl.Float64).alias("busy_for_age")
    )


@on_demand_feature_view(
    sources=[txn, user_profile, "user_merchant:avg_amt", "spending:amount_mean_7d"],
    schema=[
        Feature("amount_per_age", pl.Float64),
        Feature("above_pair_avg", pl.Boolean),
        Feature("vs_mean_7d", pl.Float64, ge=0.0, default=1.0),
        Feature("card_not_present", pl.Boolean),
    ],
)
def risk(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        pl.when(pl.col("age") > 0).then(pl.col("amount") / pl.col("age")).alias("amount_per_age"),
        (pl.col("amount") > pl.col("avg_amt")).alias("above_pair_avg"),
        (pl.col("amount") / pl.col("amount_mean_7d")).alias("vs_mean_7d"),
        (pl.col("channel") != "pos").alias("card_not_present"),
    )


fraud = FeatureService("fraud", features=[user_profile, user_merchant, spending, risk])
'''

# on-demand functions whose result on one row is not their result on a batch
BATCH_DEPENDENT = """

@on_demand_feature_view(
    sources=[txn, "user_profile:age"],
    schema={
        "amount_vs_mean": pl.Float64,
        "amount_rank": pl.Float64,
        "amount_per_year": pl.Float64,
    },
)
def batchy(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("amount") / pl.col("amount").mean()).alias("amount_vs_mean"),
        pl.col("amount").rank().cast(pl.Float64).alias("amount_rank"),
        (pl.col("amount") / pl.col("age")).alias("amount_per_year"),
    )


@on_demand_feature_view(sources=[txn], schema={"doubled": pl.Float64})
def fragile(df: pl.DataFrame) -> pl.DataFrame:
    if df.height == 1:
        raise ValueError("needs a batch")
    return df.select((pl.col("amount") * 2).alias("doubled"))
"""
FLAGGED = {"batchy:amount_vs_mean", "batchy:amount_rank", "fragile:doubled"}


def _times(rng: np.random.Generator, n: int) -> pl.Series:
    """Distinct-enough event times over DAYS days, to the microsecond."""
    us = rng.integers(0, DAYS * DAY_US, size=n) + int(START.timestamp() * 1_000_000)
    return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def _data(seed: int = 11) -> dict[str, pl.DataFrame]:
    """Profiles (ties on updated_at broken by created, out-of-bounds ages, missing countries),
    pair snapshots (a zero count makes avg_amt INVALID), and payments in two part files."""
    rng = np.random.default_rng(seed)
    n = 160
    updated = _times(rng, n)
    users = pl.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 1, size=n),
            "updated_at": updated,
            "created": updated
            + pl.Series(rng.integers(0, 3, size=n) * HOUR_US).cast(pl.Duration("us")),
            "signup_at": updated
            - pl.Series(rng.integers(0, 900, size=n) * DAY_US).cast(pl.Duration("us")),
            "country": rng.choice(np.array(["FR", "US", "DE", ""]), size=n),
            "age": rng.choice(np.array([19, 33, 47, 71, 200, -3]), size=n),
            "score": np.round(rng.normal(0.5, 0.3, size=n), 4),
        }
    ).with_columns(
        pl.when(pl.col("country") == "").then(None).otherwise(pl.col("country")).alias("country"),
        pl.when(pl.int_range(pl.len()) % 17 == 0)
        .then(None)
        .otherwise(pl.col("score"))
        .alias("score"),
    )
    # a correction tied on updated_at with a later created time
    users = pl.concat(
        [
            users,
            users.head(5).with_columns(
                pl.col("created") + dt.timedelta(hours=5), age=pl.lit(55, pl.Int64)
            ),
        ]
    )
    m = 300
    pairs = pl.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 1, size=m),
            "merchant_id": rng.integers(100, 100 + MERCHANTS, size=m),
            "ts": _times(rng, m),
            "n_txn": rng.integers(0, 20, size=m),
            "n": rng.integers(0, 5, size=m),
            "total": np.round(rng.lognormal(4.0, 1.0, size=m), 2),
        }
    ).with_columns(
        pl.when(pl.col("n_txn") == 3).then(None).otherwise(pl.col("n_txn")).alias("n_txn")
    )
    k = 2000
    txns = pl.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 1, size=k),
            "merchant_id": rng.integers(100, 100 + MERCHANTS, size=k),
            "ts": _times(rng, k),
            "amount": np.round(rng.lognormal(3.5, 1.0, size=k), 2),
            "channel": rng.choice(np.array(["pos", "online", "mobile"]), size=k),
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 23 == 0)
        .then(None)
        .otherwise(pl.col("amount"))
        .alias("amount")
    )
    return {
        "data/users.parquet": users,
        "data/pairs.parquet": pairs,
        "data/txns/part-0.parquet": txns.head(k // 2),
        "data/txns/part-1.parquet": txns.tail(k - k // 2),
    }


def write(root: Path, definitions: str = DEFINITIONS, config: str = "project: parity\n") -> Path:
    root.mkdir(parents=True)
    (root / "featurestore.yaml").write_text(config)
    (root / "definitions.py").write_text(textwrap.dedent(definitions).lstrip())
    for rel, frame in _data().items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        frame.write_parquet(root / rel)
    return root


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("parity") / "good")


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("parity") / "bad", DEFINITIONS + BATCH_DEPENDENT)


@pytest.fixture
def store(good: Path) -> Iterator[FeatureStore]:
    fs = FeatureStore(good)
    yield fs
    fs.close()


@pytest.fixture(scope="module")
def good_report(good: Path) -> ParityReport:
    fs = FeatureStore(good)
    try:
        return fs.check_parity(sample=SAMPLE, seed=3)
    finally:
        fs.close()


@pytest.fixture(scope="module")
def bad_report(bad: Path) -> ParityReport:
    fs = FeatureStore(bad)
    try:
        return fs.check_parity(sample=SAMPLE, seed=3)
    finally:
        fs.close()


def test_correct_definitions_agree_on_every_sampled_row(
    good: Path, good_report: ParityReport
) -> None:
    report = good_report
    assert not report.flagged
    refs = {r.ref for r in report.results}
    fs = FeatureStore(good)
    expected = {
        f"{v.name}:{f}"
        for v in [*fs.repo.views.values(), *fs.repo.on_demand_views.values()]
        for f in v.feature_names
    }
    fs.close()
    assert refs == expected
    for r in report.results:
        assert r.verdict is Verdict.OK, (r.ref, r.reasons, r.examples)
        assert r.rows_compared == SAMPLE and r.mismatches == 0
    # one spine per group of join keys, each of SAMPLE rows; nothing was applied or written
    assert set(report.spines) == {"user_id", "merchant_id", "user_id+merchant_id"}
    assert all(s.height == SAMPLE for s in report.spines.values())
    assert not (good / ".featurestore" / "registry.json").exists()
    # the sample reaches every status, so statuses were compared in every case
    seen = {s for r in report.results for s in r.offline_statuses}
    assert seen == {"PRESENT", "NOT_FOUND", "STALE", "DEFAULTED", "INVALID"}
    assert report.result("user_profile:age").offline_statuses.get("INVALID")
    assert report.result("user_profile:country").offline_statuses.get("DEFAULTED")
    assert report.result("user_merchant:avg_amt").offline_statuses.get("STALE")
    # the times hit source event times exactly and sit on both sides of the ttl edge
    times = set(report.spines["user_id"]["event_timestamp"].to_list())
    events = set(_data()["data/users.parquet"]["updated_at"].to_list())
    ttl = dt.timedelta(days=10)
    assert times & events
    assert {t - ttl for t in times} & events
    assert {t - ttl - dt.timedelta(microseconds=1) for t in times} & events
    # request values were synthesized: the channel from the payments' column, with edge values
    pair = report.spines["user_id+merchant_id"]
    assert set(pair["channel"].drop_nulls()) <= {"pos", "online", "mobile", ""}
    assert pair["channel"].null_count() and pair["amount"].null_count()
    assert (pair["amount"] == 0).any() and (pair["amount"] < 0).any()
    assert "same-named source columns" in report.request_data["user_id+merchant_id"]
    data = json.loads(report.to_json())
    assert data["kind"] == "parity" and data["summary"]["flagged"] == 0


def test_batch_dependent_on_demand_functions_are_flagged_with_examples(
    bad_report: ParityReport,
) -> None:
    report = bad_report
    assert set(report.flagged) == FLAGGED
    assert [r.ref for r in report.results[: len(FLAGGED)]] == sorted(
        FLAGGED, key=lambda ref: (-report.result(ref).mismatches, ref)
    )
    for r in report.results:
        if r.ref not in FLAGGED:
            assert r.verdict is Verdict.OK, (r.ref, r.reasons, r.examples)
    mean = report.result("batchy:amount_vs_mean")
    assert mean.rows_compared == SAMPLE and mean.mismatches > SAMPLE // 2
    assert any("inputs (user_profile:age) are equal online and offline" in x for x in mean.reasons)
    for example in mean.examples:
        assert example["offline"] != example["online"] or (
            example["offline_status"] != example["online_status"]
        )
        assert {"user_id", "time", "amount", "inputs"} <= set(example)
        if example["online_status"] == "PRESENT":  # one row: amount / its own mean
            assert example["online"] == pytest.approx(1.0)
    rank = report.result("batchy:amount_rank")
    assert any(e["online"] == 1.0 and e["offline"] != 1.0 for e in rank.examples)
    fragile = report.result("fragile:doubled")
    assert fragile.errors == SAMPLE
    assert fragile.examples[0]["online_status"] == "ERROR"
    assert "needs a batch" in fragile.examples[0]["error"]
    assert any("serving code raised" in x for x in fragile.reasons)
    # the same view's row-wise output, and the other views' outputs, are fine
    assert report.result("batchy:amount_per_year").verdict is Verdict.OK
    assert report.result("risk:vs_mean_7d").verdict is Verdict.OK


def test_the_online_side_holds_what_materialization_writes(tmp_path: Path) -> None:
    """The in-memory store of the serving side holds, per spine row, the bytes a real
    materialization at the row's time publishes (SQLite), latest rows and events alike."""
    store = FeatureStore(write(tmp_path / "repo"))
    store.apply()
    end = START + dt.timedelta(days=40, hours=5, microseconds=7)
    store.materialize(end, force=True)  # the guard would refuse the ages out of bounds
    users = list(range(1, USERS + 1))
    spine = pl.DataFrame(
        {"user_id": users, "event_timestamp": [end] * len(users)},
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    snapshot = as_of_store(
        store.offline,
        store.registry.require(),
        spine,
        {"user_profile": ["age"], "spending": ["spend_1d"]},
    )
    keys = [encode_key((u,)) for u in users]
    for stored in ("user_profile", events_store_name("spending")):
        published = store.online.read(stored, keys)
        ours = [snapshot.value(stored, i) for i in range(len(users))]
        assert [v[1] if v else None for v in ours] == published
        assert [v[0] for v in ours if v] == [k for k, p in zip(keys, published, strict=True) if p]
        assert sum(p is not None for p in published) > USERS // 2
    store.close()


def test_apply_check_gates_the_registry(bad: Path, tmp_path: Path) -> None:
    good = write(tmp_path / "repo")
    flagged = run("apply", "--check", "--fail-on-flagged", "--sample", "120", cwd=bad)
    assert flagged.returncode == 3, flagged.stderr
    assert not (bad / ".featurestore" / "registry.json").exists()
    assert "batchy:amount_vs_mean" in flagged.stdout and "flagged" in flagged.stdout
    assert "nothing was applied" in flagged.stderr
    clean = run("apply", "--check", "--fail-on-flagged", "--sample", "120", "--json", cwd=good)
    assert clean.returncode == 0, clean.stderr
    data = json.loads(clean.stdout)
    assert data["applied"] is True and "user_profile:age" in data["added"]
    assert data["parity"]["summary"]["flagged"] == 0
    assert all(f["stats"]["rows_compared"] == 120 for f in data["parity"]["features"])
    assert (good / ".featurestore" / "registry.json").exists()
    # the options of the check need --check
    runner = CliRunner()
    usage = runner.invoke(main, ["apply", "--repo", str(bad), "--fail-on-flagged"])
    assert usage.exit_code == 2 and "--check" in usage.output


def test_keys_no_view_holds_together_are_sampled_view_by_view(store: FeatureStore) -> None:
    """Checked alone, an on-demand view over a user view and a merchant view gets user keys
    and times from the user view's source and merchant keys from the merchant view's."""
    report = store.check_parity(["cross:busy_for_age"], sample=60, seed=2)
    result = report.result("cross:busy_for_age")
    assert result.verdict is Verdict.OK and result.rows_compared == 60
    spine = report.spines["user_id+merchant_id"]
    data = _data()
    assert spine["user_id"].null_count() == spine["merchant_id"].null_count() == 0
    assert set(spine["user_id"]) <= set(data["data/users.parquet"]["user_id"])
    assert set(spine["merchant_id"]) <= set(range(100, 100 + MERCHANTS))
    assert spine["merchant_id"].n_unique() > 1
    updates = set(data["data/users.parquet"]["updated_at"])
    assert set(spine["event_timestamp"]) & updates  # times come from the user view's rows


def test_the_sample_is_deterministic(store: FeatureStore, bad_report: ParityReport) -> None:
    once = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=5)
    again = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=5)
    other = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=6)
    assert once.spines.keys() == again.spines.keys() == {"user_id", "user_id+merchant_id"}
    for label, frame in once.spines.items():
        assert frame.equals(again.spines[label])
        assert not frame.equals(other.spines[label])
    strip = [{k: v for k, v in f.items() if k != "stats"} for f in once.to_dict()["features"]]
    assert strip == [
        {k: v for k, v in f.items() if k != "stats"} for f in again.to_dict()["features"]
    ]


def test_a_spine_is_used_as_given(bad: Path) -> None:
    t = dt.datetime(2024, 2, 1, 12, tzinfo=UTC)
    spine = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5],
            "when": [t, t, t + dt.timedelta(days=3), t, t - dt.timedelta(days=20)],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            "channel": ["pos", "online", None, "pos", ""],
        }
    )
    fs = FeatureStore(bad)
    try:
        report = fs.check_parity(spine=spine, timestamp_column="when")
    finally:
        fs.close()
    assert list(report.spines) == ["spine"] and report.spines["spine"].equals(spine)
    assert report.sample is None
    checked = {r.ref for r in report.results}
    assert "user_profile:age" in checked and "spending:spend_1d" in checked
    # features needing merchant_id are left out, with why
    assert "user_merchant:n_txn" not in checked and "risk:vs_mean_7d" not in checked
    assert report.not_checked["risk:card_not_present"] == "the spine lacks merchant_id"
    assert all(r.rows_compared == 5 for r in report.results)
    mean = report.result("batchy:amount_vs_mean")
    assert mean.verdict is Verdict.FLAGGED
    # offline, each amount over the mean of the spine's five amounts: the rows as given
    offline = {e["user_id"]: e["offline"] for e in mean.examples}
    assert offline == {
        u: pytest.approx(a / 30.0)
        for u, a in zip(range(1, 6), spine["amount"], strict=True)
        if a != 30.0
    }
    assert [e["time"] for e in mean.examples] == [
        w.isoformat() for w, a in zip(spine["when"], spine["amount"], strict=True) if a != 30.0
    ]


def test_request_values_come_from_the_serving_log(tmp_path: Path) -> None:
    config = "project: parity\nserving_log: {enabled: true}\n"
    fs = FeatureStore(write(tmp_path / "repo", config=config))
    try:
        fs.apply()
        end = START + dt.timedelta(days=DAYS)
        fs.materialize(end, force=True)
        fs.get_online_features(
            ["risk:card_not_present"],
            entities={"user_id": [1, 2, 3], "merchant_id": [100, 101, 102]},
            request_data={"amount": [12.5, 99.0, None], "channel": ["pos", "kiosk", "online"]},
            request_time=end,
        )
        report = fs.check_parity(["risk:card_not_present", "risk:amount_per_age"], sample=50)
    finally:
        fs.close()
    assert not report.flagged
    assert report.request_data["user_id+merchant_id"].startswith("serving log (3 records")
    spine = report.spines["user_id+merchant_id"]
    assert set(spine["channel"]) == {"pos", "kiosk", "online"}
    assert set(spine["amount"].to_list()) == {12.5, 99.0, None}
