"""The parity check: each feature through the offline path and through the serving code on the
same sampled rows, compared row by row (see :mod:`featurestore.monitoring.parity`)."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import polars as pl

from featurestore._apply_checks import checked_state
from featurestore._profiles import feature_kind
from featurestore._registry import fingerprints_of
from featurestore._repo import RepoContents
from featurestore._selection import build_plan, parse_ref
from featurestore._times import as_utc
from featurestore.definitions import Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name
from featurestore.definitions._monitoring import SkewConfig
from featurestore.errors import FeatureStoreError, ReportError, TransformError
from featurestore.monitoring._report import Verdict
from featurestore.monitoring.parity._as_of import AsOfOnlineStore, as_of_store, spine_table
from featurestore.monitoring.parity._report import ParityFeatureResult, ParityReport
from featurestore.monitoring.parity._sample import (
    TIME,
    Group,
    RequestValues,
    add_to_group,
    default_refs,
    group_rng,
    needs_of,
    sample_keys,
    with_request_data,
)
from featurestore.offline._engine import OfflineEngine, SpineLike, read_spine
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.sources._sql import SPINE_TS

__all__ = ["check_parity"]

EXAMPLES = 5  # differing rows shown per feature
ERROR_STATUS = "ERROR"  # the status shown for a path that raised
_DEFAULTS = SkewConfig()


def _units(repo: RepoContents, group: Group) -> list[list[str]]:
    """The group's references split so one failing on-demand view does not hide the others:
    the batch features, then each on-demand view's outputs."""
    batch = [r for r in group.requested if isinstance(repo.any_view(parse_ref(r)[0]), FeatureView)]
    on_demand: dict[str, list[str]] = {}
    for r in group.requested:
        view = parse_ref(r)[0]
        if isinstance(repo.any_view(view), OnDemandFeatureView):
            on_demand.setdefault(view, []).append(r)
    return [u for u in [batch, *on_demand.values()] if u]


@dataclass
class _Side:
    """One path's values and statuses per reference, and the error of each row that raised."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, dict[int, str]] = field(default_factory=dict)


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _offline(
    engine: OfflineEngine,
    spine: pl.DataFrame,
    units: list[list[str]],
    timestamp_column: str,
) -> _Side:
    """The training-set path over the whole spine (per unit when some unit raises)."""
    side = _Side()
    n = spine.height

    def run(refs: list[str]) -> None:
        plan = build_plan(engine.repo, refs, full_feature_names=True)
        frame, _ = engine.training_frame(spine, plan, timestamp_column, status_columns=True)
        for r in plan.refs:
            side.values[r.ref] = frame[r.column].to_list()
            side.statuses[r.ref] = frame[f"{r.column}__status"].to_list()

    try:
        run([r for unit in units for r in unit])
    except TransformError:
        for unit in units:
            try:
                run(unit)
            except TransformError as exc:
                for ref in unit:
                    side.values[ref] = [None] * n
                    side.statuses[ref] = [ERROR_STATUS] * n
                    side.errors[ref] = dict.fromkeys(range(n), _error_text(exc))
    return side


def _online(
    retriever: OnlineRetriever,
    store: AsOfOnlineStore,
    group: Group,
    spine: pl.DataFrame,
    units: list[list[str]],
    times: list[dt.datetime],
) -> _Side:
    """The serving path, one spine row at a time at the row's time."""
    requested = [r for unit in units for r in unit]
    side = _Side(
        values={r: [] for r in requested},
        statuses={r: [] for r in requested},
    )
    keys = {k: spine[k].to_list() for k in group.keys}
    request = {c: spine[c].to_list() for c in group.request_columns}

    def serve(refs: list[str], i: int) -> None:
        resp = retriever.get(
            refs,
            entities={k: [v[i]] for k, v in keys.items()},
            request_data={c: [v[i]] for c, v in request.items()},
            full_feature_names=True,
            request_time=times[i],
        )
        for column, ref in resp.refs.items():
            side.values[ref].append(resp.values[column][0])
            side.statuses[ref].append(str(resp.statuses[column][0]))

    for i in range(spine.height):
        store.row = i
        try:
            serve(requested, i)
        except FeatureStoreError:
            for ref in requested:  # drop what the failed call may have added
                del side.values[ref][i:], side.statuses[ref][i:]
            for unit in units:
                try:
                    serve(unit, i)
                except FeatureStoreError as exc:
                    for ref in unit:
                        side.values[ref].append(None)
                        side.statuses[ref].append(ERROR_STATUS)
                        side.errors.setdefault(ref, {})[i] = _error_text(exc)
    return side


