"""Where a file source's files are and the DuckDB table function that reads them all."""

from __future__ import annotations

import glob
from pathlib import Path

from featurestore.definitions import FileSource
from featurestore.errors import SourceNotFoundError
from featurestore.sources._sql import sql_string

__all__ = ["files_glob", "files_signature", "resolve_path", "scan_sql"]


def resolve_path(source: FileSource, root: Path) -> str:
    """The absolute path or glob of a source; relative paths are relative to the repo."""
    path = Path(source.path).expanduser()
    return str(path if path.is_absolute() else root / path)


def files_glob(source: FileSource, root: Path) -> str:
    """The glob of every file the source reads: its path or glob, or for a directory every
    file of its format below it."""
    path = resolve_path(source, root)
    if source.is_directory or Path(path).is_dir():
        suffix = "csv" if source.file_format == "csv" else "parquet"
        return str(Path(path) / "**" / f"*.{suffix}")
    return path


def scan_sql(source: FileSource, root: Path) -> str:
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


def files_signature(source: FileSource, root: Path) -> tuple[tuple[str, int, int], ...]:
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
