"""The Prometheus names of monitoring's metrics, in one place: the server exports them at
``/metrics`` and ``monitor export`` writes alert rules and a dashboard over them, so both
import these constants and cannot drift apart.

The server sits above monitoring, so the names live here, where both may import them.
"""

from __future__ import annotations

from featurestore._value_rules import FeatureStatus
from featurestore.monitoring._monitor._statistics import STATISTICS

__all__ = [
    "ALERTS_FILE",
    "ALERT_FIRING",
    "DRIFT",
    "DRIFT_FLAGGED",
    "DRIFT_THRESHOLD",
    "LATEST_FILE",
    "MATCH_RATE",
    "MONITORING_DIR",
    "MONITOR_LAST_RUN",
    "NULL_RATE",
    "STATISTICS",
    "STATUSES",
    "STATUS_RATE",
    "VIEW_AGE",
    "VIEW_TTL",
    "WINDOW_ROWS",
]

# what ``monitor run`` writes under the repo's data directory, and the server reads
MONITORING_DIR = "monitoring"
LATEST_FILE = "latest.json"  # the newest window of each size, per feature
ALERTS_FILE = "alerts.json"  # where each alert rule stands, per feature

# per feature and window ({feature, window} unless noted), from the newest window of each size
DRIFT = "featurestore_feature_drift"  # {feature, statistic, window}
DRIFT_THRESHOLD = "featurestore_feature_drift_threshold"  # {feature, statistic, window}
DRIFT_FLAGGED = "featurestore_feature_drift_flagged"  # 1 when the window's verdict is flagged
NULL_RATE = "featurestore_feature_null_rate"
STATUS_RATE = "featurestore_feature_status_rate"  # {feature, status, window}
WINDOW_ROWS = "featurestore_feature_window_rows"
MATCH_RATE = "featurestore_feature_match_rate"  # sampled online/offline agreement

MONITOR_LAST_RUN = "featurestore_monitor_last_run_timestamp_seconds"
ALERT_FIRING = "featurestore_alert_firing"  # {alert, feature}: 1 while monitor run's alert fires

# per view: the age of the newest value published online, and the view's ttl
VIEW_AGE = "featurestore_newest_value_age_seconds"
VIEW_TTL = "featurestore_view_ttl_seconds"

# the serving statuses whose ``<status>_rate`` a window point holds, as the ``status`` label
# (the ``statistic`` label takes the drift statistics, STATISTICS)
STATUSES = tuple(s.value.lower() for s in FeatureStatus)
