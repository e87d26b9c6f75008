"""Feature views of the fraud-detection repo: user and merchant profiles, the history of each
user-merchant pair, the user's recent spending as windowed aggregations, and request-time risk
ratios computed on demand."""

from datetime import timedelta

import polars as pl
from entities import merchant, user
from sources import merchants, transactions, txn_request, user_merchant_daily, users

from featurestore import (
    Count,
    CountDistinct,
    Feature,
    FeatureView,
    Max,
    Mean,
    Sum,
    on_demand_feature_view,
)

MERCHANT_CATEGORIES = (
    "grocery",
    "restaurants",
    "fuel",
    "fashion",
    "electronics",
    "travel",
    "gaming",
    "gift_cards",
)

user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    source=users,
    ttl=timedelta(days=365),
    owner="risk-team",
    description="Cardholder profile as of the latest snapshot.",
    tags={"domain": "identity", "tier": "gold"},
    features=[
        Feature("age", pl.Int32, ge=18, le=120, description="Age in years; adults only."),
        Feature("country", pl.String, default="unknown", description="ISO country code."),
        Feature("kyc_level", pl.Int32, allowed=(0, 1, 2), description="Identity checks passed."),
        Feature("credit_limit", pl.Float64, ge=0, description="Card limit in USD."),
        Feature(
            "tenure_days",
            pl.Int64,
            expr=(pl.col("updated_at") - pl.col("signup_at")).dt.total_days(),
            ge=0,
            description="Days from signup to the snapshot.",
        ),
        Feature(
            "fully_verified",
            pl.Boolean,
            expr=pl.col("email_verified") & pl.col("phone_verified"),
            description="Both email and phone are verified.",
        ),
    ],
)

merchant_profile = FeatureView(
    name="merchant_profile",
    entities=[merchant],
    source=merchants,
    ttl=timedelta(days=30),
    owner="merchant-risk",
    description="Merchant attributes from the weekly risk re-scoring.",
    tags={"domain": "merchants", "tier": "gold"},
    features=[
        Feature("category", pl.String, allowed=MERCHANT_CATEGORIES, default="grocery"),
        Feature("risk_score", pl.Float64, ge=0.0, le=1.0, description="Model-scored risk."),
        Feature("avg_ticket", pl.Float64, ge=0.0, description="Typical amount in USD."),
        Feature(
            "merchant_country",
            pl.String,
            expr=pl.col("country"),
            default="unknown",
            description="ISO country code of the merchant.",
        ),
        Feature("online_only", pl.Boolean, description="Card-not-present sales only."),
    ],
)

user_merchant = FeatureView(
    name="user_merchant",
    entities=[user, merchant],
    source=user_merchant_daily,
    ttl=timedelta(days=90),
    owner="fraud-data",
    description="What the user did at this merchant before today; zero for a new pair.",
    tags={"domain": "behaviour", "tier": "silver"},
    features=[
        Feature(
            "pair_txn_count",
            pl.Int64,
            expr=pl.col("txn_count"),
            ge=0,
            default=0,
            description="Earlier transactions of the user at the merchant.",
        ),
        Feature(
            "pair_chargebacks",
            pl.Int64,
            expr=pl.col("chargeback_count"),
            ge=0,
            default=0,
            description="Chargebacks reported on them so far.",
        ),
        Feature(
            "pair_amount_total",
            pl.Float64,
            expr=pl.col("amount_total"),
            ge=0.0,
            default=0.0,
            description="Their total amount in USD.",
        ),
        Feature(
            "pair_chargeback_rate",
            pl.Float64,
            expr=(pl.col("chargeback_count") / pl.col("txn_count")).round(3),
            ge=0.0,
            le=1.0,
            default=0.0,
            description="Chargebacks per earlier transaction, to three decimals.",
        ),
    ],
)


user_spending = FeatureView(
    name="user_spending",
    entities=[user],
    source=transactions,
    owner="fraud-data",
    description="The cardholder's payments before the one being scored, over sliding windows; "
    "fresh at request time, and moved at once by pushed payments.",
    tags={"domain": "behaviour", "tier": "gold"},
    aggregations=[
        Count(window=timedelta(hours=1), name="txn_count_1h", description="Payments, last hour."),
        Count(window=timedelta(days=1), name="txn_count_24h", description="Payments, last day."),
        Sum("amount", window=timedelta(days=7), name="spend_7d", description="USD, 7 days."),
        Max("amount", window=timedelta(days=7), name="amount_max_7d", description="USD."),
        Mean("amount", window=timedelta(days=30), name="amount_mean_30d", description="USD."),
        CountDistinct(
            "merchant_id",
            window=timedelta(days=7),
            name="merchants_7d",
            description="Distinct merchants paid in 7 days.",
        ),
    ],
)


@on_demand_feature_view(
    # the features it reads, one by one: editing the views' other features leaves it alone
    sources=[
        txn_request,
        "user_profile:credit_limit",
        "user_profile:country",
        "merchant_profile:avg_ticket",
        "merchant_profile:merchant_country",
        "user_merchant:pair_txn_count",
        "user_merchant:pair_amount_total",
    ],
    schema=[
        Feature("amount_vs_ticket", pl.Float64, ge=0.0),
        Feature("amount_vs_limit", pl.Float64, ge=0.0),
        Feature("amount_vs_pair_avg", pl.Float64, ge=0.0, default=1.0),
        Feature("is_new_pair", pl.Boolean),
        Feature("is_cross_border", pl.Boolean),
        Feature("card_not_present", pl.Boolean),
    ],
    owner="fraud-ml",
    tags={"domain": "risk", "tier": "gold"},
)
def txn_risk(df: pl.DataFrame) -> list[pl.Expr]:
    """How unusual the payment is for this user and merchant, computed at request time."""

    def ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
        return pl.when(den > 0).then(num / den)

    amount = pl.col("amount")
    return [
        ratio(amount, pl.col("avg_ticket")).alias("amount_vs_ticket"),
        ratio(amount, pl.col("credit_limit")).alias("amount_vs_limit"),
        ratio(amount * pl.col("pair_txn_count"), pl.col("pair_amount_total")).alias(
            "amount_vs_pair_avg"
        ),
        (pl.col("pair_txn_count") == 0).alias("is_new_pair"),
        (pl.col("country") != pl.col("merchant_country")).alias("is_cross_border"),
        (pl.col("channel") != "pos").alias("card_not_present"),
    ]
