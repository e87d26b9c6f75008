"""``monitor export``: the Prometheus rules file parses as rules Prometheus accepts, and every
metric, label and selector in its expressions and in the Grafana dashboard's queries names what
the server's collectors export (read back from their exposition text)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from featurestore._config import MonitoringConfig
from featurestore.monitoring._monitor._export import GROUP, grafana_dashboard, prometheus_rules
from featurestore.monitoring._monitor._metric_names import (
    ALERT_FIRING,
    ALERTS_FILE,
    DRIFT,
    DRIFT_THRESHOLD,
    LATEST_FILE,
    MONITORING_DIR,
    STATISTICS,
    STATUSES,
    VIEW_AGE,
    VIEW_TTL,
)
from featurestore.server._metrics import _FreshnessCollector
from featurestore.server._monitor_metrics import MonitorCollector
from tests.monitoring.monitor.payments import START, open_repo, serve_hours

FEATURES = ["payment:amount_v", "payment:channel_v"]
CONFIG = MonitoringConfig.model_validate(
    {
        "alerts": [
            {"name": "amount psi", "features": ["payment:amount_v"], "consecutive": 3},
            {
                "name": "weekly nulls",
                "statistic": "null_rate_change",
                "threshold": 0.05,
                "window": "7d",
                "consecutive": 2,
                "severity": "critical",
            },
            {"name": "ks-now", "statistic": "ks_d", "window": "1d"},
        ]
    }
)
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool"}
KEYWORDS |= {"and", "or", "unless", "offset"}
DURATION = re.compile(r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$")
Series = dict[str, list[dict[str, str]]]  # metric name: the label sets of its samples


def full_point() -> dict[str, Any]:
    """A window point with every value set."""
    out: dict[str, Any] = {"rows": 500, "null_rate": 0.01, "match_rate": 1.0, "verdict": "ok"}
    out |= {f"{s}_rate": 0.2 for s in STATUSES}
    out |= {s: 0.1 for s in STATISTICS} | {f"{s}_threshold": 0.2 for s in STATISTICS}
    return out


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Series:
    """Every series the server's monitoring and freshness collectors export, by metric."""
    directory: Path = tmp_path_factory.mktemp("monitoring")
    windows = {w: {ref: full_point() for ref in FEATURES} for w in ("1h", "1d", "7d")}
    (directory / LATEST_FILE).write_text(json.dumps({"until": "x", "windows": windows}))
    tracks = {a.name: {ref: {"firing": False} for ref in FEATURES} for a in CONFIG.alerts}
    (directory / ALERTS_FILE).write_text(json.dumps({"tracks": tracks}))
    now = dt.datetime.now(dt.UTC)
    store = SimpleNamespace(
        newest_values=lambda: {"payment": now},
        repo=SimpleNamespace(views={"payment": SimpleNamespace(ttl=dt.timedelta(days=1))}),
    )
    registry = CollectorRegistry()
    registry.register(MonitorCollector(directory))
    registry.register(_FreshnessCollector(cast(Any, store)))
    out: Series = {}
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(dict(sample.labels))
    return out


def balanced(expr: str) -> bool:
    """Whether the brackets of ``expr`` (outside string literals) nest properly."""
    stack: list[str] = []
    pairs = {")": "(", "}": "{", "]": "["}
    for char in re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr):
        if char in "({[":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


def selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]]]]:
    """Each instant vector selector ``metric{...}`` or bare ``metric`` of ``expr``: the metric
    and its matchers (label: (operator, value)). Function and aggregation names (followed by
    ``(``), keywords, grouping label lists, numbers and strings are skipped."""
    assert balanced(expr), expr
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)", " ", expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range durations
    out = []
    pattern = r'"(?:[^"\\]|\\.)*"|\{[^{}]*\}|[A-Za-z_:][A-Za-z0-9_:]*|\d+(?:\.\d+)?(?:e-?\d+)?'
    tokens = [m for m in re.finditer(pattern, text)]
    for i, m in enumerate(tokens):
        word = m.group()
        if not re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", word) or word in KEYWORDS:
            continue
        if text[m.end() :].lstrip().startswith("("):
            continue  # a function or an aggregation
        matchers = {}
        after = tokens[i + 1].group() if i + 1 < len(tokens) else ""
        if after.startswith("{") and tokens[i + 1].start() == m.end():
            for name, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"', after):
                matchers[name] = (op, value.replace("\\\\", "\\"))
        out.append((word, matchers))
    return out


def grouping_labels(expr: str) -> set[str]:
    """The labels named in ``by (...)`` and ``on (...)`` clauses."""
    found = re.findall(r"\b(?:by|on)\s*\(([^()]*)\)", expr)
    return {label.strip() for group in found for label in group.split(",") if label.strip()}


def matches(labels: dict[str, str], matchers: dict[str, tuple[str, str]]) -> bool:
    """Whether a sample's labels satisfy a selector's matchers (regexes anchored, as PromQL)."""
    for name, (op, value) in matchers.items():
        actual = labels.get(name, "")
        hit = re.fullmatch(value, actual) is not None if "~" in op else actual == value
        if hit != (op in ("=", "=~")):
            return False
    return True


def check_expr(expr: str, exported: Series) -> None:
    """Every selector of ``expr`` names an exported metric and matches some of its samples;
    every grouping label is a label of the metrics it groups."""
    found = selectors(expr)
    assert found, expr
    labels: set[str] = set()
    for metric, matchers in found:
        assert metric in exported, f"{metric} of {expr!r} is not exported"
        assert any(matches(s, matchers) for s in exported[metric]), f"{metric}{matchers}"
        labels |= {k for s in exported[metric] for k in s}
    assert grouping_labels(expr) <= labels, expr


