"""Each entity's recent events, as materialization publishes them for an aggregation view: the
events in ``(end - longest window, end]``, one row per entity, their times and the
aggregations' inputs as lists sorted by ``(event time, created time)``.

How the events are stored online (which inputs, under which field names, grouped by which SQL)
belongs to the online layer; an engine is handed that description as an :class:`EventsLayout`
(the online ``WindowLayout`` satisfies it), so the offline layer never imports the online one.
The DuckDB engine runs the layout's own SQL (:func:`recent_events`); the Spark engine builds the
same rows with Spark (``_spark/_events``). Both hand their rows, a batch at a time, to a function
the online layer passes in (it encodes them and writes them, or returns them encoded), through
``map_recent_events``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

import duckdb
import polars as pl

from featurestore._times import epoch_us
from featurestore.definitions import FeatureView
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import timestamp_sql

__all__ = ["EVENTS_SLICE_ROWS", "EventsLayout", "recent_events"]

EVENTS_SLICE_ROWS = 100_000  # entities handed to the online layer's function at once


class EventsLayout(Protocol):
    """How a view's recent events are grouped per entity (the online ``WindowLayout``)."""

    @property
    def view(self) -> FeatureView: ...

    @property
    def fields(self) -> Mapping[str, str]:
        """Aggregation name -> the list field holding its input (every input has one)."""
        ...

    @property
    def temporal(self) -> frozenset[str]:
        """The fields holding temporal inputs as epoch microseconds."""
        ...

    @property
    def created(self) -> bool:
        """Whether a list of created times (``c``) is kept beside the event times (``t``)."""
        ...

    @property
    def max_window_us(self) -> int: ...

    @property
    def newest(self) -> str:
        """The column of each entity's newest event time."""
        ...

    def events_sql(self, scan: str, timestamp: str, created: str | None, where: str) -> str:
        """DuckDB SQL: one row per entity of ``scan``'s events matching ``where``."""
        ...


def recent_events(
    con: duckdb.DuckDBPyConnection,
    layout: EventsLayout,
    schema: dict[str, pl.DataType],
    root: Path,
    end: dt.datetime,
) -> pl.DataFrame:
    """Each entity's events in ``(end - longest window, end]``, grouped as ``layout`` groups
    them, read with DuckDB from the view's source (whose ``schema`` was checked against it)."""
    src = layout.view.source
    timestamp = timestamp_sql(src.timestamp_field, schema[src.timestamp_field])
    created = src.created_timestamp_field
    end_us = epoch_us(end)
    sql = layout.events_sql(
        scan_sql(src, root),
        timestamp,
        timestamp_sql(created, schema[created]) if created else None,
        f"epoch_us({timestamp}) <= {end_us} "
        f"AND epoch_us({timestamp}) > {end_us - layout.max_window_us}",
    )
    with reading([src], root):
        events: pl.DataFrame = con.sql(sql).pl()
    return events
