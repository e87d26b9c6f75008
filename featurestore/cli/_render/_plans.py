"""What ``plan`` and ``apply`` change in the registry, and the features ``list`` finds there."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from featurestore._registry import Change, FeatureRecord, PlanDiff

__all__ = ["features", "plan"]


def _by_view(refs: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ref in refs:
        view, _, name = ref.partition(":")
        groups.setdefault(view, []).append(name)
    return groups


def _changes(diff: PlanDiff) -> Table:
    """Added and removed features grouped by view; each changed feature with its reasons."""
    table = Table(show_header=False, show_edge=False, box=None, padding=(0, 1, 0, 0))
    table.add_column("", no_wrap=True)
    table.add_column("what", no_wrap=True)
    table.add_column("detail")
    for view, names in _by_view(diff.added).items():
        table.add_row("[green]+[/]", escape(view), escape(", ".join(names)))
    for change in diff.changed:
        fp = (
            f"fingerprint {change.old_fingerprint} -> {change.new_fingerprint}"
            if change.fingerprint_changed
            else "metadata only, same fingerprint"
        )
        table.add_row("[yellow]~[/]", escape(change.ref), escape("; ".join([fp, *change.reasons])))
    for view, names in _by_view(diff.removed).items():
        table.add_row("[red]-[/]", escape(view), escape(", ".join(names)))
    return table


def plan(out: Console, diff: PlanDiff, project: str, applied: bool, verbose: bool = False) -> None:
    """The counts of a diff, then its changes (``verbose``: with a unified diff of each changed
    feature's full record); a plan says that nothing was written."""
    head = "Applied" if applied else "Plan for"
    if not diff.has_changes:
        out.print(
            f"{head} project [bold]{escape(project)}[/]: no changes "
            f"({len(diff.unchanged)} feature(s) match the registry)."
        )
        return
    out.print(
        f"{head} project [bold]{escape(project)}[/]: {len(diff.added)} added, "
        f"{len(diff.changed)} changed, {len(diff.removed)} removed, "
        f"{len(diff.unchanged)} unchanged."
    )
    out.print(_changes(diff))
    if verbose:
        for change in diff.changed:
            out.print(Text(_record_diff(change), style="dim"))
    if not applied:
        out.print("[dim]Nothing was written; run 'featurestore apply' to record this.[/]")


def features(out: Console, records: Sequence[FeatureRecord]) -> None:
    """The applied features, one row each, a section per view."""
    table = Table(title=f"{len(records)} applied feature(s)", title_justify="left")
    table.add_column("feature", no_wrap=True)
    table.add_column("kind")
    table.add_column("dtype")
    table.add_column("owner")
    table.add_column("fingerprint", no_wrap=True)
    view = None
    for rec in records:
        if view is not None and rec.view != view:
            table.add_section()
        view = rec.view
        table.add_row(
            escape(rec.ref),
            rec.kind.replace("_", "-"),
            rec.dtype,
            escape(rec.owner or "-"),
            f"[dim]{rec.fingerprint}[/]",
        )
    out.print(table)


def definitions(out: Console, kind: str, rows: Sequence[dict[str, str]]) -> None:
    """The repo's definitions of one kind, a row each, a column per field."""
    table = Table(title=f"{len(rows)} {kind}", title_justify="left")
    for column in rows[0] if rows else ["name"]:
        table.add_column(column.replace("_", " "), no_wrap=column == "name")
    for row in rows:
        table.add_row(*(escape(v or "-") for v in row.values()))
    out.print(table)


def _record_diff(change: Change) -> str:
    """A unified diff of a changed feature's record, as indented JSON."""

    def lines(record: FeatureRecord | None) -> list[str]:
        data = record.model_dump(mode="json") if record is not None else {}
        return json.dumps(data, indent=2, sort_keys=True).splitlines()

    diff = difflib.unified_diff(
        lines(change.old_record), lines(change.new_record), "applied", "on disk", lineterm=""
    )
    return f"{change.ref}\n" + "\n".join(diff)
