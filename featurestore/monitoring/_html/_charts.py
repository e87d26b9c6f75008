"""A feature's histogram as inline SVG: the reference's shares as wide pale bars, the current
side's as narrow bars on top, per bin, with gridlines, axis titles, a legend (on two rows when
the sides' names are long), a sentence for screen readers and the shares as a table. Times in
the sides' names and the bins' labels show as dates."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from featurestore._format import percent
from featurestore.monitoring._html._tables import shares_table
from featurestore.monitoring._time_text import readable, readable_labels

__all__ = ["chart"]

X_TITLES = {"numeric": "value bin", "temporal": "time bin", "categorical": "category"}
MAX_LABEL = 24  # characters of a bin label under the axis

# chart geometry, in SVG user units (the chart scales to its container's width)
W = 600
PLOT_H = 180
LEFT = 56
RIGHT = 12
TOP = 40  # above the plot: the legend's first row
LEGEND_ROW = 18  # a second legend row pushes the plot down by this much
CHAR_W = 6.2  # average width of an 11px sans-serif character
SWATCH = 20  # a legend swatch and the gap to its text
LEGEND_GAP = 40  # between the two legend entries on one row
LEGEND_MAX = int((W - LEFT - RIGHT - SWATCH) / CHAR_W)  # characters of a side's name


def _share(value: Any) -> float | None:
    """A bin's share as a float, None when missing or not finite (drawn as no bar)."""
    share = None if value is None else float(value)
    return share if share is not None and math.isfinite(share) else None


def _nice_step(top: float) -> float:
    """A 1-2-2.5-5 step giving at most five gridlines up to ``top``."""
    raw = top / 5
    power = 10.0 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 2.5, 5, 10) if f * power >= raw * (1 - 1e-9))


