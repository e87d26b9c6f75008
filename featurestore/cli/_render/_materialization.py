"""``materialize``: per view, what was published and the guard's verdict; a guard's refusal."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from featurestore._format import number
from featurestore.cli._render._console import error, timestamp
from featurestore.online import GuardCheck, GuardReport, MaterializationResult, PushResult

__all__ = ["guard_refusal", "materialization", "materialization_json"]

FORCE_HINT = "Re-run with --force to publish the batch anyway."


def _guard_json(report: GuardReport) -> dict[str, Any]:
    return report.model_dump(mode="json") | {"passed": report.passed}


def _guard_line(check: GuardCheck) -> str:
    feature = " " + escape(f"[{check.feature}]") if check.feature else ""
    return f"{escape(check.check)}{feature}: {escape(check.detail)}"


def _row(r: MaterializationResult) -> list[str]:
    """View, window, rows, seconds, rows/s, whether published, and the guard's verdict."""
    window = "full snapshot" if r.start is None else f"since {timestamp(r.start)}"
    if r.rebuilt:
        window = "[yellow]full rebuild[/]"
    rate = number(round(r.rows_per_second)) if r.seconds > 0 else "-"
    if not r.published:
        published = "[red]no[/]"
    else:
        published = "[yellow]forced[/]" if r.forced else "[green]yes[/]"
    checks, failed = len(r.guard.checks), len(r.guard.failures)
    guard = (
        f"[green]{checks} check(s) passed[/]"
        if not failed
        else f"[yellow]{failed} of {checks} check(s) failed[/]"
    )
    return [escape(r.view), window, number(r.rows), f"{r.seconds:.3f}", rate, published, guard]


def materialization(out: Console, results: Sequence[MaterializationResult]) -> None:
    """Per view: window, rows, time, throughput, whether published and the guard's verdict;
    then each rebuild and failed check."""
    if not results:
        out.print("No view was materialized.")
        return
    end = max(r.end for r in results)
    total = sum(r.rows for r in results)
    table = Table(
        title=f"Materialized {len(results)} view(s) as of {timestamp(end)} UTC, "
        f"{number(total)} rows in {sum(r.seconds for r in results):.2f}s",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    for column in ("view", "window", "rows", "seconds", "rows/s", "published", "guard"):
        numeric = column in ("rows", "seconds", "rows/s")
        table.add_column(column, justify="right" if numeric else "left", no_wrap=column != "guard")
    for r in results:
        table.add_row(*_row(r))
    out.print(table)
    for r in results:
        if r.rebuilt:
            out.print(f"  [yellow]↻[/] {escape(r.view)}: {escape(r.rebuilt)}", soft_wrap=True)
        for check in r.guard.failures:
            out.print(f"  [yellow]![/] {escape(r.view)}: {_guard_line(check)}", soft_wrap=True)


def guard_refusal(
    out: Console,
    report: GuardReport,
    published: Sequence[str] = (),
    not_attempted: Sequence[str] = (),
    hint: str = FORCE_HINT,
) -> None:
    """Why the guard refused a view's batch: every failed check, and what stays online."""
    previous = "none" if report.previous_rows is None else f"{number(report.previous_rows)} rows"
    error(
        out,
        f"the guard refused to publish view {report.view!r}: {len(report.failures)} of "
        f"{len(report.checks)} check(s) failed on a batch of {number(report.rows)} rows "
        f"(previous batch: {previous}).",
    )
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("check", no_wrap=True, style="red")
    table.add_column("feature", no_wrap=True)
    table.add_column("detail")
    for check in report.failures:
        table.add_row(escape(check.check), escape(check.feature or "-"), escape(check.detail))
    out.print(table)
    out.print(
        f"Nothing was published for {escape(report.view)!r}: its previously published values "
        f"stay online. {hint}",
        soft_wrap=True,
    )
    if published:
        out.print(f"Published before the refusal: {escape(', '.join(published))}.")
    if not_attempted:
        out.print(f"Not attempted: {escape(', '.join(not_attempted))}.")


def materialization_json(
    results: Sequence[MaterializationResult], refused: GuardReport | None = None
) -> dict[str, Any]:
    """The results as JSON data, with the refused view's guard report if there was one."""
    views = []
    for r in results:
        data = r.model_dump(mode="json")
        data["guard"] = _guard_json(r.guard)
        data["rows_per_second"] = r.rows_per_second if r.seconds > 0 else None
        views.append(data)
    return {"results": views, "refused": _guard_json(refused) if refused else None}


def push_result(out: Console, result: PushResult) -> None:
    """What a push did: events, the part written, per aggregation view what changed online."""
    where = (
        f"appended to the source's files as {result.offline_file}"
        if result.offline_file
        else ("not written to the source's files")
    )
    out.print(f"{number(result.events)} event(s) of {escape(result.source)} {where}")
    for view, entities in result.entities.items():
        late = result.late.get(view, 0)
        compacted = result.compacted.get(view, 0)
        out.print(
            f"  {escape(view)}: {number(entities)} entities updated online"
            f", {number(late)} late event(s) dropped, {number(compacted)} compacted"
        )
    if result.online_error:
        out.print(f"[yellow]online store not updated: {escape(result.online_error)}[/]")
