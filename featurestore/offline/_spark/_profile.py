"""Per-feature profiles of a training set computed in Spark, in the shape of the DuckDB profile
(:mod:`featurestore._profiles`) so that drift reports read either.

One aggregation gives counts, nulls, moments, bounds and each numeric column's percentiles
(Spark's ``percentile_approx``); the CDF, tail and bin counts at those points are then counted
exactly, each partition by the shared profile code taken at them, merged on the driver; one
GROUP BY per categorical or boolean column gives its categories.

Tolerance against the DuckDB profile of the same rows: counts, nulls, bounds and category
counts are equal; mean and std equal to floating rounding; each percentile lies within
``1 / ACCURACY`` of the rank DuckDB interpolates at (DuckDB interpolates between neighbouring
values, Spark returns a value of the column), and the CDF counts are exact at those points.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from functools import reduce
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from featurestore._profiles import (
    MAX_CATEGORIES,
    QUANTILE_POINTS,
    TOP_K,
    FeatureProfile,
    feature_kind,
    merge_profiles,
    profile_frame,
)
from featurestore.definitions._dtypes import dtype_kind, dtype_name

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["ACCURACY", "spark_profiles"]

ACCURACY = 10_000  # percentile_approx's accuracy: rank error at most 1 / ACCURACY


def spark_profiles(
    frame: DataFrame, dtypes: Mapping[str, pl.DataType]
) -> dict[str, FeatureProfile]:
    """The profile of each column of ``dtypes`` in ``frame``."""
    columns = list(dtypes)
    if not columns:
        return {}
    kinds = {c: feature_kind(d) for c, d in dtypes.items()}
    profiles = _moments(frame, dtypes, kinds)
    numeric = [c for c in columns if kinds[c] == "numeric" and profiles[c].non_null]
    if numeric:
        _count_at_points(frame, numeric, {c: profiles[c] for c in numeric}, dtypes)
    for c in columns:
        if kinds[c] in ("categorical", "boolean"):
            _categories(frame, c, profiles[c])
    return profiles


def _value(column: str, dtype: pl.DataType) -> Column:
    """A column with NaN as null, as the DuckDB profile counts it."""
    from pyspark.sql import functions as F

    col = F.col(column)
    if dtype_kind(dtype) == "float":
        return F.when(F.isnan(col), None).otherwise(col)
    return col


def _moments(
    frame: DataFrame, dtypes: Mapping[str, pl.DataType], kinds: Mapping[str, str]
) -> dict[str, FeatureProfile]:
    """Counts, nulls, moments, bounds and percentiles of every column in one aggregation."""
    from pyspark.sql import functions as F

    exprs = [F.count(F.lit(1)).alias("n")]
    for i, (c, dtype) in enumerate(dtypes.items()):
        x = _value(c, dtype)
        exprs.append(F.count(x).alias(f"c{i}"))
        if kinds[c] == "numeric":
            d = x.cast("double")
            exprs += [
                F.avg(d).alias(f"mean{i}"),
                F.stddev_samp(d).alias(f"std{i}"),
                F.min(d).alias(f"min{i}"),
                F.max(d).alias(f"max{i}"),
                F.percentile_approx(d, QUANTILE_POINTS, ACCURACY).alias(f"q{i}"),
            ]
        elif kinds[c] == "temporal":
            exprs += [F.min(x).alias(f"min{i}"), F.max(x).alias(f"max{i}")]
    (got,) = frame.agg(*exprs).toArrow().to_pylist()
    total = int(got["n"])
    profiles = {}
    for i, (c, dtype) in enumerate(dtypes.items()):
        p = FeatureProfile(
            dtype=dtype_name(dtype) if dtype_kind(dtype) != "other" else str(dtype),
            kind=kinds[c],
            count=total,
            null_count=total - int(got[f"c{i}"]),
            min=got.get(f"min{i}"),
            max=got.get(f"max{i}"),
        )
        if kinds[c] == "numeric" and p.non_null:
            p.mean, p.std = got[f"mean{i}"], got[f"std{i}"]
            p.quantiles = [float(q) for q in got[f"q{i}"]]
            p.cdf_points = sorted(set(p.quantiles) | {_below(q) for q in p.quantiles})
            p.tail_points = [p.quantiles[1], p.quantiles[99]]
            p.bin_edges = p.quantiles[10:100:10]
        profiles[c] = p
    return profiles


def _below(q: float) -> float:
    return math.nextafter(q, -math.inf)


def _count_at_points(
    frame: DataFrame,
    columns: list[str],
    own: dict[str, FeatureProfile],
    dtypes: Mapping[str, pl.DataType],
) -> None:
    """CDF counts, tail sums and bin counts of ``own``'s numeric columns at their own points:
    each partition counted by the shared profile code taken at them, the counts merged."""
    at = {c: p.model_copy() for c, p in own.items()}

    def count(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        part: dict[str, FeatureProfile] = {}
        for batch in batches:
            data = pl.from_arrow(batch)
            assert isinstance(data, pl.DataFrame)
            got = profile_frame(data, columns, reference=at)
            part = {c: merge_profiles(part[c], p) if c in part else p for c, p in got.items()}
        if part:
            payload = json.dumps({c: p.model_dump(mode="json") for c, p in part.items()})
            yield pa.RecordBatch.from_pydict({"profiles": [payload]})

    selected = frame.select(*[_value(c, dtypes[c]).cast("double").alias(c) for c in columns])
    rows = selected.mapInArrow(count, "profiles string").toArrow().column("profiles")
    parts = [_parsed(text) for text in rows.to_pylist()]
    for c, p in own.items():
        merged = reduce(merge_profiles, [part[c] for part in parts])
        p.cdf_counts, p.tail_sums = merged.cdf_counts, merged.tail_sums
        p.bin_counts = merged.bin_counts


def _parsed(text: str) -> dict[str, FeatureProfile]:
    raw: dict[str, Any] = json.loads(text)
    return {c: FeatureProfile.model_validate(v) for c, v in raw.items()}


def _categories(frame: DataFrame, column: str, p: FeatureProfile) -> None:
    """Top categories, distinct count and (up to MAX_CATEGORIES) every category's count."""
    from pyspark.sql import functions as F

    value = F.col(column) if p.kind == "boolean" else F.col(column).cast("string")
    counts = (
        frame.where(F.col(column).isNotNull())
        .groupBy(value.alias("value"))
        .agg(F.count(F.lit(1)).alias("n"))
    )
    top = counts.orderBy(F.desc("n"), F.asc("value")).limit(MAX_CATEGORIES + 1)
    rows = [(r["value"], int(r["n"])) for r in top.toArrow().to_pylist()]
    p.top_categories = rows[:TOP_K]
    p.other_count = p.non_null - sum(n for _, n in p.top_categories)
    p.distinct_count = len(rows) if len(rows) <= MAX_CATEGORIES else int(counts.count())
    if len(rows) <= MAX_CATEGORIES:
        p.categories = rows
