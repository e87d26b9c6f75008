"""The parity report: per feature, its offline and online values compared row by row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore.definitions._monitoring import SkewConfig
from featurestore.monitoring._report import Finding, Report, Verdict

__all__ = ["DEFAULTS", "ParityFeatureResult", "ParityReport"]

DEFAULTS = SkewConfig()


@dataclass
class ParityFeatureResult(Finding):
    """One feature's offline and online values compared row by row."""

    ENTRY_EXTRAS = ("feature_kind", "group")

    ref: str
    owner: str | None
    dtype: str
    kind: str  # numeric, categorical, boolean or temporal
    feature_kind: str  # feature, aggregation or on_demand
    group: str  # the join keys its rows were sampled for
    config: SkewConfig
    verdict: Verdict
    reasons: list[str]
    rows_compared: int
    mismatches: int = 0  # rows differing in value or status (or where a path raised)
    value_mismatches: int = 0
    status_mismatches: int = 0
    errors: int = 0  # rows where a path raised
    offline_statuses: dict[str, int] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    histogram: dict[str, Any] | None = None  # none: rows are compared one by one

    @property
    def mismatch_rate(self) -> float | None:
        return self.mismatches / self.rows_compared if self.rows_compared else None

    def stats(self) -> dict[str, Any]:
        """Statistics in display order."""
        out: dict[str, Any] = {
            "rows_compared": self.rows_compared,
            "mismatches": self.mismatches,
            "mismatch_rate": self.mismatch_rate,
            "value_mismatches": self.value_mismatches,
            "status_mismatches": self.status_mismatches,
            "errors": self.errors,
            "offline_statuses": dict(self.offline_statuses),
        }
        if self.kind == "numeric":
            out["abs_tol"] = self.config.abs_tol
            out["rel_tol"] = self.config.rel_tol
        return out

    def statistics(self) -> dict[str, Any]:
        return self.stats()


class ParityReport(Report):
    """Per feature, whether the offline path and the serving code agree on the sampled rows,
    flagged first. ``spines`` holds the rows used, per group of join keys (keys, time and
    request columns); ``request_data`` says where each group's request values came from."""

    KIND = "parity"

    def __init__(
        self,
        results: list[ParityFeatureResult],
        *,
        sample: int | None,
        seed: int,
        spines: dict[str, pl.DataFrame],
        request_data: dict[str, str],
        not_checked: dict[str, str],
        seconds: dict[str, float],
    ) -> None:
        self.results = sorted(results, key=lambda r: (r.verdict.rank, -r.mismatches, r.ref))
        self.sample = sample
        self.seed = seed
        self.spines = spines
        self.request_data = request_data
        self.not_checked = not_checked
        self.seconds = seconds
        self.generated_at = dt.datetime.now(dt.UTC)

    def result(self, ref: str) -> ParityFeatureResult:
        """The result of one feature; the error lists the features in the report."""
        for r in self.results:
            if r.ref == ref:
                return r
        known = ", ".join(r.ref for r in self.results) or "none"
        raise KeyError(f"feature {ref!r} is not in this parity report; it has: {known}")

    def findings(self) -> list[ParityFeatureResult]:
        return self.results

    def _sampled(self) -> str:
        if self.sample is None:
            rows = sum(frame.height for frame in self.spines.values())
            return f"a spine of {rows:,} rows, as given"
        return f"{self.sample:,} rows per group of join keys (seed {self.seed})"

    def title(self) -> str:
        return f"Parity: offline path vs serving code on {self._sampled()}"

    def summary_extras(self) -> dict[str, Any]:
        return {
            "rows": {label: frame.height for label, frame in self.spines.items()},
            "not_checked": dict(self.not_checked),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
        }

    def settings_text(self) -> dict[str, str]:
        per_feature = [
            f"{r.ref} (abs_tol {r.config.abs_tol:g}, rel_tol {r.config.rel_tol:g})"
            for r in self.results
            if (r.config.abs_tol, r.config.rel_tol) != (DEFAULTS.abs_tol, DEFAULTS.rel_tol)
        ]
        return {
            "sample": self._sampled(),
            "times": (
                "given by the spine"
                if self.sample is None
                else "event times of sampled source rows: 30% at the event, 15% at a ttl or "
                "window edge after it, 10% 1us either side of an edge, 35% a random offset "
                "after it and 10% before it (within the longest ttl or window)"
            ),
            "request_data": "; ".join(f"{g}: {s}" for g, s in self.request_data.items())
            or "none needed",
            "offline": "training_frame over the rows (on-demand views run on the whole frame)",
            "online": (
                "OnlineRetriever.get one row at a time at the row's time, over what a "
                "materialization at that time would have written"
            ),
            "match": (
                "floats match when |online - offline| <= abs_tol + rel_tol * |offline|; "
                "other values must be equal; two nulls match; statuses must be equal"
            ),
            "flag": "flagged when any row differs: parity is exact",
            "defaults": f"abs_tol {DEFAULTS.abs_tol:g}, rel_tol {DEFAULTS.rel_tol:g}",
            "per_feature": "; ".join(per_feature) or "none",
        }
