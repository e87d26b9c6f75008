"""The monitoring report: per monitored feature, its drift statistic over time (drawn as a series
in the HTML page), the windows that were past their calibrated threshold, and the period's
distribution against the reference."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

import polars as pl

from featurestore._config import MonitoringConfig
from featurestore.monitoring._drift._compute import kind_outcome
from featurestore.monitoring._monitor._history import MonitoredFeature
from featurestore.monitoring._monitor._statistics import STATISTICS, applies
from featurestore.monitoring._monitor._summaries import sum_summaries, window_profile
from featurestore.monitoring._report import Finding, Report, Verdict
from featurestore.monitoring._time_text import readable

__all__ = ["FeatureTrend", "MonitorReport", "feature_trend"]

_BY_KIND = {
    "numeric": "ks_d",
    "categorical": "linf",
    "boolean": "true_rate_change",
    "temporal": "null_rate_change",
}


@dataclass
class FeatureTrend(Finding):
    """One feature over a period: its verdict, why, statistics and series."""

    ref: str
    owner: str | None
    dtype: str
    kind: str
    verdict: Verdict
    reasons: list[str]
    stats: dict[str, Any]
    histogram: dict[str, Any] | None
    series: dict[str, Any]
    examples: list[dict[str, Any]] = field(default_factory=list)
    ENTRY_EXTRAS: ClassVar[tuple[str, ...]] = ("series",)

    def statistics(self) -> dict[str, Any]:
        return self.stats


def _statistic(feature: MonitoredFeature, config: MonitoringConfig) -> str:
    """The statistic an alert rule watches for ``feature``, else its kind's deciding one."""
    for rule in config.alerts:
        watched = rule.features == "all" or feature.ref in rule.features
        if watched and applies(rule.statistic, feature.reference.kind):
            return rule.statistic
    return _BY_KIND[feature.reference.kind]


def _reasons(points: pl.DataFrame) -> list[str]:
    flagged = points.filter(pl.col("verdict") == "flagged")
    if flagged.is_empty():
        return []
    names = sorted({s for row in flagged["flagged"].to_list() for s in row})
    starts: list[dt.datetime] = flagged["start"].to_list()
    first, last = min(starts), max(starts)
    return [
        f"{flagged.height} of {points.height} windows past their calibrated threshold "
        f"({', '.join(names)}), the first starting {first:%Y-%m-%d %H:%M} and the last "
        f"{last:%Y-%m-%d %H:%M} UTC"
    ]


def feature_trend(
    feature: MonitoredFeature,
    points: pl.DataFrame,
    rows: pl.DataFrame,
    window: str,
    config: MonitoringConfig,
) -> FeatureTrend:
    """The trend of ``feature`` from its history ``points`` and summary ``rows``."""
    statistic = _statistic(feature, config)
    decided = points.filter(pl.col("verdict") != "insufficient_data")
    flagged = decided.filter(pl.col("verdict") == "flagged").height
    verdict = (
        Verdict.FLAGGED if flagged else Verdict.OK if decided.height else Verdict.INSUFFICIENT_DATA
    )
    histogram = None
    mine = rows.filter(pl.col("feature") == feature.ref)
    total = sum_summaries(mine.with_columns(pl.col("hour").min()))  # one row: the period
    if total.height:
        period = window_profile(total.row(0, named=True), feature.reference)
        sides = ("reference", "the period")
        _, _, histogram = kind_outcome(feature.reference, period, feature.config, False, sides)
    latest = decided.tail(1).row(0, named=True) if decided.height else {}
    stats: dict[str, Any] = {
        "windows": points.height,
        "windows_flagged": flagged,
        "rows": int(points["rows"].sum()),
        **{f"latest_{s}": latest.get(s) for s in STATISTICS if latest.get(s) is not None},
    }
    series = {
        "window": window,
        "statistic": statistic,
        "points": [
            {
                "start": p["start"].isoformat(),
                "end": p["end"].isoformat(),
                "value": p[statistic],
                "threshold": p[f"{statistic}_threshold"],
                "verdict": p["verdict"],
            }
            for p in points.iter_rows(named=True)
        ],
    }
    return FeatureTrend(
        ref=feature.ref,
        owner=feature.owner,
        dtype=feature.reference.dtype,
        kind=feature.reference.kind,
        verdict=verdict,
        reasons=_reasons(points),
        stats=stats,
        histogram=histogram,
        series=series,
    )


class MonitorReport(Report):
    """Each monitored feature's drift over a period, flagged features first."""

    KIND = "monitoring"

    def __init__(
        self,
        trends: list[FeatureTrend],
        *,
        reference_label: str,
        window: str,
        start: dt.datetime,
        end: dt.datetime,
    ) -> None:
        self.trends = sorted(trends, key=lambda t: (t.verdict.rank, t.ref))
        self.reference_label = reference_label
        self.window, self.start, self.end = window, start, end
        self.generated_at = dt.datetime.now(dt.UTC)

    def findings(self) -> list[FeatureTrend]:
        return self.trends

    def title(self) -> str:
        return readable(
            f"Drift per {self.window} window from {self.start.isoformat()} to "
            f"{self.end.isoformat()} against {self.reference_label}"
        )

    def summary_extras(self) -> dict[str, Any]:
        return {"reference": self.reference_label, "window": self.window}

    def settings_text(self) -> dict[str, str]:
        return {
            "windows": "1h and 1d windows follow each other; 7d windows end at each midnight",
            "verdict": (
                "flagged when any window's statistic was past its calibrated threshold: the "
                "larger of the statistic's floor and its noise level at the window's size "
                "(DriftConfig.calibration_quantile of the statistic between the reference and "
                "same-size samples of the reference's own distribution)"
            ),
            "chart": (
                "the statistic per window (line), its threshold (dashed), windows past it (dots)"
            ),
        }
