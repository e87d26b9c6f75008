"""``status``: the repo's registry, online store and serving log, a row per view, its problems."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from featurestore._format import number
from featurestore._times import format_duration
from featurestore.cli._render._console import timestamp
from featurestore.monitoring import RepoStatus, ViewStatus

__all__ = ["repo_status"]


def _freshness(view: ViewStatus) -> str:
    """The newest online value's age against the ttl: '2h 5m / 1d' (red beyond the ttl)."""
    if view.age_seconds is None:
        return "-"
    ttl = view.ttl_seconds
    text = format_duration(view.age_seconds) + (f" / {format_duration(ttl)}" if ttl else "")
    return f"[red]{escape(text)}[/]" if view.stale else escape(text)


def _entities(view: ViewStatus) -> str:
    """Entities held online: of the latest values, and of recent events for aggregations."""
    parts = [] if view.online_entities is None else [number(view.online_entities)]
    if view.event_entities is not None:
        parts.append(f"{number(view.event_entities)} with events")
    return ", ".join(parts) or "-"


def _header(status: RepoStatus) -> str:
    """The project, when it was checked, and the state of its registry, store and log."""
    applied = timestamp(status.applied_at) if status.applied_at else "[red]never[/]"
    reach = "[red]unreachable[/]" if status.online_store_error else "[green]reachable[/]"
    log = status.serving_log
    days = (
        f", {log.first_day} to {log.last_day}, last written {timestamp(log.last_written)} UTC, "
        f"{number(log.last_day_records)} record(s) on {log.last_day}"
        if log.last_day
        else ""
    )
    return (
        f"Project [bold]{escape(status.project)}[/] at {timestamp(status.checked_at)} UTC\n"
        f"  registry: applied {applied}\n"
        f"  online store: {escape(status.online_store)} ({reach})\n"
        f"  serving log: {number(log.files)} file(s), {log.bytes / 1e6:,.1f} MB{days}"
    )


def _views(status: RepoStatus) -> Table:
    """One row per view: kind, owner, entities online, materialized to, age / ttl, state."""
    table = Table(show_edge=False, box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0))
    for column in ("view", "kind", "owner", "online entities", "materialized to", "age / ttl"):
        table.add_column(column, no_wrap=column != "owner")
    table.add_column("state", no_wrap=True)
    for view in status.views:
        ends = [t for t in (view.materialized_end, view.events_end) if t is not None]
        state = f"[red]{len(view.problems)} problem(s)[/]" if view.problems else "[green]ok[/]"
        table.add_row(
            escape(view.name),
            view.kind.replace("_", "-"),
            escape(view.owner or "-"),
            _entities(view) if view.online else "-",
            timestamp(max(ends)) if ends else "-",
            _freshness(view),
            state,
        )
    return table


def repo_status(out: Console, status: RepoStatus) -> None:
    """The repo's registry, online store and serving log, a row per view, then each problem."""
    out.print(_header(status))
    out.print(_views(status))
    for problem in status.flagged:
        out.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
    if status.flagged:
        out.print(f"[red]{len(status.flagged)} problem(s).[/]")
    else:
        out.print("[green]No problems found.[/]")
