"""Everything the CLI shows: rich tables, step progress, error messages and JSON output.

The verbs in main.py gather results from the library; this module decides how they look.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from featurestore.monitoring.profile import FeatureProfile
from featurestore.offline.training_set import TrainingSet
from featurestore.registry import FeatureRecord, PlanDiff
from featurestore.store import SourceReport
from featurestore.validation import FeatureStatus

__all__ = [
    "Steps",
    "console",
    "data_files",
    "dump_json",
    "error",
    "feature_table",
    "features",
    "plan",
    "status_counts",
    "steps",
    "training_json",
    "training_summary",
    "validation",
]

FALLBACK_WIDTH = 120
STATUS_STYLES = {
    FeatureStatus.PRESENT: "green",
    FeatureStatus.NOT_FOUND: "yellow",
    FeatureStatus.STALE: "yellow",
    FeatureStatus.DEFAULTED: "cyan",
    FeatureStatus.INVALID: "red",
}


def console(stderr: bool = False) -> Console:
    """A console; when output is not a terminal, tables get a readable width, not 80."""
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = FALLBACK_WIDTH
    return out


def dump_json(value: Any) -> None:
    """Machine-readable output on stdout: plain JSON, no colours or wrapping."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error(out: Console, message: str) -> None:
    """One red paragraph; long lines wrap in the terminal, not in the text."""
    text = Text("Error: ", style="bold red")
    text.append(message, style="red")
    out.print(text, soft_wrap=True)


def number(value: float | int | None) -> str:
    """A short human form of a number: 3,008 / 41.9 / 0.1965."""
    if value is None:
        return "-"
    if isinstance(value, int) or abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def percent(share: float) -> str:
    """A share as a percentage that never rounds a non-zero share to 0."""
    if 0 < share < 0.001:
        return "<0.1%"
    return f"{share:.1%}"


def timestamp(value: dt.datetime | None) -> str:
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


class Steps:
    """A progress callback: each message starts a step and ends the previous one.

    Finished steps print as lines with their duration; in a terminal a spinner shows the
    step under way.
    """

    def __init__(self, out: Console, status: Any = None) -> None:
        self.out = out
        self.status = status
        self.current: str | None = None
        self.started = 0.0

    def __call__(self, message: str) -> None:
        self.done()
        self.current = message
        self.started = time.perf_counter()
        if self.status is not None:
            self.status.update(f"[bold]{escape(message)}…")

    def done(self, ok: bool = True) -> None:
        """End the step under way, if any."""
        if self.current is None:
            return
        elapsed = time.perf_counter() - self.started
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.out.print(f"  {mark} {escape(self.current)} [dim]{elapsed:.2f}s[/]")
        self.current = None


@contextmanager
def steps(out: Console) -> Iterator[Steps]:
    """A :class:`Steps` callback for the duration of the block."""
    if out.is_terminal:
        with out.status("working…") as status:
            tracker = Steps(out, status)
            try:
                yield tracker
            except BaseException:
                tracker.done(ok=False)
                raise
            tracker.done()
    else:
        tracker = Steps(out)
        try:
            yield tracker
        except BaseException:
            tracker.done(ok=False)
            raise
        tracker.done()


