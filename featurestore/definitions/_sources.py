"""Data sources: where feature rows come from (files, or a table of a Spark catalog) and what a
request carries."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import polars as pl
from pydantic import Field, field_validator, model_validator

from featurestore.definitions._base import Definition, Identifier, check_identifier
from featurestore.definitions._dtypes import DTypeLike, parse_dtype

FileFormat = Literal["parquet", "csv"]

_FORMATS: dict[str, FileFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".csv": "csv",
    ".csv.gz": "csv",
}


def _file_format(path: str, given: FileFormat | None) -> FileFormat:
    """The format of the files at ``path``: ``given``, else told by the path's suffix (a
    directory, a path ending in ``/``, holds Parquet files)."""
    if given is not None:
        return given
    lowered = path.lower()
    fmt = next((f for s, f in _FORMATS.items() if lowered.endswith(s)), None)
    if fmt is None and path.endswith(("/", "\\")):
        fmt = "parquet"
    if fmt is None:
        raise ValueError(
            f"cannot tell the format of path {path!r} from its suffix; "
            "set file_format='parquet' or 'csv', or end a directory's path with '/'"
        )
    return fmt


class FileSource(Definition):
    """Parquet or CSV rows at a path, a glob, or a directory (a path ending in ``/``: every
    file of the format below it); relative paths resolve against the repo.

    A directory or glob of Parquet files takes pushed events (``store.push``) as new part
    files; a single file or CSV cannot (see :class:`PushSource`).
    """

    name: Identifier
    path: str
    timestamp_field: str
    created_timestamp_field: str | None = None
    file_format: FileFormat | None = None
    description: str = ""
    owner: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            *,
            path: str,
            timestamp_field: str,
            created_timestamp_field: str | None = None,
            file_format: FileFormat | None = None,
            description: str = "",
            owner: str | None = None,
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @model_validator(mode="after")
    def _format(self) -> FileSource:
        if self.file_format is None:
            object.__setattr__(self, "file_format", _file_format(self.path, None))
        if self.created_timestamp_field == self.timestamp_field:
            raise ValueError("created_timestamp_field must differ from timestamp_field")
        return self

    @property
    def is_directory(self) -> bool:
        """Whether the path names a directory (it ends with ``/``)."""
        return self.path.endswith(("/", "\\"))


class PushSource(FileSource):
    """A named source for pushed events whose rows live in ``batch_source``, as in Feast:
    ``PushSource(name="txn_push", batch_source=FileSource(path="data/txns/", ...))``. A view
    reading it reads the batch source's files, and ``store.push("txn_push", rows)`` appends
    to them. The batch source must be a directory or glob of Parquet files; any such
    FileSource takes pushes under its own name too, without a PushSource."""

    batch_source: FileSource

    if TYPE_CHECKING:

        def __init__(  # the file fields come from batch_source (equal values are accepted)
            self,
            name: str,
            *,
            batch_source: FileSource,
            path: str | None = None,
            timestamp_field: str | None = None,
            created_timestamp_field: str | None = None,
            file_format: FileFormat | None = None,
            description: str = "",
            owner: str | None = None,
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @model_validator(mode="before")
    @classmethod
    def _from_batch(cls, data: Any) -> Any:
        batch = data.get("batch_source") if isinstance(data, dict) else None
        if isinstance(batch, FileSource):
            for field in ("path", "timestamp_field", "created_timestamp_field", "file_format"):
                given = data.get(field)
                # compared only as text: anything else differs (and a Polars expression or an
                # array would not even compare to a bool)
                same = isinstance(given, str) and given == getattr(batch, field)
                if given is not None and not same:
                    raise ValueError(
                        f"{field} comes from batch_source ({getattr(batch, field)!r}); "
                        f"do not set it on the PushSource (found {given!r})"
                    )
                data[field] = getattr(batch, field)
        return data


_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){0,2}$")


class TableSource(Definition):
    """A table of the Spark session's catalog (Hive metastore, Glue, Iceberg, Delta...),
    named ``table``, ``db.table`` or ``catalog.db.table``: the Spark engine reads it with
    ``spark.table``. The DuckDB engine has no catalog: it reads the table's files at ``path``
    (a directory, glob or file of Parquet or CSV, as a FileSource's), and cannot read the
    source without one. Pushes cannot append to it (a catalog would not see the files)."""

    name: Identifier
    table: str
    timestamp_field: str
    created_timestamp_field: str | None = None
    path: str | None = None
    file_format: FileFormat | None = None
    description: str = ""
    owner: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            *,
            table: str,
            timestamp_field: str,
            created_timestamp_field: str | None = None,
            path: str | None = None,
            file_format: FileFormat | None = None,
            description: str = "",
            owner: str | None = None,
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @field_validator("table")
    @classmethod
    def _table(cls, v: str) -> str:
        if not _TABLE.match(v):
            raise ValueError(
                f"table {v!r} must be one to three identifiers separated by dots "
                "('events', 'db.events' or 'catalog.db.events'), each starting with a letter "
                "or underscore and holding only letters, digits and underscores"
            )
        return v

    @model_validator(mode="after")
    def _format(self) -> TableSource:
        if self.path is not None:
            object.__setattr__(self, "file_format", _file_format(self.path, self.file_format))
        elif self.file_format is not None:
            raise ValueError(
                "file_format is the format of the files at path; give path= the table's files "
                "too, or drop file_format"
            )
        if self.created_timestamp_field == self.timestamp_field:
            raise ValueError("created_timestamp_field must differ from timestamp_field")
        return self


BatchSource: TypeAlias = FileSource | TableSource  # what a feature view reads its rows from


class RequestSource(Definition):
    """Columns supplied with each request (and by the spine when building training sets)."""

    name: Identifier
    if TYPE_CHECKING:
        fields: dict[str, pl.DataType]  # what the validator makes of the given schema
    else:
        fields: dict[str, Any] = Field(alias="schema")
    description: str = ""

    if TYPE_CHECKING:

        def __init__(
            self, name: str, *, schema: Mapping[str, DTypeLike], description: str = ""
        ) -> None: ...

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, Any]) -> dict[str, pl.DataType]:
        if not v:
            raise ValueError("schema must name at least one column")
        out = {}
        for col, dtype in v.items():
            check_identifier(col, "request column")
            out[col] = parse_dtype(dtype)
        return out