# ---------------------------------------------------------------------------------------------
# comparing


def _comparable(values: list[Any], dtype: pl.DataType) -> pl.Series:
    """Values as a series that compares across both paths (temporal values as UTC
    microseconds, whatever time zone either side attached)."""
    kind = dtype_kind(dtype)
    if kind not in ("date", "datetime"):
        return pl.Series(values, dtype=dtype, strict=False)
    series = pl.Series([v for v in values], strict=False)
    if series.dtype == pl.Null:
        return pl.Series([None] * len(values), dtype=pl.Int64)
    if isinstance(series.dtype, pl.Datetime):
        if series.dtype.time_zone:
            series = series.dt.convert_time_zone("UTC").dt.replace_time_zone(None)
        return series.dt.epoch("us")
    return series.cast(pl.Int64, strict=False)


def _feature(repo: RepoContents, ref: str) -> Feature:
    view_name, name = parse_ref(ref)
    return repo.any_view(view_name).feature(name)


def _differs(
    feature: Feature, offline: _Side, online: _Side, ref: str
) -> tuple[pl.Series, pl.Series]:
    """Per row: whether the values differ, and whether the statuses do."""
    dtype, config = feature.dtype, feature.skew or _DEFAULTS
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
class _Context:
    """One group's compared rows: the spine, both paths and the per-row differences."""

    repo: RepoContents
    group: Group
    spine: pl.DataFrame
    time_column: str
    offline: _Side
    online: _Side
    diffs: dict[str, tuple[pl.Series, pl.Series]]

    def differs(self, ref: str) -> list[bool]:
        value_bad, status_bad = self.diffs[ref]
        return (value_bad | status_bad).to_list()


def _feature_result(c: _Context, ref: str, owner: str | None) -> ParityFeatureResult:
    view_name, name = parse_ref(ref)
    view = c.repo.any_view(view_name)
    feature = view.feature(name)
    if isinstance(view, OnDemandFeatureView):
        what = "on_demand"
    else:
        what = "aggregation" if view.aggregation(name) is not None else "feature"
    n = c.spine.height
    result = ParityFeatureResult(
        ref=ref,
        owner=owner,
        dtype=dtype_name(feature.dtype),
        kind=feature_kind(feature.dtype),
        feature_kind=what,
        group=c.group.label,
        config=feature.skew or _DEFAULTS,
        verdict=Verdict.OK,
        reasons=[],
        rows_compared=n,
    )
    if n == 0:
        result.verdict = Verdict.INSUFFICIENT_DATA
        result.reasons.append(
            f"no rows to compare: the sources of {', '.join(c.group.views) or 'the group'} hold "
            "no rows with its join keys"
        )
        return result
    value_bad, status_bad = c.diffs[ref]
    errors = {**c.offline.errors.get(ref, {}), **c.online.errors.get(ref, {})}
    errored = pl.Series([i in errors for i in range(n)], dtype=pl.Boolean)
    bad = value_bad | status_bad | errored
    result.mismatches = int(bad.sum())
    result.value_mismatches = int((value_bad & ~errored).sum())
    result.status_mismatches = int((status_bad & ~errored).sum())
    result.errors = len(errors)
    counts = pl.Series(c.offline.statuses[ref], dtype=pl.String).value_counts(sort=True)
    result.offline_statuses = {str(s): int(k) for s, k in counts.iter_rows()}
    bad_rows = [i for i, b in enumerate(bad.to_list()) if b]
    inputs = (
        [f"{v}:{f}" for v, f in view.input_refs(c.repo.views)]
        if isinstance(view, OnDemandFeatureView)
        else []
    )
    flags = {r: c.differs(r) for r in inputs}
    result.examples = [_example(c, i, ref, errors, flags) for i in bad_rows[:EXAMPLES]]
    if result.mismatches:
        result.verdict = Verdict.FLAGGED
        result.reasons.append(
            f"{result.mismatches:,} of {n:,} rows differ between the offline path and the "
            f"serving code ({result.value_mismatches:,} in value, "
            f"{result.status_mismatches:,} in status"
            + (f", {result.errors:,} where a path raised" if result.errors else "")
            + ")"
        )
        for side, label in ((c.offline, "offline path"), (c.online, "serving code")):
            raised = side.errors.get(ref, {})
            if raised:
                first = next(iter(raised.values()))
                result.reasons.append(f"the {label} raised on {len(raised):,} rows: {first}")
        if isinstance(view, OnDemandFeatureView):
            result.reasons.append(_input_reason(inputs, bad_rows, flags))
    elif not result.offline_statuses.get("PRESENT"):
        result.verdict = Verdict.INSUFFICIENT_DATA
        shown = ", ".join(f"{k:,} {s}" for s, k in result.offline_statuses.items())
        result.reasons.append(
            f"no sampled row has a value ({shown}): the paths agree, but only on missing "
            "values; pass a spine with rows that have one"
        )
    return result


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


