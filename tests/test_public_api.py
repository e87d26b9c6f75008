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
    "TableSource",
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


def _loaded(module: str, heavy: list[str]) -> list[str]:
    """Which of ``heavy`` a fresh interpreter has loaded after importing ``module``."""
    code = f"import sys, {module}\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return [m for m in result.stdout.strip().split(",") if m]


def test_import_does_not_load_optional_backends() -> None:
    assert _loaded("featurestore", ["redis", "fastapi", "uvicorn", "starlette", "pandas"]) == []


def test_the_command_line_loads_scipy_and_the_server_only_when_used() -> None:
    """scipy takes most of a second to import: every command and server start would pay it."""
    assert _loaded("featurestore.cli", ["scipy", "fastapi", "uvicorn", "redis"]) == []


# what each package offers the layers above it (and users who reach below the root); every
# other module of a package is private (``_name.py``) and may move
PACKAGE_ALL = {
    "featurestore.definitions": [
        "Aggregation", "BatchSource", "Count", "CountDistinct", "Entity", "Feature",
        "FeatureService", "FeatureView", "FileSource", "Last", "Max", "Mean", "Min",
        "OnDemandFeatureView", "PushSource", "RequestSource", "StdDev", "Sum", "TableSource",
        "on_demand_feature_view",
    ],
    "featurestore.sources": [
        "append_part", "check_view", "ident", "key_type_problems", "part_path", "pushed_frame",
        "read_schema", "reading", "scan_sql", "sql_string", "timestamp_sql", "view_problems",
    ],
    "featurestore.offline": [
        "EventRange", "OfflineEngine", "SpineLike", "TrainingSet", "TrainingSetFeature",
        "TrainingSetMetadata", "read_spine",
    ],
    "featurestore.online": [
        "GuardCheck", "GuardReport", "MaterializationResult", "MaterializationState",
        "OnlineStore", "PushMode", "PushResult", "open_online_store",
    ],
    "featurestore.serving": [
        "OnlineFeatures", "OnlineResponse", "OnlineRetriever", "ReloadResult",
        "ServingLogWriter", "read_serving_log",
    ],
    "featurestore.monitoring": [
        "AlertEvent", "DriftFeature", "DriftReport", "FeatureDrift", "FeatureTrend",
        "MonitorReport", "MonitorRun", "ParityFeatureResult", "ParityReport", "RepoStatus",
        "ReportInputs", "ServingLogSide", "ServingLogStatus", "Side", "SkewFeatureResult",
        "SkewReport", "SourceSide", "TrainingSetSide", "ViewStatus",
        "build_drift_report", "build_skew_report", "build_status", "check_parity",
        "grafana_dashboard", "monitor", "monitor_history", "monitor_report", "parse_side",
        "prometheus_rules", "render_report", "to_side",
    ],
    "featurestore.monitoring.parity": ["ParityFeatureResult", "ParityReport", "check_parity"],
    "featurestore.cli": ["main"],
    "featurestore.server": ["create_app", "serve"],
}  # fmt: skip


def test_package_surfaces_are_pinned() -> None:
    import importlib

    for name, expected in PACKAGE_ALL.items():
        package = importlib.import_module(name)
        assert sorted(package.__all__) == sorted(expected), name
        for attr in expected:
            assert getattr(package, attr) is not None, f"{name}.{attr}"


def test_every_public_package_has_a_pinned_init() -> None:
    """Every package is pinned above, except private ones (``_name/``) inside a package."""
    from pathlib import Path

    root = Path(featurestore.__file__).parent
    packages = {
        ".".join(p.parent.relative_to(root.parent).parts)
        for p in root.rglob("*.py")
        if p.parent != root and not p.parent.name.startswith("_")
    }
    assert packages == set(PACKAGE_ALL)
