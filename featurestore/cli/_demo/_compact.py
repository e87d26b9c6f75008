"""What the demo prints instead of full tables unless ``--verbose``: an apply, a
materialization and a training set in a line or two each, and reports with the features that
are not ok in full and all the others summed up in one line."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from featurestore._format import number
from featurestore._registry import PlanDiff
from featurestore._times import format_duration
from featurestore.cli import _render as render
from featurestore.monitoring import RepoStatus
from featurestore.offline import TrainingSet
from featurestore.online import MaterializationResult

__all__ = ["applied", "fits", "materialized", "report", "status", "training_set"]

VERDICT_STYLES = {"flagged": "bold red", "warn": "yellow", "insufficient_data": "cyan"}
REPORT_STATS = 3  # statistics shown per feature, as the skew and drift verbs show them
DRIFT_STATS = ("psi", "ks_d", "linf", "true_rate_change")  # summed up over undrifted features


def fits(table: Table, width: int) -> bool:
    """Whether ``table`` prints within ``width`` columns without cutting a cell short."""
    console = Console(width=1_000_000)
    return Measurement.get(console, console.options, table).maximum <= width


def applied(out: Console, diff: PlanDiff, project: str, registry: str) -> None:
    """An apply that only added features as one line with the registry's path; any other diff
    in full, as ``featurestore apply`` prints it."""
    if diff.changed or diff.removed or not diff.added:
        render.plan(out, diff, project, applied=True)
        out.print(f"registry: {escape(registry)}")
        return
    out.print(
        f"Applied project [bold]{escape(project)}[/]: {len(diff.added)} features added; "
        f"registry: {escape(registry)}"
    )


def materialized(out: Console, results: Sequence[MaterializationResult]) -> None:
    """The views published, their rows (and whether rebuilt) and whether every guard passed,
    in a line; then each failed check, as ``featurestore materialize`` prints them."""
    if not results:
        out.print("No view was materialized.")
        return
    views = " · ".join(
        f"{escape(r.view)} {number(r.rows)} rows"
        + (" ([yellow]full rebuild[/])" if r.rebuilt else "")
        + ("" if r.published else " ([red]not published[/])")
        for r in results
    )
    failed = sum(len(r.guard.failures) for r in results)
    guards = "guards passed" if not failed else f"[yellow]{failed} failed check(s)[/]"
    end = render.timestamp(max(r.end for r in results))
    out.print(f"Materialized {len(results)} view(s) as of {end} UTC: {views}; {guards}")
    for r in results:
        for check in r.guard.failures:
            detail = f"{check.check}: {check.detail}"
            out.print(f"  [yellow]![/] {escape(r.view)}: {escape(detail)}")


def training_set(out: Console, ts: TrainingSet) -> None:
    """Rows, time range and status totals; then the features with statuses other than
    PRESENT, grouped by their counts, and how many others are all present."""
    meta = ts.metadata
    out.print(
        f"[bold]{number(meta.row_count)}[/] rows x [bold]{len(meta.features)}[/] features, spine "
        f"{render.timestamp(meta.spine_start)} .. {render.timestamp(meta.spine_end)} UTC"
    )
    totals: Counter[str] = Counter()
    groups: dict[str, list[str]] = {}
    for feat in meta.features:
        totals.update(feat.statuses)
        counts = render.status_counts(feat.statuses)
        if counts != render.status_counts({"PRESENT": 1}):
            groups.setdefault(counts, []).append(escape(feat.ref.partition(":")[2]))
    line = render.status_totals(totals)
    if line is not None:
        out.print(line)
    others = len(meta.features) - sum(map(len, groups.values()))
    shown = [f"{', '.join(names)} {counts}" for counts, names in groups.items()]
    if shown:
        out.print(f"{' · '.join(shown)}; the {others} other features all present")


def _feature_cell(feature: Mapping[str, Any]) -> Text:
    """A feature's name, owner and first statistics on one line, why it is not ok below."""
    stats = " · ".join(f"{k} {_stat(v)}" for k, v in list(feature["stats"].items())[:REPORT_STATS])
    cell = Text(feature["ref"], style="bold")
    cell.append(f" ({feature['owner'] or '-'}): {stats}")
    if feature["reasons"]:
        cell.append("\n" + "; ".join(feature["reasons"]))
    return cell