def _example(
    c: _Context, i: int, ref: str, errors: dict[int, str], flags: dict[str, list[bool]]
) -> dict[str, Any]:
    row = c.spine.row(i, named=True)
    out: dict[str, Any] = {k: _show(row[k]) for k in c.group.keys}
    out["time"] = _show(row[c.time_column])
    out.update({col: _show(row[col]) for col in c.group.request_columns if col in row})
    out["offline"] = _show(c.offline.values[ref][i])
    out["online"] = _show(c.online.values[ref][i])
    out["offline_status"] = c.offline.statuses[ref][i]
    out["online_status"] = c.online.statuses[ref][i]
    if flags:
        parts = []
        for r, differs in flags.items():
            name = parse_ref(r)[1]
            off, on = _show(c.offline.values[r][i]), _show(c.online.values[r][i])
            parts.append(
                f"{name}={off!r} offline, {on!r} online" if differs[i] else f"{name}={off!r}"
            )
        out["inputs"] = "; ".join(parts)
    if i in errors:
        out["error"] = errors[i]
    return out


# ---------------------------------------------------------------------------------------------
# the check


def check_parity(
    engine: OfflineEngine,
    read_serving_log: Callable[[], pl.DataFrame],
    features: list[str] | None = None,
    sample: int = 1000,
    seed: int = 0,
    spine: SpineLike | None = None,
    *,
    timestamp_column: str = TIME,
) -> ParityReport:
    """Compare each feature's offline values with what the serving code computes for the same
    rows (see the module docstring), for the definitions of ``engine.repo`` as ``apply``
    would record them: nothing needs to be applied or materialized, and nothing is written.
    Request values come from the sources or from ``read_serving_log()``'s request data.

    ``features`` limits the check to some references (default: every feature that can be
    served); ``sample`` rows are drawn per group of join keys with ``seed``; a ``spine`` (with
    ``timestamp_column``, the join keys and the request columns of the features to check)
    replaces the sampling and is used as given. Raises ApplyError when apply would refuse the
    definitions.
    """
    started = time.perf_counter()
    if spine is None and sample < 1:
        raise ReportError(f"sample must be a positive number of rows, found {sample}")
    return _check(
        engine, read_serving_log, features, sample, seed, spine, timestamp_column, started
    )


