"""Errors met while DuckDB reads a source, as typed :class:`SourceError` s that name the source,
the file, the line and column when DuckDB says them, and what to do.

DuckDB guesses a CSV file's column types from its first rows, so a bad value further down only
fails the query that reaches it (a training set, a materialization), long after ``apply``
passed; and a CSV whose rows have different numbers of fields is read without its header. Both
must reach the user as a clear error, never a traceback.
"""

from __future__ import annotations

import csv
import fnmatch
import glob
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import polars as pl

from featurestore.definitions import BatchSource, FileSource
from featurestore.errors import SourceError

__all__ = ["csv_header_problem", "reading", "source_error"]

_FILE = re.compile(r"^\s*file = (.+?)\s*$", re.M)
_LINE = re.compile(r"CSV Error on Line: (\d+)")
_ORIGINAL = re.compile(r"Original Line: (.*)")
_COLUMN = re.compile(r'(?:converting|in) column "([^"]+)"')
_VALUE = re.compile(r'Could not convert string "([^"]*)" to \'([^\']+)\'')
_GENERATED = re.compile(r"column\d+")
_SHOWN = 120  # characters of a line quoted in a message


def _glob_of(source: BatchSource, root: Path) -> str | None:
    """A pattern of every file the source reads; None for a table without files."""
    if source.path is None:
        return None
    path = Path(source.path).expanduser()
    full = path if path.is_absolute() else root / path
    if source.path.endswith(("/", "\\")) or full.is_dir():
        return str(full / "**" / "*")
    return str(full)


def _culprit(sources: list[BatchSource], root: Path, file: str | None) -> BatchSource | None:
    """The source whose files include ``file`` (as DuckDB names it), if one does."""
    if len(sources) == 1:
        return sources[0]
    if file is None:
        return None
    resolved = str((root / file).resolve()) if not Path(file).is_absolute() else file
    for source in sources:
        pattern = _glob_of(source, root)
        if pattern is None:
            continue
        if fnmatch.fnmatch(resolved, pattern) or fnmatch.fnmatch(file, pattern):
            return source
    return None


def source_error(sources: Iterable[BatchSource], root: Path, exc: duckdb.Error) -> SourceError:
    """``exc``, raised while reading ``sources``, as a SourceError with what DuckDB says of the
    file, line, column and value, and the fix."""
    listed = list(sources)
    text = str(exc)
    file = m.group(1) if (m := _FILE.search(text)) else None
    source = _culprit(listed, root, file)
    who = (
        f"source {source.name!r}"
        if source is not None
        else f"one of the sources {', '.join(repr(s.name) for s in listed)}"
    )
    where = (
        f" ({file})"
        if file
        else (f" ({source.path})" if source is not None and source.path else "")
    )
    line = m.group(1) if (m := _LINE.search(text)) else None
    if line is not None:
        original = m.group(1) if (m := _ORIGINAL.search(text)) else ""
        column = m.group(1) if (m := _COLUMN.search(text)) else None
        value = _VALUE.search(text)
        what = f"line {int(line):,}"
        if original:
            what += f" ({original[:_SHOWN]!r})"
        if column is not None and value is not None:
            what += (
                f": column {column!r} holds {value.group(1)!r}, which is not a "
                f"{value.group(2)} as its first rows made it"
            )
        return SourceError(
            f"{who} cannot be read{where}: {what}. Correct or remove that line, or store the "
            "source as Parquet, whose column types are part of the file; 'featurestore "
            "validate' reads the whole source and lists values that break the declarations"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return SourceError(
        f"{who} cannot be read{where}: {first}. Check that the files are complete and of the "
        "declared format (a file being written, a truncated download or a different format "
        "fails this way)"
    )


@contextmanager
def reading(sources: Iterable[BatchSource], root: Path) -> Iterator[None]:
    """Turn any DuckDB error raised inside the block into a SourceError naming which of
    ``sources`` it read, the file, line and column."""
    listed = list(sources)
    try:
        yield
    except duckdb.Error as exc:
        raise source_error(listed, root, exc) from exc


def csv_header_problem(
    source: FileSource, root: Path, pattern: str, schema: dict[str, pl.DataType]
) -> SourceError | None:
    """When DuckDB read a CSV source without a header (every column named ``column0``,
    ``column1``, ...), the reason: the first row whose number of fields differs from the
    header's, in the first file; None when the header was read."""
    if not schema or not all(_GENERATED.fullmatch(name) for name in schema):
        return None
    files = sorted(glob.glob(pattern, recursive=True))
    if not files:
        return None
    with open(files[0], newline="", errors="replace") as fh:
        sample = fh.read(64 * 1024)
    lines = sample.splitlines()
    if not lines:
        return SourceError(f"source {source.name!r}: {files[0]} is empty")
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(lines[0])
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(lines, dialect))
    header = rows[0]
    odd = next(((i + 1, r) for i, r in enumerate(rows[1:], 1) if len(r) != len(header)), None)
    detail = (
        f"line {odd[0]:,} has {len(odd[1])} fields where the header "
        f"{lines[0][:_SHOWN]!r} has {len(header)}"
        if odd is not None
        else f"its header is {lines[0][:_SHOWN]!r}"
    )
    return SourceError(
        f"source {source.name!r}: {files[0]} could not be parsed as CSV (no header row was "
        f"recognized: {detail}). Make every row have as many fields as the header"
    )
