"""Render a drift or skew report (the dict of :meth:`Report.to_dict`) as one HTML page.

The page is self-contained so it can be mailed or archived and opened with no network: CSS is
inline, the charts are inline SVG drawn here, there is no script, and a Content-Security-Policy
forbids loading anything at all. Every string taken from the report is escaped. The
"all / needs attention / flagged" filter is plain CSS on radio buttons, so it needs no script.

Per feature, in the report's order (worst first): reference, owner, dtype, a verdict badge, the
reasons, the statistics and an SVG chart of the reference and current shares per bin overlaid
(``<svg class="fs-chart" data-ref="view:feature">``). A feature whose ``histogram`` is None gets
a short "no distribution" note instead of a chart.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from html import escape
from numbers import Real
from typing import Any

from featurestore.errors import ReportError

__all__ = ["render_report"]

_VERDICTS = {
    "flagged": "Flagged",
    "warn": "Warn",
    "insufficient_data": "Insufficient data",
    "ok": "OK",
}
_REPORT_KEYS = ("title", "generated_at", "summary", "settings", "features")
_FEATURE_KEYS = (
    "ref",
    "owner",
    "dtype",
    "kind",
    "verdict",
    "reasons",
    "stats",
    "histogram",
    "examples",
)
_HISTOGRAM_KEYS = ("labels", "reference", "current", "reference_label", "current_label")
_X_TITLES = {"numeric": "value bin", "temporal": "time bin", "categorical": "category"}
_MAX_EXAMPLES = 20
_MAX_LABEL = 16

# chart geometry, in SVG user units (the chart scales to its container's width)
_W = 600
_PLOT_H = 180
_LEFT = 56
_RIGHT = 12
_TOP = 40
_CHAR_W = 6.2  # average width of an 11px sans-serif character

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

_CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --bg: #f6f8fa; --card: #fff;
  --flagged: #b3261e; --flagged-bg: #fdecea; --warn: #8a5300; --warn-bg: #fff3d6;
  --insufficient_data: #4a5568; --insufficient_data-bg: #e9edf2; --ok: #1e6b34;
  --ok-bg: #e3f3e7; --ref: #8fb3d9; --cur: #e8710a; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 24px 20px 48px; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.1rem; margin: 0; overflow-wrap: anywhere; }
h2 code { font-size: 1.05rem; }
h3 { font-size: .8rem; margin: 14px 0 6px; text-transform: uppercase; letter-spacing: .04em;
  color: var(--muted); }
.fs-sub { color: var(--muted); margin: 0 0 18px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
.fs-tiles { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 18px; padding: 0;
  list-style: none; }
.fs-tile { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 8px 14px; min-width: 110px; }
.fs-tile b { display: block; font-size: 1.5rem; line-height: 1.2; }
.fs-tile span { color: var(--muted); font-size: .85rem; }
.fs-tile.fs-v-flagged { border-color: var(--flagged); background: var(--flagged-bg); }
.fs-tile.fs-v-warn { border-color: var(--warn); background: var(--warn-bg); }
.fs-tile.fs-v-insufficient_data { background: var(--insufficient_data-bg); }
.fs-tile.fs-v-ok { border-color: var(--ok); background: var(--ok-bg); }
.fs-tile.fs-v-flagged b { color: var(--flagged); }
.fs-tile.fs-v-warn b { color: var(--warn); }
.fs-tile.fs-v-ok b { color: var(--ok); }
details.fs-settings, .fs-card, .fs-overview { background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; margin: 0 0 16px; }
details.fs-settings { padding: 10px 16px; }
details.fs-settings summary { cursor: pointer; font-weight: 600; }
.fs-overview { padding: 6px 16px 10px; }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 4px 10px 4px 0; vertical-align: top;
  border-bottom: 1px solid #eef1f4; }
th { font-weight: 600; }
td.fs-num { text-align: right; font-variant-numeric: tabular-nums; }
.fs-table-wide { width: 100%; }
.fs-scroll { overflow-x: auto; }
.fs-badge { display: inline-block; border-radius: 999px; padding: 1px 10px; font-size: 12px;
  font-weight: 600; white-space: nowrap; border: 1px solid currentColor; }
.fs-badge.fs-v-flagged { color: var(--flagged); background: var(--flagged-bg); }
.fs-badge.fs-v-warn { color: var(--warn); background: var(--warn-bg); }
.fs-badge.fs-v-insufficient_data { color: var(--insufficient_data);
  background: var(--insufficient_data-bg); }
.fs-badge.fs-v-ok { color: var(--ok); background: var(--ok-bg); }
.fs-card { padding: 14px 18px 16px; border-left-width: 5px; }
.fs-card.fs-v-flagged { border-left-color: var(--flagged); }
.fs-card.fs-v-warn { border-left-color: var(--warn); }
.fs-card.fs-v-ok { border-left-color: var(--ok); }
.fs-card-head { display: flex; gap: 12px; align-items: center; flex-wrap: wrap; }
.fs-meta { margin: 4px 0 0; color: var(--muted); display: flex; flex-wrap: wrap;
  gap: 4px 18px; }
.fs-meta b { color: var(--fg); font-weight: 600; }
.fs-reasons { margin: 10px 0 0; padding-left: 20px; }
.fs-body { display: grid; grid-template-columns: minmax(0, 2fr) minmax(220px, 1fr);
  gap: 8px 28px; }
@media (max-width: 820px) { .fs-body { grid-template-columns: minmax(0, 1fr); } }
.fs-chart { width: 100%; height: auto; display: block; }
.fs-chart text { font: 11px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  fill: #444c56; }
.fs-chart .fs-axis-title { fill: var(--muted); }
.fs-chart .fs-grid { stroke: #e6e9ed; }
.fs-chart .fs-axis { stroke: #8c959f; }
.fs-chart .fs-bar-ref { fill: var(--ref); }
.fs-chart .fs-bar-cur { fill: var(--cur); fill-opacity: .85; }
.fs-chart .fs-bin:hover rect { stroke: var(--fg); stroke-width: .6; }
.fs-nochart { color: var(--muted); font-style: italic; border: 1px dashed var(--line);
  border-radius: 6px; padding: 16px; margin: 10px 0 0; }
.fs-shares summary { cursor: pointer; color: var(--muted); font-size: 12.5px; }
.fs-empty { color: var(--muted); }
.fs-filter { display: flex; gap: 6px; align-items: center; margin: 0 0 14px; flex-wrap: wrap; }
.fs-filter label { border: 1px solid var(--line); background: var(--card); border-radius: 999px;
  padding: 3px 12px; cursor: pointer; }
.fs-radio { position: absolute; opacity: 0; width: 1px; height: 1px; }
#fs-show-all:checked ~ main label[for="fs-show-all"],
#fs-show-attention:checked ~ main label[for="fs-show-attention"],
#fs-show-flagged:checked ~ main label[for="fs-show-flagged"] { background: var(--fg);
  color: #fff; border-color: var(--fg); }
#fs-show-all:focus-visible ~ main label[for="fs-show-all"],
#fs-show-attention:focus-visible ~ main label[for="fs-show-attention"],
#fs-show-flagged:focus-visible ~ main label[for="fs-show-flagged"] {
  outline: 2px solid var(--cur); outline-offset: 2px; }
#fs-show-attention:checked ~ main [data-verdict="ok"],
#fs-show-flagged:checked ~ main [data-verdict]:not([data-verdict="flagged"]) { display: none; }
"""


