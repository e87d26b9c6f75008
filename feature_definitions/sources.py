"""Where feature rows come from: Parquet files under data/ (see generate_data.py), and the
columns a payment request carries."""

import polars as pl

from featurestore import FileSource, RequestSource

users = FileSource(
    name="users",
    path="data/users.parquet",
    timestamp_field="updated_at",
    created_timestamp_field="created_at",
    description="Profile snapshots from the accounts database; a late correction shares "
    "updated_at with the row it fixes and has a later created_at.",
    owner="accounts-team",
)

merchants = FileSource(
    name="merchants",
    path="data/merchants.parquet",
    timestamp_field="updated_at",
    description="Weekly merchant risk re-scoring: category, risk score, typical ticket.",
    owner="merchant-risk",
)

user_merchant_daily = FileSource(
    name="user_merchant_daily",
    path="data/user_merchant_daily.parquet",
    timestamp_field="snapshot_at",
    description="Cumulative history of each user-merchant pair, snapshotted once a day "
    "after a day with activity; a snapshot covers only what happened before its time.",
    owner="fraud-data",
)

transactions = FileSource(
    name="transactions",
    path="data/transactions/",
    timestamp_field="event_time",
    description="Card transactions with the fraud label and chargeback time.",
    owner="payments",
)

txn_request = RequestSource(
    "txn_request",
    schema={"amount": pl.Float64, "channel": pl.String},
    description="The payment being scored: its amount and channel (pos, online, mobile).",
)
