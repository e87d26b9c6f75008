"""The report page: the shape check of the report dict, then the title, summary tiles and facts,
settings, overview, the filter and one card per feature, in the report's order."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from numbers import Real
from typing import Any

from featurestore.errors import ReportError
from featurestore.monitoring._html._charts import chart
from featurestore.monitoring._html._series import series_chart
from featurestore.monitoring._html._style import CSP, CSS
from featurestore.monitoring._html._tables import examples_table, stats_table
from featurestore.monitoring._html._text import plain
from featurestore.monitoring._time_text import as_time, instant, keep_dates_whole, readable

__all__ = ["render_report"]

VERDICTS = {
    "flagged": "Flagged",
    "warn": "Warn",
    "insufficient_data": "Insufficient data",
    "ok": "OK",
}
REPORT_KEYS = ("title", "generated_at", "summary", "settings", "features")
FEATURE_KEYS = (
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
HISTOGRAM_KEYS = ("labels", "reference", "current", "reference_label", "current_label")


def render_report(report: Mapping[str, Any]) -> str:
    """The whole HTML page for a report dict of the shape documented in ``monitoring._report``."""
    _check_shape(report)
    features: Sequence[Mapping[str, Any]] = report["features"]
    title = readable(str(report["title"]))
    kind = str(report.get("kind", "")).strip()
    subtitle = f"{escape(kind.capitalize())} report · " if kind else ""
    body = "\n".join(
        [
            f"<h1>{_prose(title)}</h1>",
            f'<p class="fs-sub">{subtitle}generated {_generated(report["generated_at"])}</p>',
            _summary(report["summary"]),
            _settings(report["settings"]),
            _overview(features),
            _filter(features),
            *(_card(i, f) for i, f in enumerate(features)),
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
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
    _require(report, REPORT_KEYS, "the report")
    for i, feature in enumerate(report["features"]):
        _require(feature, FEATURE_KEYS, f"feature #{i}")
        where = f"feature #{i} ({feature['ref']!r})"
        histogram = feature["histogram"]
        if histogram is None:
            continue
        _require(histogram, HISTOGRAM_KEYS, f"the histogram of {where}")
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
    return f"fs-v-{verdict}" if verdict in VERDICTS else "fs-v-other"


def _badge(verdict: str) -> str:
    name = VERDICTS.get(verdict, verdict)
    return f'<span class="fs-badge {_verdict_class(verdict)}">{escape(name)}</span>'


def _prose(text: Any) -> str:
    """Text from the report as HTML: times and windows readable, no line break in a date."""
    return keep_dates_whole(escape(readable(str(text))))


def _generated(value: Any) -> str:
    """When the report was made, readable, with the exact time in the element's attributes."""
    whole = escape(str(value))
    time = as_time(value)
    shown = escape(instant(time) if time is not None else plain(value))
    return f'<time datetime="{whole}" title="{whole}">{shown}</time>'


def _summary(summary: Mapping[str, Any]) -> str:
    """Counts as tiles (the verdicts coloured first, then the report's own), a list as a tile
    of its length naming its items, and any other entry as a line of text under the tiles."""
    order = ["features", *VERDICTS]
    keys = [k for k in order if k in summary] + [k for k in summary if k not in order]
    tiles, facts = [], []
    for key in keys:
        value = summary[key]
        name = escape(VERDICTS.get(key, str(key).replace("_", " ").capitalize()))
        css = _verdict_class(key) if key in VERDICTS else ""
        if isinstance(value, list | tuple):
            tiles.append(_list_tile(name, value))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            tiles.append(
                f'<li class="fs-tile {css}"><b>{escape(plain(value))}</b><span>{name}</span></li>'
            )
        else:
            facts.append(f"<div><dt>{name}</dt><dd>{_prose(plain(value))}</dd></div>")
    listed = f'<dl class="fs-facts">{"".join(facts)}</dl>' if facts else ""
    return f'<ul class="fs-tiles" aria-label="Summary">{"".join(tiles)}</ul>{listed}'