def _by_view(refs: Sequence[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for ref in refs:
        view, _, name = ref.partition(":")
        groups.setdefault(view, []).append(name)
    return groups


def plan(out: Console, diff: PlanDiff, project: str, applied: bool) -> None:
    """Added and removed features grouped by view; each changed feature with its reasons."""
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
    out.print(table)
    if not applied:
        out.print("[dim]Nothing was written; run 'featurestore apply' to record this.[/]")


def features(out: Console, records: Sequence[FeatureRecord]) -> None:
    """The applied features, one row each."""
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


def validation(out: Console, reports: Sequence[SourceReport]) -> None:
    """Each view's source with ok or its problem count, then every problem in full."""
    table = Table(title="Sources checked against their declarations", title_justify="left")
    table.add_column("view", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("path")
    table.add_column("result", no_wrap=True)
    for rep in reports:
        result = "[green]ok[/]" if rep.ok else f"[red]{len(rep.problems)} problem(s)[/]"
        table.add_row(escape(rep.view), escape(rep.source), escape(rep.path), result)
    out.print(table)
    for rep in reports:
        for problem in rep.problems:
            out.print(f"[red]✗[/] {escape(problem)}")
    bad = sum(not r.ok for r in reports)
    if bad:
        out.print(f"[red]{bad} of {len(reports)} source(s) have problems.[/]")
    else:
        out.print(f"[green]All {len(reports)} source(s) match their declarations.[/]")


def status_counts(counts: Mapping[str, int]) -> str:
    """'all present', or the count of every other status: '508 invalid · 12 stale'."""
    others = [
        f"[{STATUS_STYLES[s]}]{counts[s.value]:,} {s.value.lower().replace('_', ' ')}[/]"
        for s in FeatureStatus
        if s is not FeatureStatus.PRESENT and counts.get(s.value)
    ]
    if not others:
        return "[green]all present[/]" if counts.get("PRESENT") else "[dim]no rows[/]"
    return " · ".join(others)


def _summary(profile: FeatureProfile | None) -> str:
    """The mean of a numeric column, or the most frequent value and its share."""
    if profile is None:
        return "-"
    if profile.kind == "numeric":
        return number(profile.mean)
    non_null = profile.count - profile.null_count
    if profile.top_categories and non_null:
        value, n = profile.top_categories[0]
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f"{escape(shown)} [dim]{n / non_null:.0%}[/]"
    if profile.kind == "temporal":
        return f"{profile.min} .. {profile.max}"
    return "-"


def feature_table(ts: TrainingSet, title: str | None = None) -> Table:
    """Per feature, grouped by view: dtype, null rate, mean or top value, statuses, fingerprint."""
    profiles = ts.profile()
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        padding=(0, 1, 0, 0),
    )
    table.add_column("feature", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("nulls", justify="right", no_wrap=True)
    table.add_column("mean / top", justify="right", no_wrap=True)
    table.add_column("statuses", min_width=15)
    table.add_column("fingerprint", no_wrap=True, overflow="ellipsis")
    view = None
    for feat in ts.metadata.features:
        this_view, _, name = feat.ref.partition(":")
        if this_view != view:
            table.add_row(f"[bold]{escape(this_view)}[/]")
            view = this_view
        prof = profiles.get(feat.column)
        nulls = "-"
        if prof is not None and prof.count:
            rate = prof.null_count / prof.count
            nulls = percent(rate) if rate else "[dim]0%[/]"
        table.add_row(
            f"  {escape(name)}",
            feat.dtype,
            nulls,
            _summary(prof),
            status_counts(feat.statuses),
            f"[dim]{feat.fingerprint}[/]",
        )
    return table


def training_summary(out: Console, ts: TrainingSet, path: Path | None) -> None:
    """Rows, time range, per-feature table and where the set was written."""
    meta = ts.metadata
    totals: dict[str, int] = {}
    for feat in meta.features:
        for status, n in feat.statuses.items():
            totals[status] = totals.get(status, 0) + n
    out.print(feature_table(ts))
    out.print(
        f"[bold]{meta.row_count:,}[/] rows x [bold]{len(meta.features)}[/] features, spine "
        f"{timestamp(meta.spine_start)} .. {timestamp(meta.spine_end)} UTC "
        f"(column {escape(meta.timestamp_column)!r})"
    )
    values = sum(totals.values())
    parts = [
        f"[{STATUS_STYLES[s]}]{s.value} {totals[s.value]:,}[/]"
        for s in FeatureStatus
        if totals.get(s.value)
    ]
    if values:
        out.print(f"values: {' · '.join(parts)} (of {values:,})")
    if path is not None:
        out.print(f"written to [bold]{escape(str(path))}[/]")


def training_json(ts: TrainingSet, path: Path | None) -> dict[str, Any]:
    """The training set's metadata (without profiles) and output path as JSON data."""
    data = ts.metadata.model_dump(mode="json", exclude={"profiles"})
    order = [s.value for s in FeatureStatus]
    for feat in data["features"]:
        feat["statuses"] = dict(sorted(feat["statuses"].items(), key=lambda kv: order.index(kv[0])))
    data["output"] = str(path) if path is not None else None
    return data


def data_files(out: Console, files: Mapping[str, Path], root: Path) -> None:
    """Generated files with their row counts and sizes."""
    import pyarrow.parquet as pq

    table = Table(show_edge=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("source", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("size", justify="right")
    table.add_column("path")
    for name, path in files.items():
        rows = pq.read_metadata(path).num_rows
        size = path.stat().st_size / 1e6
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        table.add_row(escape(name), f"{rows:,}", f"{size:.1f} MB", escape(str(shown)))
    out.print(table)
