"""The public API as a user's code meets it, with the types it must have pinned by
``assert_type``. Checked by tests/test_typing.py under mypy --strict and strict pyright; never
imported or run. The ``type: ignore`` lines are calls that must stay type errors (of whatever
code): both checkers report an ignore that suppresses nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import assert_type

import pandas as pd
import polars as pl

from featurestore import (
    Client,
    Count,
    CountDistinct,
    DriftConfig,
    Entity,
    Feature,
    FeatureService,
    FeatureStatus,
    FeatureStore,
    FeatureView,
    FileSource,
    Last,
    Max,
    Mean,
    Min,
    OnDemandFeatureView,
    OnlineResponse,
    PushSource,
    RequestSource,
    SkewConfig,
    StdDev,
    Sum,
    TrainingSet,
    on_demand_feature_view,
)
from featurestore.online import PushResult

WEEK = dt.timedelta(days=7)

user = Entity("user", join_keys=["user_id"], tags={"pii": "false"})
users = FileSource(name="users", path="data/users.parquet", timestamp_field="updated_at")
txns = FileSource("txns", path="data/txns/", timestamp_field="ts", file_format="parquet")
txn_push = PushSource("txn_push", batch_source=txns)
txn_request = RequestSource("txn_request", schema={"amount": pl.Float64, "channel": "String"})

age = Feature("age", pl.Int32, ge=0, le=130, default=0)
assert_type(age.dtype, pl.DataType)
user_profile = FeatureView(
    "user_profile",
    entities=[user],
    source=users,
    owner="risk-team",
    ttl=dt.timedelta(days=365),
    features=[
        age,
        Feature("country", "String", allowed=["de", "fr"], nullable=False),
        Feature("signup", pl.Datetime("us", "UTC"), ge=dt.datetime(2000, 1, 1, tzinfo=dt.UTC)),
        Feature("score", pl.Float64, drift=DriftConfig(psi_flag=0.2), skew=SkewConfig()),
        Feature("adult", pl.Boolean, expr=pl.col("age") >= 18),
    ],
)
user_spending = FeatureView(
    name="user_spending",
    entities=[user],
    source=txn_push,
    owner="fraud-data",
    aggregations=[
        Count(window=dt.timedelta(hours=1), name="txn_count_1h"),
        Sum("amount", window=WEEK, name="spend_7d", dtype=pl.Int64),
        Mean("amount", window=WEEK, name="amount_mean_7d"),
        Min("amount", window=WEEK, name="amount_min_7d"),
        Max("amount", window=WEEK, name="amount_max_7d", dtype="Float32"),
        Last("channel", window=WEEK, name="last_channel", dtype=pl.String),
        StdDev("amount", window=WEEK, name="amount_std_7d"),
        CountDistinct("merchant_id", window=WEEK, name="merchants_7d"),
    ],
)
assert_type(user_spending.aggregations[0].dtype, pl.DataType)


@on_demand_feature_view(
    sources=[txn_request, user_profile, "user_spending:spend_7d"],
    schema={"amount_per_age": pl.Float64},
)
def txn_risk(df: pl.DataFrame) -> list[pl.Expr]:
    return [(pl.col("amount") / pl.col("age")).alias("amount_per_age")]


assert_type(txn_risk, OnDemandFeatureView)
fraud_v1 = FeatureService("fraud_v1", [user_profile, txn_risk, "user_spending:spend_7d"])

Count("amount", window=WEEK, name="n")  # type: ignore  # a count takes no column
Sum(window=WEEK, name="total")  # type: ignore  # the column is required
Feature("age")  # type: ignore  # so is the dtype
Feature("age", pl.Int32, ge="zero")  # type: ignore  # bounds are numbers or times


def offline(store: FeatureStore, spine: pl.DataFrame) -> None:
    """Training sets and the files they are saved to."""
    train = store.get_training_set(spine, feature_service="fraud_v1")
    assert_type(train, TrainingSet)
    assert_type(train.to_polars(), pl.DataFrame)
    assert_type(train.to_pandas(), pd.DataFrame)
    assert_type(train.save("datasets/fraud_v1.parquet"), Path)
    assert_type(TrainingSet.load("datasets/fraud_v1.parquet"), TrainingSet)
    week = store.get_training_set(features=["user_profile:age"], start=dt.datetime(2025, 3, 1))
    assert_type(week.metadata.fingerprints(), dict[str, str])


def online(store: FeatureStore, client: Client) -> None:
    """The library and the HTTP client answer with the same response."""
    for source in (store, client):
        resp = source.get_online_features(
            feature_service="fraud_v1",
            entities={"user_id": [7, 9]},
            request_data={"amount": [12.0, 99.5]},
        )
        assert_type(resp, OnlineResponse)
        assert_type(resp.to_polars(include_statuses=True), pl.DataFrame)
        assert_type(resp.to_pandas(), pd.DataFrame)
        assert_type(resp.fingerprints, dict[str, str])
        assert_type(resp.statuses["age"][0], FeatureStatus)
        assert_type(source.push("txn_push", [{"user_id": 7, "amount": 3.5}]), PushResult)


def opened() -> None:
    """Both are made from plain values; the client is a context manager."""
    store = FeatureStore("feature_definitions")
    store.apply()
    with Client("http://127.0.0.1:6566", token="secret") as client:
        online(store, client)