def _stat(value: Any) -> str:
    return number(value) if isinstance(value, int | float) else str(value)


def _largest(features: Sequence[Mapping[str, Any]], stat: str) -> float | None:
    """The largest absolute value of ``stat`` over ``features``; None if none has it."""
    values = [
        abs(float(f["stats"][stat]))
        for f in features
        if isinstance(f["stats"].get(stat), int | float)
    ]
    return max(values) if values else None


def _summary(kind: str, features: Sequence[Mapping[str, Any]]) -> str:
    """One line for the ok features of a skew or drift report, without naming them."""
    head = f"{len(features)} other features"
    if kind == "skew":
        rows = min(int(f["stats"].get("rows_compared", 0)) for f in features)
        worst = _largest(features, "mismatch_rate") or 0.0
        if not worst:
            return f"{head}: no skew (every served value matched the replay; {number(rows)} rows)"
        return f"{head}: mismatch rate at most {number(worst)}, within the limit"
    if kind == "drift":
        largest = [(stat, _largest(features, stat)) for stat in DRIFT_STATS]
        shown = ", ".join(f"{stat} {number(v)}" for stat, v in largest if v is not None)
        return f"{head}: no drift" + (f" (at most {shown})" if shown else "")
    return f"{head}: ok"


def report(out: Console, data: Mapping[str, Any], html_path: Path) -> None:
    """A skew or drift report: each feature that is not ok in full (name, owner, statistics,
    why), the ok ones in one line, then the counts and where the HTML was written."""
    out.print(f"[bold]{escape(data['title'])}[/]")
    table = Table(box=None, show_header=False, padding=(0, 1))
    table.add_column("verdict", no_wrap=True, min_width=7)
    table.add_column("feature", overflow="fold")
    ok = [f for f in data["features"] if f["verdict"] == "ok"]
    for f in data["features"]:
        if f["verdict"] != "ok":
            verdict = str(f["verdict"])
            style = VERDICT_STYLES.get(verdict, "")
            table.add_row(Text(verdict.replace("_", " "), style), _feature_cell(f))
    if ok:
        table.add_row(Text("ok", style="green"), _summary(str(data.get("kind")), ok))
    out.print(table)
    summary = data["summary"]
    counts = ", ".join(
        f"{summary[v]} {v.replace('_', ' ')}"
        for v in ("flagged", "warn", "insufficient_data", "ok")
        if summary.get(v)
    )
    total = summary.get("features", len(data["features"]))
    out.print(f"{total} features: {counts}; HTML report: {escape(str(html_path))}")


def status(out: Console, repo: RepoStatus) -> None:
    """Each view's state and the age of its newest online value against its ttl, in a line;
    then every problem, as ``featurestore status`` prints them."""
    views = []
    for view in repo.views:
        state = "[red]✗[/]" if view.problems else "[green]ok[/]"
        age = "" if view.age_seconds is None else format_duration(view.age_seconds)
        if age and view.ttl_seconds:
            age += f" / {format_duration(view.ttl_seconds)}"
        views.append(f"{escape(view.name)} {state}" + (f" ({age})" if age else ""))
    out.print(f"status at {render.timestamp(repo.checked_at)} UTC (age / ttl): {' · '.join(views)}")
    for problem in repo.flagged:
        out.print(f"[red]✗[/] {escape(problem)}", soft_wrap=True)
    if repo.flagged:
        out.print(f"[red]{len(repo.flagged)} problem(s).[/]")
    else:
        out.print("[green]No problems found.[/]")
