"""The library entry points of continuous monitoring, over the narrow inputs every report takes
(the facade's ``monitor``, ``monitor_history`` and ``monitor_report`` call these)."""

from __future__ import annotations

import datetime as dt

import polars as pl

from featurestore._times import as_utc
from featurestore.definitions._base import did_you_mean
from featurestore.errors import FeatureReferenceError, ReportError
from featurestore.monitoring._inputs import ReportInputs
from featurestore.monitoring._monitor._consistency import sampled_consistency
from featurestore.monitoring._monitor._history import HISTORY_SCHEMA, feature_history
from featurestore.monitoring._monitor._metric_names import MONITORING_DIR
from featurestore.monitoring._monitor._reference import MonitorReference, load_reference
from featurestore.monitoring._monitor._report import MonitorReport, feature_trend
from featurestore.monitoring._monitor._run import MonitorPaths, MonitorRun, run_monitor
from featurestore.monitoring._monitor._summaries import sum_summaries, summarize_log
from featurestore.monitoring._monitor._summary_files import first_hour, last_hour, read_summaries
from featurestore.monitoring._monitor._windows import whole_days, window_size

__all__ = ["monitor", "monitor_history", "monitor_paths", "monitor_report"]


def monitor_paths(inputs: ReportInputs) -> MonitorPaths:
    """Monitoring's directory under the repo's data directory, and the serving log's."""
    return MonitorPaths(inputs.repo.data_dir / MONITORING_DIR, inputs.repo.serving_log_dir)


def monitor(inputs: ReportInputs, until: dt.datetime | None = None) -> MonitorRun:
    """Summarize the serving log files not yet counted, then evaluate the alert rules of
    ``monitoring`` in featurestore.yaml over every window ended by ``until`` (default now)."""
    config = inputs.repo.config.monitoring
    reference = load_reference(inputs, config)

    def summarize(log: pl.DataFrame) -> pl.DataFrame:
        served = summarize_log(log, reference.profiles, reference.dtypes)
        features = list(reference.features)
        checked = sampled_consistency(inputs, log, features, config.consistency_sample)
        return sum_summaries(pl.concat([served, checked]))

    return run_monitor(reference, config, monitor_paths(inputs), summarize, until)


def _feature(reference: MonitorReference, ref: str) -> None:
    if ref not in reference.features:
        known = list(reference.features)
        raise FeatureReferenceError(
            f"{ref!r} is not monitored.{did_you_mean(ref, known)} Monitored features "
            f"(monitoring.features against {reference.label}): {', '.join(known) or 'none'}"
        )


def _period(
    inputs: ReportInputs,
    window: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    features: list[str] | None,
) -> tuple[MonitorReference, pl.DataFrame, dt.datetime, dt.datetime] | None:
    """The reference, the summary rows a period's windows need, and the period (default: the
    windows that cover the summarized hours); None before anything was summarized."""
    size = window_size(window)
    reference = load_reference(inputs, inputs.repo.config.monitoring)
    for ref in features or []:
        _feature(reference, ref)
    directory = monitor_paths(inputs).summaries(reference)
    first, last = first_hour(directory), last_hour(directory)
    if first is None or last is None:
        return None
    end = as_utc(end) if end is not None else last + min(size, dt.timedelta(days=1))
    start = as_utc(start) if start is not None else first
    rows = read_summaries(directory, start - size, end, features, whole_days(window))
    return reference, rows, start, end


def monitor_history(
    inputs: ReportInputs,
    ref: str,
    window: str = "1h",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pl.DataFrame:
    """One row per ``window`` of ``ref`` ending in ``(start, end]`` (default: the windows
    that cover the summarized hours), from the summaries ``monitor`` wrote: rows, rates, each
    drift statistic with its calibrated threshold, the sampled match rate and the verdict."""
    found = _period(inputs, window, start, end, [ref])
    if found is None:
        return pl.DataFrame(schema=HISTORY_SCHEMA)
    reference, rows, start, end = found
    return feature_history(reference.features[ref], rows, window, start, end)


def monitor_report(
    inputs: ReportInputs,
    window: str = "1d",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    features: list[str] | None = None,
) -> MonitorReport:
    """Each monitored feature's (or each of ``features``') drift per ``window`` over the
    period, as a report whose HTML page draws each feature's series."""
    found = _period(inputs, window, start, end, features)
    if found is None:
        raise ReportError("nothing is summarized yet; run 'featurestore monitor run' first")
    reference, rows, start, end = found
    trends = [
        feature_trend(
            reference.features[ref],
            feature_history(reference.features[ref], rows, window, start, end),
            rows,
            window,
            inputs.repo.config.monitoring,
        )
        for ref in (features or list(reference.features))
    ]
    return MonitorReport(
        trends, reference_label=reference.label, window=window, start=start, end=end
    )
