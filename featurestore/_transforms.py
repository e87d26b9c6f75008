"""The only place user code runs: feature expressions and on-demand functions on Polars frames.

The offline engine and online retrieval both call these functions, so a feature is computed
by the same code on a training frame and on a request row.
"""

from __future__ import annotations

import polars as pl

from featurestore._row_mode import rows_frame
from featurestore.definitions import Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_name
from featurestore.errors import TransformError

__all__ = ["expression_dtype", "feature_expr", "run_on_demand"]


def feature_expr(view: FeatureView, feature: Feature) -> pl.Expr:
    """The raw (uncast) value of a batch feature from its view's source columns."""
    return feature.expr if feature.expr is not None else pl.col(feature.name)


def expression_dtype(expr: pl.Expr, schema: dict[str, pl.DataType]) -> pl.DataType:
    """The dtype ``expr`` yields on a frame with ``schema``; raises if it cannot run there.

    Runs on an empty frame rather than only resolving the schema: some type errors (e.g. a
    datetime method on a string column) surface only when the expression executes.
    """
    return pl.DataFrame(schema=schema).select(expr).dtypes[0]


def _as_frame(odfv: OnDemandFeatureView, inputs: pl.DataFrame, result: object) -> pl.DataFrame:
    if isinstance(result, pl.Expr):
        result = [result]
    if isinstance(result, dict):
        result = [e.alias(k) for k, e in result.items()]
    if isinstance(result, list) and all(isinstance(e, pl.Expr) for e in result):
        return inputs.select(result)
    if isinstance(result, pl.LazyFrame):
        result = result.collect()
    if not isinstance(result, pl.DataFrame):
        raise TransformError(
            f"on-demand view {odfv.name!r}: the function must return a Polars DataFrame "
            f"(or a list of expressions), found {type(result).__name__}"
        )
    return result


def run_on_demand(odfv: OnDemandFeatureView, inputs: pl.DataFrame) -> pl.DataFrame:
    """Run the view's function on ``inputs`` and check the declared columns and dtypes.

    The result holds every declared column (extra columns the function returned are left in;
    callers read the declared ones by name).
    """
    try:
        if odfv.mode == "rows":
            out = rows_frame(odfv, inputs)
        else:
            out = _as_frame(odfv, inputs, odfv.udf(inputs))
    except TransformError:
        raise
    except Exception as exc:
        raise TransformError(
            f"on-demand view {odfv.name!r}: the function raised {type(exc).__name__}: {exc}"
        ) from exc
    if out.height != inputs.height:
        raise TransformError(
            f"on-demand view {odfv.name!r}: the function returned {out.height} rows for "
            f"{inputs.height} input rows; it must return one row per input row"
        )
    schema = dict(zip(out.columns, out.dtypes, strict=True))  # cheaper than out.schema
    missing = [f.name for f in odfv.features if f.name not in schema]
    if missing:
        raise TransformError(
            f"on-demand view {odfv.name!r}: the function's result lacks declared column(s) "
            f"{missing}; expected {odfv.feature_names}, found {out.columns}"
        )
    wrong = [
        f"{f.name}: expected {dtype_name(f.dtype)}, found {schema[f.name]}"
        for f in odfv.features
        if schema[f.name] != f.dtype and schema[f.name] != pl.Null
    ]
    if wrong:
        raise TransformError(
            f"on-demand view {odfv.name!r} returned the wrong dtype(s): {'; '.join(wrong)}. "
            "Cast in the function, e.g. .cast(pl.Float64), or change the schema."
        )
    return out
