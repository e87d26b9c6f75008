"""The example fraud-detection repo: it applies, its generator is deterministic, and its
training sets are point-in-time correct on entities checked against the raw files."""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStore
from featurestore.cli._demo import NOT_COPIED, load_generator

EXAMPLE = Path(__file__).resolve().parents[2] / "feature_definitions"
SERVICE = "fraud_detection_v1"
SPINE_COLUMNS = ["user_id", "merchant_id", "event_timestamp", "amount", "channel", "is_fraud"]
SPENDING_FEATURES = [  # user_spending, not in fraud_detection_v1
    "txn_count_1h",
    "txn_count_24h",
    "spend_7d",
    "amount_max_7d",
    "amount_mean_30d",
    "merchants_7d",
]
SERVICE_FEATURES = [
    "age",
    "country",
    "kyc_level",
    "credit_limit",
    "tenure_days",
    "fully_verified",
    "category",
    "risk_score",
    "avg_ticket",
    "merchant_country",
    "online_only",
    "pair_txn_count",
    "pair_chargebacks",
    "pair_amount_total",
    "pair_chargeback_rate",
    "amount_vs_ticket",
    "amount_vs_limit",
    "amount_vs_pair_avg",
    "is_new_pair",
    "is_cross_border",
    "card_not_present",
]
US = dt.timedelta(microseconds=1)


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*NOT_COPIED))
    return target


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the example repo with data for 300 users, applied."""
    root = copy_example(tmp_path_factory.mktemp("example") / "repo")
    load_generator(root).generate(root / "data", n_users=300, seed=11)
    store = FeatureStore(root)
    store.apply()
    store.close()
    return root


@pytest.fixture(scope="module")
def gen(repo: Path) -> ModuleType:
    return load_generator(repo)


@pytest.fixture(scope="module")
def store(repo: Path) -> Iterator[FeatureStore]:
    s = FeatureStore(repo)
    yield s
    s.close()


def test_loading_the_repo_imports_the_generator_without_side_effects(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "repo")
    store = FeatureStore(root)
    assert not (root / "data").exists()
    assert set(store.repo.views) == {
        "user_profile",
        "merchant_profile",
        "user_merchant",
        "user_spending",
    }
    assert set(store.repo.on_demand_views) == {"txn_risk"}
    assert set(store.repo.entities) == {"user", "merchant"}
    assert store.repo.views["user_merchant"].join_keys == ["user_id", "merchant_id"]
    store.close()


def test_example_applies_cleanly_and_sources_validate(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "repo")
    load_generator(root).generate(root / "data", n_users=40, seed=1)
    store = FeatureStore(root)
    diff = store.apply()
    added = sorted(r.split(":")[1] for r in diff.added)
    assert added == sorted(SERVICE_FEATURES + SPENDING_FEATURES)
    assert not store.plan().has_changes
    assert all(r.ok for r in store.validate()), [r.problems for r in store.validate()]
    views = {v.name: v for v in store.repo.views.values()}
    for view in [*views.values(), *store.repo.on_demand_views.values()]:
        assert view.owner and view.description and view.tags
    assert all(v.ttl is not None for v in views.values() if v.features)
    assert store.project == "fraud_detection"
    store.close()


def _frames(data_dir: Path) -> dict[str, pl.DataFrame]:
    """Each source's rows: a file, or a directory of parts (transactions)."""
    files = sorted(data_dir.rglob("*.parquet"))
    return {(p.stem if p.parent == data_dir else p.parent.name): pl.read_parquet(p) for p in files}


def test_generator_is_deterministic_per_seed(tmp_path: Path, gen: ModuleType) -> None:
    first = gen.generate(tmp_path / "a", n_users=120, seed=5)
    second = gen.generate(tmp_path / "b", n_users=120, seed=5)
    assert set(first) == {"users", "merchants", "transactions", "user_merchant_daily"}
    for name in first:
        assert first[name].read_bytes() == second[name].read_bytes(), name
    other = gen.generate(tmp_path / "c", n_users=120, seed=6)
    a, c = _frames(tmp_path / "a"), _frames(tmp_path / "c")
    for name in first:
        assert not a[name].equals(c[name]), name
    assert a["transactions"].equals(_frames(tmp_path / "b")["transactions"])
    assert other["users"].exists()


def test_generated_data_is_plausible(repo: Path) -> None:
    frames = _frames(repo / "data")
    users, txns = frames["users"], frames["transactions"]
    assert users["user_id"].n_unique() == 300
    assert users.group_by("user_id").len()["len"].max() > 1  # profiles change over time
    dup = users.group_by("user_id", "updated_at").agg(pl.col("created_at").n_unique().alias("n"))
    assert dup["n"].max() > 1  # late corrections share updated_at with the row they fix
    assert txns["event_time"].is_sorted()
    assert txns["txn_id"].is_unique().all()
    assert 0.001 < txns["is_fraud"].mean() < 0.05
    assert set(txns["channel"].unique()) == {"pos", "online", "mobile"}
    late = txns.filter(pl.col("chargeback_at").is_not_null())
    assert late["is_fraud"].all() and (late["chargeback_at"] > late["event_time"]).all()


def test_training_spine_is_in_time_order_and_samples_reproducibly(
    repo: Path, gen: ModuleType
) -> None:
    full = gen.training_spine(repo / "data")
    assert full.columns == SPINE_COLUMNS
    assert (
        full.height
        == pl.scan_parquet(repo / "data" / "transactions" / "*.parquet").collect().height
    )
    sample = gen.training_spine(repo / "data", n=500, seed=3)
    assert sample.height == 500 and sample["event_timestamp"].is_sorted()
    assert sample.equals(gen.training_spine(repo / "data", n=500, seed=3))
    assert not sample.equals(gen.training_spine(repo / "data", n=500, seed=4))


