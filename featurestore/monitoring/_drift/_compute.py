"""Computing a drift report: check the profiles, profile the current rows at the reference, and
grade each feature with the checks of its kind."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore.definitions._dtypes import dtype_name
from featurestore.definitions._monitoring import DriftConfig
from featurestore.errors import ReportError
from featurestore.monitoring._drift._categorical import boolean, categorical
from featurestore.monitoring._drift._grading import Outcome, Sides, combine
from featurestore.monitoring._drift._null_rate import null_check
from featurestore.monitoring._drift._numeric import numeric
from featurestore.monitoring._drift._report import DriftFeature, DriftReport, FeatureDrift
from featurestore.monitoring._drift._settings import settings

__all__ = ["compute_drift", "kind_outcome"]


def compute_drift(
    reference: Mapping[str, FeatureProfile],
    current: pl.DataFrame | Mapping[str, FeatureProfile],
    features: Sequence[DriftFeature],
    *,
    reference_label: str,
    current_label: str,
) -> DriftReport:
    """Compare each feature's current values with its reference profile.

    ``reference`` and ``current`` are keyed by each feature's ``column``. ``current`` is a
    frame (profiled here, at the reference, in DuckDB) or profiles already taken at the
    reference with ``profile_frame(frame, reference=...)`` (and possibly merged).
    """
    if not features:
        raise ReportError("no features to compare; pass at least one DriftFeature")
    _check_reference(reference, features)
    profiles = _current_profiles(reference, current, features)
    sides = (reference_label, current_label)
    results = [_feature_drift(f, reference[f.column], profiles[f.column], sides) for f in features]
    return DriftReport(
        results,
        reference_label=reference_label,
        current_label=current_label,
        settings=settings(features),
    )


def _check_reference(
    reference: Mapping[str, FeatureProfile], features: Sequence[DriftFeature]
) -> None:
    """Fail unless each feature has a reference profile that a current side can be taken at."""
    missing = [f.ref for f in features if f.column not in reference]
    if missing:
        raise ReportError(
            f"the reference has no profile for {missing}; it profiles: {', '.join(reference)}"
        )
    for f in features:
        ref = reference[f.column]
        if ref.kind == "numeric" and ref.non_null and not ref.cdf_counts:
            raise ReportError(
                f"the reference profile of {f.ref!r} has no CDF counts (it was saved by an "
                "older version); profile the reference rows again with profile_frame()"
            )
        if ref.kind == "numeric" and ref.non_null and not ref.quantiles:
            raise ReportError(
                f"the reference profile of {f.ref!r} has no quantiles of its own (it was taken "
                "at another reference or merged); profile the reference rows themselves"
            )


def _current_profiles(
    reference: Mapping[str, FeatureProfile],
    current: pl.DataFrame | Mapping[str, FeatureProfile],
    features: Sequence[DriftFeature],
) -> Mapping[str, FeatureProfile]:
    """The current side's profiles at the reference: profiled here from a frame, or checked."""
    if isinstance(current, pl.DataFrame):
        absent = [f.ref for f in features if f.column not in current.columns]
        if absent:
            raise ReportError(
                f"the current rows lack columns for {absent}; found columns: "
                f"{', '.join(current.columns)}"
            )
        return profile_frame(current, [f.column for f in features], reference=reference)
    absent = [f.ref for f in features if f.column not in current]
    if absent:
        raise ReportError(f"no current profile for {absent}")
    for f in features:
        ref, cur = reference[f.column], current[f.column]
        if not cur.at_reference or cur.cdf_points != ref.cdf_points or cur.kind != ref.kind:
            raise ReportError(
                f"the current profile of {f.ref!r} was not taken at its reference; use "
                "profile_frame(frame, reference=...)"
            )
    return current


def _temporal(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> Outcome:
    """A temporal feature: its null rate only, with the first and last values shown."""
    stats: dict[str, Any] = {}
    checks = [null_check(ref, cur, cfg, small, stats)]
    stats |= {
        "min_reference": None if ref.min is None else str(ref.min),
        "max_reference": None if ref.max is None else str(ref.max),
        "min_current": None if cur.min is None else str(cur.min),
        "max_current": None if cur.max is None else str(cur.max),
    }
    return checks, stats, None


_BY_KIND = {
    "numeric": numeric,
    "categorical": categorical,
    "boolean": boolean,
    "temporal": _temporal,
}


def kind_outcome(
    ref: FeatureProfile, cur: FeatureProfile, cfg: DriftConfig, small: bool, sides: Sides
) -> Outcome:
    """The checks, statistics and histogram of a feature of ``ref``'s kind."""
    return _BY_KIND[ref.kind](ref, cur, cfg, small, sides)


def _feature_drift(
    feature: DriftFeature, ref: FeatureProfile, cur: FeatureProfile, sides: Sides
) -> FeatureDrift:
    """One feature's verdict, reasons, statistics (non-finite ones as None) and histogram."""
    cfg = feature.config
    small = ref.count < cfg.p_value_below_rows
    checks, stats, histogram = kind_outcome(ref, cur, cfg, small, sides)
    verdict, reasons, score = combine(checks)
    stats = {
        **{
            k: None if isinstance(v, float) and not math.isfinite(v) else v
            for k, v in stats.items()
        },
        "rows_reference": ref.count,
        "rows_current": cur.count,
    }
    dtype = feature.dtype if isinstance(feature.dtype, str) else dtype_name(feature.dtype)
    return FeatureDrift(
        ref=feature.ref,
        owner=feature.owner,
        dtype=dtype,
        kind=ref.kind,
        verdict=verdict,
        reasons=reasons,
        stats=stats,
        histogram=histogram,
        score=score,
    )
