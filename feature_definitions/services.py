"""Feature services: the versioned feature sets models consume."""

from features import merchant_profile, txn_risk, user_merchant, user_profile, user_spending

from featurestore import FeatureService

fraud_detection_v1 = FeatureService(
    "fraud_detection_v1",
    features=[user_profile, merchant_profile, user_merchant, txn_risk],
    owner="fraud-ml",
    description="Features of the card-fraud classifier, version 1.",
    tags={"model": "fraud_gbm"},
)

fraud_detection_v2 = FeatureService(
    "fraud_detection_v2",
    features=[user_profile, merchant_profile, user_merchant, user_spending, txn_risk],
    owner="fraud-ml",
    description="Version 1 plus the user's recent spending (windowed aggregations).",
    tags={"model": "fraud_gbm"},
)
