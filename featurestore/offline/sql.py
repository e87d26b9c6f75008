"""Point-in-time join SQL for DuckDB, built as text: readable and testable without a connection.

For each spine row and view, an ASOF LEFT JOIN picks the latest source row for the row's keys
with ``event_time <= t``; with a created timestamp the inequality runs on the struct
``{t: event_time, c: created}`` so ties go to the latest created row in the same pass. The
``match`` code then tells whether that row is within the ttl (found), too old (stale), or absent.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from featurestore.definitions.dtypes import dtype_kind
from featurestore.validation import MATCH_FOUND, MATCH_NONE, MATCH_STALE

__all__ = ["ViewScan", "ident", "point_in_time_sql", "timestamp_sql"]

SPINE_ROW = "__fs_row"
SPINE_TS = "__fs_ts"


def ident(name: str) -> str:
    """A quoted SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def timestamp_sql(column: str, dtype: pl.DataType) -> str:
    """``column`` as a naive UTC TIMESTAMP (time-zone-aware values are converted to UTC)."""
    if dtype_kind(dtype) == "datetime" and getattr(dtype, "time_zone", None):
        return f"timezone('UTC', {ident(column)})"
    return f"CAST({ident(column)} AS TIMESTAMP)"


@dataclass(frozen=True)
class ViewScan:
    """What the join reads from one view's source."""

    alias: str
    scan: str
    join_keys: tuple[str, ...]
    timestamp: str
    created: str | None
    columns: tuple[str, ...]
    ttl_us: int | None

    def subquery(self) -> str:
        cols = [ident(k) for k in self.join_keys]
        cols.append(f"{self.timestamp} AS __fs_ts")
        if self.created is not None:
            cols.append(f"COALESCE({self.created}, '-infinity'::TIMESTAMP) AS __fs_created")
        cols += [f"{ident(c)} AS {ident(f'{self.alias}__{c}')}" for c in self.columns]
        return f"SELECT {', '.join(cols)} FROM {self.scan} WHERE {self.timestamp} IS NOT NULL"

    def condition(self, spine: str) -> str:
        a = self.alias
        keys = [f"{spine}.{ident(k)} = {a}.{ident(k)}" for k in self.join_keys]
        if self.created is None:
            keys.append(f"{spine}.{SPINE_TS} >= {a}.__fs_ts")
        else:
            keys.append(
                f"{{'t': {spine}.{SPINE_TS}, 'c': 'infinity'::TIMESTAMP}} >= "
                f"{{'t': {a}.__fs_ts, 'c': {a}.__fs_created}}"
            )
        return " AND ".join(keys)

    def match(self, spine: str) -> str:
        a = self.alias
        found = f"WHEN {a}.__fs_ts IS NULL THEN {MATCH_NONE} "
        if self.ttl_us is not None:
            found += (
                f"WHEN {a}.__fs_ts < {spine}.{SPINE_TS} - to_microseconds({self.ttl_us}) "
                f"THEN {MATCH_STALE} "
            )
        return f"CAST(CASE {found}ELSE {MATCH_FOUND} END AS UTINYINT) AS __fs_match_{a}"

    def outputs(self) -> list[str]:
        return [f"__fs_match_{self.alias}", *(f"{self.alias}__{c}" for c in self.columns)]


def point_in_time_sql(
    spine_table: str,
    views: list[ViewScan],
    spine_columns: tuple[str, ...] = (),
    event_times: bool = False,
) -> str:
    """One query joining every view onto the spine, in spine order.

    ``spine_columns`` are passed through; ``event_times`` adds each view's matched event time
    as ``__fs_event_ts_<alias>``.
    """
    ctes = ",\n".join(f"{v.alias} AS ({v.subquery()})" for v in views)
    select = [f"s.{SPINE_ROW}", *(f"s.{ident(c)}" for c in spine_columns)]
    for v in views:
        select.append(v.match("s"))
        if event_times:
            select.append(f"{v.alias}.__fs_ts AS __fs_event_ts_{v.alias}")
        select += [f"{v.alias}.{ident(f'{v.alias}__{c}')}" for c in v.columns]
    joins = "\n".join(f"ASOF LEFT JOIN {v.alias} ON {v.condition('s')}" for v in views)
    return (
        f"WITH {ctes}\nSELECT {', '.join(select)}\nFROM {ident(spine_table)} s\n{joins}\n"
        f"ORDER BY s.{SPINE_ROW}"
    )
