"""A training set built on Spark whose rows stay in Spark: ``to_spark()`` joins the values to the
spine there, ``save("x.parquet")`` writes Parquet parts from the executors with the metadata
and a profile computed in Spark, and only ``to_polars()`` (and what is built on it) brings the
rows to the driver, once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from featurestore._profiles import FeatureProfile
from featurestore._selection import RetrievalPlan
from featurestore._value_rules import STATUS_DTYPE
from featurestore.offline._feature_values import training_output
from featurestore.offline._spark._join import ROW
from featurestore.offline._spark._profile import spark_profiles
from featurestore.offline._spark._save import save_parts
from featurestore.offline._spark._spine import SparkSpine
from featurestore.offline._spark._values import status_column, transform_errors
from featurestore.offline._training_set import METADATA_KEY, TrainingSet, TrainingSetMetadata

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["SparkTrainingSet", "status_counts"]


def status_counts(values: DataFrame, plan: RetrievalPlan) -> dict[str, dict[str, int]]:
    """Per feature, how many rows have each status: one aggregation over every status column."""
    from pyspark.sql import functions as F

    pairs = F.explode(
        F.array(
            *[
                F.struct(F.lit(r.ref).alias("ref"), F.col(status_column(r.ref)).alias("status"))
                for r in plan.refs
            ]
        )
    ).alias("p")
    counted = values.select(pairs).groupBy("p.ref", "p.status").count()
    out: dict[str, dict[str, int]] = {r.ref: {} for r in plan.refs}
    for row in counted.toArrow().to_pylist():
        out[row["ref"]][row["status"]] = int(row["count"])
    return out


class SparkTrainingSet(TrainingSet):
    """A :class:`TrainingSet` whose values are a checkpointed Spark DataFrame (``__fs_row``, and per
    feature its value and status) beside the spine, on Spark or on the driver."""

    def __init__(
        self,
        metadata: TrainingSetMetadata,
        spine: SparkSpine,
        values: DataFrame,
        plan: RetrievalPlan,
        dtypes: dict[str, pl.DataType],
        collect: Callable[[DataFrame], pl.DataFrame],
    ) -> None:
        self.metadata = metadata
        self._spine, self._values, self._plan, self._collect = spine, values, plan, collect
        self._dtypes = dtypes  # each feature column's dtype
        self._collected: pl.DataFrame | None = None

    def to_polars(self) -> pl.DataFrame:
        """The rows on the driver, as the DuckDB engine gives them (collected once)."""
        if self._collected is None:
            frame = self._collect(self._values).sort(ROW)
            values = {r.ref: frame[r.ref] for r in self._plan.refs}
            statuses = {
                r.ref: frame[status_column(r.ref)].cast(STATUS_DTYPE) for r in self._plan.refs
            }
            spine = self._spine.collected()
            self._collected, _ = training_output(spine, self._plan, values, statuses, False)
        return self._collected

    def to_spark(self, spark: Any = None) -> Any:
        """The rows as a Spark DataFrame in spine order, computed where they are (``spark`` is
        ignored: the rows already live in this training set's session)."""
        from pyspark.sql import functions as F

        features = [F.col(r.ref).alias(r.column) for r in self._plan.refs]
        joined = self._spine.frame().join(self._values.select(ROW, *features), ROW, "left")
        return joined.orderBy(ROW).drop(ROW)

    def profile(self) -> dict[str, FeatureProfile]:
        """Per-feature profiles computed in Spark (see :mod:`._profile` for the tolerance
        against the DuckDB profile), then kept in the metadata."""
        from pyspark.sql import functions as F

        if not self.metadata.profiles:
            features = self._values.select(*[F.col(r.ref).alias(r.column) for r in self._plan.refs])
            with transform_errors():
                self.metadata.profiles = spark_profiles(features, self._dtypes)
        return self.metadata.profiles

    def save(self, path: str | Path) -> Path:
        """Parquet paths (``.parquet``, ``.pq``) become a directory of parts written by the
        executors, with the metadata and profile in its ``_common_metadata`` (read back by
        :meth:`TrainingSet.load` and the drift report); CSV and JSON lines are written on the
        driver as the DuckDB engine writes them."""
        if Path(str(path)).suffix.lower() not in (".parquet", ".pq"):
            return super().save(path)
        self.profile()
        meta = {METADATA_KEY: self.metadata.model_dump_json().encode()}
        with transform_errors():
            return Path(save_parts(self.to_spark(), path, meta))
