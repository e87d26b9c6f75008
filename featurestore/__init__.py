"""featurestore: features declared once in Python, point-in-time correct training sets on
DuckDB, and the same transforms online.

    from featurestore import FeatureStore
    store = FeatureStore("feature_definitions")
    store.apply()
    train = store.get_training_set(spine, features=["user_profile:age"])
"""

from featurestore._client import Client
from featurestore._store import FeatureStore
from featurestore._value_rules import FeatureStatus
from featurestore.definitions import (
    Count,
    CountDistinct,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    Last,
    Max,
    Mean,
    Min,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    StdDev,
    Sum,
    TableSource,
    on_demand_feature_view,
)
from featurestore.definitions._monitoring import DriftConfig, SkewConfig
from featurestore.errors import (
    ApplyError,
    ConfigError,
    DefinitionError,
    FeatureReferenceError,
    FeatureStoreError,
    MaterializationGuardError,
    OnlineRequestError,
    OnlineStoreError,
    OnlineStoreUnavailableError,
    PushError,
    RegistryError,
    RepoError,
    ReportError,
    SchemaMismatchError,
    SourceError,
    SourceNotFoundError,
    SpineError,
    TransformError,
)
from featurestore.offline._training_set import TrainingSet
from featurestore.serving._response import OnlineResponse

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "Client",
    "ConfigError",
    "Count",
    "CountDistinct",
    "DefinitionError",
    "DriftConfig",
    "Entity",
    "Feature",
    "FeatureReferenceError",
    "FeatureService",
    "FeatureStatus",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FileSource",
    "Last",
    "MaterializationGuardError",
    "Max",
    "Mean",
    "Min",
    "OnDemandFeatureView",
    "OnlineRequestError",
    "OnlineResponse",
    "OnlineStoreError",
    "OnlineStoreUnavailableError",
    "PushError",
    "PushSource",
    "RegistryError",
    "RepoError",
    "ReportError",
    "RequestSource",
    "SchemaMismatchError",
    "SkewConfig",
    "SourceError",
    "SourceNotFoundError",
    "SpineError",
    "StdDev",
    "Sum",
    "TableSource",
    "TrainingSet",
    "TransformError",
    "__version__",
    "on_demand_feature_view",
]
