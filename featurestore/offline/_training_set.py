"""TrainingSet: the result of a point-in-time join, with the metadata a model needs to be
reproduced and monitored: feature references and fingerprints, spine time range, row count,
value statuses and per-feature profiles; and how the offline engine builds one."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, Field

from featurestore._files import write_atomically
from featurestore._profiles import FeatureProfile, profile_frame
from featurestore._selection import RetrievalPlan
from featurestore.errors import FeatureStoreError
from featurestore.offline._engine import OfflineEngine, Progress
from featurestore.offline._event_spine import EventRange, event_spine
from featurestore.offline._spine import SpineLike, is_spark_frame, read_spine
from featurestore.sources._frames import to_pandas

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TrainingEngine",
    "TrainingSet",
    "TrainingSetFeature",
    "TrainingSetMetadata",
    "build_training_set",
    "read_metadata",
    "training_metadata",
]

METADATA_KEY = b"featurestore.training_set"
COMMON_METADATA = "_common_metadata"  # a saved directory's schema and metadata (Parquet's name)


class TrainingSetFeature(BaseModel):
    """One feature column of a training set."""

    ref: str
    column: str
    dtype: str
    fingerprint: str
    statuses: dict[str, int] = Field(default_factory=dict)


class TrainingSetMetadata(BaseModel):
    """What a saved training set records beside its rows."""

    project: str
    created_at: dt.datetime
    row_count: int
    timestamp_column: str
    spine_start: dt.datetime | None
    spine_end: dt.datetime | None
    events: EventRange | None = None  # the range the spine was read from, when none was given
    features: list[TrainingSetFeature]
    profiles: dict[str, FeatureProfile] = Field(default_factory=dict)

    def fingerprints(self) -> dict[str, str]:
        return {f.ref: f.fingerprint for f in self.features}


class TrainingSet:
    """Spine rows plus feature columns; convert with to_polars/to_arrow/to_pandas, or save."""

    def __init__(self, frame: pl.DataFrame, metadata: TrainingSetMetadata) -> None:
        self._frame = frame
        self.metadata = metadata

    def __repr__(self) -> str:
        m = self.metadata
        return f"TrainingSet(rows={m.row_count}, features={[f.ref for f in m.features]})"

    def to_polars(self) -> pl.DataFrame:
        return self._frame

    def to_arrow(self) -> pa.Table:
        return self.to_polars().to_arrow()

    def to_pandas(self) -> pd.DataFrame:
        """A pandas frame with nullable dtypes: integers stay integers, nulls stay missing."""
        return to_pandas(self.to_polars())

    def to_spark(self, spark: Any = None) -> Any:
        """A Spark DataFrame of the rows, on ``spark`` (default: the active session; pyspark
        must be installed: ``pip install 'featurestore[spark]'``)."""
        try:
            from pyspark.sql import SparkSession
        except ImportError:
            raise FeatureStoreError(
                "to_spark() needs pyspark: pip install 'featurestore[spark]'"
            ) from None
        session = spark or SparkSession.getActiveSession()
        if session is None:
            raise FeatureStoreError(
                "no active Spark session; pass one: training_set.to_spark(spark)"
            )
        return session.createDataFrame(self.to_arrow())

    def profile(self) -> dict[str, FeatureProfile]:
        """Per-feature profiles (computed once, then kept in the metadata)."""
        if not self.metadata.profiles:
            self.metadata.profiles = profile_frame(
                self.to_polars(), [f.column for f in self.metadata.features]
            )
        return self.metadata.profiles

    def save(self, path: str | Path) -> Path:
        """Write the frame atomically, in the format of the path's extension: Parquet
        (``.parquet``, ``.pq``; the metadata and profiles go in its footer, so that
        :meth:`load` and the drift report can read them), CSV (``.csv``) or JSON lines
        (``.json``, ``.jsonl``: one object per row); the last two hold the values only."""
        target = Path(path)
        suffix = target.suffix.lower()
        frame = self.to_polars()
        if suffix in (".csv", ".json", ".jsonl", ".ndjson"):
            if suffix == ".csv":
                return write_atomically(target, frame.write_csv)
            return write_atomically(target, frame.write_ndjson)
        if suffix not in (".parquet", ".pq"):
            raise FeatureStoreError(
                f"cannot write a training set to {target.name!r}: name a .parquet, .csv or "
                ".json file (Parquet keeps the metadata and profiles)"
            )
        self.profile()
        table = self.to_arrow()
        meta = dict(table.schema.metadata or {})
        meta[METADATA_KEY] = self.metadata.model_dump_json().encode()
        table = table.replace_schema_metadata(meta)
        return write_atomically(target, lambda fh: pq.write_table(table, fh, compression="zstd"))

    @classmethod
    def load(cls, path: str | Path) -> TrainingSet:
        """Read a training set written by :meth:`save`: a Parquet file, or the directory of
        part files a Spark engine writes."""
        metadata = read_metadata(path)
        table = pq.read_table(path)
        return cls(pl.from_arrow(table.replace_schema_metadata(None)), metadata)  # type: ignore[arg-type]


def read_metadata(path: str | Path) -> TrainingSetMetadata:
    """The metadata a saved training set holds: in a Parquet file's footer, or in the
    ``_common_metadata`` file of a directory of parts."""
    target = Path(path)
    if not target.exists():
        raise FeatureStoreError(f"training set {path} does not exist")
    if target.is_dir():
        target = target / COMMON_METADATA
    try:
        schema = pq.read_schema(target) if target.is_file() else None
    except (OSError, pa.ArrowException) as exc:
        raise FeatureStoreError(
            f"training set {path} cannot be read as Parquet: {str(exc).splitlines()[0]}"
        ) from None
    raw = (schema.metadata or {}).get(METADATA_KEY) if schema is not None else None
    if raw is None:
        raise FeatureStoreError(
            f"{path} has no featurestore metadata; it was not written by TrainingSet.save()"
        )
    return TrainingSetMetadata.model_validate(json.loads(raw))


class TrainingEngine(Protocol):
    """What builds a training set on another engine than DuckDB (the Spark engine): from the
    spine as given (a Spark DataFrame stays on Spark) or read from the sources' events."""

    def training_set(
        self,
        spine: Any,
        plan: RetrievalPlan,
        fingerprints: dict[str, str],
        timestamp_column: str,
        progress: Progress | None,
        events: EventRange | None,
    ) -> TrainingSet: ...