def _check(
    engine: OfflineEngine,
    read_serving_log: Callable[[], pl.DataFrame],
    features: list[str] | None,
    sample: int,
    seed: int,
    spine: SpineLike | None,
    timestamp_column: str,
    started: float,
) -> ParityReport:
    repo = engine.repo
    state = checked_state(repo, engine)
    given = read_spine(spine) if spine is not None else None
    not_checked: dict[str, str]
    if features is not None:
        refs, not_checked = list(dict.fromkeys(features)), {}
    else:
        refs, not_checked = default_refs(repo)
    needs = {ref: needs_of(repo, ref) for ref in refs}
    groups: dict[frozenset[str], Group] = {}
    if given is not None:
        columns = set(given.columns)
        for ref, need in needs.items():
            missing = [c for c in (*need.keys, *need.request_columns) if c not in columns]
            if missing and features is None:
                not_checked[ref] = f"the spine lacks {', '.join(missing)}"
                continue
            add_to_group(groups, ref, need)
        merged = Group("spine", ())
        for g in groups.values():
            merged.refs += g.refs
            merged.inputs += [r for r in g.inputs if r not in merged.inputs]
            merged.views.update(g.views)
            merged.request_columns.update(g.request_columns)
        merged.keys = tuple(dict.fromkeys(k for g in groups.values() for k in g.keys))
        groups = {frozenset(merged.keys): merged} if merged.refs else {}
        if not groups:
            raise ReportError(
                "the spine holds the join keys and request columns of none of the features; "
                f"found columns: {', '.join(given.columns)}"
            )
    else:
        for ref, need in needs.items():
            add_to_group(groups, ref, need)

    logged = RequestValues(
        read_serving_log,
        engine,
        {c: d for o in repo.on_demand_views.values() for c, d in o.request_columns.items()},
        seed,
    )
    owners = {ref: record.owner for ref, record in state.features.items()}
    results: list[ParityFeatureResult] = []
    spines: dict[str, pl.DataFrame] = {}
    sources: dict[str, str] = {}
    seconds = {"sample": 0.0, "offline": 0.0, "online": 0.0}
    ts_column = timestamp_column if given is not None else TIME
    for group in groups.values():
        clock = time.perf_counter()
        if given is not None:
            frame, sources[group.label] = given, "the spine"
        else:
            rng = group_rng(seed, group.label)
            keys = sample_keys(engine, group, sample, seed, rng)
            frame, sources[group.label] = with_request_data(group, keys, logged, rng)
        spines[group.label] = frame
        seconds["sample"] += time.perf_counter() - clock

        units = _units(repo, group)
        clock = time.perf_counter()
        offline = (
            _offline(engine, frame, units, ts_column)
            if frame.height
            else _Side({r: [] for r in group.requested}, {r: [] for r in group.requested})
        )
        seconds["offline"] += time.perf_counter() - clock

        clock = time.perf_counter()
        views: dict[str, list[str]] = {}
        for ref in group.requested:
            view_name, name = parse_ref(ref)
            if view_name in repo.views:
                views.setdefault(view_name, []).append(name)
        snapshot = as_of_store(engine, state, frame, views, ts_column)
        retriever = OnlineRetriever(
            repo, snapshot, state, fingerprints=partial(fingerprints_of, applied=state, code=state)
        )
        times = [
            as_utc(t) if isinstance(t, dt.datetime) else t
            for t in spine_table(frame, (), ts_column)[SPINE_TS].to_list()
        ]
        online = _online(retriever, snapshot, group, frame, units, times)
        seconds["online"] += time.perf_counter() - clock

        diffs = {
            ref: _differs(_feature(repo, ref), offline, online, ref) for ref in group.requested
        }
        context = _Context(repo, group, frame, ts_column, offline, online, diffs)
        results += [_feature_result(context, ref, owners.get(ref)) for ref in group.refs]
    seconds["total"] = time.perf_counter() - started
    return ParityReport(
        results,
        sample=None if given is not None else sample,
        seed=seed,
        spines=spines,
        request_data=sources,
        not_checked=not_checked,
        seconds=seconds,
    )
