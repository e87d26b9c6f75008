"""The parity tests' repo: plain features (expressions, defaults, a ttl, bounds that make values
INVALID, a created timestamp), a view keyed by two entities, aggregations of several kinds over
a directory source, correct on-demand views, and on-demand functions whose result on one row
is not their result on a batch; with generated rows that reach every status."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import polars as pl
from conftest import MERCHANT, TENURE_DAYS, USER, definitions, source, view, write_repo

UTC = dt.UTC
START = dt.datetime(2024, 1, 1, tzinfo=UTC)
DAYS = 60
USERS = 40
MERCHANTS = 8
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US

ON_DEMAND = """
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
"""

DEFINITIONS = definitions(
    "from featurestore.definitions._monitoring import SkewConfig",
    USER,
    MERCHANT,
    view(
        "user_profile",
        source("users", "data/users.parquet", "updated_at", created="created"),
        ttl="timedelta(days=10)",
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("age", pl.Int64, ge=0, le=130)',
            'Feature("score", pl.Float64, skew=SkewConfig(abs_tol=0.0, rel_tol=0.0))',
            TENURE_DAYS,
        ],
    ),
    view(
        "user_merchant",
        source("pairs", "data/pairs.parquet"),
        entities="user, merchant",
        ttl="timedelta(days=20)",
        features=[
            'Feature("n_txn", pl.Int64, default=0)',
            'Feature("avg_amt", pl.Float64, ge=0.0, expr=pl.col("total") / pl.col("n"))',
        ],
    ),
    view(
        "spending",
        source("txns", "data/txns/"),
        aggregations=[
            'Count(window=timedelta(hours=6), name="txn_count_6h")',
            'Sum("amount", window=timedelta(days=1), name="spend_1d")',
            'Mean("amount", window=timedelta(days=7), name="amount_mean_7d")',
            'Max("amount", window=timedelta(days=3), name="amount_max_3d")',
            'Last("amount", window=timedelta(days=2), name="amount_last_2d")',
            'StdDev("amount", window=timedelta(days=7), name="amount_std_7d")',
            'CountDistinct("merchant_id", window=timedelta(days=7), name="merchants_7d")',
        ],
    ),
    view(
        "merchant_activity",
        source("merchant_txns", "data/txns/"),
        entities="merchant",
        aggregations=['Count(window=timedelta(days=1), name="merchant_txns_1d")'],
    ),
    ON_DEMAND,
    doc="Definitions of the parity test repo.",
)

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


def event_times(rng: np.random.Generator, n: int) -> pl.Series:
    """Distinct-enough event times over DAYS days, to the microsecond."""
    us = rng.integers(0, DAYS * DAY_US, size=n) + int(START.timestamp() * 1_000_000)
    return pl.Series(us).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")


def users_frame(rng: np.random.Generator, n: int = 160) -> pl.DataFrame:
    """Profiles with ties on updated_at broken by created, out-of-bounds ages and missing
    countries."""
    updated = event_times(rng, n)
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
    correction = users.head(5).with_columns(
        pl.col("created") + dt.timedelta(hours=5), age=pl.lit(55, pl.Int64)
    )
    return pl.concat([users, correction])


def pairs_frame(rng: np.random.Generator, m: int = 300) -> pl.DataFrame:
    """Pair snapshots; a zero count makes avg_amt INVALID."""
    return pl.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 1, size=m),
            "merchant_id": rng.integers(100, 100 + MERCHANTS, size=m),
            "ts": event_times(rng, m),
            "n_txn": rng.integers(0, 20, size=m),
            "n": rng.integers(0, 5, size=m),
            "total": np.round(rng.lognormal(4.0, 1.0, size=m), 2),
        }
    ).with_columns(
        pl.when(pl.col("n_txn") == 3).then(None).otherwise(pl.col("n_txn")).alias("n_txn")
    )


def txns_frame(rng: np.random.Generator, k: int = 2000) -> pl.DataFrame:
    """Payments, some without an amount."""
    return pl.DataFrame(
        {
            "user_id": rng.integers(1, USERS + 1, size=k),
            "merchant_id": rng.integers(100, 100 + MERCHANTS, size=k),
            "ts": event_times(rng, k),
            "amount": np.round(rng.lognormal(3.5, 1.0, size=k), 2),
            "channel": rng.choice(np.array(["pos", "online", "mobile"]), size=k),
        }
    ).with_columns(
        pl.when(pl.int_range(pl.len()) % 23 == 0)
        .then(None)
        .otherwise(pl.col("amount"))
        .alias("amount")
    )


def repo_data(seed: int = 11) -> dict[str, pl.DataFrame]:
    """Profiles, pair snapshots, and payments in two part files."""
    rng = np.random.default_rng(seed)
    users, pairs, txns = users_frame(rng), pairs_frame(rng), txns_frame(rng)
    half = txns.height // 2
    return {
        "data/users.parquet": users,
        "data/pairs.parquet": pairs,
        "data/txns/part-0.parquet": txns.head(half),
        "data/txns/part-1.parquet": txns.tail(txns.height - half),
    }


def write(root: Path, definitions: str = DEFINITIONS, config: str = "project: parity\n") -> Path:
    """The parity repo with ``definitions`` and its data, written into ``root``."""
    return write_repo(root, definitions, config=config, data=repo_data())
