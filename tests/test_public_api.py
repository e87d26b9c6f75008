"""The public surface: ``featurestore.__all__`` is pinned, and importing the package stays
light (no optional backends such as redis or fastapi)."""

from __future__ import annotations

import subprocess
import sys

import featurestore

EXPECTED_ALL = [
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
    "RegistryError",
    "RepoError",
    "ReportError",
    "PushSource",
    "RequestSource",
    "SchemaMismatchError",
    "SkewConfig",
    "SourceError",
    "SourceNotFoundError",
    "SpineError",
    "StdDev",
    "Sum",
    "TrainingSet",
    "TransformError",
    "__version__",
    "on_demand_feature_view",
]


def test_all_is_pinned() -> None:
    assert sorted(featurestore.__all__) == sorted(EXPECTED_ALL)
    assert len(set(featurestore.__all__)) == len(featurestore.__all__)


def test_every_public_name_exists() -> None:
    for name in featurestore.__all__:
        assert hasattr(featurestore, name), name
    assert isinstance(featurestore.__version__, str) and featurestore.__version__


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from featurestore import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(EXPECTED_ALL)


def test_import_does_not_load_optional_backends() -> None:
    code = (
        "import sys, featurestore\n"
        "heavy = ['redis', 'fastapi', 'uvicorn', 'starlette', 'pandas']\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