def render_report(report: Mapping[str, Any]) -> str:
    """The whole HTML page for a report dict of the shape documented in ``monitoring.report``."""
    _check_shape(report)
    features: Sequence[Mapping[str, Any]] = report["features"]
    title = escape(str(report["title"]))
    kind = str(report.get("kind", "")).strip()
    subtitle = f"{escape(kind.capitalize())} report · " if kind else ""
    generated = escape(str(report["generated_at"]))
    counts = {v: sum(1 for f in features if _verdict(f) == v) for v in _VERDICTS}
    attention = len(features) - counts["ok"]
    body = "\n".join(
        [
            f"<h1>{title}</h1>",
            f'<p class="fs-sub">{subtitle}generated <time datetime="{generated}">{generated}'
            "</time></p>",
            _summary(report["summary"]),
            _settings(report["settings"]),
            _overview(features),
            '<div class="fs-filter" role="group" aria-label="Which features to show">'
            "<span>Show:</span>"
            f'<label for="fs-show-all">All ({len(features)})</label>'
            f'<label for="fs-show-attention">Not OK ({attention})</label>'
            f'<label for="fs-show-flagged">Flagged ({counts["flagged"]})</label></div>',
            *(_card(i, f) for i, f in enumerate(features)),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{_CSS}</style>
</head>
<body>
<input type="radio" class="fs-radio" name="fs-show" id="fs-show-all" checked>
<input type="radio" class="fs-radio" name="fs-show" id="fs-show-attention">
<input type="radio" class="fs-radio" name="fs-show" id="fs-show-flagged">
<main>
{body}
</main>
</body>
</html>
"""


def _check_shape(report: Mapping[str, Any]) -> None:
    """Raise a clear error when the dict lacks a documented key or a histogram is ragged."""
    _require(report, _REPORT_KEYS, "the report")
    for i, feature in enumerate(report["features"]):
        _require(feature, _FEATURE_KEYS, f"feature #{i}")
        where = f"feature #{i} ({feature['ref']!r})"
        histogram = feature["histogram"]
        if histogram is None:
            continue
        _require(histogram, _HISTOGRAM_KEYS, f"the histogram of {where}")
        lengths = {k: len(histogram[k]) for k in ("labels", "reference", "current")}
        if len(set(lengths.values())) != 1:
            raise ReportError(
                f"The histogram of {where} has lists of different lengths {lengths}; labels, "
                "reference and current need one entry per bin."
            )
        shares = [*histogram["reference"], *histogram["current"]]
        bad = [v for v in shares if v is not None and not (isinstance(v, Real) and not v < 0)]
        if bad:
            raise ReportError(
                f"The histogram of {where} has shares that are not numbers >= 0: {bad[:5]}; "
                "give each bin's share of rows (None for a missing one)."
            )


def _require(mapping: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(mapping, Mapping):
        raise ReportError(
            f"Cannot render {where} as HTML: expected a dict, got {type(mapping).__name__}."
        )
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise ReportError(
            f"Cannot render {where} as HTML: missing key(s) {', '.join(missing)}. Pass the dict "
            "of Report.to_dict() (shape documented in featurestore.monitoring._report)."
        )


def _verdict(feature: Mapping[str, Any]) -> str:
    return str(feature["verdict"])


def _verdict_class(verdict: str) -> str:
    return f"fs-v-{verdict}" if verdict in _VERDICTS else "fs-v-other"


def _badge(verdict: str) -> str:
    label = _VERDICTS.get(verdict, verdict)
    return f'<span class="fs-badge {_verdict_class(verdict)}">{escape(label)}</span>'


def _fmt(value: Any, exact: bool = False) -> str:
    """A value as short readable text (not yet escaped); None is shown as "-".

    ``exact`` is for example rows (keys, served and offline values): None is "null", numbers
    keep every digit, so that two values that differ never print the same.
    """
    if value is None:
        return "null" if exact else "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value) if exact else f"{value:,}"
    if isinstance(value, float) and exact:
        return repr(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "∞" if value > 0 else "-∞"
        size = abs(value)
        if size == 0:
            return "0"
        if size < 1e-4 or size >= 1e15:
            return f"{value:.3g}"
        if size >= 1000:
            return f"{value:,.2f}".rstrip("0").rstrip(".")
        return f"{value:.4g}"
    if isinstance(value, list | tuple | dict):
        text = json.dumps(value, default=str)
        return text if len(text) <= 200 else text[:199] + "…"
    return str(value)


def _td(value: Any, exact: bool = False) -> str:
    """A table cell holding a formatted value; numbers are right-aligned."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    text = escape(_fmt(value, exact))
    return f'<td class="fs-num">{text}</td>' if is_number else f"<td>{text}</td>"


def _label(key: str) -> str:
    return escape(str(key).replace("_", " "))


def _summary(summary: Mapping[str, Any]) -> str:
    """Counts as tiles: the verdicts (coloured) first, then the report-specific entries."""
    order = ["features", *_VERDICTS]
    keys = [k for k in order if k in summary] + [k for k in summary if k not in order]
    tiles = []
    for key in keys:
        css = _verdict_class(key) if key in _VERDICTS else ""
        name = _VERDICTS.get(key, str(key).replace("_", " ").capitalize())
        tiles.append(
            f'<li class="fs-tile {css}"><b>{escape(_fmt(summary[key]))}</b>'
            f"<span>{escape(name)}</span></li>"
        )
    return f'<ul class="fs-tiles" aria-label="Summary">{"".join(tiles)}</ul>'


def _settings(settings: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<tr><th scope="row"><code>{escape(str(k))}</code></th><td>{escape(_fmt(v))}</td></tr>'
        for k, v in settings.items()
    )
    table = f'<table class="fs-table-wide">{rows}</table>' if rows else "<p>None recorded.</p>"
    return (
        '<details class="fs-settings"><summary>Settings and methods '
        f"({len(settings)})</summary>{table}</details>"
    )


def _overview(features: Sequence[Mapping[str, Any]]) -> str:
    """A compact index of every feature linking to its card."""
    if not features:
        return '<p class="fs-empty">This report has no features.</p>'
    rows = "".join(
        f'<tr data-verdict="{escape(_verdict(f))}"><td>{_badge(_verdict(f))}</td>'
        f'<td><a href="#fs-feature-{i}"><code>{escape(str(f["ref"]))}</code></a></td>'
        f"<td>{escape(str(f['owner'] or '-'))}</td>"
        f"<td>{escape(str(f['reasons'][0]) if f['reasons'] else '')}</td></tr>"
        for i, f in enumerate(features)
    )
    return (
        '<section class="fs-overview" aria-label="Overview"><div class="fs-scroll">'
        '<table class="fs-table-wide"><thead><tr><th scope="col">Verdict</th>'
        '<th scope="col">Feature</th><th scope="col">Owner</th><th scope="col">Main reason</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _card(index: int, feature: Mapping[str, Any]) -> str:
    verdict = _verdict(feature)
    ref = escape(str(feature["ref"]))
    reasons = "".join(f"<li>{escape(str(r))}</li>" for r in feature["reasons"])
    histogram = feature["histogram"]
    if histogram is not None and histogram["labels"]:
        chart = _chart(index, str(feature["ref"]), str(feature["kind"]), histogram)
    else:
        chart = (
            '<p class="fs-nochart">No distribution to chart: the report holds no histogram '
            "for this feature.</p>"
        )
    return f"""<article class="fs-card {_verdict_class(verdict)}" id="fs-feature-{index}" \
data-verdict="{escape(verdict)}" data-ref="{ref}" aria-labelledby="fs-feature-{index}-ref">
<header class="fs-card-head"><h2 id="fs-feature-{index}-ref"><code>{ref}</code></h2>\
{_badge(verdict)}</header>
<p class="fs-meta"><span>owner <b>{escape(str(feature["owner"] or "-"))}</b></span>\
<span>dtype <b><code>{escape(str(feature["dtype"]))}</code></b></span>\
<span>kind <b>{escape(str(feature["kind"]))}</b></span></p>
{f'<ul class="fs-reasons">{reasons}</ul>' if reasons else ""}
<div class="fs-body"><div>{chart}</div><div><h3>Statistics</h3>{_stats(feature["stats"])}</div>\
</div>
{_examples(feature["examples"])}
</article>"""


def _stats(stats: Mapping[str, Any]) -> str:
    if not stats:
        return '<p class="fs-empty">None.</p>'
    rows = "".join(f'<tr><th scope="row">{_label(k)}</th>{_td(v)}</tr>' for k, v in stats.items())
    return f'<table class="fs-stats">{rows}</table>'


def _examples(examples: Sequence[Mapping[str, Any]]) -> str:
    """Up to ``_MAX_EXAMPLES`` example rows (e.g. mismatching keys) as a table."""
    if not examples:
        return ""
    shown = examples[:_MAX_EXAMPLES]
    columns = list(dict.fromkeys(k for row in shown for k in row))
    head = "".join(f'<th scope="col">{escape(str(c))}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(_td(row.get(c), exact=True) for c in columns) + "</tr>" for row in shown
    )
    more = len(examples) - len(shown)
    note = f"<p class='fs-empty'>{more:,} more not shown.</p>" if more > 0 else ""
    return (
        f"<h3>Examples ({len(examples):,})</h3><div class='fs-scroll'><table class='fs-examples'>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>{note}"
    )


def _share(value: Any) -> float | None:
    """A bin's share as a float, None when missing or not finite (drawn as no bar)."""
    share = None if value is None else float(value)
    return share if share is not None and math.isfinite(share) else None


def _pct(share: float | None) -> str:
    if share is None:
        return "-"
    if 0 < share < 0.0005:
        return "<0.1%"
    return f"{share:.1%}"


def _nice_step(top: float) -> float:
    """A 1-2-2.5-5 step giving at most five gridlines up to ``top``."""
    raw = top / 5
    power = 10 ** math.floor(math.log10(raw))
    return next(f * power for f in (1, 2, 2.5, 5, 10) if f * power >= raw * (1 - 1e-9))


def _short(text: str, limit: int = _MAX_LABEL) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _chart(index: int, ref: str, kind: str, histogram: Mapping[str, Any]) -> str:
    """Reference shares as wide pale bars, current shares as narrow bars on top, per bin."""
    labels = [str(label) for label in histogram["labels"]]
    ref_shares = [_share(v) for v in histogram["reference"]]
    cur_shares = [_share(v) for v in histogram["current"]]
    ref_label, cur_label = str(histogram["reference_label"]), str(histogram["current_label"])
    n = len(labels)
    plot_w = _W - _LEFT - _RIGHT
    bin_w = plot_w / n
    longest = max(len(_short(label)) for label in labels)
    rotate = n > 6 or longest * _CHAR_W > bin_w - 4
    every = max(1, math.ceil(n / 32)) if rotate else 1
    label_h = longest * _CHAR_W * 0.64 + 8 if rotate else 14
    bottom = 10 + label_h + 22
    height = _TOP + _PLOT_H + bottom
    base = _TOP + _PLOT_H
    peak = max([0.01, *(s for s in ref_shares + cur_shares if s is not None)])
    step = _nice_step(peak)
    top = step * math.ceil(peak / step - 1e-9)
    ticks = [step * k for k in range(round(top / step) + 1)]

    def y(share: float) -> float:
        return base - share / top * _PLOT_H

    parts = []
    for tick in ticks:
        parts.append(
            f'<line class="fs-grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.1f}" '
            f'y2="{y(tick):.1f}"/><text x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" '
            f'text-anchor="end">{round(tick * 100, 6):g}%</text>'
        )
    for i, (label, r, c) in enumerate(zip(labels, ref_shares, cur_shares, strict=True)):
        x0 = _LEFT + i * bin_w
        bars = []
        for share, cls, pad in ((r, "fs-bar-ref", 0.08), (c, "fs-bar-cur", 0.3)):
            if share is not None:
                bars.append(
                    f'<rect class="{cls}" x="{x0 + bin_w * pad:.2f}" y="{y(share):.2f}" '
                    f'width="{bin_w * (1 - 2 * pad):.2f}" height="{share / top * _PLOT_H:.3f}"/>'
                )
        tip = f"{label}: {ref_label} {_pct(r)}, {cur_label} {_pct(c)}"
        parts.append(f'<g class="fs-bin"><title>{escape(tip)}</title>{"".join(bars)}</g>')
        if i % every == 0:
            cx, ty = x0 + bin_w / 2, base + 14
            turn = f' transform="rotate(-40 {cx:.1f} {ty:.1f})" text-anchor="end"' if rotate else ""
            anchor = "" if rotate else ' text-anchor="middle"'
            parts.append(
                f'<text x="{cx:.1f}" y="{ty:.1f}"{anchor}{turn}>{escape(_short(label))}</text>'
            )
    parts.append(
        f'<line class="fs-axis" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{base}" y2="{base}"/>'
        f'<line class="fs-axis" x1="{_LEFT}" x2="{_LEFT}" y1="{_TOP}" y2="{base}"/>'
        f'<text class="fs-axis-title" x="{_LEFT + plot_w / 2:.1f}" y="{height - 6:.1f}" '
        f'text-anchor="middle">{escape(_X_TITLES.get(kind, "value"))}</text>'
        f'<text class="fs-axis-title" x="0" y="0" text-anchor="middle" '
        f'transform="translate(14 {_TOP + _PLOT_H / 2:.1f}) rotate(-90)">share of rows</text>'
    )
    legend_x = _LEFT + 4 + len(_short(ref_label, 40)) * _CHAR_W + 40
    parts.append(
        f'<g class="fs-legend"><rect class="fs-bar-ref" x="{_LEFT}" y="10" width="14" '
        f'height="12"/><text x="{_LEFT + 20}" y="20">{escape(_short(ref_label, 40))}</text>'
        f'<rect class="fs-bar-cur" x="{legend_x:.1f}" y="10" width="14" height="12"/>'
        f'<text x="{legend_x + 20:.1f}" y="20">{escape(_short(cur_label, 40))}</text></g>'
    )
    chart_id = f"fs-chart-{index}"
    desc = _describe(labels, ref_shares, cur_shares, ref_label, cur_label)
    table = "".join(
        f'<tr><td>{escape(label)}</td><td class="fs-num">{_pct(r)}</td>'
        f'<td class="fs-num">{_pct(c)}</td></tr>'
        for label, r, c in zip(labels, ref_shares, cur_shares, strict=True)
    )
    return f"""<svg class="fs-chart" data-ref="{escape(ref)}" viewBox="0 0 {_W} {height:.0f}" \
role="img" aria-labelledby="{chart_id}-title {chart_id}-desc">
<title id="{chart_id}-title">Share of rows per bin of {escape(ref)}: {escape(ref_label)} \
against {escape(cur_label)}</title>
<desc id="{chart_id}-desc">{escape(desc)}</desc>
{"".join(parts)}
</svg>
<details class="fs-shares"><summary>Shares per bin as a table</summary><div class="fs-scroll">\
<table><thead><tr><th scope="col">Bin</th><th scope="col">{escape(ref_label)}</th>\
<th scope="col">{escape(cur_label)}</th></tr></thead><tbody>{table}</tbody></table></div>\
</details>"""


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
        f"{ref_label} {_pct(ref[worst])}, {cur_label} {_pct(cur[worst])}."
    )
