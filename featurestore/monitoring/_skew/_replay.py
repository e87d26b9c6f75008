"""The replay: every logged entity row becomes a spine row (its join keys, request data and
request time), the offline engine computes the served features on it point in time, and the
served values, statuses, fingerprints and event times are laid beside the offline ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import polars as pl

from featurestore._selection import build_plan
from featurestore.definitions import FeatureView
from featurestore.definitions._dtypes import parse_dtype
from featurestore.monitoring._skew._specs import Spec, view_col
from featurestore.offline._point_in_time import ViewScan, point_in_time_sql
from featurestore.online._event_state import EVENTS_SUFFIX
from featurestore.serving._serving_log import decode_json_column
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, timestamp_sql

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs

__all__ = ["replay"]

REQUEST_TIME = "__fs_request_time"


def replay(
    reads: ReportInputs, log: pl.DataFrame, specs: list[Spec], event_times_logged: bool
) -> pl.DataFrame:
    """One row per log row: keys, request data, and per feature the served value, status,
    fingerprint and whether it was served, the offline value, and per view both event times."""
    plan = build_plan(reads.repo, [s.ref for s in specs], full_feature_names=True)
    key_dtypes = _key_dtypes(reads, plan.join_keys, list(plan.batch_views.values()))
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
    parts = [
        log.select("request_id", "row", "request_time"),
        spine.drop(REQUEST_TIME),
        _served(log, specs).with_columns(offline[columns[s.ref]].alias(s.col("o")) for s in specs),
        log.select(pl.col("features").list.contains(s.ref).alias(s.col("m")) for s in specs),
    ]
    if event_times_logged:
        parts += _event_times(reads, log, spine, key_dtypes, specs)
    frame = pl.concat(parts, how="horizontal")
    return frame.with_columns(e for s in specs for e in _flags(s))


def _served(log: pl.DataFrame, specs: list[Spec]) -> pl.DataFrame:
    """Per feature the served value, status, fingerprint, and the fingerprint applied then."""
    dtypes = {s.ref: s.feature.dtype for s in specs}
    values = decode_json_column(log, "values", dtypes)
    statuses = decode_json_column(log, "statuses", dict.fromkeys(dtypes, pl.String()))
    fingerprints = _json_strings(log, "fingerprints", list(dtypes))
    if "applied_fingerprints" in log.columns:
        filled = log.with_columns(pl.col("applied_fingerprints").fill_null("{}"))
        applied_then = _json_strings(filled, "applied_fingerprints", list(dtypes))
    else:
        applied_then = pl.DataFrame(
            {r: [None] * log.height for r in dtypes}, schema=dict.fromkeys(dtypes, pl.String())
        )
    return pl.DataFrame(
        [values[s.ref].alias(s.col("s")) for s in specs]
        + [statuses[s.ref].alias(s.col("st")) for s in specs]
        + [fingerprints[s.ref].alias(s.col("fp")) for s in specs]
        + [applied_then[s.ref].fill_null(fingerprints[s.ref]).alias(s.col("afp")) for s in specs]
    )


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


def _event_times(
    reads: ReportInputs,
    log: pl.DataFrame,
    spine: pl.DataFrame,
    key_dtypes: Mapping[str, pl.DataType],
    specs: list[Spec],
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
        served.rename({n: view_col("se", n) for n in names}),
        at_request.rename({f"v{i}": view_col("oe", n) for i, n in enumerate(names)}),
    ]
    events = [(i, n) for i, n in enumerate(names) if n.endswith(EVENTS_SUFFIX)]
    for i, name in events:
        found = _offline_event_times(reads, keys, served[name], [views[i]])
        out.append(found.rename({"v0": view_col("oes", name)}))
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
            joined: pl.DataFrame = engine.con.sql(
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


def _flags(s: Spec) -> list[pl.Expr]:
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
