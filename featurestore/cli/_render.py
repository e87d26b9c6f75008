"""Everything the CLI shows: rich tables, step progress, error messages and JSON output.

The verbs in _main.py gather results from the library; this module decides how they look.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from featurestore._format import number, percent
from featurestore._profiles import FeatureProfile
from featurestore._registry import FeatureRecord, PlanDiff
from featurestore._store import SourceReport
from featurestore._times import as_utc, format_duration
from featurestore._value_rules import FeatureStatus
from featurestore.monitoring._status import RepoStatus, ViewStatus
from featurestore.offline._training_set import TrainingSet
from featurestore.online._materialize import GuardCheck, GuardReport, MaterializationResult
from featurestore.serving._response import OnlineResponse

__all__ = [
    "Steps",
    "ViewSteps",
    "console",
    "data_files",
    "dump_json",
    "error",
    "feature_table",
    "features",
    "guard_refusal",
    "materialization",
    "materialization_json",
    "online",
    "online_json",
    "parity",
    "parity_refusal",
    "plan",
    "repo_status",
    "report",
    "status_counts",
    "steps",
    "training_json",
    "training_summary",
    "validation",
    "view_steps",
]

FALLBACK_WIDTH = 120
STATUS_STYLES = {
    FeatureStatus.PRESENT: "green",
    FeatureStatus.DEFAULTED: "yellow",
    FeatureStatus.STALE: "yellow",
    FeatureStatus.NOT_FOUND: "dim",
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


def repo_status(out: Console, status: RepoStatus) -> None:
    """The repo's registry, online store and serving log, a row per view, then each problem."""
    applied = timestamp(status.applied_at) if status.applied_at else "[red]never[/]"
    reach = "[red]unreachable[/]" if status.online_store_error else "[green]reachable[/]"
    log = status.serving_log
    days = (
        f", {log.first_day} to {log.last_day}, last written {timestamp(log.last_written)} UTC, "
        f"{log.last_day_records:,} record(s) on {log.last_day}"
        if log.last_day
        else ""
    )
    out.print(
        f"Project [bold]{escape(status.project)}[/] at {timestamp(status.checked_at)} UTC\n"
        f"  registry: applied {applied}\n"
        f"  online store: {escape(status.online_store)} ({reach})\n"
        f"  serving log: {log.files:,} file(s), {log.bytes / 1e6:,.1f} MB{days}"
    )
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
    out.print(table)
    for problem in status.flagged:
        out.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
    if status.flagged:
        out.print(f"[red]{len(status.flagged)} problem(s).[/]")
    else:
        out.print("[green]No problems found.[/]")


def validation(out: Console, reports: Sequence[SourceReport]) -> None:
    """Each view's source with ok or its problem count; then per view whose values were
    checked, a table of its features (rule, invalid rows by broken rule, examples); then
    every other problem in full."""
    table = Table(title="Sources checked against their declarations", title_justify="left")
    table.add_column("view", no_wrap=True)
    table.add_column("source", no_wrap=True)
    table.add_column("path")
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("result", no_wrap=True)
    for rep in reports:
        result = "[green]ok[/]" if rep.ok else f"[red]{len(rep.problems)} problem(s)[/]"
        rows = f"{rep.rows:,}" if rep.rows is not None else "-"
        table.add_row(escape(rep.view), escape(rep.source), escape(rep.path), rows, result)
    out.print(table)
    for rep in reports:
        if rep.features:
            out.print(_value_checks(rep))
    value_problems = False
    for rep in reports:
        where = f"source {rep.source!r} (view {rep.view!r})"
        shown = {f.problem(where) for f in rep.features}
        value_problems |= any(not f.ok and not f.aggregation for f in rep.features)
        for problem in rep.problems:
            if problem not in shown:
                out.print(f"[red]✗[/] {escape(problem)}")
    if value_problems:
        out.print(
            "Rows breaking a rule get status INVALID in training sets and online: the value "
            "is replaced by the feature's default, or null.",
            soft_wrap=True,
        )
    bad = sum(not r.ok for r in reports)
    if bad:
        out.print(f"[red]{bad} of {len(reports)} source(s) have problems.[/]")
    else:
        out.print(
            f"[green]All {len(reports)} source(s) match their declarations, values included.[/]"
        )


