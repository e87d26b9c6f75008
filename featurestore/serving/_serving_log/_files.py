"""The serving log's files: one atomically written Parquet part at a time, in a partition per
UTC date, and the finished parts of the days a time range covers."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from featurestore._files import write_atomically

__all__ = ["log_files", "partition_of", "write_part"]

_PARTITION_PREFIX = "date="


def partition_of(directory: Path, day: dt.date) -> Path:
    """The partition of the records served on the UTC date ``day``."""
    return directory / f"{_PARTITION_PREFIX}{day.isoformat()}"


def write_part(partition: Path, table: pa.Table) -> Path:
    """Write ``table`` as a new Parquet file in ``partition``, atomically; returns its path.

    The file is written under a hidden temporary name, fsynced, then renamed into place.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = partition / f"part-{stamp}-{uuid.uuid4().hex}.parquet"
    return write_atomically(final, lambda fh: pq.write_table(table, fh, compression="zstd"))


def _partition_dates(directory: Path) -> list[tuple[dt.date, Path]]:
    out: list[tuple[dt.date, Path]] = []
    if not directory.is_dir():
        return out
    for child in directory.iterdir():
        if not child.name.startswith(_PARTITION_PREFIX) or not child.is_dir():
            continue
        try:
            day = dt.date.fromisoformat(child.name[len(_PARTITION_PREFIX) :])
        except ValueError:
            continue
        out.append((day, child))
    return out


def log_files(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Path]:
    """The finished Parquet files of the days that overlap ``[start, end)``, oldest day first
    (hidden and temporary files are left out)."""
    files: list[Path] = []
    for day, path in sorted(_partition_dates(Path(directory))):
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if start is not None and day_start + dt.timedelta(days=1) <= start:
            continue
        if end is not None and day_start >= end:
            continue
        files.extend(
            f
            for f in sorted(path.iterdir())
            if f.suffix == ".parquet" and not f.name.startswith((".", "_")) and f.is_file()
        )
    return files
