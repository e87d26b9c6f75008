"""Per-value status: declared dtype, bounds, allowed values, nullability and defaults.

Written as Polars expressions so that one rule set runs on a million-row training frame and
on a one-row request alike. A value that breaks a rule is never passed on: it is replaced
by the feature's default (or null) and marked ``INVALID``. NaN and infinite floats count as
invalid: they cannot be stored or served faithfully, so neither path passes them on.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

import polars as pl

from featurestore.definitions import Feature
from featurestore.definitions._dtypes import dtype_kind

__all__ = [
    "MATCH_FOUND",
    "MATCH_NONE",
    "MATCH_STALE",
    "FeatureStatus",
    "has_rules",
    "resolve",
    "resolve_value",
]

# How a view's row was found for a key and time: the "match" code the engines emit.
MATCH_NONE, MATCH_STALE, MATCH_FOUND = 0, 1, 2


class FeatureStatus(StrEnum):
    """What happened to one served or joined value."""

    PRESENT = "PRESENT"  # a valid value (possibly a legitimate null)
    NOT_FOUND = "NOT_FOUND"  # no row for the key at or before the time
    STALE = "STALE"  # the latest row is older than the view's ttl; value withheld
    DEFAULTED = "DEFAULTED"  # no value, so the declared default was used
    INVALID = "INVALID"  # the value broke a declared rule and was replaced


STATUS_DTYPE = pl.Enum([s.value for s in FeatureStatus])


def has_rules(feature: Feature) -> bool:
    """Whether any declared rule or default can change a valid-typed value or its status."""
    return (
        feature.ge is not None
        or feature.le is not None
        or feature.allowed is not None
        or not feature.nullable
        or feature.default is not None
    )


def _rules_ok(feature: Feature, value: pl.Expr) -> pl.Expr:
    ok = value.is_finite() if dtype_kind(feature.dtype) == "float" else pl.lit(True)
    if feature.ge is not None:
        ok = ok & (value >= pl.lit(feature.ge))
    if feature.le is not None:
        ok = ok & (value <= pl.lit(feature.le))
    if feature.allowed is not None:
        ok = ok & value.is_in(pl.lit(list(feature.allowed), dtype=pl.List(feature.dtype)).first())
    return ok


def resolve(
    feature: Feature,
    raw: pl.Expr,
    match: pl.Expr,
    name: str,
    raw_dtype: pl.DataType | None = None,
) -> tuple[pl.Expr, pl.Expr]:
    """Final value and status expressions for one feature.

    ``raw`` is the computed value before casting; ``match`` is the view's match code. When
    ``raw_dtype`` (the raw value's dtype, if known) is the feature's own and no rule or default
    is declared, no cast can fail and no rule can break: the cheaper :func:`_resolve_plain`
    gives the same result.
    """
    if raw_dtype == feature.dtype and not has_rules(feature):
        return _resolve_plain(feature, raw, match, name)
    value = raw.cast(feature.dtype, strict=False)
    default = pl.lit(feature.default, dtype=feature.dtype)
    cast_failed = raw.is_not_null() & value.is_null()
    broken = cast_failed | (value.is_not_null() & ~_rules_ok(feature, value).fill_null(False))
    if not feature.nullable and feature.default is None:
        broken = broken | value.is_null()
    has_default = feature.default is not None
    found = match == MATCH_FOUND
    status = (
        pl.when(match == MATCH_NONE)
        .then(pl.lit("DEFAULTED" if has_default else "NOT_FOUND"))
        .when(match == MATCH_STALE)
        .then(pl.lit("STALE"))
        .when(broken)
        .then(pl.lit("INVALID"))
        .when(value.is_null() & pl.lit(has_default))
        .then(pl.lit("DEFAULTED"))
        .otherwise(pl.lit("PRESENT"))
        .cast(STATUS_DTYPE)
    )
    final = pl.when(found & ~broken & value.is_not_null()).then(value).otherwise(default)
    return final.alias(name), status.alias(f"{name}__status")


def _resolve_plain(
    feature: Feature, raw: pl.Expr, match: pl.Expr, name: str
) -> tuple[pl.Expr, pl.Expr]:
    """:func:`resolve` for a value already of the feature's dtype, without rules or default:
    the status follows the match code, but for a non-finite float (INVALID, withheld)."""
    status = match.replace_strict(_PLAIN_STATUS, default="NOT_FOUND", return_dtype=STATUS_DTYPE)
    found = match == MATCH_FOUND
    value: pl.Expr = pl.when(found).then(raw)
    if dtype_kind(feature.dtype) == "float":
        broken = found & raw.is_not_null() & ~raw.is_finite()
        value = pl.when(broken).then(None).otherwise(value)
        status = pl.when(broken).then(pl.lit("INVALID", dtype=STATUS_DTYPE)).otherwise(status)
    return value.alias(name), status.alias(f"{name}__status")


_PLAIN_STATUS = {MATCH_NONE: "NOT_FOUND", MATCH_STALE: "STALE", MATCH_FOUND: "PRESENT"}


def resolve_value(feature: Feature, value: Any) -> tuple[Any, FeatureStatus]:
    """The final value and status of one computed value of the feature's dtype: the Python
    twin of :func:`resolve` for a found row, for the paths that build no frame (an on-demand
    view in row mode at request time)."""
    broken = value is not None and (
        (isinstance(value, float) and not math.isfinite(value)) or not feature.is_valid(value)
    )
    if value is None and not feature.nullable and feature.default is None:
        broken = True
    if broken:
        return feature.default, FeatureStatus.INVALID
    if value is None and feature.default is not None:
        return feature.default, FeatureStatus.DEFAULTED
    return value, FeatureStatus.PRESENT
