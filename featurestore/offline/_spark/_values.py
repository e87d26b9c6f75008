"""Feature values computed inside the Spark executors: ``mapInArrow`` hands each batch of joined
rows (the spine's request columns beside them) to the same Polars code the DuckDB engine runs
(value rules, feature expressions, on-demand views), so no transform is ever re-written in
Spark SQL and the joined rows never gather on the driver.

Each output row holds ``__fs_row``, and per requested feature its value and its status (text).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import polars as pl
import pyarrow as pa

from featurestore._selection import RetrievalPlan
from featurestore.definitions import FeatureView
from featurestore.errors import TransformError
from featurestore.offline._feature_values import feature_columns, on_demand_columns
from featurestore.offline._spark._join import ROW, SparkAggregations, SparkView

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["arrow_type", "status_column", "transform_errors", "value_rows", "value_schema"]

Scans = Sequence[tuple[str, list[str], SparkView]]
AggScans = Sequence[tuple[str, SparkAggregations]]


def status_column(ref: str) -> str:
    return f"{ref}__status"


def arrow_type(dtype: pl.DataType) -> pa.DataType:
    """The Arrow type Spark exchanges a value of ``dtype`` as."""
    simple: dict[type, pa.DataType] = {
        pl.Int64: pa.int64(),
        pl.Int32: pa.int32(),
        pl.Int16: pa.int16(),
        pl.Int8: pa.int8(),
        pl.Float64: pa.float64(),
        pl.Float32: pa.float32(),
        pl.String: pa.string(),
        pl.Boolean: pa.bool_(),
        pl.Date: pa.date32(),
    }
    for kind, arrow in simple.items():
        if isinstance(dtype, kind):
            return arrow
    if isinstance(dtype, pl.Datetime):
        return pa.timestamp("us", tz="UTC" if dtype.time_zone else None)
    if isinstance(dtype, pl.Decimal):
        return pa.decimal128(dtype.precision or 38, dtype.scale)
    raise ValueError(f"no Spark type for {dtype}")


def _values(
    batch: pl.DataFrame,
    plan: RetrievalPlan,
    views: Mapping[str, FeatureView],
    scans: Scans,
    agg_scans: AggScans,
) -> pl.DataFrame:
    """The values and statuses of one batch of joined rows."""
    batch = batch.with_columns(pl.col("^__fs_match_.*$").cast(pl.UInt8))
    values, statuses = feature_columns(batch, plan, scans, agg_scans)
    for odfv in plan.on_demand:
        on_demand_columns(views, odfv, batch, values, statuses)
    return pl.DataFrame(
        [
            batch[ROW],
            *(values[r.ref].alias(r.ref) for r in plan.refs),
            *(statuses[r.ref].cast(pl.String).alias(status_column(r.ref)) for r in plan.refs),
        ]
    )


def value_schema(plan: RetrievalPlan, dtypes: Mapping[str, pl.DataType]) -> pa.Schema:
    """The Arrow schema of :func:`value_rows`: row number, each value, each status."""
    fields = [pa.field(ROW, pa.int64())]
    fields += [pa.field(r.ref, arrow_type(dtypes[r.ref])) for r in plan.refs]
    fields += [pa.field(status_column(r.ref), pa.string()) for r in plan.refs]
    return pa.schema(fields)


@contextmanager
def transform_errors() -> Iterator[None]:
    """Run a Spark action whose executors run the shared value code: an error raised there (a
    feature expression or an on-demand function that failed) becomes a TransformError."""
    from pyspark.errors import PythonException

    try:
        yield
    except PythonException as exc:
        lines = [ln for ln in str(exc).splitlines() if ln.strip()]
        cause = next((ln for ln in reversed(lines) if "Error" in ln), lines[-1] if lines else "")
        raise TransformError(f"computing features on Spark failed: {cause.strip()}") from None


def value_rows(
    joined: DataFrame,
    plan: RetrievalPlan,
    views: Mapping[str, FeatureView],
    scans: Scans,
    agg_scans: AggScans,
    dtypes: Mapping[str, pl.DataType],
) -> DataFrame:
    """``joined`` (``__fs_row``, each view's joined columns, the request columns) turned into
    each requested feature's value (dtype ``dtypes[ref]``) and status, in the executors."""
    schema = value_schema(plan, dtypes)

    def compute(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            frame = pl.from_arrow(batch)
            assert isinstance(frame, pl.DataFrame)
            out = _values(frame, plan, views, scans, agg_scans)
            table = out.to_arrow(compat_level=pl.CompatLevel.oldest()).cast(schema)
            yield from table.to_batches()

    from pyspark.sql.pandas.types import from_arrow_schema

    spark_schema: Any = from_arrow_schema(schema)
    return joined.mapInArrow(compute, spark_schema)
