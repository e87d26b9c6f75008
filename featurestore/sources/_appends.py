"""Pushed events into a source's files, so training sets, materializations and skew replays see
them as they see every other row.

Rows are first checked against what every view of the source needs (join keys, event time,
created time when declared, the columns features and aggregations read, castable types, no
null key or time) and against the source's own columns; nothing is written when any check
fails. A push then becomes one new Parquet part file beside the source's files, in the
source's column types, written atomically (:mod:`featurestore._files`): a reader sees all of
a push or none of it. Where it goes:

- a directory (a path ending in ``/``): ``<dir>/push-<UTC time>-<id>.parquet``;
- a glob such as ``data/txns/*.parquet`` or ``data/txns/part-*.parquet``: a new name the glob
  matches, in the glob's directory (``**`` directories: at their top);
- a single file or a CSV source cannot take appends without rewriting what is there, and a
  catalog table (``TableSource``) would not see files written behind its catalog's back: a
  :class:`~featurestore.errors.PushError` names the ways out.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import itertools
import os
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore._files import write_atomically
from featurestore.definitions import BatchSource, FeatureView, FileSource, TableSource
from featurestore.definitions._dtypes import dtype_kind, dtype_name, utc_text_datetime
from featurestore.errors import PushError, SchemaMismatchError
from featurestore.sources._frames import as_polars
from featurestore.sources._scans import files_glob, resolve_path
from featurestore.sources._schema import read_schema, view_problems

__all__ = ["RowsLike", "append_part", "part_path", "pushed_frame"]

# also a lazy frame, an Arrow table or a pandas frame: typed as Any, since pandas is optional
# and pyarrow has no type information, which would leave the signature partly unknown
RowsLike: TypeAlias = pl.DataFrame | Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]] | Any
_GLOB_CHARS = frozenset("*?[")


def _frame(rows: Any) -> pl.DataFrame:
    return as_polars(rows, SchemaMismatchError, "push rows")


def _parse_times(frame: pl.DataFrame, views: Sequence[FeatureView]) -> pl.DataFrame:
    """Event and created times given as ISO 8601 text (e.g. over HTTP), naive (UTC) or with any
    offset, as UTC datetimes; SchemaMismatchError naming a value that is no such time."""
    fields = {
        f for v in views for f in (v.source.timestamp_field, v.source.created_timestamp_field)
    }
    text = [c for c in frame.columns if c in fields and frame.schema[c] == pl.String]
    if not text:
        return frame
    parsed = frame.with_columns(
        utc_text_datetime(pl.col(c)).dt.replace_time_zone("UTC") for c in text
    )
    for c in text:
        bad = frame[c].filter(frame[c].is_not_null() & parsed[c].is_null())
        if bad.len():
            raise SchemaMismatchError(
                f"pushed time column {c!r} must hold ISO 8601 times such as "
                f"2025-03-01T12:00:00Z or 2025-03-01T14:00:00+02:00 (naive means UTC); found "
                f"{bad[0]!r} in {bad.len()} row(s); nothing was written"
            )
    return parsed


def _typed_nulls(frame: pl.DataFrame, views: Sequence[FeatureView]) -> pl.DataFrame:
    """Columns null throughout the push (typed Null, as JSON gives them) take the type the
    aggregations read them as: nulls fit any type. (A CountDistinct column stays Null: any
    scalar type would do, and its nulls count nothing.)"""
    casts: dict[str, pl.DataType] = {}
    for view in views:
        for agg in view.aggregations:
            column = agg.column
            if column is None or agg.kind == "count_distinct" or column in casts:
                continue
            if frame.schema.get(column) == pl.Null:
                casts[column] = pl.Float64() if agg.kind in ("mean", "stddev") else agg.dtype
    return frame.with_columns(pl.col(c).cast(t) for c, t in casts.items()) if casts else frame


def _example(column: pl.Series) -> str:
    """The first non-null value of ``column`` as short text, whatever its type (a datetime
    beyond what Python holds, bytes that are no text)."""
    first = column.drop_nulls().head(1)
    try:
        return repr(first.to_list()[0]) if first.len() else "null"
    except (OverflowError, ValueError, pl.exceptions.PolarsError):
        return f"a {first.dtype} value"


def _check(view: FeatureView, frame: pl.DataFrame, key_kinds: Mapping[str, str]) -> list[str]:
    """Every way the pushed rows do not fit what ``view`` reads: missing or mistyped columns,
    null keys or times, keys of another kind than the source's (an integer key pushed as
    text would be stored where no lookup finds it), non-finite floats."""
    problems = view_problems(view, dict(frame.schema))
    src = view.source
    for column in [*view.join_keys, src.timestamp_field]:
        if column in frame.columns and (nulls := frame[column].null_count()):
            problems.append(f"column {column!r} is null in {nulls} pushed row(s)")
    for key in view.join_keys:
        want, found = key_kinds.get(key), frame.schema.get(key)
        if want is None or found is None or found == pl.Null:
            continue
        if dtype_kind(found) != want:
            example = _example(frame[key])
            problems.append(
                f"join key {key!r} holds {'integers' if want == 'int' else 'text'} in source "
                f"{src.name!r}, but the pushed rows give {dtype_name(found)} (e.g. "
                f"{example}); send the key as the source stores it"
            )
    for column in view.source_columns():
        if column in frame.columns and dtype_kind(frame.schema[column]) == "float":
            bad = int(frame.select((~pl.col(column).is_finite()).sum()).item() or 0)
            if bad:
                problems.append(
                    f"column {column!r} holds NaN or infinite values in {bad} pushed row(s); "
                    "they are invalid values: send null for a missing value"
                )
    return problems


def pushed_frame(
    rows: RowsLike,
    views: Sequence[FeatureView],
    source: str,
    key_kinds: Mapping[str, str] | None = None,
) -> pl.DataFrame:
    """``rows`` as a frame fit for every view in ``views`` (the views reading ``source``):
    times given as text parsed, columns null throughout typed; SchemaMismatchError listing
    every problem otherwise. ``key_kinds`` maps join keys to the kind the source stores them
    as (``int`` or ``string``, as applied)."""
    frame = _frame(rows)
    if frame.height == 0:
        return frame  # nothing to check or write
    frame = _typed_nulls(_parse_times(frame, views), views)
    problems = [p for view in views for p in _check(view, frame, key_kinds or {})]
    if problems:
        lines = "\n".join(f"  - {p}" for p in dict.fromkeys(problems))
        raise SchemaMismatchError(
            f"pushed rows do not fit source {source!r}; nothing was written:\n{lines}"
        )
    return frame


def _ways_out(source: FileSource, root: Path, why: str) -> PushError:
    name = source.name
    return PushError(
        f"cannot push to source {name!r}: {why}, so pushed events could not reach training "
        "sets and materializations without rewriting what is there. Either point the source at "
        f"a directory of Parquet files (e.g. path='data/{name}/', holding its files), or give "
        f"the view a PushSource(name='{name}_push', batch_source=FileSource(path="
        f"'data/{name}_events/', ...)) over such a directory, or push with to='online' to "
        "update only the online store (the skew report then names pushed events missing "
        "offline)."
    )


def _table_refusal(source: TableSource) -> PushError:
    """Why a push cannot append to a catalog table, and the ways out."""
    name = source.name
    return PushError(
        f"cannot append pushed events to source {name!r}: it is the catalog table "
        f"{source.table!r}, and files written beside it would be invisible to the table (an "
        "Iceberg or Delta table reads only the files its manifests list). Push with "
        "to='online' to update only the online state of its aggregation views (the next "
        "materialization replaces those values with the table's), or give the view a "
        f"PushSource(name='{name}_push', batch_source=FileSource(path='data/{name}_events/', "
        "...)) or a FileSource over a directory of Parquet files, which take pushes"
    )


def part_path(source: BatchSource, root: Path) -> Path:
    """A new file path for pushed events that the source's path or glob reads; PushError when
    the source cannot take one (a catalog table never can)."""
    if isinstance(source, TableSource):
        raise _table_refusal(source)
    if source.file_format != "parquet":
        raise _ways_out(source, root, "it reads CSV files")
    path = resolve_path(source, root)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    name = f"push-{stamp}-{uuid.uuid4().hex[:12]}"
    if source.is_directory or Path(path).is_dir():
        return Path(path) / f"{name}.parquet"
    *directories, pattern = Path(path).parts
    if not any(_GLOB_CHARS & set(p) for p in (*directories, pattern)):
        raise _ways_out(source, root, f"it reads the single file {source.path!r}")
    fixed = list(itertools.takewhile(lambda p: not _GLOB_CHARS & set(p), directories))
    if any(p != "**" for p in directories[len(fixed) :]):
        raise _ways_out(source, root, f"its glob {source.path!r} has wildcards in directory names")
    candidate = pattern.replace("*", name, 1).replace("*", "")
    if _GLOB_CHARS & set(candidate) or not fnmatch.fnmatchcase(candidate, pattern):
        # without a '*' to fill, every push would get the same name
        raise _ways_out(
            source, root, f"no new file name matches the last part of its glob {pattern!r}"
        )
    return Path(*fixed) / candidate


def _declared_types(views: Sequence[FeatureView]) -> dict[str, pl.DataType]:
    """The types the views declare for source columns they read as they are: a plain
    feature's dtype, an aggregation's input type."""
    out: dict[str, pl.DataType] = {}
    for view in views:
        out.update({f.name: f.dtype for f in view.features if f.expr is None})
        for agg in view.aggregations:
            if agg.column is not None and agg.kind != "count_distinct":
                out.setdefault(
                    agg.column, pl.Float64() if agg.kind in ("mean", "stddev") else agg.dtype
                )
    return out


def _arrow_type(dtype: pl.DataType) -> pa.DataType:
    return pl.Series([], dtype=dtype).to_arrow().type


def _target_schema(
    con: duckdb.DuckDBPyConnection,
    source: BatchSource,
    root: Path,
    frame: pl.DataFrame,
    views: Sequence[FeatureView],
) -> pa.Schema:
    """The columns and Arrow types a new part of the source takes: the columns of its files
    (their union), typed as in its newest file; for the first part of an empty directory, the
    pushed columns, typed as the views declare them where they do."""
    files = glob.glob(files_glob(source, root), recursive=True)
    if not files:
        declared = _declared_types(views)
        return pa.schema((c, _arrow_type(declared.get(c, frame.schema[c]))) for c in frame.columns)
    cursor = con.cursor()  # the engine's connection may be in use by another thread
    try:
        names = read_schema(cursor, source, root)
    finally:
        cursor.close()
    newest = pq.read_schema(max(files, key=os.path.getmtime))
    return pa.schema(
        (
            name,
            newest.field(name).type if name in newest.names else _arrow_type(dtype),
        )
        for name, dtype in names.items()
    )


def _conform(frame: pl.DataFrame, schema: pa.Schema, source: str) -> pa.Table:
    """The pushed rows in the source's columns and types (columns not pushed are null); a value
    the type cannot hold exactly (2.5 in an integer column) is refused."""
    unknown = [c for c in frame.columns if c not in schema.names]
    if unknown:
        raise SchemaMismatchError(
            f"pushed column(s) {unknown} are not columns of source {source!r}, whose files have "
            f"{', '.join(schema.names)}; nothing was written. Drop them from the rows, or add "
            "the column to the source's files first"
        )
    arrays = []
    for field in schema:
        if field.name not in frame.columns:
            arrays.append(pa.nulls(frame.height, field.type))
            continue
        try:
            arrays.append(frame[field.name].to_arrow().cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise SchemaMismatchError(
                f"pushed column {field.name!r} ({frame.schema[field.name]}) cannot be stored as "
                f"{field.type} in source {source!r}: {exc}; nothing was written"
            ) from None
    return pa.Table.from_arrays(arrays, schema=schema)


def append_part(
    con: duckdb.DuckDBPyConnection,
    source: BatchSource,
    root: Path,
    frame: pl.DataFrame,
    target: Path,
    views: Sequence[FeatureView],
) -> Path:
    """Write ``frame`` (checked by :func:`pushed_frame` for ``views``, the views reading the
    source) as the new part file ``target`` of ``source`` (from :func:`part_path`), in the
    source's column types; returns its path."""
    table = _conform(frame, _target_schema(con, source, root, frame, views), source.name)
    return write_atomically(target, lambda fh: pq.write_table(table, fh, compression="zstd"))
