"""Windowed aggregations: a feature computed from the events of one key in ``(t - window, t)``.

``Sum("amount", window=timedelta(days=7), name="spend_7d")`` declares the sum of ``amount``
over the entity's events strictly before the request (or spine) time ``t`` and strictly after
``t - window``, so the event being scored never leaks into its own features. An aggregation
goes in a view's ``aggregations=[...]`` and is referenced like any feature (``view:name``).

Each object describes itself, with no IO: ``kind``, ``column``, ``window`` (``window_us`` in
integer microseconds), ``name``, output ``dtype`` and ``empty_value`` (the value over a window
without events). Rules shared by the offline and online paths:

- Null values in the column are ignored by every kind but ``Count``, which counts events.
- ``Count`` and ``CountDistinct`` give Int64 and 0 over an empty window. ``Sum`` gives 0 over
  an empty window (or when every value is null); its dtype is Float64 unless ``dtype=pl.Int64``
  is given, which needs an integer column. ``Mean`` and ``StdDev`` (the sample standard
  deviation, null below two values) give Float64. ``Min``, ``Max`` and ``Last`` give the
  declared ``dtype`` (default Float64); the column must be castable to it. These six kinds
  cast values to their output dtype before aggregating; ``CountDistinct`` compares the raw
  values.
- ``Last`` is the value of the latest event with a non-null value: ties on event time go to
  the latest created timestamp when the source declares one (a null created time loses), and
  events tied on both go to the greatest value, so the result never depends on row order.
- ``Mean``, ``Min``, ``Max``, ``Last`` and ``StdDev`` are null when there is no value; such a
  null has status ``NOT_FOUND``. Counts and sums are always present (0 is a value). A
  non-finite float result (NaN or infinite values in the column) is ``INVALID``, as for any
  float feature. The view's ttl does not apply to aggregations.
- Offline, ``CountDistinct`` is exact; an online store may approximate it (documented there).
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import polars as pl
from pydantic import Field, PrivateAttr, field_validator, model_validator

from featurestore.definitions._base import Definition, identifier
from featurestore.definitions._dtypes import (
    SUPPORTED,
    DTypeLike,
    dtype_kind,
    dtype_name,
    is_castable,
    parse_dtype,
)
from featurestore.definitions._feature import Feature

__all__ = [
    "AGGREGATIONS",
    "MAX_WINDOW",
    "Aggregation",
    "Count",
    "CountDistinct",
    "Last",
    "Max",
    "Mean",
    "Min",
    "StdDev",
    "Sum",
]

MAX_WINDOW = timedelta(days=36_500)
_ANY = tuple(SUPPORTED.split(", "))
_SCALAR_KINDS = ("int", "float", "bool", "string", "date", "datetime", "decimal", "categorical")


class Aggregation(Definition):
    """An aggregate of a source column over one key's events in ``(t - window, t)``.

    Use a subclass (``Sum``, ``Count``, ...); ``kind`` names it in fingerprints and SQL.
    """

    _positional = ("column",)
    kind: ClassVar[str] = ""
    empty_value: ClassVar[int | None] = None
    default_dtype: ClassVar[str] = "Float64"
    allowed_dtypes: ClassVar[tuple[str, ...]] = ("Float64",)

    column: str | None = None
    window: timedelta
    name: Annotated[str, identifier("aggregation name")]
    if TYPE_CHECKING:
        dtype: pl.DataType  # what the validator makes of any DTypeLike (None: the default)
    else:
        dtype: Any = Field(default=None, validate_default=True)
    description: str = ""
    _feature: Feature = PrivateAttr()

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str | None = None,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...

    @field_validator("column")
    @classmethod
    def _column(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("column must name a source column")
        return v

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, v: Any) -> timedelta:
        if not isinstance(v, timedelta):
            raise ValueError(
                f"window must be a datetime.timedelta, e.g. timedelta(days=7), found {v!r}"
            )
        if v <= timedelta(0):
            raise ValueError(f"window must be positive, found {v}")
        if v > MAX_WINDOW:
            raise ValueError(f"window must be at most {MAX_WINDOW.days} days, found {v}")
        return v

    @field_validator("dtype", mode="before")
    @classmethod
    def _dtype(cls, v: Any) -> pl.DataType:
        dtype = parse_dtype(cls.default_dtype if v is None else v)
        if dtype_name(dtype).split("(")[0] not in cls.allowed_dtypes:
            raise ValueError(
                f"{cls.__name__} gives {' or '.join(cls.allowed_dtypes)}, not {dtype_name(dtype)}"
            )
        return dtype

    @model_validator(mode="after")
    def _needs_column(self) -> Aggregation:
        if type(self) is Aggregation:
            raise ValueError("use a kind of aggregation: Sum, Count, Mean, Min, Max, ...")
        if self.column is None and self.kind != "count":
            kind = type(self).__name__
            raise ValueError(
                f"{kind} needs a source column, e.g. {kind}('amount', "
                f"window=timedelta(days=7), name={self.name!r})"
            )
        return self

    def model_post_init(self, _context: object) -> None:
        self._feature = Feature(self.name, self.dtype, description=self.description)

    @property
    def window_us(self) -> int:
        """The window in integer microseconds: the frame is ``t - window_us < event < t``."""
        return self.window // timedelta(microseconds=1)

    @property
    def feature(self) -> Feature:
        """The output as a plain feature (name, dtype, description; no rules)."""
        return self._feature

    def accepts(self, found: pl.DataType) -> bool:
        """Whether a source column of dtype ``found`` can feed this aggregation."""
        return is_castable(found, self.dtype)

    def expects(self) -> str:
        """What :meth:`accepts` wants, for error messages."""
        return f"{dtype_name(self.dtype)} or a type castable to it"


class Sum(Aggregation):
    """Sum of the non-null values (0 without any); Float64, or Int64 for an integer column."""

    kind: ClassVar[str] = "sum"
    empty_value: ClassVar[int | None] = 0
    allowed_dtypes: ClassVar[tuple[str, ...]] = ("Float64", "Int64")

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class Count(Aggregation):
    """Number of events (null values included); needs no column; Int64."""

    kind: ClassVar[str] = "count"
    empty_value: ClassVar[int | None] = 0
    default_dtype: ClassVar[str] = "Int64"
    allowed_dtypes: ClassVar[tuple[str, ...]] = ("Int64",)

    if TYPE_CHECKING:

        def __init__(
            self,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...

    @field_validator("column")
    @classmethod
    def _no_column(cls, v: str | None) -> None:
        if v is not None:
            raise ValueError(
                f"Count counts events and takes no column (found {v!r}); use "
                f"CountDistinct({v!r}, ...) for distinct values"
            )

    def accepts(self, found: pl.DataType) -> bool:
        return True


class Mean(Aggregation):
    """Mean of the non-null values, null without any; Float64."""

    kind: ClassVar[str] = "mean"

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class Min(Aggregation):
    """Smallest non-null value, null without any; in the declared dtype (default Float64)."""

    kind: ClassVar[str] = "min"
    allowed_dtypes: ClassVar[tuple[str, ...]] = _ANY

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class Max(Aggregation):
    """Largest non-null value, null without any; in the declared dtype (default Float64)."""

    kind: ClassVar[str] = "max"
    allowed_dtypes: ClassVar[tuple[str, ...]] = _ANY

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class Last(Aggregation):
    """Value of the latest event with a non-null value (ties: see the module docstring)."""

    kind: ClassVar[str] = "last"
    allowed_dtypes: ClassVar[tuple[str, ...]] = _ANY

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class StdDev(Aggregation):
    """Sample standard deviation of the non-null values, null below two; Float64."""

    kind: ClassVar[str] = "stddev"

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...


class CountDistinct(Aggregation):
    """Number of distinct non-null values (0 without any); Int64; exact offline."""

    kind: ClassVar[str] = "count_distinct"
    empty_value: ClassVar[int | None] = 0
    default_dtype: ClassVar[str] = "Int64"
    allowed_dtypes: ClassVar[tuple[str, ...]] = ("Int64",)

    if TYPE_CHECKING:

        def __init__(
            self,
            column: str,
            *,
            window: timedelta,
            name: str,
            dtype: DTypeLike | None = None,
            description: str = "",
        ) -> None: ...

    def accepts(self, found: pl.DataType) -> bool:
        return dtype_kind(found) in _SCALAR_KINDS or found == pl.Null  # nulls count nothing

    def expects(self) -> str:
        return "a column of scalar values (numbers, strings, booleans, dates or datetimes)"


AGGREGATIONS: dict[str, type[Aggregation]] = {
    cls.kind: cls for cls in (Sum, Count, Mean, Min, Max, Last, StdDev, CountDistinct)
}
