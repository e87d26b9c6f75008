"""The null-rate check every kind of feature gets: the change in the share of nulls."""

from __future__ import annotations

import math
from typing import Any

from featurestore._format import percent
from featurestore._profiles import FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._grading import Check, insufficient, threshold_check
from featurestore.monitoring._drift._statistics import chi2_p

__all__ = ["null_check"]


def null_check(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, stats: dict[str, Any]
) -> Check:
    """Grade the null-rate change, adding its statistics to ``stats``."""
    r_rate = ref.null_count / ref.count if ref.count else math.nan
    c_rate = cur.null_count / cur.count if cur.count else math.nan
    change = c_rate - r_rate
    stats |= {
        "null_rate_reference": r_rate,
        "null_rate_current": c_rate,
        "null_rate_change": change,
    }
    if min(ref.count, cur.count) < cfg.min_rows_psi:
        return insufficient("the null rate", ref.count, cur.count, cfg.min_rows_psi, "rows")
    p = None
    if small:
        p = chi2_p([ref.null_count, ref.non_null], [cur.null_count, cur.non_null])
        stats["null_rate_p_value"] = p
    direction = "rose" if change > 0 else "fell"
    cause = (
        "likely an upstream source missing values, a failed join or entities without rows"
        if change > 0
        else "likely a new default or a fixed upstream gap"
    )
    detail = f"null rate {direction} from {percent(r_rate)} to {percent(c_rate)}; {cause}"
    return threshold_check(
        "null-rate change",
        abs(change),
        cfg.null_rate_warn,
        cfg.null_rate_flag,
        detail,
        p,
        cfg,
    )
