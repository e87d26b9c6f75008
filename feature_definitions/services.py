"""Feature services: the versioned feature sets models consume."""

from features import merchant_profile, txn_risk, user_merchant, user_profile

from featurestore import FeatureService

fraud_detection_v1 = FeatureService(
    "fraud_detection_v1",
    features=[user_profile, merchant_profile, user_merchant, txn_risk],
    owner="fraud-ml",
    description="Features of the card-fraud classifier, version 1.",
    tags={"model": "fraud_gbm"},
)
