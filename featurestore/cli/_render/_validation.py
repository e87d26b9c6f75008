"""``validate``: each source against its declarations, then the values of each feature."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from featurestore._apply_checks import SourceReport
from featurestore._format import number, percent

__all__ = ["validation"]

INVALID_MEANS = (
    "Rows breaking a rule get status INVALID in training sets and online: the value "
    "is replaced by the feature's default, or null."
)


def _sources(reports: Sequence[SourceReport]) -> Table:
    """One row per view's source: its path, rows, and ok or its problem count."""
    table = Table(title="Sources checked against their declarations", title_justify="left")
    table.add_column("view", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("path")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for rep in reports:
        result = "[green]ok[/]" if rep.ok else f"[red]{len(rep.problems)} problem(s)[/]"
        rows = number(rep.rows) if rep.rows is not None else "-"
        table.add_row(escape(rep.view), escape(rep.source), escape(rep.path), rows, result)
    return table


def _value_checks(rep: SourceReport) -> Table:
    """One view's feature findings: rule, invalid rows (by broken rule) and examples."""
    table = Table(
        title=f"{rep.view}: values of {number(rep.rows or 0)} row(s)",
        title_justify="left",
        box=box.SIMPLE_HEAD,
    )
    table.add_column("feature", no_wrap=True)
    table.add_column("rule")
    table.add_column("invalid", justify="right", no_wrap=True)
    table.add_column("broken rule")
    table.add_column("examples", overflow="fold")
    for check in rep.features:
        if check.error is not None:
            invalid, broken, examples = "[red]error[/]", "-", escape(check.error)
        elif check.invalid:
            share = percent(check.invalid / check.rows) if check.rows else ""
            invalid = f"[red]{number(check.invalid)}[/] [dim]{share}[/]"
            broken = "\n".join(escape(f"{number(n)} {why}") for why, n in check.broken.items())
            examples = "\n".join(escape(str(e)) for e in check.examples)
        else:
            invalid, broken, examples = "[green]0[/]", "-", "-"
        table.add_row(escape(check.feature), escape(check.rule), invalid, broken, examples)
    return table


def _other_problems(out: Console, reports: Sequence[SourceReport]) -> bool:
    """Print every problem no value table shows; True if a plain feature has invalid values."""
    value_problems = False
    for rep in reports:
        where = f"source {rep.source!r} (view {rep.view!r})"
        shown = {f.problem(where) for f in rep.features}
        value_problems |= any(not f.ok and not f.aggregation for f in rep.features)
        for problem in rep.problems:
            if problem not in shown:
                out.print(f"[red]✗[/] {escape(problem)}")
        if rep.unchecked is not None:
            out.print(f"[yellow]![/] {escape(rep.unchecked)}")
    return value_problems


def validation(out: Console, reports: Sequence[SourceReport]) -> None:
    """Each view's source with ok or its problem count; then per view whose values were
    checked, a table of its features (rule, invalid rows by broken rule, examples); then
    every other problem in full."""
    out.print(_sources(reports))
    for rep in reports:
        if rep.features:
            out.print(_value_checks(rep))
    if _other_problems(out, reports):
        out.print(INVALID_MEANS, soft_wrap=True)
    bad = sum(not r.ok for r in reports)
    unchecked = sum(r.unchecked is not None for r in reports)
    if bad:
        out.print(f"[red]{bad} of {len(reports)} source(s) have problems.[/]")
    elif unchecked:
        out.print(
            f"[green]All {len(reports)} source(s) match their declarations[/]; the values "
            f"of {unchecked} catalog table(s) were not checked."
        )
    else:
        out.print(
            f"[green]All {len(reports)} source(s) match their declarations, values included.[/]"
        )
