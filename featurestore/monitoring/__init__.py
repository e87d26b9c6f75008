"""Monitoring: the drift, skew and parity reports, the repo status, and their HTML. Each is
built from narrow inputs (:class:`ReportInputs`: definitions, registry, offline engine and a
serving-log reader), never from the ``FeatureStore`` facade."""

from featurestore.monitoring._drift import (
    DriftFeature,
    DriftReport,
    FeatureDrift,
    ServingLogSide,
    Side,
    SourceSide,
    TrainingSetSide,
    build_drift_report,
    parse_side,
    to_side,
)
from featurestore.monitoring._html import render_report
from featurestore.monitoring._inputs import ReportInputs
from featurestore.monitoring._monitor import (
    AlertEvent,
    FeatureTrend,
    MonitorReport,
    MonitorRun,
    grafana_dashboard,
    monitor,
    monitor_history,
    monitor_report,
    prometheus_rules,
)
from featurestore.monitoring._skew import SkewFeatureResult, SkewReport, build_skew_report
from featurestore.monitoring._status import RepoStatus, ServingLogStatus, ViewStatus, build_status
from featurestore.monitoring.parity import ParityFeatureResult, ParityReport, check_parity

__all__ = [
    "AlertEvent",
    "DriftFeature",
    "DriftReport",
    "FeatureDrift",
    "FeatureTrend",
    "MonitorReport",
    "MonitorRun",
    "ParityFeatureResult",
    "ParityReport",
    "RepoStatus",
    "ReportInputs",
    "ServingLogSide",
    "ServingLogStatus",
    "Side",
    "SkewFeatureResult",
    "SkewReport",
    "SourceSide",
    "TrainingSetSide",
    "ViewStatus",
    "build_drift_report",
    "build_skew_report",
    "build_status",
    "check_parity",
    "grafana_dashboard",
    "monitor",
    "monitor_history",
    "monitor_report",
    "parse_side",
    "prometheus_rules",
    "render_report",
    "to_side",
]
