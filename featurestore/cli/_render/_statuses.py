"""Value statuses in colour: one style per status, and tallies of the statuses of many values."""

from __future__ import annotations

from collections.abc import Mapping

from featurestore._format import number
from featurestore._value_rules import FeatureStatus

__all__ = ["STATUS_STYLES", "status_counts", "status_totals"]

STATUS_STYLES = {
    FeatureStatus.PRESENT: "green",
    FeatureStatus.DEFAULTED: "yellow",
    FeatureStatus.STALE: "yellow",
    FeatureStatus.NOT_FOUND: "dim",
    FeatureStatus.INVALID: "red",
}


def status_counts(counts: Mapping[str, int]) -> str:
    """'all present', or the count of every other status: '508 invalid · 12 stale'."""
    others = [
        f"[{STATUS_STYLES[s]}]{number(counts[s.value])} {s.value.lower().replace('_', ' ')}[/]"
        for s in FeatureStatus
        if s is not FeatureStatus.PRESENT and counts.get(s.value)
    ]
    if not others:
        return "[green]all present[/]" if counts.get("PRESENT") else "[dim]no rows[/]"
    return " · ".join(others)


def status_totals(counts: Mapping[str, int]) -> str | None:
    """Every status with its count, then the total: 'values: PRESENT 90 · STALE 5 (of 95)';
    None when there are no values."""
    parts = [
        f"[{STATUS_STYLES[s]}]{s.value} {number(counts[s.value])}[/]"
        for s in FeatureStatus
        if counts.get(s.value)
    ]
    if not parts:
        return None
    return f"values: {' · '.join(parts)} (of {number(sum(counts.values()))})"
