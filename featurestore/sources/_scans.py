"""Where a source's files are and the DuckDB table function that reads them all. A catalog
table (``TableSource``) is read by DuckDB through the files its ``path`` names, exactly as a
``FileSource`` of that path: :func:`files_of` gives that FileSource, or says why there is none."""

from __future__ import annotations

import glob
from pathlib import Path

from featurestore.definitions import BatchSource, FileSource, TableSource
from featurestore.errors import SourceError, SourceNotFoundError
from featurestore.sources._sql import sql_string

__all__ = ["files_glob", "files_of", "files_signature", "needs_catalog", "resolve_path", "scan_sql"]


def files_of(source: BatchSource) -> FileSource:
    """The file source DuckDB reads ``source`` as: itself, or for a catalog table the
    FileSource of its ``path``; a SourceError saying the fix for a table without one."""
    if isinstance(source, FileSource):
        return source
    if source.path is None:
        example = source.table.replace(".", "/")
        raise SourceError(
            f"source {source.name!r} is the catalog table {source.table!r}, which the DuckDB "
            f"engine cannot read: give the TableSource path= the table's files (e.g. "
            f"path='warehouse/{example}/'), or run on Spark (offline_store: {{type: spark}} "
            "in featurestore.yaml)"
        )
    return FileSource(
        name=source.name,
        path=source.path,
        timestamp_field=source.timestamp_field,
        created_timestamp_field=source.created_timestamp_field,
        file_format=source.file_format,
    )


def needs_catalog(source: BatchSource) -> bool:
    """Whether only a catalog can read ``source``: a table without files DuckDB could read."""
    return isinstance(source, TableSource) and source.path is None


def resolve_path(source: BatchSource, root: Path) -> str:
    """The absolute path or glob of a source; relative paths are relative to the repo."""
    path = Path(files_of(source).path).expanduser()
    return str(path if path.is_absolute() else root / path)


def files_glob(source: BatchSource, root: Path) -> str:
    """The glob of every file the source reads: its path or glob, or for a directory every
    file of its format below it."""
    files = files_of(source)
    path = resolve_path(files, root)
    if files.is_directory or Path(path).is_dir():
        suffix = "csv" if files.file_format == "csv" else "parquet"
        return str(Path(path) / "**" / f"*.{suffix}")
    return path


def scan_sql(source: BatchSource, root: Path) -> str:
    """A DuckDB table function reading every file the source names."""
    path = files_glob(source, root)
    if not glob.glob(path, recursive=True):
        raise SourceNotFoundError(
            f"source {source.name!r}: path {path!r} matches no file; "
            "generate or copy the data there, or fix the path in the definition"
        )
    if source.file_format == "csv":
        return f"read_csv({sql_string(path)}, union_by_name = true)"
    return f"read_parquet({sql_string(path)}, union_by_name = true)"


def files_signature(source: BatchSource, root: Path) -> tuple[tuple[str, int, int], ...]:
    """Path, size and modification time (ns) of every file the source reads, sorted: what a
    cache of anything read from the files is keyed by (a file written again changes it)."""
    out = []
    for name in glob.glob(files_glob(source, root), recursive=True):
        try:
            st = Path(name).stat()
        except OSError:  # removed meanwhile: the next read says so
            continue
        out.append((name, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))
