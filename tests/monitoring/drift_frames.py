"""Frames and reports for the drift tests: a report of every column of two frames, one feature's
entry, nulls at random, the documented PSI edges, and a mix of every kind of feature."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring import DriftFeature, DriftReport
from featurestore.monitoring._drift import compute_drift


def drift_of(
    reference: pl.DataFrame,
    current: pl.DataFrame,
    configs: dict[str, DriftConfig] | None = None,
) -> DriftReport:
    """The drift report of every column of ``current`` against ``reference``, as features
    ``v:<column>``."""
    features = [
        DriftFeature(
            ref=f"v:{c}",
            column=c,
            owner="risk-team",
            dtype=reference.schema[c],
            config=(configs or {}).get(c, DriftConfig()),
        )
        for c in reference.columns
    ]
    return compute_drift(
        profile_frame(reference),
        current,
        features,
        reference_label="train",
        current_label="serving",
    )


def entry_of(report: DriftReport, column: str) -> dict[str, Any]:
    """The report entry of feature ``v:<column>``."""
    return next(f for f in report.to_dict()["features"] if f["ref"] == f"v:{column}")


def with_nulls(values: np.ndarray, rng: np.random.Generator, share: float) -> list[Any]:
    """``values`` with a ``share`` of them, at random, replaced by None."""
    mask = rng.random(len(values)) < share
    return [None if m else v for v, m in zip(values.tolist(), mask, strict=True)]


def psi_edges(profile: FeatureProfile, bins: int) -> np.ndarray:
    """The documented rule: the reference's quantiles at k/bins to the nearest percentile."""
    return np.unique([profile.quantiles[round(100 * k / bins)] for k in range(1, bins)])


def mixed_frame(rng: np.random.Generator, n: int, drift: float = 0.0) -> pl.DataFrame:
    """Every kind of feature, shifted by ``drift`` (0: none)."""
    return pl.DataFrame(
        {
            "amount": rng.lognormal(3 + drift, 1, n),
            "age": rng.integers(18, 80 + int(40 * drift), n),
            "score": with_nulls(rng.normal(drift, 1, n), rng, 0.02),
            "country": rng.choice(
                ["FR", "US", "DE", "IT"], n, p=[0.4 - drift / 2, 0.3, 0.2, 0.1 + drift / 2]
            ),
            "active": rng.random(n) < 0.5 + drift / 2,
        }
    )