def _list_tile(name: str, items: Sequence[Any]) -> str:
    """A list in the summary (e.g. the features not replayed) as its length, naming each."""
    named = " ".join(f"<code>{escape(plain(item))}</code>" for item in items)
    listed = f'<small class="fs-tile-items">{named}</small>' if items else ""
    return f'<li class="fs-tile"><b>{len(items):,}</b><span>{name}</span>{listed}</li>'


def _settings(settings: Mapping[str, Any]) -> str:
    """The rules and defaults the report applied, folded, with readable windows."""
    rows = "".join(
        f'<tr><th scope="row"><code>{escape(str(k))}</code></th><td>{_prose(plain(v))}</td></tr>'
        for k, v in settings.items()
    )
    table = (
        f'<table class="fs-table-wide">{rows}</table>' if rows else "<p>No settings recorded.</p>"
    )
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
        f"<td>{_prose(f['reasons'][0]) if f['reasons'] else ''}</td></tr>"
        for i, f in enumerate(features)
    )
    return (
        '<section class="fs-overview" aria-label="Overview"><div class="fs-scroll">'
        '<table class="fs-table-wide fs-index"><colgroup><col class="fs-c-verdict">'
        '<col class="fs-c-ref"><col class="fs-c-owner"><col></colgroup>'
        '<thead><tr><th scope="col">Verdict</th>'
        '<th scope="col">Feature</th><th scope="col">Owner</th><th scope="col">Main reason</th>'
        f"</tr></thead><tbody>{rows}</tbody></table></div></section>"
    )


def _filter(features: Sequence[Mapping[str, Any]]) -> str:
    """The labels of the radio buttons that show all, not-OK or flagged features only."""
    attention = sum(1 for f in features if _verdict(f) != "ok")
    flagged = sum(1 for f in features if _verdict(f) == "flagged")
    return (
        '<div class="fs-filter" role="group" aria-label="Which features to show">'
        "<span>Show:</span>"
        f'<label for="fs-show-all">All ({len(features)})</label>'
        f'<label for="fs-show-attention">Not OK ({attention})</label>'
        f'<label for="fs-show-flagged">Flagged ({flagged})</label></div>'
    )


def _card(index: int, feature: Mapping[str, Any]) -> str:
    """One feature: reference, owner, dtype, badge, reasons, chart, statistics and examples."""
    verdict = _verdict(feature)
    ref = escape(str(feature["ref"]))
    reasons = "".join(f"<li>{_prose(r)}</li>" for r in feature["reasons"])
    histogram = feature["histogram"]
    if histogram is not None and histogram["labels"]:
        drawn = chart(index, str(feature["ref"]), str(feature["kind"]), histogram)
    else:
        drawn = (
            '<p class="fs-nochart">No distribution to chart: the report holds no histogram '
            "for this feature.</p>"
        )
    series = feature.get("series")
    if series and series.get("points"):
        drawn = series_chart(index, str(feature["ref"]), series) + drawn
    return f"""<article class="fs-card {_verdict_class(verdict)}" id="fs-feature-{index}" \
data-verdict="{escape(verdict)}" data-ref="{ref}" aria-labelledby="fs-feature-{index}-ref">
<header class="fs-card-head"><h2 id="fs-feature-{index}-ref"><code>{ref}</code></h2>\
{_badge(verdict)}</header>
<p class="fs-meta"><span>owner <b>{escape(str(feature["owner"] or "-"))}</b></span>\
<span>dtype <b><code>{escape(str(feature["dtype"]))}</code></b></span>\
<span>kind <b>{escape(str(feature["kind"]))}</b></span></p>
{f'<ul class="fs-reasons">{reasons}</ul>' if reasons else ""}
<div class="fs-body"><div>{drawn}</div><div><h3>Statistics</h3>{stats_table(feature["stats"])}\
</div></div>
{examples_table(feature["examples"])}
</article>"""
