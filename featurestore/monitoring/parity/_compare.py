"""Comparing the two paths row by row: which rows differ in value (floats within the feature's
tolerances) or status, and each feature's verdict, reasons and example rows."""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

import polars as pl

from featurestore._profiles import feature_kind
from featurestore._repo import RepoContents
from featurestore._selection import parse_ref
from featurestore.definitions import OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name
from featurestore.monitoring._report import Verdict
from featurestore.monitoring.parity._groups import Group
from featurestore.monitoring.parity._paths import Side
from featurestore.monitoring.parity._report import DEFAULTS, ParityFeatureResult

__all__ = ["Compared", "differs"]

EXAMPLES = 5  # differing rows shown per feature


def _comparable(values: list[Any], dtype: pl.DataType) -> pl.Series:
    """Values as a series that compares across both paths (temporal values as UTC
    microseconds, whatever time zone either side attached)."""
    kind = dtype_kind(dtype)
    if kind not in ("date", "datetime"):
        return pl.Series(values, dtype=dtype, strict=False)
    series = pl.Series(list(values), strict=False)
    if series.dtype == pl.Null:
        return pl.Series([None] * len(values), dtype=pl.Int64)
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone:
            series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return series.dt.epoch("us")
    return series.cast(pl.Int64, strict=False)


def differs(
    repo: RepoContents, offline: Side, online: Side, ref: str
) -> tuple[pl.Series, pl.Series]:
    """Per row: whether the values of ``ref`` differ, and whether the statuses do."""
    view_name, name = parse_ref(ref)
    feature = repo.any_view(view_name).feature(name)
    dtype, config = feature.dtype, feature.skew or DEFAULTS
    a = _comparable(offline.values[ref], dtype)
    b = _comparable(online.values[ref], dtype)
    if dtype_kind(dtype) == "float":
        a, b = a.cast(pl.Float64), b.cast(pl.Float64)
        equal = (b - a).abs() <= config.abs_tol + config.rel_tol * a.abs()
    else:
        equal = a == b
    both = a.is_not_null() & b.is_not_null()
    values = ((both & ~equal.fill_null(False)) | (a.is_null() != b.is_null())).fill_null(True)
    statuses = pl.Series(offline.statuses[ref]) != pl.Series(online.statuses[ref])
    return values, statuses