def _value_checks(rep: SourceReport) -> Table:
    """One view's feature findings: rule, invalid rows (by broken rule) and examples."""
    table = Table(
        title=f"{rep.view}: values of {rep.rows or 0:,} row(s)",
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
            invalid = f"[red]{check.invalid:,}[/] [dim]{share}[/]"
            broken = "\n".join(escape(f"{n:,} {why}") for why, n in check.broken.items())
            examples = "\n".join(escape(str(e)) for e in check.examples)
        else:
            invalid, broken, examples = "[green]0[/]", "-", "-"
        table.add_row(escape(check.feature), escape(check.rule), invalid, broken, examples)
    return table


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


class ViewSteps(Steps):
    """:class:`Steps` of a job done view by view, with a bar counting the views (in a terminal).

    A message counts toward the view it names; the bar shows the views finished so far.
    """

    def __init__(self, out: Console, views: Sequence[str], bar: Progress | None = None) -> None:
        super().__init__(out)
        self.views = list(views)
        self.bar = bar
        self.task = bar.add_task("starting", total=len(self.views)) if bar is not None else None
        self.seen: list[str] = []

    def __call__(self, message: str) -> None:
        named = [w for w in re.findall(r"\w+", message) if w in self.views]
        if named and named[0] not in self.seen:
            self.seen.append(named[0])
        if self.bar is not None and self.task is not None:
            self.bar.update(
                self.task, completed=max(len(self.seen) - 1, 0), description=escape(message)
            )
        super().__call__(message)

    def finish(self) -> None:
        """End the last step and fill the bar."""
        self.done()
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=len(self.views), description="done")


@contextmanager
def view_steps(out: Console, views: Sequence[str]) -> Iterator[ViewSteps]:
    """A :class:`ViewSteps` callback for the duration of the block."""
    if not out.is_terminal:
        tracker = ViewSteps(out, views)
        try:
            yield tracker
        except BaseException:
            tracker.done(ok=False)
            raise
        tracker.finish()
        return
    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("views"),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    )
    with bar:
        tracker = ViewSteps(out, views, bar)
        try:
            yield tracker
        except BaseException:
            tracker.done(ok=False)
            raise
        tracker.finish()


def _guard_json(report: GuardReport) -> dict[str, Any]:
    return report.model_dump(mode="json") | {"passed": report.passed}


def _guard_line(check: GuardCheck) -> str:
    feature = " " + escape(f"[{check.feature}]") if check.feature else ""
    return f"{escape(check.check)}{feature}: {escape(check.detail)}"


