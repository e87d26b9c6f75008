"""``drift``, ``skew`` and ``apply --check``: a report's verdict per feature, worst first."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from featurestore._format import number
from featurestore.cli._render._online import value_text

__all__ = ["parity", "parity_refusal", "report"]

VERDICT_STYLES = {
    "flagged": "bold red",
    "warn": "yellow",
    "insufficient_data": "cyan",
    "ok": "green",
}
REPORT_STATS = 3  # statistics shown per feature in the terminal; --json and --html show all
EXAMPLE_FIELDS = {  # a parity example's fields other than its keys and request values
    "time",
    "offline",
    "online",
    "offline_status",
    "online_status",
    "inputs",
    "error",
}


def _verdict(verdict: str) -> Text:
    return Text(verdict.replace("_", " "), style=VERDICT_STYLES.get(verdict, ""))


def _counts(summary: Mapping[str, Any], verdicts: tuple[str, ...]) -> str:
    """'1 flagged, 0 warn, 2 ok': the number of features of each verdict."""
    return ", ".join(f"{summary.get(v, 0)} {v.replace('_', ' ')}" for v in verdicts)


def _stat(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)[:40]
    return "-" if value is None else str(value)


def report(out: Console, data: Mapping[str, Any], html_path: Path | None = None) -> None:
    """A drift or skew report as one table, worst verdict first, then the counts."""
    table = Table(title=data["title"], box=box.SIMPLE_HEAD, title_justify="left")
    for column in ("verdict", "feature", "owner", "statistics"):
        table.add_column(column)
    table.add_column("why", overflow="fold")
    for f in data["features"]:
        stats = "\n".join(f"{k} {_stat(v)}" for k, v in list(f["stats"].items())[:REPORT_STATS])
        table.add_row(
            _verdict(str(f["verdict"])),
            escape(f["ref"]),
            escape(f["owner"] or "-"),
            escape(stats),
            escape("; ".join(f["reasons"]) or "-"),
        )
    out.print(table)
    summary = data["summary"]
    counts = _counts(summary, ("flagged", "warn", "insufficient_data", "ok"))
    out.print(f"{summary.get('features', len(data['features']))} features: {counts}")
    if html_path is not None:
        out.print(f"HTML report written to {html_path}")


def _parity_example(example: Mapping[str, Any]) -> str:
    """One differing row: keys, time and request values, then both values and statuses."""

    def shown(value: Any) -> str:
        return repr(value) if isinstance(value, str) else value_text(value)

    where = ", ".join(f"{k}={shown(v)}" for k, v in example.items() if k not in EXAMPLE_FIELDS)
    sides = (
        f"offline {shown(example.get('offline'))} ({example.get('offline_status')}), "
        f"online {shown(example.get('online'))} ({example.get('online_status')})"
    )
    text = f"{where} at {example.get('time')}: {sides}"
    if example.get("error"):
        text += f"; {example['error']}"
    return text


def _parity_cell(feature: Mapping[str, Any]) -> str:
    """The first differing row, else why a feature is not ok, else '-'."""
    if feature["examples"]:
        return _parity_example(feature["examples"][0])
    return "; ".join(feature["reasons"]) if feature["verdict"] != "ok" else "-"


def _parity_summary(summary: Mapping[str, Any]) -> str:
    counts = _counts(summary, ("flagged", "insufficient_data", "ok"))
    rows = ", ".join(f"{number(n)} for {g}" for g, n in summary["rows"].items()) or "none"
    seconds = summary["seconds"].get("total")
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    return f"{summary['features']} features: {counts} (rows: {rows}){took}"


def parity(out: Console, data: Mapping[str, Any]) -> None:
    """A parity report: one row per feature (verdict, rows, mismatches, an example), flagged
    first, then why each flagged feature differs and the counts."""
    out.print(f"[bold]{escape(data['title'])}[/]", soft_wrap=True)
    table = Table(box=box.SIMPLE_HEAD)
    table.add_column("verdict", no_wrap=True)
    table.add_column("feature", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("mismatches", justify="right")
    table.add_column("example", overflow="fold")
    for f in data["features"]:
        stats = f["stats"]
        table.add_row(
            _verdict(str(f["verdict"])),
            escape(f["ref"]),
            number(stats["rows_compared"]),
            f"[red]{number(stats['mismatches'])}[/]" if stats["mismatches"] else "0",
            escape(_parity_cell(f)),
        )
    out.print(table)
    for f in data["features"]:
        if f["verdict"] == "flagged":
            out.print(f"[red]✗[/] {escape(f['ref'])}: {escape('; '.join(f['reasons']))}")
    out.print(_parity_summary(data["summary"]))
    for name, why in data["summary"].get("not_checked", {}).items():
        out.print(f"[dim]not checked: {escape(name)}: {escape(why)}[/]")


def parity_refusal(out: Console, data: Mapping[str, Any]) -> None:
    """Why ``apply --check --fail-on-flagged`` applied nothing."""
    flagged = [f["ref"] for f in data["features"] if f["verdict"] == "flagged"]
    out.print(
        f"[red]{len(flagged)} feature(s) differ between the offline path and the serving code "
        f"({escape(', '.join(flagged))}); nothing was applied (--fail-on-flagged).[/]",
        soft_wrap=True,
    )
