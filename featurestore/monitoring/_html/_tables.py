"""The report page's tables: a feature's statistics, its example rows, and a chart's shares per
bin. Cells wrap rather than widen the page; a value cut short keeps its whole form in a
tooltip."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

from featurestore._format import percent
from featurestore.monitoring._html._text import MAX_STAT, Cell, clip, example_cells, plain

__all__ = ["examples_table", "label", "shares_table", "stats_table", "td"]

MAX_EXAMPLES = 20


def td(cell: Cell) -> str:
    """A table cell: numbers right-aligned, a cut value with its whole form as the tooltip."""
    css = ' class="fs-num"' if cell.numeric else ""
    tip = f' title="{escape(cell.full)}"' if cell.full is not None else ""
    return f"<td{css}{tip}>{escape(cell.text)}</td>"


def label(key: str) -> str:
    """A statistic's name as a row header: underscores become spaces."""
    return escape(str(key).replace("_", " "))


def _stat(value: Any) -> Cell:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    cell = clip(plain(value), MAX_STAT)
    return Cell(cell.text, cell.full, numeric=is_number)


def stats_table(stats: Mapping[str, Any]) -> str:
    """One row per statistic, in the report's order."""
    if not stats:
        return '<p class="fs-empty">No statistics.</p>'
    rows = "".join(
        f'<tr><th scope="row">{label(k)}</th>{td(_stat(v))}</tr>' for k, v in stats.items()
    )
    return f'<table class="fs-stats">{rows}</table>'


def _column(name: str) -> str:
    """A column name that may break after its underscores rather than anywhere."""
    return escape(name).replace("_", "_<wbr>")


def examples_table(examples: Sequence[Mapping[str, Any]]) -> str:
    """Up to ``MAX_EXAMPLES`` example rows (e.g. mismatching keys) as a table."""
    if not examples:
        return ""
    shown = examples[:MAX_EXAMPLES]
    columns = list(dict.fromkeys(str(k) for row in shown for k in row))
    head = "".join(f'<th scope="col">{_column(c)}</th>' for c in columns)
    body = "".join(
        "<tr>" + "".join(td(c) for c in example_cells([row.get(c) for c in columns])) + "</tr>"
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
