"""Training/serving skew: replay the serving log through the offline engine and compare, value
by value, what was served with what a training set holds for the same keys, request data and
time.

Every logged entity row becomes one spine row (its join keys, its request data and its request
time), and the union of the features served in the window is computed once, point in time as
of each request, in DuckDB; a value is compared only where its feature was served. A feature
is flagged when its mismatches plus null mismatches exceed ``SkewConfig.max_mismatch_rate`` of
the rows compared, and each flagged feature gets its likely causes, each with the rows it
explains:

- a definition changed since serving (the fingerprint applied when the value was served is not
  the registry's now);
- values of an earlier definition (the online store served values computed before the apply
  then in force: the view was not materialized after it);
- a stale materialization (the online store served an older row, or older events, than the
  offline join found at the request time);
- pushed events missing offline (the online store held an event the source's files do not:
  a push with ``to="online"``, or events removed from the files since);
- for an on-demand output, which of its inputs differed online and offline, by name (or that
  none did: the function itself gives different results).

Mismatches within the limit give a warning, and a pass needs at least ``SkewConfig.min_rows``
rows compared (fewer give ``insufficient_data``).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from featurestore._profiles import feature_kind
from featurestore._selection import build_plan, parse_ref
from featurestore._times import as_utc
from featurestore.definitions import Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name, parse_dtype
from featurestore.definitions._monitoring import SkewConfig
from featurestore.errors import ReportError
from featurestore.monitoring._drift_inputs import window_text
from featurestore.monitoring._report import Report, Verdict
from featurestore.offline._point_in_time import ViewScan, point_in_time_sql
from featurestore.online._event_state import EVENTS_SUFFIX, events_store_name
from featurestore.serving._serving_log import decode_json_column
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, timestamp_sql

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs

__all__ = ["SkewFeatureResult", "SkewReport", "build_skew_report"]

REQUEST_TIME = "__fs_request_time"
EXAMPLES = 5  # mismatching rows shown per feature
TOP_PAIRS = 5  # most frequent (served, offline) pairs of mismatching categorical values
HISTOGRAM_CATEGORIES = 10
WATCHED_STATUSES = ("STALE", "DEFAULTED", "NOT_FOUND")
_DEFAULTS = SkewConfig()


@dataclass(frozen=True)
class _Spec:
    """One compared feature and where its columns live in the replay frame."""

    index: int
    ref: str
    served: bool  # in the log window: compared
    feature: Feature
    on_demand: bool
    kind: str  # numeric, categorical, boolean or temporal
    config: SkewConfig
    owner: str | None
    fingerprint: str  # the registry's
    views: tuple[str, ...]  # batch views whose served rows or events decide the value
    parts: tuple[str, ...]  # their stored parts (a view, or its "<view>@events")
    inputs: tuple[int, ...]  # served features feeding this on-demand output
    keys: tuple[str, ...]
    request_columns: tuple[str, ...]

    @property
    def is_float(self) -> bool:
        return dtype_kind(self.feature.dtype) == "float"

    def col(self, what: str) -> str:
        return f"__fs_{what}{self.index}"


def _view_col(what: str, view: str) -> str:
    return f"__fs_{what}__{view}"


@dataclass
class SkewFeatureResult:
    """The comparison of one feature's served values with their offline replay."""

    ref: str
    owner: str | None
    dtype: str
    kind: str
    config: SkewConfig
    verdict: Verdict
    reasons: list[str]
    rows_compared: int
    mismatches: int  # both values present and different (beyond the tolerance for floats)
    served_null_offline_value: int
    served_value_offline_null: int
    smape_pct: float | None = None  # numbers: mean of 200 |s - o| / (|s| + |o|), 0 when both 0
    abs_diff_quantiles: dict[str, float | None] = field(default_factory=dict)  # p50, p95, p99
    top_pairs: list[tuple[Any, Any, int]] = field(default_factory=list)  # categories
    served_status_shares: dict[str, float | None] = field(default_factory=dict)
    causes: dict[str, int] = field(default_factory=dict)  # mismatching rows explained, per cause
    histogram: dict[str, Any] | None = None
    examples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def null_mismatches(self) -> int:
        return self.served_null_offline_value + self.served_value_offline_null

    @property
    def mismatch_rate(self) -> float | None:
        """(mismatches + null mismatches) / rows compared; None when nothing was compared."""
        if not self.rows_compared:
            return None
        return (self.mismatches + self.null_mismatches) / self.rows_compared

    @property
    def match_rate(self) -> float | None:
        rate = self.mismatch_rate
        return None if rate is None else 1.0 - rate

    def stats(self) -> dict[str, Any]:
        """Statistics in display order."""
        out: dict[str, Any] = {
            "rows_compared": self.rows_compared,
            "match_rate": self.match_rate,
            "mismatch_rate": self.mismatch_rate,
            "mismatches": self.mismatches,
            "served_null_offline_value": self.served_null_offline_value,
            "served_value_offline_null": self.served_value_offline_null,
        }
        if self.kind == "numeric":
            out["smape_pct"] = self.smape_pct
            out.update({f"abs_diff_{q}": v for q, v in self.abs_diff_quantiles.items()})
        else:
            out["top_mismatch_pairs"] = (
                "; ".join(f"{_show(s)} -> {_show(o)} x{n}" for s, o, n in self.top_pairs) or None
            )
        out.update({f"served_{s.lower()}": v for s, v in self.served_status_shares.items()})
        out.update(self.causes)
        out["max_mismatch_rate"] = self.config.max_mismatch_rate
        return out

    def to_dict(self) -> dict[str, Any]:
        """This feature's entry of :meth:`SkewReport.to_dict`."""
        return {
            "ref": self.ref,
            "owner": self.owner,
            "dtype": self.dtype,
            "kind": self.kind,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
            "stats": self.stats(),
            "histogram": self.histogram,
            "examples": list(self.examples),
        }