def training_metadata(
    project: str,
    plan: RetrievalPlan,
    fingerprints: dict[str, str],
    dtypes: Mapping[str, pl.DataType],
    statuses: dict[str, dict[str, int]],
    rows: int,
    span: tuple[Any, Any],
    timestamp_column: str,
    events: EventRange | None,
) -> TrainingSetMetadata:
    """The metadata of a training set of ``rows`` rows whose spine spans ``span`` (first and
    last time; None when empty), with each feature's output dtype and status counts."""
    return TrainingSetMetadata(
        project=project,
        created_at=dt.datetime.now(dt.UTC),
        row_count=rows,
        timestamp_column=timestamp_column,
        spine_start=span[0],
        spine_end=span[1],
        events=events,
        features=[
            TrainingSetFeature(
                ref=r.ref,
                column=r.column,
                dtype=str(dtypes[r.column]),
                fingerprint=fingerprints[r.ref],
                statuses=statuses[r.ref],
            )
            for r in plan.refs
        ],
    )


def build_training_set(
    engine: OfflineEngine,
    spine: SpineLike | EventRange,
    plan: RetrievalPlan,
    fingerprints: dict[str, str],
    timestamp_column: str = "event_timestamp",
    progress: Progress | None = None,
    joiner: TrainingEngine | None = None,
) -> TrainingSet:
    """The spine (given, or read from the sources' events in an :class:`EventRange`) with
    the plan's features as of each row's time, and the metadata that reproduces it
    (``fingerprints``: the applied ones, by reference). ``joiner`` builds it instead of
    ``engine`` (which still reads an event spine); a Spark DataFrame spine goes to it as is."""
    events = spine if isinstance(spine, EventRange) else None
    if events is not None:
        if progress:
            progress("reading the spine from the sources' events")
        frame = event_spine(engine, plan, events, timestamp_column)
    elif joiner is not None and is_spark_frame(spine):
        return joiner.training_set(spine, plan, fingerprints, timestamp_column, progress, None)
    else:
        frame = read_spine(spine)
    if joiner is not None:
        return joiner.training_set(frame, plan, fingerprints, timestamp_column, progress, events)
    out, statuses = engine.training_frame(frame, plan, timestamp_column, progress)
    ts = frame[timestamp_column]
    span = (ts.min(), ts.max()) if frame.height else (None, None)
    project = engine.repo.config.project
    metadata = training_metadata(
        project,
        plan,
        fingerprints,
        out.schema,
        statuses,
        out.height,
        span,
        timestamp_column,
        events,
    )
    return TrainingSet(out, metadata)
