"""``get-online``: served values over their statuses, in tables that fit the console, or JSON."""

from __future__ import annotations

import datetime as dt
import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from featurestore._format import number
from featurestore._times import as_utc
from featurestore.cli._render._console import timestamp
from featurestore.cli._render._statuses import STATUS_STYLES, status_totals
from featurestore.serving import OnlineResponse

__all__ = ["online", "online_json", "value_text"]

SIZED_ROWS = 50  # rows measured when deciding how many feature columns fit in one table


def value_text(value: Any) -> str:
    """A feature value as the CLI shows it: null, true/false, floats with a decimal point."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1e6:
            return f"{value:,.2f}"
        text = f"{value:.6g}"
        return text if any(c in text for c in ".ein") else f"{text}.0"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _online_table(
    resp: OnlineResponse, columns: Sequence[str], rows: range, title: str | None
) -> Table:
    """The entity keys (or row numbers) and ``columns``, value over status, fingerprints below."""
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        show_edge=False,
        pad_edge=False,
    )
    keys = list(resp.entities) or ["row"]  # features of request data alone: number the rows
    for i, key in enumerate(keys):
        table.add_column(key, footer="fingerprint" if i == 0 else "", no_wrap=True)
    for column in columns:
        fingerprint = resp.fingerprints.get(resp.refs[column], "-")
        table.add_column(column, footer=Text(fingerprint, style="dim"), no_wrap=True)
    for i in rows:
        cells: list[Text | str] = [value_text(v[i]) for v in resp.entities.values()] or [str(i + 1)]
        for column in columns:
            value, status = resp.values[column][i], resp.statuses[column][i]
            cell = Text(value_text(value), style="dim" if value is None else "")
            cell.append("\n")
            cell.append(status.value, style=STATUS_STYLES[status])
            cells.append(cell)
        table.add_row(*cells)
    return table


def _even_parts(columns: list[str], parts: int) -> list[list[str]]:
    size = -(-len(columns) // parts)
    return [columns[i : i + size] for i in range(0, len(columns), size)]


def _pack_columns(out: Console, resp: OnlineResponse, sample: range) -> list[list[str]]:
    """Feature columns split into tables that fit the console: whole views share a table while
    they fit; a view too wide for one table is split into even parts."""
    groups: dict[str, list[str]] = {}
    for column, ref in resp.refs.items():
        groups.setdefault(ref.partition(":")[0], []).append(column)
    unbounded = out.options.update_width(1_000_000)

    def fits(columns: list[str]) -> bool:
        table = _online_table(resp, columns, sample, None)
        return Measurement.get(out, unbounded, table).maximum <= out.width

    chunks: list[list[str]] = []
    current: list[str] = []
    for columns in groups.values():
        if fits(current + columns):
            current += columns
            continue
        if current:
            chunks.append(current)
            current = []
        if fits(columns):
            current = list(columns)
            continue
        parts = 2
        while parts < len(columns) and not all(map(fits, _even_parts(columns, parts))):
            parts += 1
        chunks += _even_parts(columns, parts)
    if current:
        chunks.append(current)
    return chunks


def online(out: Console, resp: OnlineResponse) -> None:
    """One row per entity row and a column per feature (value over status, fingerprint below);
    features spread over several tables, view by view, when they do not fit in one."""
    n = resp.row_count
    out.print(
        f"[bold]{number(n)}[/] entity row(s) x [bold]{len(resp.values)}[/] feature(s), "
        f"request time {timestamp(as_utc(resp.request_time))} UTC"
    )
    chunks = _pack_columns(out, resp, range(min(n, SIZED_ROWS)))
    for columns in chunks:
        views = dict.fromkeys(resp.refs[c].partition(":")[0] for c in columns)
        title = escape(" · ".join(views)) if len(chunks) > 1 else None
        out.print(_online_table(resp, columns, range(n), title))
    totals = Counter(s.value for column in resp.statuses.values() for s in column)
    line = status_totals(totals)
    if line is not None:
        out.print(line)


def online_json(resp: OnlineResponse) -> dict[str, Any]:
    """Values, statuses and fingerprints of an online response as JSON data."""
    return {
        "request_time": resp.request_time.isoformat(),
        "entities": resp.entities,
        "features": resp.values,
        "statuses": {c: [s.value for s in col] for c, col in resp.statuses.items()},
        "fingerprints": resp.fingerprints,
    }
