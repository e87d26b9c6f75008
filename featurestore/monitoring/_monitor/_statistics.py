"""The drift statistics continuous monitoring tracks per feature and window, computed exactly as
the drift report computes them (the same functions, over a window's profile taken at the
reference): PSI, the KS distance, the L-infinity distance, and the true-rate and null-rate
changes."""

from __future__ import annotations

import math
from typing import Literal, get_args

from featurestore._profiles import FeatureProfile
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._compute import kind_outcome

__all__ = ["STATISTICS", "Statistic", "applies", "floor_of", "window_statistics"]

Statistic = Literal["psi", "ks_d", "linf", "true_rate_change", "null_rate_change"]
STATISTICS: tuple[Statistic, ...] = get_args(Statistic)

_KINDS: dict[Statistic, tuple[str, ...]] = {
    "psi": ("numeric", "categorical"),
    "ks_d": ("numeric",),
    "linf": ("categorical",),
    "true_rate_change": ("boolean",),
    "null_rate_change": ("numeric", "categorical", "boolean", "temporal"),
}


def applies(statistic: Statistic, kind: str) -> bool:
    """Whether ``statistic`` is computed for a feature of ``kind``."""
    return kind in _KINDS[statistic]


def floor_of(statistic: Statistic, cfg: DriftConfig) -> float:
    """The smallest value a calibrated threshold flags, whatever the window's size."""
    return {
        "psi": cfg.psi_floor,
        "ks_d": cfg.ks_floor,
        "linf": cfg.linf_floor,
        "true_rate_change": cfg.true_rate_floor,
        "null_rate_change": cfg.null_rate_floor,
    }[statistic]


def window_statistics(
    reference: FeatureProfile, window: FeatureProfile, cfg: DriftConfig
) -> dict[Statistic, float | None]:
    """Each statistic of ``window`` (a profile taken at ``reference``) against ``reference``;
    None where it does not apply to the feature's kind or either side has too few rows for it
    (``cfg.min_rows_psi``, ``cfg.min_rows_ks``). The changes are absolute values."""
    small = False  # p-values never decide here: the calibrated threshold accounts for noise
    _, stats, _ = kind_outcome(reference, window, cfg, small, ("reference", "window"))
    out: dict[Statistic, float | None] = {}
    for name in STATISTICS:
        value = stats.get(name) if applies(name, reference.kind) else None
        if isinstance(value, float | int) and math.isfinite(value):
            out[name] = abs(float(value))
        else:
            out[name] = None
    if reference.kind == "categorical" and min(reference.count, window.count) < cfg.min_rows_psi:
        out["linf"] = out["psi"] = None
    if min(reference.count, window.count) < cfg.min_rows_psi:
        out["null_rate_change"] = None
    if reference.kind == "boolean" and min(reference.non_null, window.non_null) < cfg.min_rows_psi:
        out["true_rate_change"] = None
    return out