class SkewReport(Report):
    """Per-feature skew between served values and their offline replay, worst first."""

    def __init__(
        self,
        results: list[SkewFeatureResult],
        *,
        start: dt.datetime | None,
        end: dt.datetime | None,
        log_rows: int,
        rows_replayed: int,
        requests: int,
        sample: int | None,
        seed: int,
        not_replayed: list[str],
        event_times_logged: bool,
    ) -> None:
        self.results = sorted(
            results,
            key=lambda r: (r.verdict.rank, -(r.mismatch_rate or 0.0), r.ref),
        )
        self.start = start
        self.end = end
        self.log_rows = log_rows
        self.rows_replayed = rows_replayed
        self.requests = requests
        self.sample = sample
        self.seed = seed
        self.not_replayed = not_replayed
        self.event_times_logged = event_times_logged
        self.generated_at = dt.datetime.now(dt.UTC)

    def result(self, ref: str) -> SkewFeatureResult:
        """The result of one feature; the error lists the features in the report."""
        for r in self.results:
            if r.ref == ref:
                return r
        known = ", ".join(r.ref for r in self.results) or "none"
        raise KeyError(f"feature {ref!r} is not in this skew report; it has: {known}")

    def to_dict(self) -> dict[str, Any]:
        counts = {v: sum(r.verdict == v for r in self.results) for v in Verdict}
        window = f"{_when(self.start, 'the first record')} to {_when(self.end, 'the last')}"
        per_feature = [
            f"{r.ref} ({_config_text(r.config)})" for r in self.results if r.config != _DEFAULTS
        ]
        return {
            "kind": "skew",
            "title": f"Training/serving skew: served values vs offline replay, {window}",
            "generated_at": self.generated_at.isoformat(),
            "summary": {
                "features": len(self.results),
                "flagged": counts[Verdict.FLAGGED],
                "warn": counts[Verdict.WARN],
                "ok": counts[Verdict.OK],
                "insufficient_data": counts[Verdict.INSUFFICIENT_DATA],
                "log_rows": self.log_rows,
                "rows_replayed": self.rows_replayed,
                "requests": self.requests,
                "not_replayed": list(self.not_replayed),
            },
            "settings": {
                "window": window,
                "sample": (
                    "all logged rows"
                    if self.sample is None
                    else f"{self.sample:,} rows at random (seed {self.seed})"
                ),
                "match": (
                    "floats match when |served - offline| <= abs_tol + rel_tol * |offline|; "
                    "other values must be equal; two nulls match"
                ),
                "flag": (
                    "flagged when (mismatches + null mismatches) / rows compared exceeds "
                    "max_mismatch_rate; a pass needs at least min_rows rows compared"
                ),
                "defaults": _config_text(_DEFAULTS),
                "per_feature": "; ".join(per_feature) or "none",
                "stale_cause": (
                    "from the event times in the serving log"
                    if self.event_times_logged
                    else "not checked: the serving log has no event times"
                ),
            },
            "features": [r.to_dict() for r in self.results],
        }


