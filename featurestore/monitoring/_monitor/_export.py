"""``monitor export``: Prometheus alerting rules and a Grafana dashboard over the metrics the
server exports at ``/metrics`` (names from :mod:`._metric_names`), so that teams can alert and
chart with their own stack instead of (or beside) ``monitor run``'s webhooks.

Every expression first takes ``max by`` the labels it keeps: several server replicas export the
same series (told apart by their ``instance``), and a comparison ``on`` those labels would
otherwise fail on duplicates.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import yaml

from featurestore._config import AlertRule, MonitoringConfig
from featurestore.monitoring._monitor._metric_names import (
    ALERT_FIRING,
    DRIFT,
    DRIFT_FLAGGED,
    DRIFT_THRESHOLD,
    MATCH_RATE,
    MONITOR_LAST_RUN,
    NULL_RATE,
    STATISTICS,
    STATUS_RATE,
    VIEW_AGE,
    VIEW_TTL,
    WINDOW_ROWS,
)
from featurestore.monitoring._monitor._windows import WINDOWS, window_size

__all__ = ["GROUP", "drift_expr", "grafana_dashboard", "prometheus_rules"]

GROUP = "featurestore-monitoring"
_DRIFT_LABELS = "feature, statistic, window"
_FRESHNESS_FOR = "10m"  # a view just past its ttl while a materialization publishes is no alert
_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}


def _quote(text: str) -> str:
    """``text`` as a PromQL double-quoted string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _selector(metric: str, **labels: str) -> str:
    """``metric{label="value",...}``; a value starting with ``=~`` is a regex matcher."""
    parts = [
        f"{k}=~{_quote(v[2:])}" if v.startswith("=~") else f"{k}={_quote(v)}"
        for k, v in labels.items()
    ]
    return f"{metric}{{{','.join(parts)}}}"


def _features_regex(rule: AlertRule) -> dict[str, str]:
    """The feature matcher of a rule limited to some features (none for ``all``)."""
    if rule.features == "all":
        return {}
    return {"feature": "=~" + "|".join(re.escape(ref) for ref in rule.features)}


def _duration(delta: dt.timedelta) -> str:
    """A Prometheus duration such as ``0s``, ``2h`` or ``36h``."""
    seconds = int(delta.total_seconds())
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h" if seconds else "0s"
    return f"{seconds}s"


def _pending(rule: AlertRule) -> str:
    """``for:`` of a rule: a window past its threshold keeps its value until the next window
    (one step: an hour for ``1h``, a day for ``1d`` and ``7d``), so ``consecutive`` windows in a
    row are ``consecutive - 1`` steps of the condition holding after the first."""
    step = min(window_size(rule.window), dt.timedelta(days=1))
    return _duration(step * (rule.consecutive - 1))


def drift_expr(rule: AlertRule) -> str:
    """The PromQL of a rule: its statistic past the fixed or calibrated threshold."""
    labels = {**_features_regex(rule), "statistic": rule.statistic, "window": rule.window}
    value = f"max by ({_DRIFT_LABELS}) ({_selector(DRIFT, **labels)})"
    if rule.threshold == "calibrated":
        limit = f"max by ({_DRIFT_LABELS}) ({_selector(DRIFT_THRESHOLD, **labels)})"
        return f"{value} > on({_DRIFT_LABELS}) {limit}"
    return f"{value} > {rule.threshold!r}"


def _alert_name(name: str) -> str:
    """A Prometheus alert name (letters, digits, ``_``) from a monitoring alert's name."""
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return f"Featurestore_{cleaned}"


def _drift_rule(rule: AlertRule) -> dict[str, Any]:
    """The Prometheus alerting rule of one monitoring alert rule."""
    threshold = "its calibrated threshold" if rule.threshold == "calibrated" else rule.threshold
    feature, stat = "{{ $labels.feature }}", rule.statistic
    origin = f"featurestore alert {rule.name!r}"
    if rule.consecutive == 1:
        description = (
            f"{feature}: {stat} of the newest {rule.window} window is {{{{ $value }}}}, past "
            f"{threshold} ({origin})."
        )
    else:
        description = (
            f"{feature}: {stat} has been past {threshold} in {rule.consecutive} {rule.window} "
            f"windows in a row; the newest is {{{{ $value }}}} ({origin})."
        )
    return {
        "alert": _alert_name(rule.name),
        "expr": drift_expr(rule),
        "for": _pending(rule),
        "labels": {"severity": rule.severity, "featurestore_alert": rule.name},
        "annotations": {
            "summary": f"{feature}: {stat} drift over {rule.window} windows",
            "description": description,
        },
    }


def _freshness_rule() -> dict[str, Any]:
    """The alerting rule of a view whose newest online value is older than its ttl."""
    age = f"max by (view) ({VIEW_AGE})"
    ttl = f"max by (view) ({VIEW_TTL})"
    return {
        "alert": "FeaturestoreViewPastTtl",
        "expr": f"{age} > on(view) {ttl}",
        "for": _FRESHNESS_FOR,
        "labels": {"severity": "warning"},
        "annotations": {
            "summary": "{{ $labels.view }}: newest online value older than the ttl",
            "description": (
                "The newest value of {{ $labels.view }} published online is {{ $value }} s "
                "old, past the view's ttl: its features are served as stale; check "
                "materialization."
            ),
        },
    }


def prometheus_rules(config: MonitoringConfig) -> str:
    """A Prometheus alerting rules file (YAML): one rule per ``monitoring.alerts`` rule over
    the server's drift gauges, and one on a view's newest value older than its ttl."""
    rules = [_drift_rule(rule) for rule in config.alerts] + [_freshness_rule()]
    document = {"groups": [{"name": GROUP, "rules": rules}]}
    return yaml.safe_dump(document, sort_keys=False, width=1000)


