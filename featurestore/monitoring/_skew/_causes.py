"""The likely causes of a feature's mismatches, each a small function of the mismatching rows
that says how many it explains and why, in words; :data:`CAUSES` lists them in report order.

A cause returns None when it does not apply to the feature (a freshness cause of an on-demand
output, or without event times in the log). Otherwise its ``rows`` fill the statistic named
``stat`` (when it has one) and its ``reason`` (when it has one) joins the feature's reasons,
most rows first.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import polars as pl

from featurestore.monitoring._skew._specs import Spec, view_col
from featurestore.online._event_state import EVENTS_SUFFIX

__all__ = ["CAUSES", "Cause", "CauseContext"]


@dataclass(frozen=True)
class Cause:
    """One likely cause: the mismatching rows it explains, under which statistic, and why."""

    stat: str | None
    rows: int
    reason: str | None


@dataclass(frozen=True)
class CauseContext:
    """What a cause reads: the feature, its mismatching rows, every compared feature (an
    on-demand output's inputs among them) and whether the log holds event times."""

    spec: Spec
    bad_rows: pl.DataFrame
    specs: list[Spec]
    event_times_logged: bool

    @property
    def of(self) -> str:
        return f"of {self.bad_rows.height:,} mismatching rows"

    @property
    def freshness(self) -> bool:
        """Whether the freshness of a batch view's stored rows or events can be judged."""
        return self.event_times_logged and not self.spec.on_demand

    def count(self, expr: pl.Expr) -> int:
        return int(self.bad_rows.select(expr.sum()).item())

    @cached_property
    def input_evidence(self) -> dict[str, pl.Expr]:
        """Per input of an on-demand output, by name, whether it differed on a row: an input
        feature served in the same request by its values, otherwise (and for inputs never
        served) by the event times of the stored rows or events it came from."""
        evidence: dict[str, pl.Expr] = {}
        for i in self.spec.inputs:
            spec = self.specs[i]
            differs = pl.col(spec.col("bad"))
            if self.event_times_logged:  # rows where the input itself was not requested
                requested = pl.col(spec.col("m"))
                differs = pl.when(requested).then(differs).otherwise(_differs(spec.parts[0]))
            evidence[spec.ref] = differs
        if self.event_times_logged:
            covered = {p for i in self.spec.inputs for p in self.specs[i].parts}
            for part in self.spec.parts:
                if part not in covered:
                    evidence[_part_text(part)] = _differs(part)
        return evidence


def _differs(part: str) -> pl.Expr:
    """The row or newest event served from ``part`` is not the one the offline join found."""
    return pl.col(view_col("se", part)).ne_missing(pl.col(view_col("oe", part)))


def _part_text(part: str) -> str:
    view = part.removesuffix(EVENTS_SUFFIX)
    return f"events of view {view!r}" if view != part else f"rows of view {view!r}"


def _found(stat: str, rows: int, reason: str) -> Cause:
    """A cause that always fills its statistic and gives its reason only when it explains rows."""
    return Cause(stat, rows, reason if rows else None)


def definition_changed(c: CauseContext) -> Cause:
    """Rows served under a definition that is no longer applied."""
    s, then = c.spec, pl.col(c.spec.col("afp"))
    changed = c.bad_rows.filter(then.is_not_null() & (then != s.fingerprint))
    fingerprints = ", ".join(sorted(changed[s.col("afp")].unique().to_list()))
    return _found(
        "definition_changed_rows",
        changed.height,
        f"definition changed since serving: {changed.height:,} {c.of} were served while "
        f"fingerprint {fingerprints} was applied, the registry now has {s.fingerprint}",
    )


def earlier_definition(c: CauseContext) -> Cause:
    """Rows served with values of an earlier definition than the one applied at the time."""
    s = c.spec
    fp, then = pl.col(s.col("fp")), pl.col(s.col("afp"))
    earlier = c.bad_rows.filter(fp.is_not_null() & then.is_not_null() & (fp != then))
    computed = ", ".join(sorted(earlier[s.col("fp")].unique().to_list()))
    return _found(
        "earlier_definition_rows",
        earlier.height,
        f"values of an earlier definition: on {earlier.height:,} {c.of} the online store "
        f"served values computed by fingerprint {computed}, not the definition applied at "
        "the time; materialize after every apply that changes a feature",
    )


def _served_older(part: str) -> pl.Expr:
    se, oe = pl.col(view_col("se", part)), pl.col(view_col("oe", part))
    return (se < oe) | (se.is_null() & oe.is_not_null())


def stale_materialization(c: CauseContext) -> Cause | None:
    """Rows whose served row of a plain view was older than the offline join's (or none)."""
    part = c.spec.parts[0]
    if not c.freshness or part.endswith(EVENTS_SUFFIX):
        return None
    older = c.count(_served_older(part))
    return _found(
        "served_older_rows",
        older,
        f"stale materialization: on {older:,} {c.of} the online store served an older "
        f"row of view {part!r} than the offline join found at the request time (or "
        "none); materialize more often or check that the job runs",
    )


def served_newer(c: CauseContext) -> Cause | None:
    """Rows whose served row of a plain view was newer than the offline join's."""
    part = c.spec.parts[0]
    if not c.freshness or part.endswith(EVENTS_SUFFIX):
        return None
    se, oe = pl.col(view_col("se", part)), pl.col(view_col("oe", part))
    newer = c.count((se > oe) | (se.is_not_null() & oe.is_null()))
    return _found(
        "served_newer_rows",
        newer,
        f"on {newer:,} {c.of} the online store served a newer row of view {part!r} than "
        "the offline join found at the request time: values materialized after the "
        "request time, or source rows removed since",
    )


def events_behind(c: CauseContext) -> Cause | None:
    """Rows whose newest stored event of an aggregation view was older than the source's."""
    part = c.spec.parts[0]
    if not c.freshness or not part.endswith(EVENTS_SUFFIX):
        return None
    older = c.count(_served_older(part))
    return _found(
        "served_older_rows",
        older,
        f"online events behind the source: on {older:,} {c.of} the newest event the online "
        f"store held for view {part.removesuffix(EVENTS_SUFFIX)!r} was older than the "
        "source's at the request time; materialize, and push new events as they happen",
    )


def pushed_missing_offline(c: CauseContext) -> Cause | None:
    """Rows whose newest stored event the source's files lack (pushed online only)."""
    part = c.spec.parts[0]
    if not c.freshness or not part.endswith(EVENTS_SUFFIX):
        return None
    se, at_served = pl.col(view_col("se", part)), pl.col(view_col("oes", part))
    missing = c.count(se.is_not_null() & (at_served.is_null() | (at_served < se)))
    return _found(
        "pushed_missing_offline_rows",
        missing,
        f"pushed events not yet in the offline source: on {missing:,} {c.of} the online store "
        f"held events of view {part.removesuffix(EVENTS_SUFFIX)!r} that the source's files "
        "lack (pushed with to='online', or removed from the files since); push with "
        "to='online_and_offline', the default, so training sets and materializations see them",
    )


def inputs_differ(c: CauseContext) -> Cause | None:
    """Which inputs of an on-demand output differed online and offline on its mismatching
    rows, by name."""
    evidence = c.input_evidence
    if not c.spec.on_demand or not evidence:
        return None
    differ = c.count(pl.any_horizontal(list(evidence.values())))
    counts = {name: c.count(e) for name, e in evidence.items()}
    shown = ", ".join(f"{name} ({n:,} rows)" for name, n in counts.items() if n)
    return _found(
        "inputs_differ_rows",
        differ,
        f"on-demand output whose inputs differ: on {differ:,} {c.of} these inputs were "
        f"not the same online and offline: {shown}",
    )


def function_differs(c: CauseContext) -> Cause | None:
    """An on-demand output that differs while every input agrees: the function itself."""
    evidence, total = c.input_evidence, c.bad_rows.height
    if not c.spec.on_demand or not evidence or not total:
        return None
    if c.count(pl.any_horizontal(list(evidence.values()))):
        return None
    return Cause(
        None,
        total,
        f"only the on-demand output differs: its inputs ({', '.join(evidence)}) agree on "
        f"all {total:,} mismatching rows, so the function gives different results online "
        "and offline (does it read state outside its inputs?)",
    )


def inputs_unknown(c: CauseContext) -> Cause | None:
    """An on-demand output whose inputs cannot be judged: nothing about them was logged."""
    if not c.spec.on_demand or c.input_evidence:
        return None
    return Cause(
        None,
        0,
        "on-demand output: whether its inputs differ is unknown (neither its input "
        "features nor event times were logged)",
    )


CAUSES: tuple[Callable[[CauseContext], Cause | None], ...] = (
    definition_changed,
    earlier_definition,
    stale_materialization,
    served_newer,
    events_behind,
    pushed_missing_offline,
    inputs_differ,
    function_differs,
    inputs_unknown,
)
