"""The repo the fuzzers run against, and what it must still hold after them.

A small repo with every kind of definition: two entities (integer and string keys), a
single-file source read by a view of plain features (bounds, a default, an expression, every
scalar dtype), a directory source of events (which takes pushes) read by a view of windowed
aggregations and by a view keyed by both entities, a request source, an on-demand view and a
feature service. It is applied and materialized at ``BASE``; ``snapshot`` records what the
known entities (``KNOWN_USERS``) get online and in a training set, which no fuzzed call may
change (the fuzzers never push events of those users).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import polars as pl
from conftest import MERCHANT, USER, definitions, source, view, write_repo

from featurestore import FeatureStore

__all__ = [
    "BASE",
    "KNOWN_MERCHANTS",
    "KNOWN_USERS",
    "REFS",
    "SERVICE",
    "Snapshot",
    "build_repo",
    "known_spine",
    "snapshot",
    "write_fuzz_repo",
]

BASE = dt.datetime(2024, 6, 1, tzinfo=dt.UTC)
KNOWN_USERS = (700001, 700002, 700003)  # 700003 has no profile row and no events
KNOWN_MERCHANTS = ("m-1", "m-2")
SERVICE = "risk_model"

ON_DEMAND = """
txn = RequestSource(
    "txn",
    schema={"amount": pl.Float64, "txn_date": pl.Date, "channel": pl.String},
)


@on_demand_feature_view(
    sources=[txn, user_profile],
    schema={
        "amount_per_age": pl.Float64,
        "days_since_signup": pl.Int64,
        "is_online": pl.Boolean,
    },
)
def txn_risk(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("amount") / pl.col("age")).cast(pl.Float64).alias("amount_per_age"),
        (pl.col("txn_date") - pl.col("signup_date"))
        .dt.total_days()
        .cast(pl.Int64)
        .alias("days_since_signup"),
        (pl.col("channel") == "online").alias("is_online"),
    )


