"""A feature's drift over time as inline SVG: the statistic per window as a line, its threshold
per window as a dashed step line, windows past the threshold as red dots, with gridlines, the
first and last window's dates under the axis, a sentence for screen readers and the points as
a table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from featurestore.monitoring._html._text import significant
from featurestore.monitoring._time_text import readable

__all__ = ["series_chart"]

W, H = 600, 200
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 16, 34


def _y(value: float, top: float) -> float:
    return TOP + (H - TOP - BOTTOM) * (1 - value / top)


def _x(i: int, n: int) -> float:
    return LEFT + (W - LEFT - RIGHT) * (i + 0.5) / n


def _finite(value: Any) -> float | None:
    v = None if value is None else float(value)
    return v if v is not None and math.isfinite(v) else None


def _path(values: Sequence[float | None], top: float, step: bool) -> str:
    """An SVG path through the values, broken where one is missing."""
    parts, pen_down = [], False
    n = len(values)
    for i, v in enumerate(values):
        if v is None:
            pen_down = False
            continue
        x, y = _x(i, n), _y(v, top)
        if step:
            half = (W - LEFT - RIGHT) / n / 2
            parts.append(f"{'L' if pen_down else 'M'}{x - half:.1f},{y:.1f}L{x + half:.1f},{y:.1f}")
        else:
            parts.append(f"{'L' if pen_down else 'M'}{x:.1f},{y:.1f}")
        pen_down = True
    return "".join(parts)


def _grid(top: float) -> list[str]:
    out = []
    for k in range(5):
        value = top * k / 4
        y = _y(value, top)
        out.append(
            f'<line class="fs-grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{significant(value, 2)}</text>'
        )
    return out


def _table(points: Sequence[Mapping[str, Any]], statistic: str) -> str:
    rows = "".join(
        f"<tr><td>{escape(readable(str(p['start'])))}</td>"
        f'<td class="fs-num">{escape(_cell(p.get("value")))}</td>'
        f'<td class="fs-num">{escape(_cell(p.get("threshold")))}</td>'
        f"<td>{escape(str(p.get('verdict', '')))}</td></tr>"
        for p in points
    )
    return (
        f'<details class="fs-shares"><summary>Windows as a table</summary><table>'
        f"<tr><th>window start</th><th>{escape(statistic)}</th><th>threshold</th>"
        f"<th>verdict</th></tr>{rows}</table></details>"
    )


def _cell(value: Any) -> str:
    v = _finite(value)
    return "-" if v is None else significant(v)


def series_chart(index: int, ref: str, series: Mapping[str, Any]) -> str:
    """The SVG chart of one feature's statistic per window, and its table."""
    points: Sequence[Mapping[str, Any]] = series["points"]
    statistic = str(series["statistic"])
    values = [_finite(p.get("value")) for p in points]
    limits = [_finite(p.get("threshold")) for p in points]
    top = max([v for v in values + limits if v is not None] or [0.0]) * 1.1 or 1.0
    n = max(len(points), 1)
    dots = "".join(
        f'<circle class="fs-dot-flagged" cx="{_x(i, n):.1f}" cy="{_y(v, top):.1f}" r="3.5">'
        f"<title>{escape(readable(str(p['start'])))}: {significant(v)}</title></circle>"
        for i, (p, v) in enumerate(zip(points, values, strict=True))
        if v is not None and p.get("verdict") == "flagged"
    )
    first = readable(str(points[0]["start"])) if points else ""
    last = readable(str(points[-1]["start"])) if points else ""
    flagged = sum(1 for p in points if p.get("verdict") == "flagged")
    chart_id = f"fs-series-{index}"
    desc = (
        f"{statistic} of {ref} per {series['window']} window from {first} to {last}: "
        f"{flagged} of {len(points)} windows past their threshold."
    )
    axis_y = H - BOTTOM
    return f"""<svg class="fs-chart fs-series" data-ref="{escape(ref)}" viewBox="0 0 {W} {H}" \
role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">
<title id="{chart_id}-title">{escape(statistic)} of {escape(ref)} per \
{escape(str(series["window"]))} window</title>
<desc id="{chart_id}-desc">{escape(desc)}</desc>
{"".join(_grid(top))}
<line class="fs-axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{axis_y}" y2="{axis_y}"/>
<path class="fs-threshold" d="{_path(limits, top, step=True)}"/>
<path class="fs-line" d="{_path(values, top, step=False)}"/>
{dots}
<text x="{LEFT}" y="{H - 12}">{escape(first)}</text>
<text x="{W - RIGHT}" y="{H - 12}" text-anchor="end">{escape(last)}</text>
</svg>
{_table(points, statistic)}"""
