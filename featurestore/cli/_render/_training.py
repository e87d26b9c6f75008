"""``training-set``: a training set's rows, time range and per-feature table, or its JSON."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from featurestore._format import number, percent
from featurestore._profiles import FeatureProfile
from featurestore._value_rules import FeatureStatus
from featurestore.cli._render._console import timestamp
from featurestore.cli._render._statuses import status_counts, status_totals
from featurestore.offline import TrainingSet

__all__ = ["feature_table", "training_json", "training_summary"]


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
        return f"{escape(shown)} [dim]{percent(n / non_null)}[/]"
    if profile.kind == "temporal":
        return f"{profile.min} .. {profile.max}"
    return "-"


def _null_rate(profile: FeatureProfile | None) -> str:
    if profile is None or not profile.count:
        return "-"
    rate = profile.null_count / profile.count
    return percent(rate) if rate else "[dim]0%[/]"


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
        profile = profiles.get(feat.column)
        table.add_row(
            f"  {escape(name)}",
            feat.dtype,
            _null_rate(profile),
            _summary(profile),
            status_counts(feat.statuses),
            f"[dim]{feat.fingerprint}[/]",
        )
    return table


def training_summary(out: Console, ts: TrainingSet, path: Path | None) -> None:
    """Rows, time range, per-feature table and where the set was written."""
    meta = ts.metadata
    out.print(feature_table(ts))
    out.print(
        f"[bold]{number(meta.row_count)}[/] rows x [bold]{len(meta.features)}[/] features, spine "
        f"{timestamp(meta.spine_start)} .. {timestamp(meta.spine_end)} UTC "
        f"(column {escape(meta.timestamp_column)!r})"
    )
    totals: Counter[str] = Counter()
    for feat in meta.features:
        totals.update(feat.statuses)
    line = status_totals(totals)
    if line is not None:
        out.print(line)
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
