"""On-demand views in row mode: the user's function of one row (a dict in, a dict out), run
row by row on a training frame and on the rows of a request, with its outputs typed by one
rule on both paths, so both give the same values or the same error.

A value fits a dtype when it is None or of the dtype's Python type: an ``int`` (not a
``bool``) within the integer type's range, an ``int`` or ``float`` for a float (as a float),
a ``bool``, a ``str``, a ``date`` (not a ``datetime``), or a ``datetime`` that is naive for a
naive dtype and aware for an aware one (converted to the dtype's zone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl

from featurestore.definitions import OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name
from featurestore.errors import TransformError

__all__ = ["conform", "row_outputs", "rows_frame"]

Row = Mapping[str, Any]

_INT_BOUNDS = {
    "Int8": (-(2**7), 2**7 - 1),
    "Int16": (-(2**15), 2**15 - 1),
    "Int32": (-(2**31), 2**31 - 1),
    "Int64": (-(2**63), 2**63 - 1),
    "UInt8": (0, 2**8 - 1),
    "UInt16": (0, 2**16 - 1),
    "UInt32": (0, 2**32 - 1),
    "UInt64": (0, 2**64 - 1),
}


def _fitter(dtype: pl.DataType) -> Callable[[Any], Any]:
    """The function that returns a non-null value as the dtype holds it, or raises ValueError
    naming what was expected."""
    kind = dtype_kind(dtype)
    if kind == "int":
        low, high = _INT_BOUNDS[dtype_name(dtype)]

        def fit_int(v: Any) -> Any:
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError("an int")
            if not low <= v <= high:
                raise ValueError(f"an int from {low} to {high}")
            return v

        return fit_int
    if kind == "float":

        def fit_float(v: Any) -> Any:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise ValueError("a float (or an int)")
            return float(v)

        return fit_float
    if kind == "datetime":
        return _datetime_fitter(getattr(dtype, "time_zone", None))
    python_type, wanted = {
        "bool": (bool, "a bool"),
        "string": (str, "a str"),
        "date": (dt.date, "a date"),
    }[kind]

    def fit(v: Any) -> Any:
        if not isinstance(v, python_type) or (kind == "date" and isinstance(v, dt.datetime)):
            raise ValueError(wanted)
        return v

    return fit


def _datetime_fitter(zone: str | None) -> Callable[[Any], Any]:
    target = ZoneInfo(zone) if zone else None

    def fit(v: Any) -> Any:
        if not isinstance(v, dt.datetime):
            raise ValueError("a datetime")
        if (v.tzinfo is None) != (target is None):
            raise ValueError("a naive datetime" if target is None else "an aware datetime")
        return v.astimezone(target) if target is not None else v

    return fit


def conform(dtype: pl.DataType, values: Sequence[Any], label: str) -> list[Any]:
    """``values`` as the dtype holds them (see the module docstring); a value that does not
    fit raises TransformError naming ``label`` (what the values are) and the row."""
    fit = _fitter(dtype)
    out: list[Any] = []
    for i, v in enumerate(values):
        if v is None:
            out.append(None)
            continue
        try:
            out.append(fit(v))
        except ValueError as exc:
            raise TransformError(
                f"{label} is {dtype_name(dtype)}, so it takes {exc} or None; found {v!r:.80} "
                f"({type(v).__name__}) on row {i}"
            ) from None
    return out


def row_outputs(odfv: OnDemandFeatureView, rows: Sequence[Row]) -> dict[str, list[Any]]:
    """Each declared output's values, one per row, from the view's function called on each
    row, typed by :func:`conform`; TransformError when the function raises, returns something
    other than a dict, lacks an output, or returns a value that does not fit."""
    udf, name = odfv.udf, odfv.name
    columns: dict[str, list[Any]] = {f.name: [] for f in odfv.features}
    for row in rows:
        try:
            out = udf(row)
        except Exception as exc:
            raise TransformError(
                f"on-demand view {name!r}: the function raised {type(exc).__name__}: {exc} "
                f"(on the row {dict(row)!r:.200})"
            ) from exc
        if not isinstance(out, Mapping):
            raise TransformError(
                f"on-demand view {name!r} (mode='rows'): the function must return a dict of "
                f"its outputs for each row, found {type(out).__name__}"
            )
        for column, values in columns.items():
            if column not in out:
                raise TransformError(
                    f"on-demand view {name!r}: the function's result lacks declared output "
                    f"{column!r}; expected {odfv.feature_names}, found {sorted(out)}"
                )
            values.append(out[column])
    return {
        f.name: conform(f.dtype, columns[f.name], f"on-demand view {name!r}: output {f.name!r}")
        for f in odfv.features
    }


def rows_frame(odfv: OnDemandFeatureView, inputs: pl.DataFrame) -> pl.DataFrame:
    """The view's outputs over every row of ``inputs`` (a training frame's input columns), as a
    frame of the declared dtypes."""
    outputs = row_outputs(odfv, inputs.to_dicts())
    return pl.DataFrame(
        [pl.Series(f.name, outputs[f.name], dtype=f.dtype) for f in odfv.features],
        height=inputs.height,
    )
