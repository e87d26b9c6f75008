"""A source's schema, read by DuckDB from file metadata, and every way it fails to fit the
views declared on it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import polars as pl

from featurestore._transforms import expression_dtype, feature_expr
from featurestore.definitions import BatchSource, FeatureView
from featurestore.definitions._base import did_you_mean
from featurestore.definitions._dtypes import dtype_kind, dtype_name, is_castable, parse_dtype
from featurestore.errors import SchemaMismatchError
from featurestore.sources._read_errors import csv_header_problem, reading
from featurestore.sources._scans import files_glob, files_of, scan_sql

__all__ = ["check_view", "key_type_problems", "read_schema", "view_problems"]


def read_schema(
    con: duckdb.DuckDBPyConnection, batch: BatchSource, root: Path
) -> dict[str, pl.DataType]:
    """Column names and Polars dtypes of a source, read from file metadata only (for CSV, from
    its first rows); a SourceError that says why when it cannot be read or parsed."""
    source = files_of(batch)
    scan = scan_sql(source, root)
    with reading([source], root):
        schema = dict(con.sql(f"SELECT * FROM {scan} LIMIT 0").pl().schema)
    if source.file_format == "csv":
        problem = csv_header_problem(source, root, files_glob(source, root), schema)
        if problem is not None:
            raise problem
    return schema


def view_problems(view: FeatureView, schema: dict[str, pl.DataType]) -> list[str]:
    """Every way ``view`` fails to fit its source's ``schema``; empty when it fits."""
    where = f"source {view.source.name!r} (view {view.name!r})"
    columns = ", ".join(schema)
    return [
        f"{where}: {problem}"
        for problem in (
            *_column_problems(view, schema, columns),
            *_feature_problems(view, schema, columns),
            *_aggregation_problems(view, schema, columns),
        )
    ]


def _column_problems(view: FeatureView, schema: dict[str, pl.DataType], columns: str) -> list[str]:
    """Timestamp columns and join keys that are missing or of the wrong kind."""
    src = view.source
    problems = []
    for field in (src.timestamp_field, src.created_timestamp_field):
        if field is None:
            continue
        if field not in schema:
            problems.append(
                f"timestamp column {field!r} not found in the source; expected a Datetime or "
                f"Date column, found columns: {columns}"
            )
        elif dtype_kind(schema[field]) not in ("datetime", "date"):
            problems.append(
                f"timestamp column {field!r} is {schema[field]}; expected a Datetime or Date"
            )
    for key in view.join_keys:
        if key not in schema:
            problems.append(
                f"join key column {key!r} not found in the source; found columns: {columns}"
            )
        elif dtype_kind(schema[key]) not in ("int", "string"):
            problems.append(
                f"join key column {key!r} is {schema[key]}; expected an integer or string"
            )
    return problems


def _feature_problems(view: FeatureView, schema: dict[str, pl.DataType], columns: str) -> list[str]:
    """Features whose columns are missing, whose expression fails on the source's types, or
    whose value cannot be cast to the declared dtype."""
    problems = []
    for feature in view.features:
        ref = f"'{view.name}:{feature.name}'"
        missing = [c for c in feature.source_columns if c not in schema]
        if missing:
            problems.append(
                f"column(s) {missing} needed by feature {ref} not found in the source; "
                f"found columns: {columns}"
            )
            continue
        try:
            dtype = expression_dtype(feature_expr(view, feature), schema)
        except Exception as exc:
            problems.append(f"expression of feature {ref} fails on the source: {exc}")
            continue
        if not is_castable(dtype, feature.dtype):
            what = "expression" if feature.expr is not None else f"column {feature.name!r}"
            problems.append(
                f"{what} of feature {ref} is {dtype}; expected "
                f"{dtype_name(feature.dtype)} or a type castable to it"
            )
    return problems


def _aggregation_problems(
    view: FeatureView, schema: dict[str, pl.DataType], columns: str
) -> list[str]:
    """Aggregations whose input column is missing or of a type they cannot aggregate."""
    problems = []
    for agg in view.aggregations:
        if agg.column is None:
            continue
        ref = f"'{view.name}:{agg.name}'"
        if agg.column not in schema:
            hint = did_you_mean(agg.column, list(schema))
            problems.append(
                f"column {agg.column!r} of aggregation {ref} not found in the source.{hint} "
                f"Found columns: {columns}"
            )
        elif not agg.accepts(schema[agg.column]):
            problems.append(
                f"column {agg.column!r} of aggregation {ref} "
                f"({type(agg).__name__}) is {schema[agg.column]}; expected {agg.expects()}"
            )
    return problems


def key_type_problems(
    view: FeatureView, schema: dict[str, pl.DataType], applied: Mapping[str, str]
) -> list[str]:
    """Join keys whose kind (integer or text) in the source differs from the one recorded when
    the view was applied (``applied``: key -> dtype name): online values are stored and looked
    up under the keys' text, so the same entity would get another key."""
    problems = []
    for key, recorded in applied.items():
        found = schema.get(key)
        if found is None or dtype_kind(found) == dtype_kind(parse_dtype(recorded)):
            continue
        problems.append(
            f"source {view.source.name!r} (view {view.name!r}): join key {key!r} was "
            f"{recorded} when the view was applied and is {dtype_name(found)} now; if the "
            "change is intended run 'featurestore apply' (and materialize the view in full), "
            "else restore the column's type"
        )
    return problems


def check_view(view: FeatureView, schema: dict[str, pl.DataType]) -> None:
    """Raise :class:`SchemaMismatchError` when the source no longer fits the view."""
    problems = view_problems(view, schema)
    if problems:
        raise SchemaMismatchError("; ".join(problems))
