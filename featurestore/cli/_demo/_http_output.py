"""What the demo's HTTP step prints: the served rows (first feature of each view and a tally
of statuses), the server's request and value counters, and the same request as curl."""

from __future__ import annotations

import datetime as dt
import json
import shlex
from collections import Counter
from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

from featurestore._format import number
from featurestore._value_rules import FeatureStatus
from featurestore.cli._demo._compact import fits
from featurestore.cli._render import STATUS_STYLES, status_counts
from featurestore.serving import OnlineResponse

__all__ = ["curl_command", "http_table", "metrics_lines", "metrics_summary"]

TABLE_FEATURES = 4  # features shown in the table (the first of each view)
ONLINE_ENDPOINT = "/v1/online-features"


def _cell(value: Any, status: FeatureStatus) -> Text:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else None
    if text is None:
        text = number(value) if isinstance(value, int | float) else str(value)
    cell = Text(text, style="dim" if value is None else "")
    cell.append(f" {status.value}", style=STATUS_STYLES[status])
    return cell


def http_table(resp: OnlineResponse, width: int | None = None) -> Table:
    """One line per entity row: its keys, the first feature of each view (value and status)
    and the tally of every feature's status; as many views as fit in ``width``, if given."""
    firsts: dict[str, str] = {}
    for column, ref in resp.refs.items():
        firsts.setdefault(ref.partition(":")[0], column)
    columns = list(firsts.values())[:TABLE_FEATURES]
    table = _table(resp, columns)
    while width is not None and len(columns) > 1 and not fits(table, width):
        columns.pop()
        table = _table(resp, columns)
    return table


def _table(resp: OnlineResponse, columns: list[str]) -> Table:
    """The table of :func:`http_table` with the given feature columns."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for key in resp.entities:
        table.add_column(key, no_wrap=True, min_width=len(key))
    for column in columns:
        table.add_column(column, no_wrap=True)
    tally = f"statuses of the {len(resp.values)} features"
    table.add_column(tally, no_wrap=True, min_width=len(tally))
    for i in range(resp.row_count):
        counts = Counter(resp.statuses[c][i] for c in resp.values)
        table.add_row(
            *("null" if v[i] is None else str(v[i]) for v in resp.entities.values()),
            *(_cell(resp.values[c][i], resp.statuses[c][i]) for c in columns),
            status_counts({s.value: n for s, n in counts.items()}),
        )
    return table


def _online_samples(text: str) -> tuple[Counter[str], Counter[str]]:
    """Requests to the online endpoint by HTTP status, and values served by feature status."""
    from prometheus_client.parser import text_string_to_metric_families

    requests: Counter[str] = Counter()
    values: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "featurestore_served_values_total":
                values[sample.labels["status"]] += int(sample.value)
            elif (
                sample.name == "featurestore_http_requests_total"
                and sample.labels.get("endpoint") == ONLINE_ENDPOINT
            ):
                requests[sample.labels.get("status", "?")] += int(sample.value)
    return requests, values


def metrics_lines(text: str) -> list[str]:
    """The request counter lines of the online endpoint, and served values summed by status."""
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("featurestore_http_requests_total{")
        and f'endpoint="{ONLINE_ENDPOINT}"' in line
    ]
    served = " · ".join(f"{s} {number(n)}" for s, n in _online_samples(text)[1].most_common())
    return [*lines, f"featurestore_served_values_total summed by status: {served or 'none'}"]


def metrics_summary(text: str) -> str:
    """The same counters in one line: requests by HTTP status, values by feature status."""
    requests, values = _online_samples(text)
    codes = ", ".join(f"{number(n)} answered {code}" for code, n in sorted(requests.items()))
    served = " · ".join(f"{s} {number(n)}" for s, n in values.most_common())
    return f"online requests {codes or 'none'}; values: {served or 'none'}"


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def curl_command(url: str, body: dict[str, Any], token: str | None) -> str:
    """``curl`` posting ``body`` to the online endpoint of ``url`` (a token placeholder if the
    server wants one)."""
    auth = " -H 'Authorization: Bearer <token>'" if token else ""
    return (
        f"curl -s {url}/v1/online-features -H 'Content-Type: application/json'{auth} "
        f"-d {shlex.quote(json.dumps(body, default=_json_value))}"
    )
