"""Values and statuses of the features read by a point-in-time join: each view's plain features
and aggregations, from the joined frame's columns, through the shared value rules."""

from __future__ import annotations

import polars as pl

from featurestore._transforms import feature_expr
from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, resolve
from featurestore.definitions import FeatureView
from featurestore.errors import TransformError
from featurestore.offline._point_in_time import AggregationScan, ViewScan

__all__ = ["aggregation_values", "view_values"]


def aggregation_values(joined: pl.DataFrame, scan: AggregationScan, view_name: str) -> pl.DataFrame:
    """Values and statuses of aggregations: a null (no value in the window) is NOT_FOUND,
    a non-finite float INVALID, anything else PRESENT."""
    exprs: list[pl.Expr] = []
    for agg in scan.aggregations:
        raw = pl.col(f"{scan.alias}__{agg.name}")
        match = pl.when(raw.is_null()).then(MATCH_NONE).otherwise(MATCH_FOUND)
        exprs.extend(resolve(agg.feature, raw, match, f"{view_name}:{agg.name}"))
    return joined.select(exprs)


def view_values(
    joined: pl.DataFrame, scan: ViewScan, view: FeatureView, wanted: list[str], prefix: str
) -> pl.DataFrame:
    """Feature values and statuses of one view from its joined source columns."""
    frame = joined.select(
        pl.col(f"__fs_match_{scan.alias}").alias("__fs_match"),
        *(pl.col(f"{scan.alias}__{c}").alias(c) for c in scan.columns),
    )
    exprs = {
        fname: resolve(
            view.feature(fname),
            feature_expr(view, view.feature(fname)),
            pl.col("__fs_match"),
            prefix + fname,
            frame.schema[fname] if view.feature(fname).expr is None else None,
        )
        for fname in wanted
    }
    try:
        return frame.select([e for pair in exprs.values() for e in pair])
    except pl.exceptions.PolarsError as exc:
        failing = []  # find the culprits only on this error path
        for fname, pair in exprs.items():
            try:
                frame.select(pair)
            except pl.exceptions.PolarsError:
                failing.append(f"'{view.name}:{fname}'")
        reason = str(exc).splitlines()[0]
        raise TransformError(
            f"feature(s) {', '.join(failing) or wanted} failed on the source data of view "
            f"{view.name!r}: {type(exc).__name__}: {reason}"
        ) from exc
