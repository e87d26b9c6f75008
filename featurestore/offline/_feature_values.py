"""Values and statuses of the features read by a point-in-time join: each view's plain features
and aggregations, from the joined frame's columns, through the shared value rules; then the
on-demand views over them, and the training frame. Every offline engine (DuckDB, Spark) hands
its joined frame to these functions, so the values are computed by one code path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import polars as pl

from featurestore._selection import RetrievalPlan
from featurestore._transforms import feature_expr, run_on_demand
from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, resolve
from featurestore.definitions import Aggregation, FeatureView, OnDemandFeatureView
from featurestore.errors import TransformError

__all__ = [
    "Columns",
    "JoinedAggregations",
    "JoinedView",
    "aggregation_values",
    "feature_columns",
    "on_demand_columns",
    "training_output",
    "view_values",
]

Columns = dict[str, pl.Series]  # by feature reference


class JoinedView(Protocol):
    """Where a view's joined source columns are: ``__fs_match_<alias>`` and
    ``<alias>__<column>`` for each of ``columns``."""

    @property
    def alias(self) -> str: ...
    @property
    def columns(self) -> tuple[str, ...]: ...


class JoinedAggregations(Protocol):
    """Where a view's aggregations are: ``<alias>__<name>`` for each of ``aggregations``."""

    @property
    def alias(self) -> str: ...
    @property
    def aggregations(self) -> tuple[Aggregation, ...]: ...


def aggregation_values(
    joined: pl.DataFrame, scan: JoinedAggregations, view_name: str
) -> pl.DataFrame:
    """Values and statuses of aggregations: a null (no value in the window) is NOT_FOUND,
    a non-finite float INVALID, anything else PRESENT."""
    exprs: list[pl.Expr] = []
    for agg in scan.aggregations:
        raw = pl.col(f"{scan.alias}__{agg.name}")
        match = pl.when(raw.is_null()).then(MATCH_NONE).otherwise(MATCH_FOUND)
        exprs.extend(resolve(agg.feature, raw, match, f"{view_name}:{agg.name}"))
    return joined.select(exprs)


def view_values(
    joined: pl.DataFrame, scan: JoinedView, view: FeatureView, wanted: list[str], prefix: str
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


def feature_columns(
    joined: pl.DataFrame,
    plan: RetrievalPlan,
    scans: Sequence[tuple[str, list[str], JoinedView]],
    agg_scans: Sequence[tuple[str, JoinedAggregations]],
) -> tuple[Columns, Columns]:
    """Values and statuses of every plain feature and aggregation of ``joined`` (one row per
    spine row, in spine order), by reference."""
    outputs = [
        (name, plain, view_values(joined, s, plan.batch_views[name], plain, f"{name}:"))
        for name, plain, s in scans
    ]
    outputs += [
        (name, [a.name for a in s.aggregations], aggregation_values(joined, s, name))
        for name, s in agg_scans
    ]
    values: Columns = {}
    statuses: Columns = {}
    for name, names, out in outputs:
        for fname in names:
            values[f"{name}:{fname}"] = out[f"{name}:{fname}"]
            statuses[f"{name}:{fname}"] = out[f"{name}:{fname}__status"]
    return values, statuses


def on_demand_columns(
    views: Mapping[str, FeatureView],
    odfv: OnDemandFeatureView,
    spine: pl.DataFrame,
    values: Columns,
    statuses: Columns,
) -> None:
    """Run an on-demand view on the spine's request columns and its input features, adding
    its features' values and statuses."""
    inputs = pl.DataFrame(
        [
            *(spine[c].cast(d).alias(c) for c, d in odfv.request_columns.items()),
            *(values[f"{v}:{f}"].alias(f) for v, f in odfv.input_refs(views)),
        ]
    )
    result = run_on_demand(odfv, inputs)
    exprs: list[pl.Expr] = []
    for f in odfv.features:
        exprs.extend(resolve(f, pl.col(f.name), pl.lit(MATCH_FOUND), f"{odfv.name}:{f.name}"))
    out = result.select(exprs)
    for f in odfv.features:
        values[f"{odfv.name}:{f.name}"] = out[f"{odfv.name}:{f.name}"]
        statuses[f"{odfv.name}:{f.name}"] = out[f"{odfv.name}:{f.name}__status"]


def training_output(
    spine: pl.DataFrame,
    plan: RetrievalPlan,
    values: Columns,
    statuses: Columns,
    status_columns: bool,
) -> tuple[pl.DataFrame, dict[str, dict[str, int]]]:
    """The spine with one column per requested feature (and, with ``status_columns``, each
    value's status as ``<column>__status``), and the status counts per feature."""
    columns = [values[r.ref].alias(r.column) for r in plan.refs]
    if status_columns:
        columns += [statuses[r.ref].cast(pl.String).alias(f"{r.column}__status") for r in plan.refs]
    counts = {
        r.ref: {str(k): int(v) for k, v in statuses[r.ref].value_counts().iter_rows()}
        for r in plan.refs
    }
    return spine.hstack(columns), counts
