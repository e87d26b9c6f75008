"""The serving log's columns: as Polars reads them, as Arrow writes them, and the plain lists
the writer thread fills before turning them into an Arrow table."""

from __future__ import annotations

from typing import Any

import polars as pl
import pyarrow as pa

__all__ = ["ARROW_SCHEMA", "SERVING_LOG_SCHEMA", "Columns", "arrow_table", "new_columns"]

SERVING_LOG_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "row": pl.Int64(),
    "request_time": pl.Datetime("us", "UTC"),
    "feature_service": pl.String(),
    "features": pl.List(pl.String()),
    "entity_keys": pl.String(),
    "request_data": pl.String(),
    "values": pl.String(),
    "statuses": pl.String(),
    "fingerprints": pl.String(),
    "event_times": pl.String(),
    "latency_us": pl.Int64(),
    "applied_fingerprints": pl.String(),
}

ARROW_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("request_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("feature_service", pa.string()),
        pa.field("features", pa.list_(pa.string()), nullable=False),
        pa.field("entity_keys", pa.string(), nullable=False),
        pa.field("request_data", pa.string(), nullable=False),
        pa.field("values", pa.string(), nullable=False),
        pa.field("statuses", pa.string(), nullable=False),
        pa.field("fingerprints", pa.string(), nullable=False),
        pa.field("event_times", pa.string(), nullable=False),
        pa.field("latency_us", pa.int64(), nullable=False),
        pa.field("applied_fingerprints", pa.string()),
    ]
)

Columns = dict[str, list[Any]]


def new_columns() -> Columns:
    """One empty list per column of the log."""
    return {name: [] for name in ARROW_SCHEMA.names}


def arrow_table(cols: Columns) -> pa.Table:
    """Encoded records as an Arrow table of the log's schema."""
    arrays = [pa.array(cols[f.name], type=f.type) for f in ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=ARROW_SCHEMA)
