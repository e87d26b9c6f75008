"""A feature: a typed value with declared bounds, allowed values, nullability and default."""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
from pydantic import field_validator, model_validator

from featurestore.definitions._base import Definition, identifier
from featurestore.definitions._dtypes import (
    PYTHON_TYPES,
    Bound,
    DTypeLike,
    Scalar,
    dtype_kind,
    dtype_name,
    parse_dtype,
)
from featurestore.definitions._monitoring import DriftConfig, SkewConfig


def _row_wise(expr: pl.Expr) -> bool:
    """Whether every node of the expression tree works row by row (no nested aggregation)."""
    return expr.meta.is_row_separable() and all(_row_wise(e) for e in expr.meta.pop())


def expression_plan(expr: pl.Expr) -> Any:
    """The expression's full serialized plan as JSON data, without a top-level alias.

    Raises ValueError when Polars cannot serialize it (an expression calling a Python
    function through ``map_elements`` or ``map_batches``).
    """
    try:
        text = expr.meta.serialize(format="json")
    except Exception as exc:
        raise ValueError(
            f"expression {expr} cannot be serialized, so its definition cannot be "
            f"fingerprinted ({type(exc).__name__}: {str(exc).splitlines()[0]}); move Python "
            "functions into an on-demand view, whose code is fingerprinted"
        ) from None
    plan = json.loads(text)
    while isinstance(plan, dict) and list(plan) == ["Alias"]:
        plan = plan["Alias"][0]
    return plan


class Feature(Definition):
    """A source column (``expr=None``) or a row-wise Polars expression over source columns."""

    _positional = ("name", "dtype")

    name: Annotated[str, identifier("feature name")]
    if TYPE_CHECKING:
        dtype: pl.DataType  # what the validator makes of any DTypeLike
    else:
        dtype: Any
    expr: pl.Expr | None = None
    ge: Any = None
    le: Any = None
    allowed: tuple[Any, ...] | None = None
    nullable: bool = True
    default: Any = None
    description: str = ""
    drift: DriftConfig | None = None
    skew: SkewConfig | None = None

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            dtype: DTypeLike,
            *,
            expr: pl.Expr | None = None,
            ge: Bound | None = None,
            le: Bound | None = None,
            allowed: Sequence[Scalar] | None = None,
            nullable: bool = True,
            default: Scalar | None = None,
            description: str = "",
            drift: DriftConfig | None = None,
            skew: SkewConfig | None = None,
        ) -> None: ...

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, v: Any) -> pl.DataType:
        return parse_dtype(v)

    @field_validator("expr")
    @classmethod
    def _expr(cls, v: pl.Expr | None) -> pl.Expr | None:
        if v is None:
            return v
        try:
            row_wise = _row_wise(v) and v.meta.is_length_preserving()
        except Exception as exc:
            raise ValueError(
                f"cannot check that expression {v} is row-wise ({type(exc).__name__}: {exc}); "
                "use built-in Polars expressions, or an on-demand view for Python functions"
            ) from None
        if not row_wise:
            raise ValueError(
                f"expression {v} is not row-wise (it aggregates, shifts or windows over rows), "
                "so it would compute different values on a training frame and on one request; "
                "use a row-wise expression, or an aggregation feature"
            )
        if not v.meta.root_names():
            raise ValueError(f"expression {v} reads no source column")
        expression_plan(v)  # fingerprinted by its serialized plan: it must serialize
        return v

    @model_validator(mode="after")
    def _constraints(self) -> Feature:
        kind = dtype_kind(self.dtype)
        if (self.ge is not None or self.le is not None) and kind not in (
            "int",
            "float",
            "date",
            "datetime",
        ):
            raise ValueError(
                f"ge/le need a numeric or temporal dtype, not {dtype_name(self.dtype)}"
            )
        for bound in ("ge", "le"):
            if getattr(self, bound) is not None:
                self._check_value(getattr(self, bound), bound)
        if self.ge is not None and self.le is not None and self.ge > self.le:
            raise ValueError(f"ge ({self.ge}) is greater than le ({self.le})")
        if self.allowed is not None:
            if not self.allowed:
                raise ValueError("allowed must list at least one value")
            for value in self.allowed:
                self._check_value(value, "allowed value")
        if self.default is not None:
            self._check_value(self.default, "default")
            if not self.is_valid(self.default):
                raise ValueError(f"default {self.default!r} violates the feature's own bounds")
        return self

    def _check_value(self, value: Any, what: str) -> None:
        kind = dtype_kind(self.dtype)
        types = (int, float) if kind == "int" and what in ("ge", "le") else PYTHON_TYPES[kind]
        wrong = not isinstance(value, types)
        wrong |= isinstance(value, bool) and bool not in types
        wrong |= kind == "date" and isinstance(value, dt.datetime)
        if wrong:
            raise ValueError(
                f"{what} {value!r} is a {type(value).__name__}, "
                f"which does not fit dtype {dtype_name(self.dtype)}"
            )
        zone = self.dtype.time_zone if isinstance(self.dtype, pl.Datetime) else None
        if isinstance(value, dt.datetime) and (value.tzinfo is None) != (zone is None):
            fix = "a naive datetime (meaning UTC)" if zone is None else "a timezone-aware datetime"
            raise ValueError(
                f"{what} {value!r} is {'naive' if value.tzinfo is None else 'timezone-aware'}, "
                f"which does not fit dtype {dtype_name(self.dtype)}: pass {fix}"
            )
        if isinstance(value, float) and math.isnan(value) and what in ("ge", "le"):
            raise ValueError(f"{what} is NaN, which no value is compared to")
        if what in ("default", "allowed value"):
            try:  # served and validated as a literal of the dtype: it must be one
                pl.select(pl.lit(value, dtype=self.dtype))
            except Exception as exc:
                first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ValueError(
                    f"{what} {value!r} is no {dtype_name(self.dtype)} value ({first})"
                ) from None

    def is_valid(self, value: Any) -> bool:
        """Whether one non-null value meets the bounds and allowed values."""
        if self.ge is not None and value < self.ge:
            return False
        if self.le is not None and value > self.le:
            return False
        return self.allowed is None or value in self.allowed

    @property
    def plan(self) -> Any:
        """The expression's serialized plan (see :func:`expression_plan`), None for a column."""
        return expression_plan(self.expr) if self.expr is not None else None

    @property
    def source_columns(self) -> list[str]:
        """Source columns this feature reads."""
        return self.expr.meta.root_names() if self.expr is not None else [self.name]

    def __eq__(self, other: object) -> bool:  # pl.Expr's == builds an expression
        if not isinstance(other, Feature):
            return NotImplemented
        return (
            self.name == other.name
            and self.plan == other.plan
            and all(
                getattr(self, f) == getattr(other, f)
                for f in (
                    "dtype",
                    "ge",
                    "le",
                    "allowed",
                    "nullable",
                    "default",
                    "description",
                    "drift",
                    "skew",
                )
            )
        )

    __hash__ = Definition.__hash__
