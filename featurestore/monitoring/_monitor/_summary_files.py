"""Where the hourly summaries live: one Parquet file per reference and UTC day, under the data
directory's ``monitoring/summaries/<reference id>/``, holding that day's rows and, in its
metadata, the names of the serving log files they count.

The serving log keeps each day's records in that day's partition, so a day's summary depends
on that partition alone. Summarizing adds the rows of the partition's files not yet counted to
the day's rows and replaces the day file atomically with the new list of counted files: a run
killed midway leaves each day counted before or after, never twice, and a later run resumes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from featurestore._files import write_atomically
from featurestore.monitoring._monitor._summaries import SUMMARY_SCHEMA, sum_summaries
from featurestore.serving._serving_log import log_files

__all__ = ["DaySummaries", "first_hour", "last_hour", "read_summaries", "summarize_new_files"]

_COUNTED_KEY = b"featurestore.counted_log_files"
_DAY_PREFIX = "day="


@dataclass(frozen=True)
class DaySummaries:
    """What one run added: the log files newly counted and the hours they touched."""

    files: int
    records: int
    hours: list[dt.datetime]


def _day_file(directory: Path, day: dt.date) -> Path:
    return directory / f"{_DAY_PREFIX}{day.isoformat()}.parquet"


def _counted(path: Path) -> set[str]:
    if not path.is_file():
        return set()
    raw = (pq.read_schema(path).metadata or {}).get(_COUNTED_KEY, b"[]")
    return set(json.loads(raw))


def _write_day(path: Path, rows: pl.DataFrame, counted: set[str]) -> None:
    """The day's hourly rows as the file's first row group and their sums per feature (the
    whole day, ``hour`` at midnight) as the second, so a window of whole days reads a row per
    feature and day instead of 24."""
    totals = sum_summaries(rows.with_columns(pl.col("hour").dt.truncate("1d")))
    hourly, daily = rows.to_arrow(), totals.select(rows.columns).cast(rows.schema).to_arrow()
    meta = dict(hourly.schema.metadata or {})
    meta[_COUNTED_KEY] = json.dumps(sorted(counted)).encode()
    schema = hourly.schema.with_metadata(meta)

    def write(fh: BinaryIO) -> None:
        with pq.ParquetWriter(fh, schema, compression="zstd") as writer:
            writer.write_table(hourly.cast(schema))
            writer.write_table(daily.cast(schema))

    write_atomically(path, write)


def summarize_new_files(
    log_dir: Path,
    directory: Path,
    summarize: Callable[[pl.DataFrame], pl.DataFrame],
) -> DaySummaries:
    """Count every finished serving log file under ``log_dir`` not yet counted in
    ``directory``: read it, ``summarize`` its records into summary rows, add them to its
    day's rows. Callers hold the monitoring lock (one run at a time)."""
    by_day: dict[dt.date, list[Path]] = {}
    for f in log_files(log_dir):
        day = dt.date.fromisoformat(f.parent.name.partition("=")[2])
        by_day.setdefault(day, []).append(f)
    files = records = 0
    hours: set[dt.datetime] = set()
    for day, paths in sorted(by_day.items()):
        target = _day_file(directory, day)
        counted = _counted(target)
        new = [p for p in paths if p.name not in counted]
        if not new:
            continue
        log = pl.read_parquet([str(p) for p in new], hive_partitioning=False)
        added = summarize(log)
        old = (
            _read_days([str(target)], False, None)
            if target.is_file()
            else pl.DataFrame(schema=SUMMARY_SCHEMA)
        )
        both = pl.concat([old, added.select(old.columns).cast(old.schema)])
        rows = sum_summaries(both).sort("hour", "feature")
        _write_day(target, rows, counted | {p.name for p in new})
        files, records = files + len(new), records + log.height
        hours |= set(added["hour"].to_list())
    return DaySummaries(files, records, sorted(hours))


def _read_days(paths: list[str], whole_days: bool, features: list[str] | None) -> pl.DataFrame:
    """The hourly rows (every row group but the last) or the whole-day rows (the last) of
    each day file, of ``features``."""
    tables = []
    columns = list(SUMMARY_SCHEMA)
    wanted = None if features is None else pa.array(features, pa.string())
    for path in paths:
        with pq.ParquetFile(path) as parquet:
            last = parquet.num_row_groups - 1
            groups = [last] if whole_days else list(range(last))
            table = parquet.read_row_groups(groups, columns=columns)
        if wanted is not None:
            table = table.filter(pc.is_in(table["feature"], value_set=wanted))
        tables.append(table)
    frame = pl.from_arrow(pa.concat_tables(tables, promote_options="permissive"))
    assert isinstance(frame, pl.DataFrame)
    return frame.cast(SUMMARY_SCHEMA)  # type: ignore[arg-type]


def read_summaries(
    directory: Path,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    features: list[str] | None = None,
    whole_days: bool = False,
) -> pl.DataFrame:
    """The summary rows of hours in ``[start, end)`` (UTC), of ``features`` (default: all);
    ``whole_days``: one row per day and feature instead (``hour`` at midnight), for windows
    that start and end at midnight."""
    paths = []
    for path in sorted(directory.glob(f"{_DAY_PREFIX}*.parquet")):
        day = dt.date.fromisoformat(path.stem[len(_DAY_PREFIX) :])
        first = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if start is not None and first + dt.timedelta(days=1) <= start:
            continue
        if end is not None and first >= end:
            continue
        paths.append(str(path))
    if not paths:
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    frame = _read_days(paths, whole_days, features).lazy()
    if start is not None:
        frame = frame.filter(pl.col("hour") >= start)
    if end is not None:
        frame = frame.filter(pl.col("hour") < end)
    return frame.collect()


def _edge_hour(directory: Path, last: bool) -> dt.datetime | None:
    days = sorted(directory.glob(f"{_DAY_PREFIX}*.parquet"))
    if not days:
        return None
    hours = _read_days([str(days[-1 if last else 0])], False, None)["hour"]
    edge: dt.datetime | None = hours.max() if last else hours.min()  # type: ignore[assignment]
    return edge


def first_hour(directory: Path) -> dt.datetime | None:
    """The earliest summarized hour under ``directory``; None before any."""
    return _edge_hour(directory, last=False)


def last_hour(directory: Path) -> dt.datetime | None:
    """The latest summarized hour under ``directory``; None before any."""
    return _edge_hour(directory, last=True)
