"""Point-in-time join SQL for DuckDB, built as text: readable and testable without a connection.

For each spine row and view, an ASOF LEFT JOIN picks the latest source row for the row's keys
with ``event_time <= t``; with a created timestamp the inequality runs on the struct
``{t: event_time, c: created}`` so ties go to the latest created row in the same pass. The
``match`` code then tells whether that row is within the ttl (found), too old (stale), or absent.

Windowed aggregations (:class:`AggregationScan`) are computed once per distinct spine point
``(keys, t)`` over integer microsecond times, the frame ``t - window < event_time < t`` being
exact, then joined back onto every spine row. A key takes one of two paths:

- the join path: the key's spine points join its events with ``t - max_window < event < t``
  and one GROUP BY per point computes every aggregation (shorter windows as FILTER clauses).
  Its work is (points x events) of the key, cheap when keys have few of either;
- the window path: the key's events and points are unioned and DuckDB window functions with
  ``RANGE BETWEEN window_us - 1 PRECEDING AND 1 PRECEDING`` run over them, one frame per
  distinct window length. Its work grows like (points + events) log, so a key with many of
  both (a popular merchant scored on its own transactions) cannot blow up.

A key goes to the window path when its points x events exceed ``window_above`` x (points +
events); both paths give the same values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, MATCH_STALE
from featurestore.definitions._aggregation import Aggregation
from featurestore.definitions._dtypes import duckdb_type
from featurestore.sources._sql import (
    MIN_BIGINT,
    SPINE_ROW,
    SPINE_TS,
    ident,
    input_sql,
)

__all__ = ["WINDOW_ABOVE", "AggregationScan", "ViewScan", "point_in_time_sql"]

# A key takes the window path when its (spine points x events) exceed this many times
# (points + events): about where the two cost the same. With ten aggregations on two threads
# (benchmarks/aggregations.py) the join path costs some 50 ns per (point, event) pair and the
# window path some 3 us per row.
WINDOW_ABOVE = 64.0


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


def _double(value: float) -> str:
    """A DOUBLE literal, infinity included."""
    return repr(value) if math.isfinite(value) else f"'{value}'::DOUBLE"


_FUNCTIONS = {
    "sum": "sum({x})",
    "mean": "avg({x})",
    "min": "min({x})",
    "max": "max({x})",
    "stddev": "stddev_samp({x})",
    "count_distinct": "count(DISTINCT {x})",
}


@dataclass(frozen=True)
class AggregationScan:
    """The windowed aggregations of one view: what they read and the SQL computing them.

    The CTE named ``alias`` holds a row per distinct spine point ``(keys, t)`` with events
    in its windows, with a column ``<alias>__<name>`` per aggregation; :meth:`join` and
    :meth:`outputs` put them on every spine row, an empty window giving ``empty_value``.
    ``spine_range_us`` (the first and last spine time) bounds the events read.
    """

    alias: str
    scan: str
    join_keys: tuple[str, ...]
    timestamp: str
    created: str | None
    aggregations: tuple[Aggregation, ...]
    spine_range_us: tuple[int, int]
    window_above: float = WINDOW_ABOVE

    @property
    def inputs(self) -> dict[str, str]:
        """Input expression -> its column name in the events CTE, one per distinct input."""
        exprs = dict.fromkeys(e for a in self.aggregations if (e := input_sql(a)) is not None)
        return {e: f"__fs_x{i}" for i, e in enumerate(exprs)}

    @property
    def max_window_us(self) -> int:
        return max(a.window_us for a in self.aggregations)

    def _column(self, agg: Aggregation) -> str:
        return ident(f"{self.alias}__{agg.name}")

    def _keys(self, prefix: str = "") -> str:
        return ", ".join(f"{prefix}{ident(k)}" for k in self.join_keys)

    def _last_struct(self, x: str, prefix: str) -> str:
        parts = [f"'t': {prefix}__fs_t"]
        if self.created is not None:
            parts.append(f"'c': {prefix}__fs_c")
        parts.append(f"'v': {x}")
        return f"CASE WHEN {x} IS NOT NULL THEN {{{', '.join(parts)}}} END"

    def _joined_aggregate(self, agg: Aggregation) -> str:
        """One aggregate of the join path, over the joined events ``e`` of point ``p``."""
        x = f"e.{self.inputs[e]}" if (e := input_sql(agg)) is not None else ""
        frame = (
            f" FILTER (WHERE e.__fs_t > p.__fs_t - {agg.window_us})"
            if agg.window_us < self.max_window_us
            else ""
        )
        if agg.kind == "count":
            return f"count(e.__fs_t){frame}"
        if agg.kind == "last":
            return f"struct_extract(max({self._last_struct(x, 'e.')}){frame}, 'v')"
        return _FUNCTIONS[agg.kind].format(x=x) + frame

    def _windowed_aggregate(self, agg: Aggregation, window: str) -> str:
        """One aggregate of the window path, over the frame ``window``."""
        x = self.inputs[e] if (e := input_sql(agg)) is not None else ""
        if agg.kind == "count":
            return f"count(__fs_event) OVER {window}"
        if agg.kind == "last":
            return f"struct_extract(max({self._last_struct(x, '')}) OVER {window}, 'v')"
        return f"{_FUNCTIONS[agg.kind].format(x=x)} OVER {window}"

    def _base_ctes(self, spine_table: str) -> list[str]:
        """The distinct spine points and the events that can fall in one of their windows."""
        a, keys = self.alias, self._keys()
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in self.join_keys)
        event_us = f"epoch_us({self.timestamp})"
        event_cols = [keys, f"{event_us} AS __fs_t"]
        if self.created is not None:
            event_cols.append(f"COALESCE(epoch_us({self.created}), {MIN_BIGINT}) AS __fs_c")
        event_cols += [f"{e} AS {name}" for e, name in self.inputs.items()]
        first, last = self.spine_range_us
        return [
            f"{a}_points AS (SELECT DISTINCT {keys}, epoch_us({SPINE_TS}) AS __fs_t "
            f"FROM {ident(spine_table)} WHERE {not_null})",
            f"{a}_events AS (SELECT {', '.join(event_cols)} FROM {self.scan} "
            f"WHERE {self.timestamp} IS NOT NULL AND {not_null} AND {event_us} < {last} "
            f"AND {event_us} > {first - self.max_window_us})",
        ]

    def _heavy_cte(self) -> str:
        a, keys = self.alias, self._keys()
        return (
            f"{a}_heavy AS (SELECT {keys} FROM "
            f"(SELECT {keys}, count(*) AS n FROM {a}_points GROUP BY ALL) p JOIN "
            f"(SELECT {keys}, count(*) AS n FROM {a}_events GROUP BY ALL) e USING ({keys}) "
            f"WHERE p.n * e.n > {_double(self.window_above)} * (p.n + e.n))"
        )

    def heavy_keys_sql(self, spine_table: str) -> str:
        """How many keys take the window path (when none does, set ``window_above=inf``)."""
        ctes = ",\n".join([*self._base_ctes(spine_table), self._heavy_cte()])
        return f"WITH {ctes}\nSELECT count(*) FROM {self.alias}_heavy"

    def ctes(self, spine_table: str) -> list[str]:
        """The CTEs computing the aggregations for every distinct spine point with events.

        A point without events in its windows may be missing from the result.
        """
        a, keys = self.alias, self._keys()
        joined_only = math.isinf(self.window_above)
        on = " AND ".join(f"p.{ident(k)} = e.{ident(k)}" for k in self.join_keys)
        joined_aggs = [
            f"{self._joined_aggregate(g)} AS {self._column(g)}" for g in self.aggregations
        ]
        points = f"{a}_points" if joined_only else f"{a}_points ANTI JOIN {a}_heavy USING ({keys})"
        joined = (
            f"SELECT {self._keys('p.')}, p.__fs_t, {', '.join(joined_aggs)} "
            f"FROM (SELECT * FROM {points}) p JOIN {a}_events e ON {on} "
            f"AND e.__fs_t < p.__fs_t AND e.__fs_t > p.__fs_t - {self.max_window_us} "
            "GROUP BY ALL"
        )
        if joined_only:
            return [*self._base_ctes(spine_table), f"{a} AS ({joined})"]
        frames = ", ".join(
            f"w{w} AS (PARTITION BY {keys} ORDER BY __fs_t "
            f"RANGE BETWEEN {w - 1} PRECEDING AND 1 PRECEDING)"
            for w in sorted({g.window_us for g in self.aggregations})
        )
        windowed_aggs = [
            f"{self._windowed_aggregate(g, f'w{g.window_us}')} AS {self._column(g)}"
            for g in self.aggregations
        ]
        outputs = ", ".join(self._column(g) for g in self.aggregations)
        windowed = (
            f"SELECT {keys}, __fs_t, {outputs} FROM ("
            f"SELECT {keys}, __fs_t, __fs_point, {', '.join(windowed_aggs)} FROM ("
            f"SELECT *, 1 AS __fs_event FROM {a}_events SEMI JOIN {a}_heavy USING ({keys}) "
            f"UNION ALL BY NAME SELECT *, TRUE AS __fs_point FROM {a}_points "
            f"SEMI JOIN {a}_heavy USING ({keys})) WINDOW {frames}) WHERE __fs_point"
        )
        return [
            *self._base_ctes(spine_table),
            self._heavy_cte(),
            f"{a} AS ({joined} UNION ALL BY NAME {windowed})",
        ]

    def join(self, spine: str) -> str:
        """The LEFT JOIN of the aggregations onto the spine rows, by keys and time."""
        on = [f"{spine}.{ident(k)} = {self.alias}.{ident(k)}" for k in self.join_keys]
        on.append(f"epoch_us({spine}.{SPINE_TS}) = {self.alias}.__fs_t")
        return f"LEFT JOIN {self.alias} ON {' AND '.join(on)}"

    def outputs(self) -> list[str]:
        """Final values: cast to the output dtype, an empty window giving ``empty_value``."""
        out = []
        for agg in self.aggregations:
            value = f"{self.alias}.{self._column(agg)}"
            if agg.empty_value is not None:
                value = f"COALESCE({value}, {agg.empty_value})"
            out.append(f"CAST({value} AS {duckdb_type(agg.dtype)}) AS {self._column(agg)}")
        return out


def point_in_time_sql(
    spine_table: str,
    views: list[ViewScan],
    spine_columns: tuple[str, ...] = (),
    event_times: bool = False,
    aggregations: list[AggregationScan] | tuple[AggregationScan, ...] = (),
) -> str:
    """One query joining every view and every view's aggregations onto the spine, in spine
    order.

    ``spine_columns`` are passed through; ``event_times`` adds each view's matched event time
    as ``__fs_event_ts_<alias>``.
    """
    ctes = [f"{v.alias} AS ({v.subquery()})" for v in views]
    for agg in aggregations:
        ctes += agg.ctes(spine_table)
    select = [f"s.{SPINE_ROW}", *(f"s.{ident(c)}" for c in spine_columns)]
    for v in views:
        select.append(v.match("s"))
        if event_times:
            select.append(f"{v.alias}.__fs_ts AS __fs_event_ts_{v.alias}")
        select += [f"{v.alias}.{ident(f'{v.alias}__{c}')}" for c in v.columns]
    for agg in aggregations:
        select += agg.outputs()
    joins = [f"ASOF LEFT JOIN {v.alias} ON {v.condition('s')}" for v in views]
    joins += [agg.join("s") for agg in aggregations]
    cte_sep, line = ",\n", "\n"
    with_ = f"WITH {cte_sep.join(ctes)}\n" if ctes else ""
    return (
        f"{with_}SELECT {', '.join(select)}\nFROM {ident(spine_table)} s\n{line.join(joins)}\n"
        f"ORDER BY s.{SPINE_ROW}"
    )