risk_model = FeatureService(
    "risk_model",
    features=[
        user_profile,
        "user_spending:spend_1d",
        "pair:pair_amount",
        "txn_risk:amount_per_age",
    ],
)
"""
DEFINITIONS = definitions(
    USER,
    MERCHANT,
    f"users = {source('users', 'data/users.parquet', 'updated_at')}",
    f"txns = {source('txns', 'data/txns/', created='created')}",
    view(
        "user_profile",
        "users",
        ttl="timedelta(days=3650)",
        owner='"fuzz"',
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("age", pl.Int32, ge=0, le=130)',
            'Feature("score", pl.Float64, allowed=(0.5, 1.5, 2.5))',
            'Feature("vip", pl.Boolean)',
            'Feature("signup_date", pl.Date)',
            'Feature("last_login", pl.Datetime)',
            'Feature("age_next_year", pl.Int64, expr=pl.col("age").cast(pl.Int64) + 1)',
        ],
    ),
    view(
        "user_spending",
        "txns",
        owner='"fuzz"',
        aggregations=[
            'Count(window=timedelta(hours=1), name="txn_count_1h")',
            'Sum("amount", window=timedelta(days=1), name="spend_1d")',
            'Mean("amount", window=timedelta(days=7), name="amount_mean_7d")',
            'Max("amount", window=timedelta(days=7), name="amount_max_7d")',
            'StdDev("amount", window=timedelta(days=7), name="amount_std_7d")',
            'Last("channel", window=timedelta(days=7), name="last_channel", dtype=pl.String)',
            'CountDistinct("merchant_id", window=timedelta(days=7), name="merchants_7d")',
        ],
    ),
    view(
        "pair",
        "txns",
        entities="user, merchant",
        ttl="timedelta(days=30)",
        owner='"fuzz"',
        features=['Feature("pair_amount", pl.Float64, expr=pl.col("amount"), ge=0.0)'],
    ),
    ON_DEMAND,
    doc="Definitions of the fuzzing repo.",
)

PROFILE = [
    "country",
    "age",
    "score",
    "vip",
    "signup_date",
    "last_login",
    "age_next_year",
]
SPENDING = [
    "txn_count_1h",
    "spend_1d",
    "amount_mean_7d",
    "amount_max_7d",
    "amount_std_7d",
    "last_channel",
    "merchants_7d",
]
REFS = [
    *(f"user_profile:{f}" for f in PROFILE),
    *(f"user_spending:{f}" for f in SPENDING),
    "pair:pair_amount",
    "txn_risk:amount_per_age",
    "txn_risk:days_since_signup",
    "txn_risk:is_online",
]


def users_frame() -> pl.DataFrame:
    day = dt.timedelta(days=1)
    return pl.DataFrame(
        {
            "user_id": [700001, 700002, 700001],
            "updated_at": [BASE - 10 * day, BASE - 2 * day, BASE - 40 * day],
            "country": ["FR", None, "DE"],
            "age": [30, 45, 29],
            "score": [0.5, 2.5, 1.5],
            "vip": [True, False, None],
            "signup_date": [dt.date(2020, 1, 1), dt.date(2021, 6, 15), dt.date(2020, 1, 1)],
            "last_login": [dt.datetime(2024, 5, 1, 12, 30), None, None],
        },
        schema_overrides={
            "updated_at": pl.Datetime("us", "UTC"),
            "age": pl.Int32,
            "last_login": pl.Datetime("us"),
        },
    )


def txns_frame() -> pl.DataFrame:
    minute, hour, day = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
    times = [BASE - 30 * minute, BASE - 5 * hour, BASE - 3 * day, BASE - 2 * hour]
    return pl.DataFrame(
        {
            "user_id": [700001, 700001, 700001, 700002],
            "merchant_id": ["m-1", "m-2", "m-1", "m-2"],
            "ts": times,
            "created": [t + minute for t in times],
            "amount": [12.5, 40.0, 7.25, 99.0],
            "channel": ["online", "pos", "pos", "mobile"],
        },
        schema_overrides={"ts": pl.Datetime("us", "UTC"), "created": pl.Datetime("us", "UTC")},
    )


def write_fuzz_repo(root: Path) -> Path:
    """Write the fuzzing repo (config, definitions, source files) at ``root``."""
    data = {"data/users.parquet": users_frame(), "data/txns/base.parquet": txns_frame()}
    return write_repo(root, DEFINITIONS, project="fuzz", data=data)


def build_repo(root: Path) -> Path:
    """Write, apply and materialize (as of ``BASE``) the fuzzing repo at ``root``."""
    store = FeatureStore(write_fuzz_repo(root))
    try:
        store.apply()
        store.materialize(end=BASE)
    finally:
        store.close()
    return root


def known_spine() -> pl.DataFrame:
    """Rows of the known entities, at and around ``BASE``."""
    times = [BASE, BASE - dt.timedelta(hours=3), BASE + dt.timedelta(days=1), BASE]
    return pl.DataFrame(
        {
            "user_id": [700001, 700001, 700002, 700003],
            "merchant_id": ["m-1", "m-2", "m-2", "m-1"],
            "event_timestamp": times,
            "amount": [10.0, 20.0, 30.0, 40.0],
            "txn_date": [dt.date(2024, 6, 1)] * 4,
            "channel": ["online", "pos", None, "online"],
        },
        schema_overrides={"event_timestamp": pl.Datetime("us", "UTC")},
    )


Snapshot = tuple[dict[str, Any], dict[str, Any], pl.DataFrame]


def snapshot(store: FeatureStore) -> Snapshot:
    """What the known entities get: online values and statuses at ``BASE``, and a training
    set of ``known_spine``."""
    spine = known_spine()
    online = store.get_online_features(
        REFS,
        entities={
            "user_id": spine["user_id"].to_list(),
            "merchant_id": spine["merchant_id"].to_list(),
        },
        request_data={c: spine[c].to_list() for c in ("amount", "txn_date", "channel")},
        request_time=BASE,
    )
    training = store.get_training_set(spine, REFS).to_polars()
    return online.values, {k: [str(s) for s in v] for k, v in online.statuses.items()}, training
