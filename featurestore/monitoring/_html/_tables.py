"""The report page's tables and cell text: a feature's statistics, its example rows, and a
chart's shares per bin."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from featurestore._format import exact, number, percent

__all__ = ["examples_table", "label", "shares_table", "stats_table", "text"]

MAX_EXAMPLES = 20


def text(value: Any, exact_numbers: bool = False) -> str:
    """A value as short readable text (not yet escaped); None is shown as "-".

    ``exact_numbers`` is for example rows (keys, served and offline values): None is "null",
    numbers keep every digit, so that two values that differ never print the same.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, int | float):
        return exact(value) if exact_numbers else number(value)
    if isinstance(value, list | tuple | dict):
        dumped = json.dumps(value, default=str)
        return dumped if len(dumped) <= 200 else dumped[:199] + "…"
    return str(value)


def _td(value: Any, exact_numbers: bool = False) -> str:
    """A table cell holding a formatted value; numbers are right-aligned."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    cell = escape(text(value, exact_numbers))
    return f'<td class="fs-num">{cell}</td>' if is_number else f"<td>{cell}</td>"


def label(key: str) -> str:
    """A statistic's name as a row header: underscores become spaces."""
    return escape(str(key).replace("_", " "))


def stats_table(stats: Mapping[str, Any]) -> str:
    """One row per statistic, in the report's order."""
    if not stats:
        return '<p class="fs-empty">None.</p>'
    rows = "".join(f'<tr><th scope="row">{label(k)}</th>{_td(v)}</tr>' for k, v in stats.items())
    return f'<table class="fs-stats">{rows}</table>'


def examples_table(examples: Sequence[Mapping[str, Any]]) -> str:
    """Up to ``MAX_EXAMPLES`` example rows (e.g. mismatching keys) as a table."""
    if not examples:
        return ""
    shown = examples[:MAX_EXAMPLES]
    columns = list(dict.fromkeys(k for row in shown for k in row))
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(_td(row.get(c), exact_numbers=True) for c in columns) + "</tr>"
        for row in shown
    )
    more = len(examples) - len(shown)
    note = f"<p class='fs-empty'>{more:,} more not shown.</p>" if more > 0 else ""
    return (
        f"<h3>Examples ({len(examples):,})</h3><div class='fs-scroll'><table class='fs-examples'>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}"
    )


def shares_table(
    labels: Sequence[str],
    ref_shares: Sequence[float | None],
    cur_shares: Sequence[float | None],
    ref_label: str,
    cur_label: str,
) -> str:
    """A chart's shares per bin as a folded table, for readers who cannot see the chart."""
    rows = "".join(
        f'<tr><td>{escape(name)}</td><td class="fs-num">{percent(r)}</td>'
        f'<td class="fs-num">{percent(c)}</td></tr>'
        for name, r, c in zip(labels, ref_shares, cur_shares, strict=True)
    )
    return f"""<details class="fs-shares"><summary>Shares per bin as a table</summary>\
<div class="fs-scroll"><table><thead><tr><th scope="col">Bin</th>\
<th scope="col">{escape(ref_label)}</th><th scope="col">{escape(cur_label)}</th></tr></thead>\
<tbody>{rows}</tbody></table></div></details>"""
