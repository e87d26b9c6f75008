"""Drift: how far a feature's current values moved from a reference, feature by feature.

The two sides are a saved training set, a window of the serving log or a window of a view's
source (:mod:`._sides`), read into profiles or rows (:mod:`._inputs`).

The reference needs only its profile (a saved training set carries one); the current side is
profiled *at* the reference, in one DuckDB scan for every numeric feature plus one GROUP BY
per categorical one: its CDF counted at the reference's percentiles and just below each, and its
counts of the reference's categories. Each statistic is then a small function of two profiles.

Distances decide, never p-values alone: at a million rows a KS p-value flags a shift nobody
cares about. P-values are shown, and used, only when the reference has fewer than
``p_value_below_rows`` rows: a breached threshold then also needs ``p < alpha``. Every rule and
default is written into the report's ``settings``; ``DriftConfig`` on a feature overrides them.

- numeric: PSI over the reference deciles (open outer bins, +0.5 count smoothing); the KS
  distance D from the two CDFs; the Wasserstein distance over the reference's standard
  deviation; mean, std and quantile shifts.
- categorical: L-infinity distance over the reference's top categories plus OTHER and NULL,
  naming the worst bucket; PSI over the same buckets; the share of current rows in categories
  the reference never saw.
- boolean: the change in the true rate.
- every kind: the null-rate change as its own check, row counts, Jensen-Shannon distance over
  the same bins or buckets (informational), and "insufficient data" below a minimum sample.
"""

from featurestore.monitoring._drift._compute import compute_drift
from featurestore.monitoring._drift._inputs import build_drift_report, reference_profiles
from featurestore.monitoring._drift._report import DriftFeature, DriftReport, FeatureDrift
from featurestore.monitoring._drift._sides import (
    ServingLogSide,
    Side,
    SourceSide,
    TrainingSetSide,
    parse_side,
    to_side,
)
from featurestore.monitoring._drift._statistics import ks_distance, psi, wasserstein

__all__ = [
    "DriftFeature",
    "DriftReport",
    "FeatureDrift",
    "ServingLogSide",
    "Side",
    "SourceSide",
    "TrainingSetSide",
    "build_drift_report",
    "compute_drift",
    "ks_distance",
    "parse_side",
    "psi",
    "reference_profiles",
    "to_side",
    "wasserstein",
]
