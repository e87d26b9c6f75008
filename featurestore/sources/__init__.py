"""The shared source layer under the engines, stores and reports: SQL quoting and timestamp
expressions, scans of a source's files, schema reading and checks, typed read errors, and the
appended parts that pushes write. Everything above reads sources through it."""

from featurestore.sources._appends import append_part, part_path, pushed_frame
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._schema import check_view, key_type_problems, read_schema, view_problems
from featurestore.sources._sql import ident, sql_string, timestamp_sql

__all__ = [
    "append_part",
    "check_view",
    "ident",
    "key_type_problems",
    "part_path",
    "pushed_frame",
    "read_schema",
    "reading",
    "scan_sql",
    "sql_string",
    "timestamp_sql",
    "view_problems",
]
