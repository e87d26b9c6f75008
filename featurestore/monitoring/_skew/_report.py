"""The skew report's model: each feature's comparison of served values with their offline
replay, and the report with its window, sample and settings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from featurestore.definitions._monitoring import SkewConfig
from featurestore.monitoring._report import Finding, Report, Verdict
from featurestore.monitoring._skew._specs import DEFAULTS
from featurestore.monitoring._time_text import readable

__all__ = ["SkewFeatureResult", "SkewReport"]


@dataclass
class SkewFeatureResult(Finding):
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

    def statistics(self) -> dict[str, Any]:
        return self.stats()


def _show(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _config_text(c: SkewConfig) -> str:
    """A feature's tolerances and limits in words."""
    return (
        f"abs_tol {c.abs_tol:g}, rel_tol {c.rel_tol:g}, "
        f"max_mismatch_rate {c.max_mismatch_rate:g}, min_rows {c.min_rows:,}"
    )


class SkewReport(Report):
    """Per-feature skew between served values and their offline replay, worst first."""

    KIND = "skew"

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

    def findings(self) -> list[SkewFeatureResult]:
        return self.results

    def _window(self) -> str:
        first = self.start.isoformat() if self.start is not None else "the first record"
        last = self.end.isoformat() if self.end is not None else "the last"
        return f"{first} to {last}"

    def title(self) -> str:
        return readable(f"Training/serving skew: served values vs offline replay, {self._window()}")

    def summary_extras(self) -> dict[str, Any]:
        return {
            "log_rows": self.log_rows,
            "rows_replayed": self.rows_replayed,
            "requests": self.requests,
            "not_replayed": list(self.not_replayed),
        }

    def settings_text(self) -> dict[str, str]:
        per_feature = [
            f"{r.ref} ({_config_text(r.config)})" for r in self.results if r.config != DEFAULTS
        ]
        return {
            "window": self._window(),
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
            "defaults": _config_text(DEFAULTS),
            "per_feature": "; ".join(per_feature) or "none",
            "stale_cause": (
                "from the event times in the serving log"
                if self.event_times_logged
                else "not checked: the serving log has no event times"
            ),
        }
