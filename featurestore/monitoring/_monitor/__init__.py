"""Continuous monitoring: hourly summaries of the serving log counted at a reference's fixed
points, drift statistics per window from sums of them, calibrated thresholds, and alert rules
evaluated by ``monitor run`` (see :func:`monitor` and :func:`monitor_history`)."""

from featurestore.monitoring._monitor._alerts import AlertEvent
from featurestore.monitoring._monitor._api import monitor, monitor_history, monitor_report
from featurestore.monitoring._monitor._export import grafana_dashboard, prometheus_rules
from featurestore.monitoring._monitor._report import FeatureTrend, MonitorReport
from featurestore.monitoring._monitor._run import MonitorRun

__all__ = [
    "AlertEvent",
    "FeatureTrend",
    "MonitorReport",
    "MonitorRun",
    "grafana_dashboard",
    "monitor",
    "monitor_history",
    "monitor_report",
    "prometheus_rules",
]
