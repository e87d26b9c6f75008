"""featurestore: features declared once in Python, point-in-time correct training sets on
DuckDB, and the same transforms online.

    from featurestore import FeatureStore
    store = FeatureStore("feature_definitions")
    store.apply()
    train = store.get_training_set(spine, features=["user_profile:age"])
"""

from featurestore.definitions import (
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.errors import (
    ApplyError,
    ConfigError,
    DefinitionError,
    FeatureReferenceError,
    FeatureStoreError,
    RegistryError,
    RepoError,
    SchemaMismatchError,
    SourceError,
    SourceNotFoundError,
    SpineError,
    TransformError,
)
from featurestore.offline.training_set import TrainingSet
from featurestore.store import FeatureStore
from featurestore.validation import FeatureStatus

__version__ = "0.1.0"

__all__ = [
    "ApplyError",
    "ConfigError",
    "DefinitionError",
    "Entity",
    "Feature",
    "FeatureReferenceError",
    "FeatureService",
    "FeatureStatus",
    "FeatureStore",
    "FeatureStoreError",
    "FeatureView",
    "FileSource",
    "OnDemandFeatureView",
    "RegistryError",
    "RepoError",
    "RequestSource",
    "SchemaMismatchError",
    "SourceError",
    "SourceNotFoundError",
    "SpineError",
    "TrainingSet",
    "TransformError",
    "__version__",
    "on_demand_feature_view",
]