def _when(t: dt.datetime | None, otherwise: str) -> str:
    return t.isoformat() if t is not None else otherwise


def _config_text(c: SkewConfig) -> str:
    return (
        f"abs_tol {c.abs_tol:g}, rel_tol {c.rel_tol:g}, "
        f"max_mismatch_rate {c.max_mismatch_rate:g}, min_rows {c.min_rows:,}"
    )


def _show(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def build_skew_report(
    reads: ReportInputs,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    features: list[str] | None = None,
    sample: int | None = None,
    *,
    seed: int = 0,
) -> SkewReport:
    """Compare the values served with ``start <= request_time < end`` with their offline replay.

    ``features`` limits the report to some references (default: every feature served in the
    window that is still defined); ``sample`` replays that many logged rows drawn at random
    with ``seed`` instead of all of them.
    """
    if sample is not None and sample < 1:
        raise ReportError(f"sample must be a positive number of rows, found {sample}")
    if start is not None and end is not None and as_utc(start) >= as_utc(end):
        raise ReportError(
            f"the window is empty: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    log = reads.read_serving_log(start, end)
    log_rows = log.height
    if log_rows == 0 and features is None:
        raise ReportError(
            f"the serving log has no records in {window_text(start, end)}, so there is nothing to "
            "compare; widen the window, or log in-process calls with serving_log.enabled: true "
            "(the HTTP server always logs)"
        )
    if sample is not None and log.height > sample:
        log = log.with_row_index("__fs_i").sample(n=sample, seed=seed).sort("__fs_i").drop("__fs_i")
    served = sorted(set(log["features"].explode().drop_nulls().to_list()))
    if features is not None:
        refs = list(dict.fromkeys(features))
        for ref in refs:
            view_name, name = parse_ref(ref)
            reads.repo.any_view(view_name).feature(name)
        not_replayed: list[str] = []
    else:
        refs, not_replayed = [], []
        for ref in served:
            view_name, name = parse_ref(ref)
            view = reads.repo.views.get(view_name) or reads.repo.on_demand_views.get(view_name)
            defined = view is not None and name in view.feature_names
            (refs if defined else not_replayed).append(ref)
    specs = _specs(reads, refs, set(served))
    event_times_logged = "event_times" in log.columns
    compared = [s for s in specs if s.served]
    frame = _replay(reads, log, compared, event_times_logged) if compared else None
    results = [_compare(s, frame if s.served else None, specs, event_times_logged) for s in specs]
    return SkewReport(
        results,
        start=start,
        end=end,
        log_rows=log_rows,
        rows_replayed=log.height,
        requests=log["request_id"].n_unique(),
        sample=sample,
        seed=seed,
        not_replayed=not_replayed,
        event_times_logged=event_times_logged,
    )


def _specs(reads: ReportInputs, refs: list[str], served: set[str]) -> list[_Spec]:
    """What to compare for each reference; fails if its code changed since the last apply."""
    applied = reads.registry.require()
    fingerprints = reads.applied_fingerprints(refs)
    specs: list[_Spec] = []
    for i, ref in enumerate(refs):
        record = applied.features[ref]
        view_name, name = parse_ref(ref)
        view = reads.repo.any_view(view_name)
        feature = view.feature(name)
        if isinstance(view, OnDemandFeatureView):
            inputs = view.input_refs(reads.repo.views)
            batch = tuple(dict.fromkeys(v for v, _ in inputs))
            keys = tuple(dict.fromkeys(k for v in batch for k in reads.repo.views[v].join_keys))
            request = tuple(view.request_columns)
            parts = tuple(dict.fromkeys(_part(reads.repo.views[v], f) for v, f in inputs))
        else:
            batch, keys, request = (view.name,), tuple(view.join_keys), ()
            parts = (_part(view, name),)
        config = feature.skew or _DEFAULTS
        specs.append(
            _Spec(
                index=i,
                ref=ref,
                served=ref in served,
                feature=feature,
                on_demand=isinstance(view, OnDemandFeatureView),
                kind=feature_kind(feature.dtype),
                config=config,
                owner=record.owner,
                fingerprint=fingerprints[ref],
                views=batch,
                parts=parts,
                inputs=(),
                keys=keys,
                request_columns=request,
            )
        )
    by_ref = {s.ref: s.index for s in specs if s.served}
    return [
        replace(s, inputs=tuple(by_ref[r] for r in _feeding(reads, s.ref) if r in by_ref))
        if s.on_demand
        else s
        for s in specs
    ]


def _part(view: FeatureView, name: str) -> str:
    """Where the served value of ``view:name`` came from: the view's latest rows, or for an
    aggregation its stored events."""
    return events_store_name(view.name) if view.aggregation(name) is not None else view.name


def _feeding(reads: ReportInputs, ref: str) -> list[str]:
    """The batch features an on-demand output is computed from."""
    odfv = reads.repo.on_demand_views[parse_ref(ref)[0]]
    return [f"{v}:{f}" for v, f in odfv.input_refs(reads.repo.views)]


def _json_strings(log: pl.DataFrame, column: str, keys: list[str]) -> pl.DataFrame:
    """String fields of a JSON-text column that ``decode_json_column`` does not accept."""
    if not keys:
        return pl.DataFrame(height=log.height)
    struct = pl.Struct(dict.fromkeys(keys, pl.String()))
    return log[column].str.json_decode(struct).struct.unnest()


def _key_dtypes(
    reads: ReportInputs, join_keys: list[str], views: list[FeatureView]
) -> dict[str, pl.DataType]:
    """Each join key's dtype as the registry recorded it from the sources."""
    applied = reads.registry.require().views
    dtypes: dict[str, pl.DataType] = {}
    for view in views:
        recorded = applied[view.name].join_keys if view.name in applied else {}
        for key in view.join_keys:
            if key in dtypes:
                continue
            name = recorded.get(key)
            dtypes[key] = parse_dtype(name) if name else reads.offline.source_schema(view)[key]
    return {k: dtypes[k] for k in join_keys}


def _replay(
    reads: ReportInputs, log: pl.DataFrame, specs: list[_Spec], event_times_logged: bool
) -> pl.DataFrame:
    """One row per log row: keys, request data, and per feature the served value, status,
    fingerprint and whether it was served, the offline value, and per view both event times."""
    plan = build_plan(reads.repo, [s.ref for s in specs], full_feature_names=True)
    views = list(plan.batch_views.values())
    key_dtypes = _key_dtypes(reads, plan.join_keys, views)
    spine = pl.concat(
        [
            decode_json_column(log, "entity_keys", key_dtypes),
            decode_json_column(log, "request_data", plan.request_columns),
            log.select(pl.col("request_time").alias(REQUEST_TIME)),
        ],
        how="horizontal",
    )
    offline, _ = reads.offline.training_frame(spine, plan, timestamp_column=REQUEST_TIME)
    columns = {r.ref: r.column for r in plan.refs}
    dtypes = {s.ref: s.feature.dtype for s in specs}
    values = decode_json_column(log, "values", dtypes)
    statuses = decode_json_column(log, "statuses", dict.fromkeys(dtypes, pl.String()))
    fingerprints = _json_strings(log, "fingerprints", list(dtypes))
    applied_then = (
        _json_strings(
            log.with_columns(pl.col("applied_fingerprints").fill_null("{}")),
            "applied_fingerprints",
            list(dtypes),
        )
        if "applied_fingerprints" in log.columns
        else pl.DataFrame(
            {r: [None] * log.height for r in dtypes}, schema=dict.fromkeys(dtypes, pl.String())
        )
    )
    parts = [
        log.select("request_id", "row", "request_time"),
        spine.drop(REQUEST_TIME),
        pl.DataFrame(
            [values[s.ref].alias(s.col("s")) for s in specs]
            + [offline[columns[s.ref]].alias(s.col("o")) for s in specs]
            + [statuses[s.ref].alias(s.col("st")) for s in specs]
            + [fingerprints[s.ref].alias(s.col("fp")) for s in specs]
            + [
                applied_then[s.ref].fill_null(fingerprints[s.ref]).alias(s.col("afp"))
                for s in specs
            ]
        ),
        log.select(pl.col("features").list.contains(s.ref).alias(s.col("m")) for s in specs),
    ]
    if event_times_logged:
        parts += _event_times(reads, log, spine, key_dtypes, specs)
    frame = pl.concat(parts, how="horizontal")
    return frame.with_columns(e for s in specs for e in _flags(s))


def _event_times(
    reads: ReportInputs,
    log: pl.DataFrame,
    spine: pl.DataFrame,
    key_dtypes: Mapping[str, pl.DataType],
    specs: list[_Spec],
) -> list[pl.DataFrame]:
    """Per stored part of the compared features: the served event time (``se``: the row
    served, or the newest stored event) and the offline one at the request time (``oe``); for
    events also the newest offline event at or before the served one (``oes``): older than it,
    the online store held an event the source's files lack."""
    names = list(dict.fromkeys(p for s in specs for p in s.parts))
    served = decode_json_column(log, "event_times", dict.fromkeys(names, pl.Int64()))
    views = [reads.repo.views[n.removesuffix(EVENTS_SUFFIX)] for n in names]
    keys = spine.select(*key_dtypes)
    at_request = _offline_event_times(reads, keys, spine[REQUEST_TIME], views)
    out = [
        served.rename({n: _view_col("se", n) for n in names}),
        at_request.rename({f"v{i}": _view_col("oe", n) for i, n in enumerate(names)}),
    ]
    events = [(i, n) for i, n in enumerate(names) if n.endswith(EVENTS_SUFFIX)]
    for i, name in events:
        found = _offline_event_times(reads, keys, served[name], [views[i]])
        out.append(found.rename({"v0": _view_col("oes", name)}))
    return out


def _offline_event_times(
    reads: ReportInputs, keys: pl.DataFrame, times: pl.Series, views: list[FeatureView]
) -> pl.DataFrame:
    """Per view (columns ``v0, v1, ...``), the event time of the source row the point-in-time
    join picks for each row of ``keys`` at ``times`` (null when none, or when the time is
    null), from one DuckDB ASOF query that reads only keys and timestamps."""
    engine = reads.offline
    scans = []
    for i, view in enumerate(views):
        schema = engine.source_schema(view)
        src = view.source
        created = src.created_timestamp_field
        scans.append(
            ViewScan(
                alias=f"v{i}",
                scan=scan_sql(src, reads.repo.root),
                join_keys=tuple(view.join_keys),
                timestamp=timestamp_sql(src.timestamp_field, schema[src.timestamp_field]),
                created=timestamp_sql(created, schema[created]) if created else None,
                columns=(),
                ttl_us=None,
            )
        )
    internal = keys.select(
        pl.int_range(pl.len(), dtype=pl.UInt32).alias(SPINE_ROW),
        *keys.columns,
        times.dt.replace_time_zone(None).alias(SPINE_TS),
    )
    engine.con.register("__fs_skew_spine", internal.to_arrow())
    try:
        with reading([v.source for v in views], reads.repo.root):
            joined = engine.con.sql(
                point_in_time_sql("__fs_skew_spine", scans, event_times=True)
            ).pl()
    finally:
        engine.con.unregister("__fs_skew_spine")
    return joined.select(
        pl.col(f"__fs_event_ts_v{i}")
        .cast(pl.Datetime("us"))
        .dt.replace_time_zone("UTC")
        .alias(f"v{i}")
        for i in range(len(views))
    )


def _flags(s: _Spec) -> list[pl.Expr]:
    """Per row: a value mismatch, a null mismatch either way, or any of them (``bad``)."""
    served, offline, mask = pl.col(s.col("s")), pl.col(s.col("o")), pl.col(s.col("m"))
    if s.is_float:
        a, b = served.cast(pl.Float64), offline.cast(pl.Float64)
        equal = (a - b).abs() <= s.config.abs_tol + s.config.rel_tol * b.abs()
    else:
        equal = served == offline
    both = served.is_not_null() & offline.is_not_null()
    value = mask & both & ~equal
    served_null = mask & served.is_null() & offline.is_not_null()
    offline_null = mask & served.is_not_null() & offline.is_null()
    return [
        value.alias(s.col("vm")),
        served_null.alias(s.col("sn")),
        offline_null.alias(s.col("on")),
        (value | served_null | offline_null).alias(s.col("bad")),
    ]


def _compare(
    s: _Spec, frame: pl.DataFrame | None, specs: list[_Spec], event_times_logged: bool
) -> SkewFeatureResult:
    """Statistics, verdict, likely causes, histogram and examples of one feature."""
    rows = frame.filter(pl.col(s.col("m"))) if frame is not None else None
    result = SkewFeatureResult(
        ref=s.ref,
        owner=s.owner,
        dtype=dtype_name(s.feature.dtype),
        kind=s.kind,
        config=s.config,
        verdict=Verdict.INSUFFICIENT_DATA,
        reasons=[],
        rows_compared=0 if rows is None else rows.height,
        mismatches=0,
        served_null_offline_value=0,
        served_value_offline_null=0,
    )
    if rows is None or rows.height == 0:
        result.reasons.append("not served in the window: nothing to compare")
        return result
    bad, status = pl.col(s.col("bad")), pl.col(s.col("st"))
    counts = rows.select(
        pl.col(s.col("vm")).sum().alias("vm"),
        pl.col(s.col("sn")).sum().alias("sn"),
        pl.col(s.col("on")).sum().alias("on"),
        *((status == st).mean().alias(st) for st in WATCHED_STATUSES),
    ).row(0, named=True)
    result.mismatches = int(counts["vm"])
    result.served_null_offline_value = int(counts["sn"])
    result.served_value_offline_null = int(counts["on"])
    result.served_status_shares = {st: counts[st] for st in WATCHED_STATUSES}
    served, offline = pl.col(s.col("s")), pl.col(s.col("o"))
    bad_rows = rows.filter(bad)
    if s.kind == "numeric":
        result.smape_pct, result.abs_diff_quantiles = _numeric_stats(rows, served, offline)
    else:
        result.top_pairs = _top_pairs(bad_rows, served, offline)
    result.causes, causes = _causes(s, bad_rows, specs, event_times_logged)
    result.histogram = _histogram(rows, s)
    result.examples = _examples(bad_rows, s, event_times_logged)
    _judge(result, causes)
    return result


def _numeric_stats(
    rows: pl.DataFrame, served: pl.Expr, offline: pl.Expr
) -> tuple[float | None, dict[str, float | None]]:
    """SMAPE in percent and quantiles of |served - offline| over rows where both are present."""
    a, b = served.cast(pl.Float64), offline.cast(pl.Float64)
    both = rows.filter(served.is_not_null() & offline.is_not_null())
    diff = (a - b).abs()
    denominator = a.abs() + b.abs()
    out = both.select(
        (pl.when(denominator == 0).then(0.0).otherwise(200.0 * diff / denominator))
        .mean()
        .alias("smape"),
        *(diff.quantile(q, "linear").alias(f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
    ).row(0, named=True)
    return out.pop("smape"), out


def _top_pairs(bad_rows: pl.DataFrame, served: pl.Expr, offline: pl.Expr) -> list[tuple]:
    """The most frequent (served, offline) pairs among the mismatching rows."""
    pairs = (
        bad_rows.group_by(served.alias("served"), offline.alias("offline"))
        .len()
        .sort(["len", "served", "offline"], descending=[True, False, False], nulls_last=True)
        .head(TOP_PAIRS)
    )
    return [(p["served"], p["offline"], int(p["len"])) for p in pairs.iter_rows(named=True)]


def _causes(
    s: _Spec, bad_rows: pl.DataFrame, specs: list[_Spec], event_times_logged: bool
) -> tuple[dict[str, int], list[tuple[int, str]]]:
    """How many mismatching rows each likely cause explains, and the reasons in words."""
    causes: dict[str, int] = {}
    texts: list[tuple[int, str]] = []
    of = f"of {bad_rows.height:,} mismatching rows"
    for key, count, text in _definition_causes(s, bad_rows, of):
        causes[key] = count
        if count:
            texts.append((count, text))
    if event_times_logged and not s.on_demand:
        for key, count, text in _freshness_causes(s.parts[0], bad_rows, of):
            causes[key] = count
            if count:
                texts.append((count, text))
    if s.on_demand:
        texts += _input_causes(s, bad_rows, specs, event_times_logged, causes, of)
    return causes, texts


def _definition_causes(s: _Spec, bad_rows: pl.DataFrame, of: str) -> list[tuple[str, int, str]]:
    """Rows served under a definition that is no longer applied, and rows served with values
    of an earlier definition than the one applied at the time."""
    fp, applied_then = pl.col(s.col("fp")), pl.col(s.col("afp"))
    changed = bad_rows.filter(applied_then.is_not_null() & (applied_then != s.fingerprint))
    earlier = bad_rows.filter(fp.is_not_null() & applied_then.is_not_null() & (fp != applied_then))
    then = ", ".join(sorted(changed[s.col("afp")].unique().to_list()))
    computed = ", ".join(sorted(earlier[s.col("fp")].unique().to_list()))
    return [
        (
            "definition_changed_rows",
            changed.height,
            f"definition changed since serving: {changed.height:,} {of} were served while "
            f"fingerprint {then} was applied, the registry now has {s.fingerprint}",
        ),
        (
            "earlier_definition_rows",
            earlier.height,
            f"values of an earlier definition: on {earlier.height:,} {of} the online store "
            f"served values computed by fingerprint {computed}, not the definition applied at "
            "the time; materialize after every apply that changes a feature",
        ),
    ]


def _freshness_causes(part: str, bad_rows: pl.DataFrame, of: str) -> list[tuple[str, int, str]]:
    """Rows whose served row (or newest stored event) was older, or newer, than what the
    offline join found at the request time; for events, rows whose newest stored event the
    source's files lack."""
    se, oe = pl.col(_view_col("se", part)), pl.col(_view_col("oe", part))
    counts = bad_rows.select(
        ((se < oe) | (se.is_null() & oe.is_not_null())).sum().alias("older"),
        ((se > oe) | (se.is_not_null() & oe.is_null())).sum().alias("newer"),
    ).row(0, named=True)
    older, newer = int(counts["older"]), int(counts["newer"])
    if not part.endswith(EVENTS_SUFFIX):
        return [
            (
                "served_older_rows",
                older,
                f"stale materialization: on {older:,} {of} the online store served an older "
                f"row of view {part!r} than the offline join found at the request time (or "
                "none); materialize more often or check that the job runs",
            ),
            (
                "served_newer_rows",
                newer,
                f"on {newer:,} {of} the online store served a newer row of view {part!r} than "
                "the offline join found at the request time: values materialized after the "
                "request time, or source rows removed since",
            ),
        ]
    view = part.removesuffix(EVENTS_SUFFIX)
    at_served = pl.col(_view_col("oes", part))
    missing = int(
        bad_rows.select((se.is_not_null() & (at_served.is_null() | (at_served < se))).sum()).item()
    )
    return [
        (
            "served_older_rows",
            older,
            f"online events behind the source: on {older:,} {of} the newest event the online "
            f"store held for view {view!r} was older than the source's at the request time; "
            "materialize, and push new events as they happen",
        ),
        (
            "pushed_missing_offline_rows",
            missing,
            f"pushed events not yet in the offline source: on {missing:,} {of} the online store "
            f"held events of view {view!r} that the source's files lack (pushed with "
            "to='online', or removed from the files since); push with to='online_and_offline', "
            "the default, so training sets and materializations see them",
        ),
    ]


def _input_causes(
    s: _Spec,
    bad_rows: pl.DataFrame,
    specs: list[_Spec],
    event_times_logged: bool,
    causes: dict[str, int],
    of: str,
) -> list[tuple[int, str]]:
    """Which inputs of an on-demand output differed online and offline on its mismatching
    rows, by name: an input feature served in the same request by its values, otherwise (and
    for inputs never served) by the event times of the stored rows or events it came from."""
    evidence: dict[str, pl.Expr] = {}
    for i in s.inputs:
        spec = specs[i]
        differs = pl.col(spec.col("bad"))
        if event_times_logged:  # rows where the input itself was not requested
            part = spec.parts[0]
            differs = pl.when(pl.col(spec.col("m"))).then(differs).otherwise(_part_differs(part))
        evidence[spec.ref] = differs
    if event_times_logged:
        covered = {p for i in s.inputs for p in specs[i].parts}
        for part in s.parts:
            if part not in covered:
                evidence[_part_text(part)] = _part_differs(part)
    total = bad_rows.height
    if not evidence:
        return [
            (
                0,
                "on-demand output: whether its inputs differ is unknown (neither its input "
                "features nor event times were logged)",
            )
        ]
    row = bad_rows.select(
        pl.any_horizontal(list(evidence.values())).sum().alias("__any"),
        *(e.sum().alias(name) for name, e in evidence.items()),
    ).row(0, named=True)
    differ = int(row.pop("__any"))
    causes["inputs_differ_rows"] = differ
    named = {name: int(n) for name, n in row.items() if n}
    if differ:
        shown = ", ".join(f"{name} ({n:,} rows)" for name, n in named.items())
        return [
            (
                differ,
                f"on-demand output whose inputs differ: on {differ:,} {of} these inputs were "
                f"not the same online and offline: {shown}",
            )
        ]
    if not total:
        return []
    return [
        (
            total,
            f"only the on-demand output differs: its inputs ({', '.join(evidence)}) agree on "
            f"all {total:,} mismatching rows, so the function gives different results online "
            "and offline (does it read state outside its inputs?)",
        )
    ]


def _part_differs(part: str) -> pl.Expr:
    """The row or newest event served from ``part`` is not the one the offline join found."""
    return pl.col(_view_col("se", part)).ne_missing(pl.col(_view_col("oe", part)))


def _part_text(part: str) -> str:
    view = part.removesuffix(EVENTS_SUFFIX)
    return f"events of view {view!r}" if view != part else f"rows of view {view!r}"


def _judge(result: SkewFeatureResult, causes: list[tuple[int, str]]) -> None:
    """Verdict and reasons from the mismatch rate, the row count and the likely causes."""
    cfg = result.config
    rate = result.mismatch_rate or 0.0
    bad = result.mismatches + result.null_mismatches
    n = result.rows_compared
    what = (
        f"{result.mismatches:,} mismatches and {result.null_mismatches:,} null mismatches "
        f"in {n:,} rows compared ({rate:.3%})"
    )
    if rate > cfg.max_mismatch_rate:
        result.verdict = Verdict.FLAGGED
        result.reasons.append(f"{what} exceed the {cfg.max_mismatch_rate:.3%} limit")
    elif n < cfg.min_rows:
        result.verdict = Verdict.INSUFFICIENT_DATA
        result.reasons.append(
            f"only {n:,} rows compared: a mismatch rate within {cfg.max_mismatch_rate:.3%} is "
            f"not yet supported (it needs at least {cfg.min_rows:,}); so far {what}"
        )
    elif bad:
        result.verdict = Verdict.WARN
        result.reasons.append(f"{what}, within the {cfg.max_mismatch_rate:.3%} limit")
    else:
        result.verdict = Verdict.OK
    if bad:
        ranked = [text for count, text in sorted(causes, key=lambda c: -c[0])]
        result.reasons.extend(
            ranked
            or [
                "no likely cause found: the same definition and the same source rows were "
                "used online and offline; see the examples"
            ]
        )


def _histogram(rows: pl.DataFrame, s: _Spec) -> dict[str, Any] | None:
    """Shares of served and offline values per bin (offline deciles) or category, and null."""
    if s.kind == "temporal":
        return None
    n = rows.height
    served, offline = rows[s.col("s")], rows[s.col("o")]
    if s.kind == "numeric":
        a = served.drop_nulls().cast(pl.Float64).to_numpy()
        b = offline.drop_nulls().cast(pl.Float64).to_numpy()
        basis = b if b.size else a
        if not basis.size:
            return None
        edges = np.unique(np.quantile(basis, np.linspace(0.1, 0.9, 9)))
        labels = [f"<= {_num(edges[0])}"]
        labels += [f"({_num(lo)}, {_num(hi)}]" for lo, hi in pairwise(edges)]
        labels.append(f"> {_num(edges[-1])}")
        bins = len(edges) + 1
        current = np.bincount(np.searchsorted(edges, a, side="left"), minlength=bins).tolist()
        reference = np.bincount(np.searchsorted(edges, b, side="left"), minlength=bins).tolist()
    else:
        both = pl.concat([served.cast(pl.String), offline.cast(pl.String)]).drop_nulls()
        top = both.value_counts(sort=True, name="n").head(HISTOGRAM_CATEGORIES)
        labels = top[both.name].to_list()
        current = [int((served.cast(pl.String) == c).sum()) for c in labels]
        reference = [int((offline.cast(pl.String) == c).sum()) for c in labels]
        rest_s = served.drop_nulls().len() - sum(current)
        rest_o = offline.drop_nulls().len() - sum(reference)
        if rest_s or rest_o:
            labels.append("other")
            current.append(rest_s)
            reference.append(rest_o)
    if served.null_count() or offline.null_count():
        labels.append("null")
        current.append(served.null_count())
        reference.append(offline.null_count())
    return {
        "labels": labels,
        "reference": [c / n for c in reference],
        "current": [c / n for c in current],
        "reference_label": "offline replay",
        "current_label": "served",
    }


def _num(x: float) -> str:
    return f"{x:.4g}" if math.isfinite(x) else str(x)


def _examples(bad_rows: pl.DataFrame, s: _Spec, event_times_logged: bool) -> list[dict]:
    """The first few mismatching rows: request, keys, both values and the served status."""
    cols = [
        pl.col("request_id"),
        pl.col("request_time"),
        *(pl.col(k) for k in s.keys),
        *(pl.col(c) for c in s.request_columns),
        pl.col(s.col("s")).alias("served"),
        pl.col(s.col("o")).alias("offline"),
        pl.col(s.col("st")).alias("status"),
    ]
    if event_times_logged and not s.on_demand:
        cols += [
            pl.col(_view_col("se", s.parts[0])).alias("served_event_time"),
            pl.col(_view_col("oe", s.parts[0])).alias("offline_event_time"),
        ]
    return [
        {k: v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for k, v in row.items()}
        for row in bad_rows.head(EXAMPLES).select(cols).iter_rows(named=True)
    ]
