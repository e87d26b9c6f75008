"""Drift over time: for one feature and a window size, each window's statistics from the sum of
its hours' summaries, with the calibrated threshold of each statistic at the window's size and
the window's verdict."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from featurestore._profiles import FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._monitor._calibration import calibrated_threshold
from featurestore.monitoring._monitor._statistics import STATISTICS, applies, window_statistics
from featurestore.monitoring._monitor._summaries import (
    LIST_COLUMNS,
    STATUS_COLUMNS,
    SUMMARY_SCHEMA,
    window_profile,
)
from featurestore.monitoring._monitor._windows import Window, windows_ending
from featurestore.monitoring._report import Verdict

__all__ = ["HISTORY_SCHEMA", "MonitoredFeature", "feature_history", "window_points"]

_SCALARS = [c for c, t in SUMMARY_SCHEMA.items() if c not in ("hour", "feature", *LIST_COLUMNS)]

HISTORY_SCHEMA: dict[str, pl.DataType] = {
    "start": pl.Datetime("us", "UTC"),
    "end": pl.Datetime("us", "UTC"),
    "rows": pl.Int64(),
    "null_rate": pl.Float64(),
    **{f"{c}_rate": pl.Float64() for c in STATUS_COLUMNS.values()},
    **{s: pl.Float64() for s in STATISTICS},
    **{f"{s}_threshold": pl.Float64() for s in STATISTICS},
    "match_rate": pl.Float64(),
    "verdict": pl.String(),
    "flagged": pl.List(pl.String()),
}


@dataclass(frozen=True)
class MonitoredFeature:
    """A feature under monitoring: its reference profile, drift settings and owner."""

    ref: str
    reference: FeatureProfile
    config: DriftConfig = field(default_factory=DriftConfig)
    owner: str | None = None


class _Sums:
    """One feature's summary rows as arrays, summed over any range of hours cheaply."""

    def __init__(self, rows: pl.DataFrame) -> None:
        rows = rows.sort("hour")
        self.hours = rows["hour"].to_numpy()
        self.scalars = {c: rows[c].fill_null(0).to_numpy() for c in _SCALARS}
        self.mins = rows["min"].to_numpy()
        self.maxs = rows["max"].to_numpy()
        self.lists = {c: _matrix(rows[c]) for c in LIST_COLUMNS}

    def between(self, start: dt.datetime, end: dt.datetime) -> dict[str, Any]:
        lo, hi = np.searchsorted(self.hours, [_np_time(start), _np_time(end)], side="left")
        row: dict[str, Any] = {c: float(v[lo:hi].sum()) for c, v in self.scalars.items()}
        for c in ("rows", "nulls", "unseen"):
            row[c] = int(row[c])
        mins, maxs = self.mins[lo:hi], self.maxs[lo:hi]
        row["min"] = float(np.nanmin(mins)) if hi > lo and not np.isnan(mins).all() else None
        row["max"] = float(np.nanmax(maxs)) if hi > lo and not np.isnan(maxs).all() else None
        for c, m in self.lists.items():
            row[c] = m[lo:hi].sum(axis=0).tolist() if m.shape[1] else []
        return row


def _np_time(t: dt.datetime) -> np.datetime64:
    return np.datetime64(t.astimezone(dt.UTC).replace(tzinfo=None), "us")


def _matrix(column: pl.Series) -> np.ndarray:
    """A list column as a 2-D array; rows with an empty list count zeros."""
    longest = column.list.len().max()
    width = int(longest) if isinstance(longest, int) else 0
    out = np.zeros((column.len(), width), dtype=np.int64)
    for i, values in enumerate(column.to_list()):
        if values:
            out[i, : len(values)] = values
    return out


def _point(feature: MonitoredFeature, row: dict[str, Any], window: Window) -> dict[str, Any]:
    """One window's rates, statistics, thresholds and verdict."""
    cfg, reference = feature.config, feature.reference
    rows = row["rows"]
    point: dict[str, Any] = {"start": window[0], "end": window[1], "rows": rows}
    point["null_rate"] = row["nulls"] / rows if rows else None
    for column in STATUS_COLUMNS.values():
        point[f"{column}_rate"] = row[column] / rows if rows else None
    stats = window_statistics(reference, window_profile(row, reference), cfg) if rows else {}
    flagged = []
    for name in STATISTICS:
        value = stats.get(name)
        limit = (
            calibrated_threshold(name, reference, rows, cfg)
            if applies(name, reference.kind)
            else None
        )
        point[name], point[f"{name}_threshold"] = value, limit
        if value is not None and limit is not None and value > limit:
            flagged.append(name)
    compared = row["compared"]
    point["match_rate"] = row["matched"] / compared if compared else None
    decided = any(point[s] is not None for s in STATISTICS)
    verdict = Verdict.FLAGGED if flagged else Verdict.OK if decided else Verdict.INSUFFICIENT_DATA
    point["verdict"], point["flagged"] = verdict.value, flagged
    return point


def window_points(
    feature: MonitoredFeature, rows: pl.DataFrame, windows: list[Window]
) -> list[dict[str, Any]]:
    """The point of each of ``windows`` from ``feature``'s summary ``rows``."""
    sums = _Sums(rows.filter(pl.col("feature") == feature.ref))
    return [_point(feature, sums.between(*w), w) for w in windows]


def feature_history(
    feature: MonitoredFeature,
    rows: pl.DataFrame,
    window: str,
    start: dt.datetime,
    end: dt.datetime,
) -> pl.DataFrame:
    """One row per ``window`` ending in ``(start, end]``, oldest first (see HISTORY_SCHEMA)."""
    points = window_points(feature, rows, windows_ending(window, start, end))
    return pl.DataFrame(points, schema=HISTORY_SCHEMA, orient="row")