def test_service_training_set_keeps_every_spine_row_in_order(
    store: FeatureStore, gen: ModuleType, repo: Path
) -> None:
    spine = gen.training_spine(repo / "data", n=3_000, seed=2)
    spine = pl.concat([spine.reverse(), spine.head(5)])  # any order, duplicates kept
    ts = store.get_training_set(spine, feature_service=SERVICE)
    df = ts.to_polars()
    assert df.columns == SPINE_COLUMNS + SERVICE_FEATURES
    assert df.height == spine.height
    assert df.select(SPINE_COLUMNS).equals(spine)
    assert df.tail(5).equals(df.slice(3_000 - 5, 5).reverse())
    statuses = {f.ref: f.statuses for f in ts.metadata.features}
    assert sum(statuses["user_profile:age"].values()) == spine.height
    assert df["risk_score"].null_count() == 0  # every merchant is re-scored weekly
    assert df["country"].null_count() == 0  # missing countries default to 'unknown'


def _profile_as_of(users: pl.DataFrame, user_id: int, t: dt.datetime) -> dict[str, Any] | None:
    """The row a correct point-in-time join picks: latest updated_at, then latest created_at."""
    rows = users.filter((pl.col("user_id") == user_id) & (pl.col("updated_at") <= t))
    if rows.is_empty():
        return None
    return rows.sort("updated_at", "created_at").row(-1, named=True)


def test_user_profile_is_point_in_time_correct_for_a_corrected_user(
    store: FeatureStore, repo: Path
) -> None:
    users = pl.read_parquet(repo / "data" / "users.parquet")
    corrected = (
        users.group_by("user_id", "updated_at")
        .agg(pl.len().alias("n"), pl.col("credit_limit").n_unique().alias("limits"))
        .filter((pl.col("n") > 1) & (pl.col("limits") > 1))
        .sort("user_id", "updated_at")
    )
    assert corrected.height, "the generator should write some corrected credit limits"
    user_id, fixed_at = corrected.row(0)[:2]
    rows = users.filter(pl.col("user_id") == user_id).sort("updated_at", "created_at")
    first = rows["updated_at"].min()
    times = sorted(
        {first - US, first, fixed_at - US, fixed_at, fixed_at + US}
        | set(rows["updated_at"])
        | {t - US for t in rows["updated_at"]}
        | {rows["updated_at"].max() + dt.timedelta(days=400)}  # past the 365-day ttl
    )
    spine = pl.DataFrame(
        {"user_id": [user_id] * len(times), "event_timestamp": times},
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    refs = ["user_profile:credit_limit", "user_profile:country", "user_profile:kyc_level"]
    out = store.get_training_set(spine, features=refs).to_polars()
    for row in out.iter_rows(named=True):
        t = row["event_timestamp"]
        want = _profile_as_of(users, user_id, t)
        if want is None or want["updated_at"] < t - dt.timedelta(days=365):
            assert row["credit_limit"] is None and row["country"] == "unknown", t
            continue
        assert row["credit_limit"] == want["credit_limit"], t
        assert row["kyc_level"] == want["kyc_level"], t
        assert row["country"] == (want["country"] or "unknown"), t
    at_fix = out.filter(pl.col("event_timestamp") == fixed_at)["credit_limit"].item()
    tied = users.filter((pl.col("user_id") == user_id) & (pl.col("updated_at") == fixed_at))
    assert at_fix == tied.sort("created_at")["credit_limit"][-1]
    assert at_fix != tied.sort("created_at")["credit_limit"][0]


def test_user_merchant_history_never_includes_the_scored_payment(
    store: FeatureStore, repo: Path
) -> None:
    txns = pl.read_parquet(repo / "data" / "transactions" / "*.parquet")
    pair = (
        txns.group_by("user_id", "merchant_id")
        .agg(pl.len().alias("n"), pl.col("chargeback_at").is_not_null().sum().alias("cb"))
        .sort("cb", "n", "user_id", "merchant_id", descending=True)
        .row(0, named=True)
    )
    history = txns.filter(
        (pl.col("user_id") == pair["user_id"]) & (pl.col("merchant_id") == pair["merchant_id"])
    )
    spine = history.select(
        "user_id", "merchant_id", pl.col("event_time").alias("event_timestamp"), "amount", "channel"
    )
    refs = [
        "user_merchant:pair_txn_count",
        "user_merchant:pair_chargebacks",
        "txn_risk:is_new_pair",
    ]
    out = store.get_training_set(spine, features=refs).to_polars()
    times = history["event_time"].to_list()
    chargebacks = history["chargeback_at"].drop_nulls().to_list()
    # the pair's history from before the data starts: a snapshot stamped at the start
    start = pl.read_parquet(repo / "data" / "user_merchant_daily.parquet").filter(
        (pl.col("user_id") == pair["user_id"])
        & (pl.col("merchant_id") == pair["merchant_id"])
        & (pl.col("snapshot_at") <= txns["event_time"].min())
    )
    before = start["txn_count"].max() or 0
    for row in out.iter_rows(named=True):
        # the daily snapshot at midnight covers everything before that midnight
        midnight = row["event_timestamp"].replace(hour=0, minute=0, second=0, microsecond=0)
        assert row["pair_txn_count"] == before + sum(t < midnight for t in times)
        assert row["pair_chargebacks"] == sum(c < midnight for c in chargebacks)
        assert row["is_new_pair"] == (row["pair_txn_count"] == 0)
    assert out["pair_txn_count"].max() > before and out["pair_txn_count"][0] == before
