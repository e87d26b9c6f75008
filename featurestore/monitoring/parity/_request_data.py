"""Request data for the parity check's on-demand views, in order of preference: the ``spine``
when one is given (its rows are used as given); else records of the serving log
(``request_data``), drawn at random with replacement; else synthesized: 70% regular values
and 30% edge values.

Regular values are drawn from a source column of the same name when one exists (a request's
``amount`` and ``channel`` are usually columns of the events source too: up to 1,000 of its
distinct values, taken in a seeded order), else made per dtype (floats lognormal around 20
rounded to cents, integers 1 to 999, strings ``v0`` to ``v9``, booleans, dates and datetimes up
to 30 days before the row's time). Edge values are null for every dtype; for numbers 0, -1, a
negative amount and a large one (``1e12``, ``2**40``); for strings the empty string. A value
that does not fit a narrower dtype becomes null; other dtypes are null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import polars as pl

from featurestore.definitions._dtypes import dtype_kind, is_castable
from featurestore.monitoring.parity._groups import Group
from featurestore.monitoring.parity._sample import DEFAULT_HORIZON, TIME, US
from featurestore.offline._engine import OfflineEngine
from featurestore.serving._serving_log import decode_json_column
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import ident

__all__ = ["RequestValues", "with_request_data"]

EDGE_SHARE = 0.3  # synthesized request values that are edge values
POOL = 1000  # distinct values read from a source column named like a request column


def _source_values(engine: OfflineEngine, column: str, dtype: pl.DataType, seed: int) -> pl.Series:
    """Up to POOL distinct non-null values of the first source (in view order) with a column
    named ``column`` castable to ``dtype``, in a seeded order; empty when no source has one."""
    seen: set[str] = set()
    for view in engine.repo.views.values():
        src = view.source
        if src.name in seen:
            continue
        seen.add(src.name)
        schema = engine.source_schema(view)
        if column not in schema or not is_castable(schema[column], dtype):
            continue
        col = ident(column)
        with reading([src], engine.repo.root):
            values: pl.Series = (
                engine.con.sql(
                    f"SELECT v FROM (SELECT DISTINCT {col} AS v FROM "
                    f"{scan_sql(src, engine.repo.root)} WHERE {col} IS NOT NULL) "
                    f"ORDER BY hash(v, {int(seed)}), v LIMIT {POOL}"
                )
                .pl()["v"]
                .cast(dtype, strict=False)
                .drop_nulls()
            )
        if values.len():
            return values
    return pl.Series([], dtype=dtype)


def _synthesize(
    dtype: pl.DataType, times: pl.Series, rng: np.random.Generator, pool: pl.Series
) -> pl.Series:
    """Request values of one column (see the module docstring): regular values from ``pool``
    when it has any, mixed with edge values."""
    n = times.len()
    kind = dtype_kind(dtype)
    edge = rng.random(n) < EDGE_SHARE
    pick = rng.integers(0, 6, size=n)
    drawn = rng.integers(0, max(pool.len(), 1), size=n)
    regular: list[Any]
    edges: list[Any]
    if kind == "float":
        regular = np.round(rng.lognormal(3.0, 1.0, size=n), 2).tolist()
        edges = [None, 0.0, -1.0, -250.5, 1e12, None]
    elif kind == "int":
        regular = rng.integers(1, 1000, size=n).tolist()
        edges = [None, 0, -1, -1000, 2**40, None]
    elif kind == "bool":
        regular = (rng.random(n) < 0.5).tolist()
        edges = [None] * 6
    elif kind == "string":
        regular = [f"v{i}" for i in rng.integers(0, 10, size=n)]
        edges = [None, "", None, "", None, ""]
    elif kind in ("date", "datetime"):
        back = pl.Series(rng.integers(0, DEFAULT_HORIZON // US, size=n)).cast(pl.Duration("us"))
        shifted = times - back
        regular = (shifted.dt.date() if kind == "date" else shifted).to_list()
        edges = [None] * 6
    else:
        regular, edges = [None] * n, [None] * 6
    if pool.len():
        regular = pool.gather(drawn).to_list()
    values = [edges[p] if e else r for r, e, p in zip(regular, edge.tolist(), pick, strict=True)]
    if kind == "datetime":
        series = pl.Series(values, dtype=pl.Datetime("us", "UTC"))
        if not getattr(dtype, "time_zone", None):
            series = series.dt.replace_time_zone(None)
        return series.cast(dtype, strict=False)
    if kind in ("int", "float"):
        return pl.Series(values, dtype=pl.Float64 if kind == "float" else pl.Int64).cast(
            dtype, strict=False
        )
    return pl.Series(values, dtype=dtype if kind != "date" else pl.Date, strict=False)


class RequestValues:
    """Where request values come from: the serving log's request data (read once when first
    needed), or same-named source columns (each read once)."""

    def __init__(
        self,
        read_serving_log: Callable[[], pl.DataFrame],
        engine: OfflineEngine,
        dtypes: dict[str, pl.DataType],
        seed: int,
    ) -> None:
        self.read_serving_log = read_serving_log
        self.engine = engine
        self.dtypes = dtypes
        self.seed = seed
        self._frame: pl.DataFrame | None = None
        self._pools: dict[str, pl.Series] = {}

    def pool(self, column: str, dtype: pl.DataType) -> pl.Series:
        """Values of a same-named source column (see :func:`_source_values`), read once."""
        if column not in self._pools:
            self._pools[column] = _source_values(self.engine, column, dtype, self.seed)
        return self._pools[column]

    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            log = self.read_serving_log()
            try:
                self._frame = decode_json_column(log, "request_data", self.dtypes)
            except (pl.exceptions.PolarsError, ValueError):
                self._frame = pl.DataFrame()  # logged before a dtype change: not usable
        return self._frame


def with_request_data(
    group: Group, spine: pl.DataFrame, logged: RequestValues, rng: np.random.Generator
) -> tuple[pl.DataFrame, str]:
    """The sampled spine with the group's request columns, and where they came from."""
    columns = group.request_columns
    if not columns:
        return spine, "none needed"
    frame = logged.frame()
    if frame.width and all(c in frame.columns for c in columns):
        usable = frame.select(list(columns)).filter(
            pl.any_horizontal(pl.col(c).is_not_null() for c in columns)
        )
        if usable.height:
            picks = rng.integers(0, usable.height, size=spine.height).tolist()
            return (
                spine.hstack(usable[picks]),
                f"serving log ({usable.height:,} records with {', '.join(columns)})",
            )
    values, found = [], []
    for column, dtype in columns.items():
        pool = logged.pool(column, dtype)
        if pool.len():
            found.append(column)
        values.append(_synthesize(dtype, spine[TIME], rng, pool).alias(column))
    where = f" ({', '.join(found)} from same-named source columns)" if found else ""
    return spine.hstack(values), f"synthesized with edge values{where}"