def materialization(out: Console, results: Sequence[MaterializationResult]) -> None:
    """Per view: window, rows, time, throughput, whether published and the guard's verdict."""
    if not results:
        out.print("No view was materialized.")
        return
    end = max(r.end for r in results)
    total = sum(r.rows for r in results)
    table = Table(
        title=f"Materialized {len(results)} view(s) as of {timestamp(end)} UTC, "
        f"{total:,} rows in {sum(r.seconds for r in results):.2f}s",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
    )
    table.add_column("view", no_wrap=True)
    table.add_column("window", no_wrap=True)
    table.add_column("rows", justify="right", no_wrap=True)
    table.add_column("seconds", justify="right", no_wrap=True)
    table.add_column("rows/s", justify="right", no_wrap=True)
    table.add_column("published", no_wrap=True)
    table.add_column("guard")
    for r in results:
        window = "full snapshot" if r.start is None else f"since {timestamp(r.start)}"
        if r.rebuilt:
            window = "[yellow]full rebuild[/]"
        rate = number(round(r.rows_per_second)) if r.seconds > 0 else "-"
        if not r.published:
            published = "[red]no[/]"
        else:
            published = "[yellow]forced[/]" if r.forced else "[green]yes[/]"
        checks = len(r.guard.checks)
        failed = len(r.guard.failures)
        guard = (
            f"[green]{checks} check(s) passed[/]"
            if not failed
            else f"[yellow]{failed} of {checks} check(s) failed[/]"
        )
        table.add_row(
            escape(r.view), window, f"{r.rows:,}", f"{r.seconds:.3f}", rate, published, guard
        )
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
    hint: str = "Re-run with --force to publish the batch anyway.",
) -> None:
    """Why the guard refused a view's batch: every failed check, and what stays online."""
    previous = "none" if report.previous_rows is None else f"{report.previous_rows:,} rows"
    error(
        out,
        f"the guard refused to publish view {report.view!r}: {len(report.failures)} of "
        f"{len(report.checks)} check(s) failed on a batch of {report.rows:,} rows "
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


def _value_text(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        if math.isfinite(value) and abs(value) >= 1e6:
            return f"{value:,.2f}"
        text = f"{value:.6g}"
        return text if any(c in text for c in ".ein") else f"{text}.0"
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _online_table(
    resp: OnlineResponse, columns: Sequence[str], rows: range, title: str | None
) -> Table:
    table = Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        show_footer=True,
        show_edge=False,
        pad_edge=False,
    )
    keys = list(resp.entities) or ["row"]  # features of request data alone: number the rows
    for i, key in enumerate(keys):
        table.add_column(key, footer="fingerprint" if i == 0 else "", no_wrap=True)
    for column in columns:
        fingerprint = resp.fingerprints.get(resp.refs[column], "-")
        table.add_column(column, footer=Text(fingerprint, style="dim"), no_wrap=True)
    for i in rows:
        cells: list[Text | str] = [_value_text(v[i]) for v in resp.entities.values()] or [
            str(i + 1)
        ]
        for column in columns:
            value, status = resp.values[column][i], resp.statuses[column][i]
            cell = Text(_value_text(value), style="dim" if value is None else "")
            cell.append("\n")
            cell.append(status.value, style=STATUS_STYLES[status])
            cells.append(cell)
        table.add_row(*cells)
    return table


def _pack_columns(out: Console, resp: OnlineResponse, sample: range) -> list[list[str]]:
    """Feature columns split into tables that fit the console: whole views share a table while
    they fit; a view too wide for one table is split into even parts."""
    groups: dict[str, list[str]] = {}
    for column, ref in resp.refs.items():
        groups.setdefault(ref.partition(":")[0], []).append(column)
    unbounded = out.options.update_width(1_000_000)

    def fits(columns: list[str]) -> bool:
        table = _online_table(resp, columns, sample, None)
        return Measurement.get(out, unbounded, table).maximum <= out.width

    chunks: list[list[str]] = []
    current: list[str] = []
    for columns in groups.values():
        if fits(current + columns):
            current += columns
            continue
        if current:
            chunks.append(current)
            current = []
        if fits(columns):
            current = list(columns)
            continue
        parts = 2
        while parts < len(columns):
            size = -(-len(columns) // parts)
            split = [columns[i : i + size] for i in range(0, len(columns), size)]
            if all(fits(part) for part in split):
                break
            parts += 1
        size = -(-len(columns) // parts)
        chunks += [columns[i : i + size] for i in range(0, len(columns), size)]
    if current:
        chunks.append(current)
    return chunks


def online(out: Console, resp: OnlineResponse) -> None:
    """One row per entity row and a column per feature (value over status, fingerprint below);
    features spread over several tables, view by view, when they do not fit in one."""
    n = resp.row_count
    out.print(
        f"[bold]{n:,}[/] entity row(s) x [bold]{len(resp.values)}[/] feature(s), "
        f"request time {timestamp(as_utc(resp.request_time))} UTC"
    )
    chunks = _pack_columns(out, resp, range(min(n, 50)))
    for columns in chunks:
        views = dict.fromkeys(resp.refs[c].partition(":")[0] for c in columns)
        title = escape(" · ".join(views)) if len(chunks) > 1 else None
        out.print(_online_table(resp, columns, range(n), title))
    totals = {s: sum(s is x for col in resp.statuses.values() for x in col) for s in FeatureStatus}
    parts = [f"[{STATUS_STYLES[s]}]{s.value} {k:,}[/]" for s, k in totals.items() if k]
    if parts:
        out.print(f"values: {' · '.join(parts)} (of {sum(totals.values()):,})")


def online_json(resp: OnlineResponse) -> dict[str, Any]:
    """Values, statuses and fingerprints of an online response as JSON data."""
    return {
        "request_time": resp.request_time.isoformat(),
        "entities": resp.entities,
        "features": resp.values,
        "statuses": {c: [s.value for s in col] for c, col in resp.statuses.items()},
        "fingerprints": resp.fingerprints,
    }


_VERDICT_STYLE = {
    "flagged": "bold red",
    "warn": "yellow",
    "insufficient_data": "cyan",
    "ok": "green",
}
REPORT_STATS = 3  # statistics shown per feature in the terminal; --json and --html show all


def _stat(value: Any) -> str:
    if isinstance(value, float):
        return number(value)
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)[:40]
    return "-" if value is None else str(value)


def report(out: Console, data: Mapping[str, Any], html_path: Path | None = None) -> None:
    """A drift or skew report as one table, worst verdict first, then the counts."""
    table = Table(title=data["title"], box=box.SIMPLE_HEAD, title_justify="left")
    table.add_column("verdict")
    table.add_column("feature")
    table.add_column("owner")
    table.add_column("statistics")
    table.add_column("why", overflow="fold")
    for f in data["features"]:
        verdict = str(f["verdict"])
        stats = "\n".join(f"{k} {_stat(v)}" for k, v in list(f["stats"].items())[:REPORT_STATS])
        table.add_row(
            Text(verdict.replace("_", " "), style=_VERDICT_STYLE.get(verdict, "")),
            escape(f["ref"]),
            escape(f["owner"] or "-"),
            escape(stats),
            escape("; ".join(f["reasons"]) or "-"),
        )
    out.print(table)
    summary = data["summary"]
    counts = ", ".join(
        f"{summary.get(v, 0)} {v.replace('_', ' ')}"
        for v in ("flagged", "warn", "insufficient_data", "ok")
    )
    out.print(f"{summary.get('features', len(data['features']))} features: {counts}")
    if html_path is not None:
        out.print(f"HTML report written to {html_path}")


def _parity_example(example: Mapping[str, Any]) -> str:
    """One differing row: keys, time and request values, then both values and statuses."""

    def shown(value: Any) -> str:
        return repr(value) if isinstance(value, str) else _value_text(value)

    skip = {"time", "offline", "online", "offline_status", "online_status", "inputs", "error"}
    where = ", ".join(f"{k}={shown(v)}" for k, v in example.items() if k not in skip)
    sides = (
        f"offline {shown(example.get('offline'))} ({example.get('offline_status')}), "
        f"online {shown(example.get('online'))} ({example.get('online_status')})"
    )
    text = f"{where} at {example.get('time')}: {sides}"
    if example.get("error"):
        text += f"; {example['error']}"
    return text


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
        verdict = str(f["verdict"])
        stats = f["stats"]
        if f["examples"]:
            example = _parity_example(f["examples"][0])
        elif verdict != "ok":
            example = "; ".join(f["reasons"])
        else:
            example = "-"
        table.add_row(
            Text(verdict.replace("_", " "), style=_VERDICT_STYLE.get(verdict, "")),
            escape(f["ref"]),
            f"{stats['rows_compared']:,}",
            f"[red]{stats['mismatches']:,}[/]" if stats["mismatches"] else "0",
            escape(example),
        )
    out.print(table)
    for f in data["features"]:
        if f["verdict"] == "flagged":
            out.print(f"[red]✗[/] {escape(f['ref'])}: {escape('; '.join(f['reasons']))}")
    summary = data["summary"]
    counts = ", ".join(
        f"{summary.get(v, 0)} {v.replace('_', ' ')}" for v in ("flagged", "insufficient_data", "ok")
    )
    rows = ", ".join(f"{n:,} for {g}" for g, n in summary["rows"].items()) or "none"
    seconds = summary["seconds"].get("total")
    took = f" in {seconds:.1f}s" if seconds is not None else ""
    out.print(f"{summary['features']} features: {counts} (rows: {rows}){took}")
    for name, why in summary.get("not_checked", {}).items():
        out.print(f"[dim]not checked: {escape(name)}: {escape(why)}[/]")


def parity_refusal(out: Console, data: Mapping[str, Any]) -> None:
    """Why ``apply --check --fail-on-flagged`` applied nothing."""
    flagged = [f["ref"] for f in data["features"] if f["verdict"] == "flagged"]
    out.print(
        f"[red]{len(flagged)} feature(s) differ between the offline path and the serving code "
        f"({escape(', '.join(flagged))}); nothing was applied (--fail-on-flagged).[/]",
        soft_wrap=True,
    )
