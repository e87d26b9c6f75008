"""The drift report's model: the features to compare, each feature's outcome, and the report."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._report import Finding, Report, Verdict
from featurestore.monitoring._time_text import readable

__all__ = ["DriftFeature", "DriftReport", "FeatureDrift"]


@dataclass(frozen=True)
class DriftFeature:
    """One feature to compare: its reference, column (in the profiles and the current frame),
    owner, dtype and thresholds."""

    ref: str
    column: str
    owner: str | None
    dtype: pl.DataType | str
    config: DriftConfig = field(default_factory=DriftConfig)


@dataclass
class FeatureDrift(Finding):
    """The outcome for one feature: verdict, reasons, statistics and histogram."""

    ref: str
    owner: str | None
    dtype: str
    kind: str
    verdict: Verdict
    reasons: list[str]
    stats: dict[str, Any]
    histogram: dict[str, Any] | None
    score: float = 0.0  # the worst statistic over its flag threshold; orders the report
    examples: list[dict[str, Any]] = field(default_factory=list)  # none: drift has no rows

    def statistics(self) -> dict[str, Any]:
        return self.stats


class DriftReport(Report):
    """Per-feature drift of ``current_label`` against ``reference_label``, worst first."""

    KIND = "drift"

    def __init__(
        self,
        features: list[FeatureDrift],
        *,
        reference_label: str,
        current_label: str,
        settings: dict[str, str],
        generated_at: dt.datetime | None = None,
    ) -> None:
        self.features = sorted(features, key=lambda f: (f.verdict.rank, -f.score, f.ref))
        self.reference_label = reference_label
        self.current_label = current_label
        self.settings = settings
        self.generated_at = generated_at or dt.datetime.now(dt.UTC)

    def __repr__(self) -> str:
        return f"DriftReport(features={len(self.features)}, flagged={self.flagged})"

    def findings(self) -> list[FeatureDrift]:
        return self.features

    def title(self) -> str:
        return readable(f"Drift of {self.current_label} against {self.reference_label}")

    def summary_extras(self) -> dict[str, Any]:
        return {"reference": self.reference_label, "current": self.current_label}

    def settings_text(self) -> dict[str, str]:
        return dict(self.settings)