def _short(text: str, limit: int = MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class _Frame:
    """Where things go: bin width, whether bin labels turn, the plot's top edge, the height and
    the share scale."""

    bin_w: float
    rotate: bool
    overhang: float  # how far the first turned label reaches left of the chart's edge
    every: int  # label every n-th bin
    plot_top: float
    height: float
    top: float  # the share at the top of the plot
    ticks: list[float]

    @classmethod
    def of(cls, labels: Sequence[str], shares: Sequence[float | None], legend_rows: int) -> _Frame:
        n = len(labels)
        bin_w = (W - LEFT - RIGHT) / n
        longest = max(len(_short(label)) for label in labels)
        rotate = n > 6 or longest * CHAR_W > bin_w - 4
        label_h = longest * CHAR_W * 0.64 + 8 if rotate else 14
        reach = longest * CHAR_W * 0.9 - (LEFT + bin_w / 2)  # cos 40 degrees, and a margin
        peak = max([0.01, *(s for s in shares if s is not None)])
        step = _nice_step(peak)
        top = step * math.ceil(peak / step - 1e-9)
        plot_top = TOP + LEGEND_ROW * (legend_rows - 1)
        return cls(
            bin_w=bin_w,
            rotate=rotate,
            overhang=max(0.0, reach) if rotate else 0.0,
            every=max(1, math.ceil(n / 32)) if rotate else 1,
            plot_top=plot_top,
            height=plot_top + PLOT_H + 10 + label_h + 22,
            top=top,
            ticks=[step * k for k in range(round(top / step) + 1)],
        )

    @property
    def base(self) -> float:
        return self.plot_top + PLOT_H

    def y(self, share: float) -> float:
        return self.base - share / self.top * PLOT_H


def chart(index: int, ref: str, kind: str, histogram: Mapping[str, Any]) -> str:
    """The SVG chart of one feature's histogram and its shares table."""
    labels = [str(label) for label in histogram["labels"]]
    labels = readable_labels(labels, epoch_us=kind == "temporal")
    ref_shares = [_share(v) for v in histogram["reference"]]
    cur_shares = [_share(v) for v in histogram["current"]]
    ref_label = readable(str(histogram["reference_label"]))
    cur_label = readable(str(histogram["current_label"]))
    legend, legend_rows = _legend(ref_label, cur_label)
    frame = _Frame.of(labels, ref_shares + cur_shares, legend_rows)
    parts = [
        *_grid(frame),
        *_bins(frame, labels, ref_shares, cur_shares, ref_label, cur_label),
        _axes(frame, kind),
        legend,
    ]
    chart_id, pad = f"fs-chart-{index}", math.ceil(frame.overhang)
    desc = _describe(labels, ref_shares, cur_shares, ref_label, cur_label)
    return f"""<svg class="fs-chart" data-ref="{escape(ref)}" \
viewBox="{-pad} 0 {W + pad} {frame.height:.0f}" \
role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">
<title id="{chart_id}-title">Share of rows per bin of {escape(ref)}: {escape(ref_label)} \
against {escape(cur_label)}</title>
<desc id="{chart_id}-desc">{escape(desc)}</desc>
{"".join(parts)}
</svg>
{shares_table(labels, ref_shares, cur_shares, ref_label, cur_label)}"""


def _grid(frame: _Frame) -> list[str]:
    """A gridline and its percentage per tick."""
    return [
        f'<line class="fs-grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{frame.y(tick):.1f}" '
        f'y2="{frame.y(tick):.1f}"/><text x="{LEFT - 6}" y="{frame.y(tick) + 4:.1f}" '
        f'text-anchor="end">{round(tick * 100, 6):g}%</text>'
        for tick in frame.ticks
    ]


def _bins(
    frame: _Frame,
    labels: Sequence[str],
    ref_shares: Sequence[float | None],
    cur_shares: Sequence[float | None],
    ref_label: str,
    cur_label: str,
) -> list[str]:
    """Per bin, both bars with a tooltip, and the bin's label (turned when they are crowded)."""
    parts = []
    for i, (name, r, c) in enumerate(zip(labels, ref_shares, cur_shares, strict=True)):
        x0 = LEFT + i * frame.bin_w
        bars = [
            f'<rect class="{cls}" x="{x0 + frame.bin_w * pad:.2f}" y="{frame.y(share):.2f}" '
            f'width="{frame.bin_w * (1 - 2 * pad):.2f}" '
            f'height="{share / frame.top * PLOT_H:.3f}"/>'
            for share, cls, pad in ((r, "fs-bar-ref", 0.08), (c, "fs-bar-cur", 0.3))
            if share is not None
        ]
        tip = f"{name}: {ref_label} {percent(r)}, {cur_label} {percent(c)}"
        parts.append(f'<g class="fs-bin"><title>{escape(tip)}</title>{"".join(bars)}</g>')
        if i % frame.every == 0:
            cx, ty = x0 + frame.bin_w / 2, frame.base + 14
            turn = (
                f' transform="rotate(-40 {cx:.1f} {ty:.1f})" text-anchor="end"'
                if frame.rotate
                else ""
            )
            anchor = "" if frame.rotate else ' text-anchor="middle"'
            parts.append(
                f'<text x="{cx:.1f}" y="{ty:.1f}"{anchor}{turn}>{escape(_short(name))}</text>'
            )
    return parts


def _axes(frame: _Frame, kind: str) -> str:
    """Both axes and their titles."""
    base = frame.base
    return (
        f'<line class="fs-axis" x1="{LEFT}" x2="{W - RIGHT}" y1="{base}" y2="{base}"/>'
        f'<line class="fs-axis" x1="{LEFT}" x2="{LEFT}" y1="{frame.plot_top}" y2="{base}"/>'
        f'<text class="fs-axis-title" x="{LEFT + (W - LEFT - RIGHT) / 2:.1f}" '
        f'y="{frame.height - 6:.1f}" text-anchor="middle">'
        f"{escape(X_TITLES.get(kind, 'value'))}</text>"
        f'<text class="fs-axis-title" x="0" y="0" text-anchor="middle" '
        f'transform="translate(14 {frame.plot_top + PLOT_H / 2:.1f}) rotate(-90)">share of rows'
        "</text>"
    )


def _legend(ref_label: str, cur_label: str) -> tuple[str, int]:
    """The two sides' names beside a swatch of their bars, and its rows: one when both fit,
    else one per side; a name cut short keeps its whole form as a tooltip."""
    ref, cur = _short(ref_label, LEGEND_MAX), _short(cur_label, LEGEND_MAX)
    second_x = LEFT + SWATCH + len(ref) * CHAR_W + LEGEND_GAP
    one_row = second_x + SWATCH + len(cur) * CHAR_W <= W - RIGHT
    places = [(LEFT, 10.0), (second_x, 10.0) if one_row else (LEFT, 10.0 + LEGEND_ROW)]
    entries = [
        f'<rect class="{cls}" x="{x:.1f}" y="{y:.0f}" width="14" height="12"/>'
        f'<text x="{x + SWATCH:.1f}" y="{y + 10:.0f}">{_tip(whole, shown)}{escape(shown)}</text>'
        for (x, y), cls, shown, whole in zip(
            places, ("fs-bar-ref", "fs-bar-cur"), (ref, cur), (ref_label, cur_label), strict=True
        )
    ]
    return f'<g class="fs-legend">{"".join(entries)}</g>', 1 if one_row else 2


def _tip(whole: str, shown: str) -> str:
    """An SVG tooltip with the whole text, when the shown one was cut."""
    return "" if whole == shown else f"<title>{escape(whole)}</title>"


def _describe(
    labels: Sequence[str],
    ref: Sequence[float | None],
    cur: Sequence[float | None],
    ref_label: str,
    cur_label: str,
) -> str:
    """One sentence for screen readers: the bin count and where the shares differ most."""
    gaps = [abs((r or 0.0) - (c or 0.0)) for r, c in zip(ref, cur, strict=True)]
    worst = max(range(len(gaps)), key=gaps.__getitem__)
    return (
        f"{len(labels)} bins. The largest difference is in bin {labels[worst]}: "
        f"{ref_label} {percent(ref[worst])}, {cur_label} {percent(cur[worst])}."
    )
