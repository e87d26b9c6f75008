"""The rules a drift report applies, in words: the effective defaults of ``DriftConfig`` and each
feature's overrides, written into every report's ``settings``."""

from __future__ import annotations

from collections.abc import Sequence

from featurestore._format import percent
from featurestore._profiles import TOP_K
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._drift._categorical import NULL, OTHER
from featurestore.monitoring._drift._numeric import QUANTILE_SHIFTS
from featurestore.monitoring._drift._report import DriftFeature
from featurestore.monitoring._drift._statistics import SMOOTHING

__all__ = ["settings"]


def settings(features: Sequence[DriftFeature]) -> dict[str, str]:
    """Every rule and default the report applies, in words, plus per-feature overrides."""
    d = DriftConfig()
    out = {
        "decisions": (
            "distances decide; p-values are computed, shown and used only when the reference "
            f"has fewer than {d.p_value_below_rows:,} rows, where a breached threshold also "
            f"needs p < {d.alpha:g}"
        ),
        **_numeric_rules(d),
        **_categorical_rules(d),
        "null rate": (
            f"absolute change in the share of nulls, every kind; warn at {d.null_rate_warn:g}, "
            f"flag at {d.null_rate_flag:g}; needs {d.min_rows_psi:,} rows per side"
        ),
        "Jensen-Shannon": "distance (base 2) over the same bins or buckets; informational",
        "temporal": "null rate and row counts only; first and last values shown",
        "verdict": ("the worst check with enough data; insufficient data when no check had enough"),
    }
    overrides = [
        f"{f.ref}: "
        + ", ".join(f"{k}={v}" for k, v in f.config.model_dump().items() if getattr(d, k) != v)
        for f in features
        if f.config != d
    ]
    if overrides:
        out["overrides"] = "; ".join(overrides)
    return out


def _numeric_rules(d: DriftConfig) -> dict[str, str]:
    return {
        "numeric: PSI": (
            f"{d.bins} bins at the reference's quantiles k/{d.bins} (deciles), open outer bins, "
            f"+{SMOOTHING} added to every count; warn at {d.psi_warn:g}, flag at "
            f"{d.psi_flag:g}; needs {d.min_rows_psi:,} non-null values per side; p-value: "
            "chi-square over the bins"
        ),
        "numeric: KS distance D": (
            "max |F_ref - F_cur| over the reference's 101 percentiles and the values just "
            "below each (exact there; it can miss at most the reference mass between two "
            f"percentiles, about 1%); flag at {d.ks_flag:g}; needs {d.min_rows_ks:,} "
            "non-null values per side; p-value: asymptotic two-sample KS"
        ),
        "numeric: Wasserstein": (
            "integral of |F_ref - F_cur| (CDFs linear between the reference's percentiles, "
            "tails beyond its 1st and 99th percentile exact), divided by the reference's "
            "standard deviation; informational"
        ),
        "numeric: shifts": (
            "mean shift in reference standard deviations, std ratio, and quantile shifts at "
            f"{', '.join(f'{round(100 * p)}%' for p in QUANTILE_SHIFTS)} (current quantiles "
            "interpolated from its CDF at the reference percentiles); informational"
        ),
    }


def _categorical_rules(d: DriftConfig) -> dict[str, str]:
    return {
        "categorical: L-inf": (
            f"max |share change| over the reference's top {TOP_K} categories plus {OTHER} and "
            f"{NULL}, naming the worst; warn at {d.linf_warn:g}, flag at {d.linf_flag:g}; "
            f"needs {d.min_rows_psi:,} rows per side; p-value: chi-square over the buckets"
        ),
        "categorical: PSI": (
            f"over the same buckets, +{SMOOTHING} per count; warn at {d.psi_warn:g}, flag at "
            f"{d.psi_flag:g}"
        ),
        "categorical: unseen": (
            "share of current rows in categories the reference never saw (known when the "
            f"reference recorded all its categories); flag above {percent(d.unseen_flag)}"
        ),
        "boolean: true rate": (
            f"change in the share of true among non-null values; warn at {d.true_rate_warn:g}, "
            f"flag at {d.true_rate_flag:g}; needs {d.min_rows_psi:,} values per side; "
            "p-value: chi-square"
        ),
    }
