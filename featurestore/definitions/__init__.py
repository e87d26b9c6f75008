"""Pure definitions: frozen pydantic models with no IO and no engine imports."""

from featurestore.definitions._aggregation import (
    Aggregation,
    Count,
    CountDistinct,
    Last,
    Max,
    Mean,
    Min,
    StdDev,
    Sum,
)
from featurestore.definitions._entity import Entity
from featurestore.definitions._feature import Feature
from featurestore.definitions._on_demand import OnDemandFeatureView, on_demand_feature_view
from featurestore.definitions._service import FeatureService
from featurestore.definitions._sources import (
    BatchSource,
    FileSource,
    PushSource,
    RequestSource,
    TableSource,
)
from featurestore.definitions._view import FeatureView

__all__ = [
    "Aggregation",
    "BatchSource",
    "Count",
    "CountDistinct",
    "Entity",
    "Feature",
    "FeatureService",
    "FeatureView",
    "FileSource",
    "Last",
    "Max",
    "Mean",
    "Min",
    "OnDemandFeatureView",
    "PushSource",
    "RequestSource",
    "StdDev",
    "Sum",
    "TableSource",
    "on_demand_feature_view",
]