def _show(value: Any) -> Any:
    """A value as JSON can carry it."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


@dataclass(frozen=True)
class Compared:
    """One group's compared rows: the spine, both paths and the per-row differences."""

    repo: RepoContents
    group: Group
    spine: pl.DataFrame
    time_column: str
    offline: Side
    online: Side
    diffs: dict[str, tuple[pl.Series, pl.Series]]

    def differs(self, ref: str) -> list[bool]:
        value_bad, status_bad = self.diffs[ref]
        return (value_bad | status_bad).to_list()

    def result(self, ref: str, owner: str | None) -> ParityFeatureResult:
        """One feature's counts, verdict, reasons and examples."""
        view_name, name = parse_ref(ref)
        view = self.repo.any_view(view_name)
        feature = view.feature(name)
        if isinstance(view, OnDemandFeatureView):
            what = "on_demand"
        else:
            what = "aggregation" if view.aggregation(name) is not None else "feature"
        result = ParityFeatureResult(
            ref=ref,
            owner=owner,
            dtype=dtype_name(feature.dtype),
            kind=feature_kind(feature.dtype),
            feature_kind=what,
            group=self.group.label,
            config=feature.skew or DEFAULTS,
            verdict=Verdict.OK,
            reasons=[],
            rows_compared=self.spine.height,
        )
        if self.spine.height == 0:
            result.verdict = Verdict.INSUFFICIENT_DATA
            result.reasons.append(
                "no rows to compare: the sources of "
                f"{', '.join(self.group.views) or 'the group'} hold no rows with its join keys"
            )
            return result
        inputs = (
            [f"{v}:{f}" for v, f in view.input_refs(self.repo.views)]
            if isinstance(view, OnDemandFeatureView)
            else []
        )
        self._judge(result, inputs)
        return result

    def _judge(self, result: ParityFeatureResult, inputs: list[str]) -> None:
        """Counts, examples, verdict and reasons of a feature compared on at least one row."""
        ref, n = result.ref, self.spine.height
        value_bad, status_bad = self.diffs[ref]
        errors = {**self.offline.errors.get(ref, {}), **self.online.errors.get(ref, {})}
        errored = pl.Series([i in errors for i in range(n)], dtype=pl.Boolean)
        bad = value_bad | status_bad | errored
        result.mismatches = int(bad.sum())
        result.value_mismatches = int((value_bad & ~errored).sum())
        result.status_mismatches = int((status_bad & ~errored).sum())
        result.errors = len(errors)
        counts = pl.Series(self.offline.statuses[ref], dtype=pl.String).value_counts(sort=True)
        result.offline_statuses = {str(s): int(k) for s, k in counts.iter_rows()}
        bad_rows = [i for i, b in enumerate(bad.to_list()) if b]
        flags = {r: self.differs(r) for r in inputs}
        result.examples = [self._example(i, ref, errors, flags) for i in bad_rows[:EXAMPLES]]
        if result.mismatches:
            result.verdict = Verdict.FLAGGED
            result.reasons += self._mismatch_reasons(result)
            if result.feature_kind == "on_demand":
                result.reasons.append(_input_reason(inputs, bad_rows, flags))
        elif not result.offline_statuses.get("PRESENT"):
            result.verdict = Verdict.INSUFFICIENT_DATA
            shown = ", ".join(f"{k:,} {s}" for s, k in result.offline_statuses.items())
            result.reasons.append(
                f"no sampled row has a value ({shown}): the paths agree, but only on missing "
                "values; pass a spine with rows that have one"
            )

    def _mismatch_reasons(self, result: ParityFeatureResult) -> list[str]:
        """How many rows differ and how, and what each path raised."""
        raised_note = f", {result.errors:,} where a path raised" if result.errors else ""
        reasons = [
            f"{result.mismatches:,} of {self.spine.height:,} rows differ between the offline "
            f"path and the serving code ({result.value_mismatches:,} in value, "
            f"{result.status_mismatches:,} in status{raised_note})"
        ]
        for side, label in ((self.offline, "offline path"), (self.online, "serving code")):
            raised = side.errors.get(result.ref, {})
            if raised:
                first = next(iter(raised.values()))
                reasons.append(f"the {label} raised on {len(raised):,} rows: {first}")
        return reasons

    def _example(
        self, i: int, ref: str, errors: dict[int, str], flags: dict[str, list[bool]]
    ) -> dict[str, Any]:
        """One differing row: keys, time, request values, both values and statuses, the
        inputs of an on-demand output, and the error of a path that raised."""
        row = self.spine.row(i, named=True)
        out: dict[str, Any] = {k: _show(row[k]) for k in self.group.keys}
        out["time"] = _show(row[self.time_column])
        out.update({c: _show(row[c]) for c in self.group.request_columns if c in row})
        out["offline"] = _show(self.offline.values[ref][i])
        out["online"] = _show(self.online.values[ref][i])
        out["offline_status"] = self.offline.statuses[ref][i]
        out["online_status"] = self.online.statuses[ref][i]
        if flags:
            out["inputs"] = "; ".join(self._input_text(r, i, d[i]) for r, d in flags.items())
        if i in errors:
            out["error"] = errors[i]
        return out

    def _input_text(self, ref: str, i: int, differed: bool) -> str:
        name = parse_ref(ref)[1]
        off, on = _show(self.offline.values[ref][i]), _show(self.online.values[ref][i])
        return f"{name}={off!r} offline, {on!r} online" if differed else f"{name}={off!r}"


def _input_reason(inputs: list[str], bad_rows: list[int], flags: dict[str, list[bool]]) -> str:
    """Whether an on-demand output's inputs differed on its differing rows."""
    differing = {r: sum(flags[r][i] for i in bad_rows) for r in inputs}
    any_input = sum(any(flags[r][i] for r in inputs) for i in bad_rows)
    if not any_input:
        return (
            f"its inputs ({', '.join(inputs) or 'request data only'}) are equal online and "
            f"offline on all {len(bad_rows):,} differing rows, so the function itself gives a "
            "different result on one row than on the whole frame: does it aggregate, rank, "
            "shift or sample over rows? Make it row-wise"
        )
    shown = ", ".join(f"{r} ({k:,} rows)" for r, k in differing.items() if k)
    return f"its inputs differ on {any_input:,} of the differing rows: {shown}"
