"""Building the skew report: read the serving log's window, pick the features to compare,
replay them offline and compare each."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import polars as pl

from featurestore._selection import parse_ref
from featurestore._times import as_utc
from featurestore.errors import ReportError
from featurestore.monitoring._drift._sides import window_text
from featurestore.monitoring._skew._compare import compare
from featurestore.monitoring._skew._replay import replay
from featurestore.monitoring._skew._report import SkewReport
from featurestore.monitoring._skew._specs import build_specs

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs

__all__ = ["build_skew_report"]


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
    log = _read_log(reads, start, end, features, sample)
    log_rows = log.height
    if sample is not None and log.height > sample:
        log = log.with_row_index("__fs_i").sample(n=sample, seed=seed).sort("__fs_i").drop("__fs_i")
    served = sorted(set(log["features"].explode().drop_nulls().to_list()))
    refs, not_replayed = _refs(reads, features, served)
    specs = build_specs(reads, refs, set(served))
    event_times_logged = "event_times" in log.columns
    compared = [s for s in specs if s.served]
    frame = replay(reads, log, compared, event_times_logged) if compared else None
    results = [compare(s, frame if s.served else None, specs, event_times_logged) for s in specs]
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


def _read_log(
    reads: ReportInputs,
    start: dt.datetime | None,
    end: dt.datetime | None,
    features: list[str] | None,
    sample: int | None,
) -> pl.DataFrame:
    """The serving log's records in the window; fails on bad arguments or nothing to compare."""
    if sample is not None and sample < 1:
        raise ReportError(f"sample must be a positive number of rows, found {sample}")
    if start is not None and end is not None and as_utc(start) >= as_utc(end):
        raise ReportError(
            f"the window is empty: start {start.isoformat()} is not before end {end.isoformat()}"
        )
    log = reads.read_serving_log(start, end)
    if log.height == 0 and features is None:
        raise ReportError(
            f"the serving log has no records in {window_text(start, end)}, so there is nothing to "
            "compare; widen the window, or log in-process calls with serving_log.enabled: true "
            "(the HTTP server always logs)"
        )
    return log


def _refs(
    reads: ReportInputs, features: list[str] | None, served: list[str]
) -> tuple[list[str], list[str]]:
    """The references to compare (``features``, checked, or every served one still defined)
    and the served ones no longer defined."""
    if features is not None:
        refs = list(dict.fromkeys(features))
        for ref in refs:
            view_name, name = parse_ref(ref)
            reads.repo.any_view(view_name).feature(name)
        return refs, []
    refs = []
    not_replayed: list[str] = []
    for ref in served:
        view_name, name = parse_ref(ref)
        view = reads.repo.views.get(view_name) or reads.repo.on_demand_views.get(view_name)
        defined = view is not None and name in view.feature_names
        (refs if defined else not_replayed).append(ref)
    return refs, not_replayed
