"""Grading a drift statistic: its verdict against the warn and flag thresholds, the reason in
words, and one feature's verdict from all its checks."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._report import Verdict

__all__ = ["Check", "Outcome", "Sides", "combine", "insufficient", "threshold_check"]

Sides = tuple[str, str]  # the reference's and the current side's labels


@dataclass
class Check:
    """One thresholded statistic: its verdict and, unless OK, why."""

    verdict: Verdict
    reason: str | None = None
    score: float = 0.0  # the statistic over its flag threshold; orders the report


Outcome = tuple[list[Check], dict[str, Any], dict[str, Any] | None]  # checks, stats, histogram


def _grade(value: float, warn: float | None, flag: float) -> Verdict:
    if value >= flag:
        return Verdict.FLAGGED
    if warn is not None and value >= warn:
        return Verdict.WARN
    return Verdict.OK


def threshold_check(
    what: str,
    value: float,
    warn: float | None,
    flag: float,
    detail: str,
    p_value: float | None,
    cfg: DriftConfig,
) -> Check:
    """Grade ``value``; on a small reference a breach also needs ``p_value < alpha``."""
    verdict = _grade(value, warn, flag)
    score = value / flag if flag > 0 else math.inf
    if verdict is Verdict.OK:
        return Check(Verdict.OK, score=score)
    limit = flag if verdict is Verdict.FLAGGED else warn
    reason = f"{what} {value:.3g} >= {limit:g} ({verdict}): {detail}"
    if p_value is not None and p_value >= cfg.alpha:
        return Check(
            Verdict.OK,
            f"{what} {value:.3g} is past {limit:g} but not significant on a reference this "
            f"small (p = {p_value:.2g} >= {cfg.alpha:g}): {detail}",
            score=0.0,
        )
    return Check(verdict, reason, score)


def insufficient(what: str, n_ref: int, n_cur: int, needed: int, unit: str) -> Check:
    """The check of a statistic that one side has too few rows or values for."""
    return Check(
        Verdict.INSUFFICIENT_DATA,
        f"insufficient data for {what}: {n_ref:,} reference and {n_cur:,} current {unit}, "
        f"needs {needed:,} per side",
    )


def combine(checks: list[Check]) -> tuple[Verdict, list[str], float]:
    """The worst verdict among checks with enough data (insufficient data if none had), the
    reasons worst first, and the highest score."""
    decided = [c.verdict for c in checks if c.verdict is not Verdict.INSUFFICIENT_DATA]
    verdict = min(decided, key=lambda v: v.rank) if decided else Verdict.INSUFFICIENT_DATA
    ranked = sorted(checks, key=lambda c: (c.verdict.rank, -c.score))  # worst first
    reasons = [c.reason for c in ranked if c.reason]
    return verdict, reasons, max((c.score for c in checks), default=0.0)
