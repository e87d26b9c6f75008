"""Entities of the fraud-detection domain: the cardholder and the merchant."""

from featurestore import Entity

user = Entity(
    "user",
    join_keys=["user_id"],
    description="A cardholder account.",
    tags={"pii": "false"},
)

merchant = Entity(
    "merchant",
    join_keys=["merchant_id"],
    description="A business accepting card payments.",
)