def _by(labels: str, selector: str) -> str:
    return f"max by ({labels}) ({selector})"


def _target(ref_id: str, expr: str, legend: str) -> dict[str, Any]:
    return {"refId": ref_id, "datasource": _DATASOURCE, "expr": expr, "legendFormat": legend}


def _panel(
    index: int, title: str, targets: list[dict[str, Any]], unit: str, description: str
) -> dict[str, Any]:
    """A time-series panel, two to a row of the dashboard's grid."""
    return {
        "id": index + 1,
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": _DATASOURCE,
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    }


_Spec = tuple[str, list[dict[str, Any]], str, str]  # title, targets, unit, description


def _feature_specs() -> list[_Spec]:
    """The panels of the selected features over the selected window size."""
    feature = {"feature": "=~$feature", "window": "$window"}
    drift = _selector(DRIFT, **feature, statistic="$statistic")
    threshold = _selector(DRIFT_THRESHOLD, **feature, statistic="$statistic")
    flagged = _selector(DRIFT_FLAGGED, **feature)

    def per_feature(metric: str) -> list[dict[str, Any]]:
        return [_target("A", _by("feature", _selector(metric, **feature)), "{{feature}}")]

    statuses = _by("feature, status", _selector(STATUS_RATE, **feature))
    return [
        (
            "Drift: $statistic over $window windows, against the threshold",
            [
                _target("A", _by("feature", drift), "{{feature}}"),
                _target("B", _by("feature", threshold), "{{feature}} threshold"),
                _target("C", _by("feature", flagged), "{{feature}} flagged"),
            ],
            "short",
            "The drift statistic of each newest window, its calibrated threshold, and 1 when "
            "the window's verdict is flagged.",
        ),
        (
            "Null rate",
            per_feature(NULL_RATE),
            "percentunit",
            "Share of null values served in the newest window.",
        ),
        (
            "Status rates",
            [_target("A", statuses, "{{feature}} {{status}}")],
            "percentunit",
            "Share of values served present, not found, stale, defaulted or invalid.",
        ),
        (
            "Match rate (online against offline)",
            per_feature(MATCH_RATE),
            "percentunit",
            "Share of sampled served values that the offline path reproduces.",
        ),
        (
            "Rows per window",
            per_feature(WINDOW_ROWS),
            "short",
            "Values served in the newest window: drift needs enough of them.",
        ),
    ]


def _other_specs() -> list[_Spec]:
    """The panels of the views' freshness, the alerts and monitor run itself."""
    firing = _by("alert, feature", _selector(ALERT_FIRING, feature="=~$feature"))
    return [
        (
            "Newest value age against the ttl",
            [
                _target("A", _by("view", VIEW_AGE), "{{view}} age"),
                _target("B", _by("view", VIEW_TTL), "{{view}} ttl"),
            ],
            "s",
            "Age of the newest value published online per view; past the ttl, it is stale.",
        ),
        (
            "Alerts firing",
            [_target("A", firing, "{{alert}} {{feature}}")],
            "short",
            "1 while an alert of monitor run fires for the feature.",
        ),
        (
            "Time since the last monitor run",
            [_target("A", f"time() - max({MONITOR_LAST_RUN})", "since the last run")],
            "s",
            "monitor run is expected from cron: a growing age means it stopped.",
        ),
    ]


def _panels() -> list[dict[str, Any]]:
    """The dashboard's panels: per selected feature and window, then per view and alert."""
    return [_panel(i, *spec) for i, spec in enumerate(_feature_specs() + _other_specs())]


def _custom(name: str, values: list[str], current: str) -> dict[str, Any]:
    """A template variable with fixed values."""
    return {
        "name": name,
        "label": name,
        "type": "custom",
        "query": ",".join(values),
        "current": {"text": current, "value": current},
        "options": [{"text": v, "value": v, "selected": v == current} for v in values],
        "hide": 0,
    }


def _templating(config: MonitoringConfig, features: list[str]) -> list[dict[str, Any]]:
    """The data source, the features (all by default), the window and the statistic; the last
    two default to those of the first alert rule."""
    first = config.alerts[0] if config.alerts else None
    query = f"label_values({WINDOW_ROWS}, feature)"
    return [
        {
            "name": "datasource",
            "label": "Data source",
            "type": "datasource",
            "query": "prometheus",
            "hide": 0,
        },
        {
            "name": "feature",
            "label": "feature",
            "type": "query",
            "datasource": _DATASOURCE,
            "query": {"query": query, "refId": "features"},
            "definition": query,
            "refresh": 2,  # on time range change: features come and go with the definitions
            "multi": True,
            "includeAll": True,
            "allValue": ".+",
            "current": {"text": ["All"], "value": ["$__all"]},
            "options": [{"text": ref, "value": ref, "selected": False} for ref in features],
            "sort": 1,
            "hide": 0,
        },
        _custom("window", list(WINDOWS), first.window if first else "1h"),
        _custom("statistic", list(STATISTICS), first.statistic if first else "psi"),
    ]


def grafana_dashboard(config: MonitoringConfig, features: list[str]) -> dict[str, Any]:
    """A Grafana dashboard (JSON model) over the server's monitoring metrics: drift against
    its threshold, null, status and match rates, rows, view age against ttl and alerts, for
    the features chosen in its ``feature`` variable (``features`` are the options it starts
    with)."""
    return {
        "uid": "featurestore-monitoring",
        "title": "featurestore monitoring",
        "tags": ["featurestore"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "1m",
        "time": {"from": "now-7d", "to": "now"},
        "templating": {"list": _templating(config, features)},
        "annotations": {"list": []},
        "panels": _panels(),
    }
