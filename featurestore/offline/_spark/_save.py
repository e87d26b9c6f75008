"""A Spark DataFrame saved as a directory of Parquet parts written by the executors, with the
training set's metadata in the directory's ``_common_metadata`` file, through the session's
Hadoop file system (local paths, ``hdfs://``, ``s3a://``...).

The parts go to a hidden directory beside the target, which then takes the target's name: a
job that fails or is killed leaves the previous training set at the path untouched (on
stores whose rename is atomic: local disks and HDFS; object stores copy instead).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore.errors import FeatureStoreError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["save_parts"]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def _location(path: str | Path) -> str:
    """A URI or an absolute local path (Spark resolves relative ones elsewhere)."""
    text = str(path)
    return text if _SCHEME.match(text) else str(Path(text).resolve())


def save_parts(frame: DataFrame, path: str | Path, metadata: dict[bytes, bytes]) -> str:
    """Write ``frame`` in its order as Parquet parts (zstd) under ``path`` with ``metadata`` in
    ``path/_common_metadata``; returns the location written."""
    from pyspark.sql.pandas.types import to_arrow_schema

    target = _location(path)
    spark = frame.sparkSession
    jvm: Any = spark._jvm  # the session's JVM: Hadoop's FileSystem is not exposed otherwise
    conf = spark._jsc.hadoopConfiguration()
    hpath = jvm.org.apache.hadoop.fs.Path
    final = hpath(target)
    fs = final.getFileSystem(conf)
    parent, name = final.getParent(), final.getName()
    staging = hpath(parent, f".{name}.tmp-{uuid.uuid4().hex[:12]}")
    schema = to_arrow_schema(frame.schema, timezone="UTC").with_metadata(metadata)
    try:
        previous = spark.conf.get("spark.sql.parquet.outputTimestampType")
        spark.conf.set("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        try:
            frame.write.option("compression", "zstd").parquet(staging.toString())
        finally:
            spark.conf.set("spark.sql.parquet.outputTimestampType", previous or "INT96")
        _write_bytes(fs, hpath(staging, "_common_metadata"), _schema_file(schema))
        _replace(fs, staging, final, hpath(parent, f".{name}.old-{uuid.uuid4().hex[:12]}"))
    except Exception as exc:
        fs.delete(staging, True)
        if isinstance(exc, FeatureStoreError):
            raise
        raise FeatureStoreError(
            f"saving the training set to {target} on Spark failed: {str(exc).splitlines()[0]}; "
            "nothing was written there (check the path and the cluster's access to it)"
        ) from None
    return target


def _schema_file(schema: pa.Schema) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_metadata(schema, sink)
    return bytes(sink.getvalue().to_pybytes())


def _write_bytes(fs: Any, path: Any, data: bytes) -> None:
    out = fs.create(path, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def _replace(fs: Any, staging: Any, final: Any, aside: Any) -> None:
    """``staging`` takes ``final``'s name; what was there is moved aside first, then removed."""
    existed = fs.exists(final)
    if existed and not fs.rename(final, aside):
        raise FeatureStoreError(f"cannot replace {final.toString()}: moving it aside failed")
    if not fs.rename(staging, final):
        if existed:
            fs.rename(aside, final)
        raise FeatureStoreError(f"cannot move the written parts to {final.toString()}")
    if existed:
        fs.delete(aside, True)
