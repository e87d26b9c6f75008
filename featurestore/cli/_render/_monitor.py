"""``monitor run`` and ``monitor history``: what a run summarized and which alerts changed, and
a feature's drift per window as a sparkline and a table."""

from __future__ import annotations

import datetime as dt
import math

import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from featurestore._format import number
from featurestore.monitoring import MonitorRun

__all__ = ["monitor_history", "monitor_run", "sparkline"]

_TICKS = "▁▂▃▄▅▆▇█"
_STATISTICS = ("psi", "ks_d", "linf", "true_rate_change", "null_rate_change")


def sparkline(values: list[float | None]) -> str:
    """One character per value, scaled from 0 to the largest; a gap where a value is None."""
    top = max((v for v in values if v is not None and math.isfinite(v)), default=0.0)
    out = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(" ")
        else:
            out.append(
                _TICKS[min(int(v / top * (len(_TICKS) - 1)), len(_TICKS) - 1)] if top else _TICKS[0]
            )
    return "".join(out)


def _when(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M")


def monitor_run(out: Console, run: MonitorRun) -> None:
    """The files and hours summarized, each alert state change, and what fires now."""
    hours = f"{len(run.hours)} hour(s)" if run.hours else "no new hours"
    out.print(
        f"Summarized {number(run.records)} records from {run.files} log file(s) into {hours}, "
        f"against {escape(run.reference)}; windows evaluated up to {_when(run.until)} UTC."
    )
    for event in run.alerts:
        colour = "red" if event.state == "firing" else "green"
        out.print(
            f"[{colour}]{event.state.upper()}[/] {escape(event.alert)} {escape(event.feature)}: "
            f"{event.statistic} {event.value:.4g} vs threshold {event.threshold:.4g} in "
            f"{_when(event.window_start)}..{_when(event.window_end)}"
        )
    if run.firing:
        names = ", ".join(f"{e.alert} on {e.feature}" for e in run.firing)
        out.print(f"[red]Firing now:[/] {escape(names)}")
    else:
        out.print("[green]No alert is firing.[/]")
    if run.undelivered:
        out.print(f"[yellow]{run.undelivered} webhook call(s) failed; retried at the next run.[/]")


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def monitor_history(out: Console, ref: str, window: str, points: pl.DataFrame) -> None:
    """Sparklines of each statistic with data, then one row per window."""
    if points.is_empty():
        out.print(f"No summaries for {escape(ref)} yet; run 'featurestore monitor run' first.")
        return
    shown = [s for s in _STATISTICS if points[s].is_not_null().any()]
    out.print(f"[bold]{escape(ref)}[/], {window} windows, {points.height} points")
    for name in shown:
        out.print(f"  {name:<18} {sparkline(points[name].to_list())}")
    table = Table(box=box.SIMPLE_HEAD)
    for column in ("window start (UTC)", "rows", *shown, "null rate", "match rate", "verdict"):
        table.add_column(
            column, justify="left" if column in ("window start (UTC)", "verdict") else "right"
        )
    for row in points.iter_rows(named=True):
        stats = [
            f"[red]{_cell(row[s])}[/]" if s in (row["flagged"] or []) else _cell(row[s])
            for s in shown
        ]
        verdict = row["verdict"]
        table.add_row(
            _when(row["start"]),
            number(row["rows"]),
            *stats,
            _cell(row["null_rate"]),
            _cell(row["match_rate"]),
            f"[red]{verdict}[/]" if verdict == "flagged" else verdict,
        )
    out.print(table)