def test_the_rules_file_holds_one_rule_per_alert_and_a_freshness_rule(exported: Series) -> None:
    document = yaml.safe_load(prometheus_rules(CONFIG))
    (group,) = document["groups"]
    assert group["name"] == GROUP
    rules = group["rules"]
    assert len(rules) == len(CONFIG.alerts) + 1
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert re.fullmatch(r"[A-Za-z_:][A-Za-z0-9_:]*", rule["alert"])
        assert DURATION.match(rule["for"]) and rule["for"]
        assert rule["labels"]["severity"] in ("info", "warning", "critical")
        assert set(rule["annotations"]) == {"summary", "description"}
        check_expr(rule["expr"], exported)
    by_name = {r["labels"].get("featurestore_alert"): r for r in rules}
    assert [r["for"] for r in rules] == ["2h", "24h", "0s", "10m"]  # consecutive - 1 steps
    assert by_name["weekly nulls"]["labels"]["severity"] == "critical"
    assert "{{ $labels.feature }}" in by_name["amount psi"]["annotations"]["summary"]
    freshness = rules[-1]["expr"]
    assert {m for m, _ in selectors(freshness)} == {VIEW_AGE, VIEW_TTL}


def test_a_calibrated_rule_compares_on_the_drift_labels_and_a_fixed_one_with_its_number(
    exported: Series,
) -> None:
    rules = {
        r["labels"].get("featurestore_alert"): r
        for r in yaml.safe_load(prometheus_rules(CONFIG))["groups"][0]["rules"]
    }
    calibrated = rules["amount psi"]["expr"]
    assert "> on(feature, statistic, window)" in calibrated
    (value, _), (limit, matchers) = selectors(calibrated)
    assert (value, limit) == ("featurestore_feature_drift", "featurestore_feature_drift_threshold")
    assert matchers == {
        "feature": ("=~", "payment:amount_v"),
        "statistic": ("=", "psi"),
        "window": ("=", "1h"),
    }
    assert not matches(
        {"feature": "payment:channel_v", "statistic": "psi", "window": "1h"}, matchers
    )
    fixed = rules["weekly nulls"]["expr"]
    assert fixed.endswith("> 0.05")
    ((_, matchers),) = selectors(fixed)
    assert matchers == {"statistic": ("=", "null_rate_change"), "window": ("=", "7d")}


def test_no_alert_rules_still_give_a_valid_file_with_the_freshness_rule() -> None:
    document = yaml.safe_load(prometheus_rules(MonitoringConfig()))
    assert [r["alert"] for r in document["groups"][0]["rules"]] == ["FeaturestoreViewPastTtl"]


def substitute(expr: str, variables: dict[str, str]) -> str:
    """A dashboard query with its template variables replaced by values."""
    return re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), expr)


def test_the_dashboard_queries_exported_metrics_through_its_variables(exported: Series) -> None:
    dashboard = json.loads(json.dumps(grafana_dashboard(CONFIG, FEATURES)))  # JSON as written
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    feature = variables["feature"]
    assert feature["type"] == "query" and feature["multi"] and feature["includeAll"]
    assert [o["value"] for o in feature["options"]] == FEATURES
    check_expr(re.sub(r"label_values\((\w+), \w+\)", r"\1", feature["definition"]), exported)
    assert variables["window"]["current"]["value"] == "1h"  # the first alert rule's
    assert variables["statistic"]["current"]["value"] == "psi"
    titles = " / ".join(p["title"] for p in dashboard["panels"]).lower()
    for topic in ("drift", "threshold", "null rate", "status", "match rate", "ttl", "alert"):
        assert topic in titles
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in dashboard["panels"]:
        assert panel["type"] == "timeseries" and panel["targets"]
        assert panel["datasource"]["uid"] == "${datasource}"
        for target in panel["targets"]:
            for window in variables["window"]["options"]:
                values = {
                    "feature": feature["allValue"],
                    "window": window["value"],
                    "statistic": variables["statistic"]["current"]["value"],
                }
                check_expr(substitute(target["expr"], values), exported)


def test_the_rules_match_what_a_real_monitor_run_exports(make_repo: Callable[..., Path]) -> None:
    """The contract end to end: after ``monitor run``, the collector reads its files and the
    drift and firing series every rule needs are there, with the run's values."""
    alert = "- {name: amount-ks, features: [payment:amount_v], statistic: ks_d, window: 1h}"
    store = open_repo(make_repo, alert)
    try:
        serve_hours(store, range(3), rows=1000, shift=lambda hour: 0.8 if hour == 2 else 0.0)
        store.monitor(until=START + dt.timedelta(hours=3))
        directory = store.repo.data_dir / MONITORING_DIR
    finally:
        store.close()
    registry = CollectorRegistry()
    registry.register(MonitorCollector(directory))
    text = generate_latest(registry).decode()
    series: Series = {}
    values: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            series.setdefault(sample.name, []).append(dict(sample.labels))
            values[(sample.name, frozenset(sample.labels.items()))] = sample.value
    config = MonitoringConfig.model_validate(
        {"alerts": [{"name": "amount-ks", "features": ["payment:amount_v"], "statistic": "ks_d"}]}
    )
    (rule, _) = yaml.safe_load(prometheus_rules(config))["groups"][0]["rules"]
    for metric, matchers in selectors(rule["expr"]):
        assert any(matches(s, matchers) for s in series[metric]), (metric, matchers)
    key = frozenset({"feature": "payment:amount_v", "statistic": "ks_d", "window": "1h"}.items())
    assert values[(DRIFT, key)] > values[(DRIFT_THRESHOLD, key)]  # the shifted last hour
    firing = frozenset({"alert": "amount-ks", "feature": "payment:amount_v"}.items())
    assert values[(ALERT_FIRING, firing)] == 1
