"""Per-feature monitoring settings: drift thresholds and skew tolerances.

They tune the reports, not the values, so they never change a feature's fingerprint. A
feature without its own settings uses these defaults (documented in every report).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["DriftConfig", "SkewConfig"]


class DriftConfig(BaseModel):
    """Thresholds of the drift report for one feature; distances decide, not p-values."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    psi_warn: float = Field(default=0.1, ge=0)
    psi_flag: float = Field(default=0.25, ge=0)
    ks_flag: float = Field(default=0.1, gt=0, le=1)
    linf_warn: float = Field(default=0.05, ge=0, le=1)
    linf_flag: float = Field(default=0.1, gt=0, le=1)
    unseen_flag: float = Field(default=0.01, ge=0, le=1)
    true_rate_warn: float = Field(default=0.05, ge=0, le=1)
    true_rate_flag: float = Field(default=0.1, gt=0, le=1)
    null_rate_warn: float = Field(default=0.02, ge=0, le=1)
    null_rate_flag: float = Field(default=0.05, gt=0, le=1)
    min_rows_psi: int = Field(default=500, ge=1)
    min_rows_ks: int = Field(default=1000, ge=1)
    p_value_below_rows: int = Field(default=1000, ge=0)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    bins: int = Field(default=10, ge=2, le=100)
    # continuous monitoring with a calibrated threshold: a window is flagged when its statistic
    # exceeds both the noise level (this quantile of the statistic between the reference and a
    # window of the same size drawn from the reference's own distribution) and the floor
    calibration_quantile: float = Field(default=0.999, gt=0.5, lt=1)
    psi_floor: float = Field(default=0.005, ge=0)
    ks_floor: float = Field(default=0.02, ge=0, le=1)
    linf_floor: float = Field(default=0.01, ge=0, le=1)
    true_rate_floor: float = Field(default=0.01, ge=0, le=1)
    null_rate_floor: float = Field(default=0.005, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        for warn, flag in (
            ("psi_warn", "psi_flag"),
            ("linf_warn", "linf_flag"),
            ("true_rate_warn", "true_rate_flag"),
            ("null_rate_warn", "null_rate_flag"),
        ):
            if getattr(self, warn) > getattr(self, flag):
                raise ValueError(f"{warn} ({getattr(self, warn)}) exceeds {flag}")
        return self


class SkewConfig(BaseModel):
    """How the skew report compares one feature's served and offline values.

    Floats match when ``|served - offline| <= abs_tol + rel_tol * |offline|``; a feature is
    flagged when (mismatches + null mismatches) / rows compared exceeds ``max_mismatch_rate``,
    and a pass is only claimed with at least ``min_rows`` rows compared.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    abs_tol: float = Field(default=1e-9, ge=0)
    rel_tol: float = Field(default=1e-6, ge=0)
    max_mismatch_rate: float = Field(default=0.001, ge=0, le=1)
    min_rows: int = Field(default=3000, ge=1)
