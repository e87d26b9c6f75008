"""Per-feature profiles computed in DuckDB: counts, nulls, moments, quantiles, decile bin
counts and top categories. Saved with training sets as the reference for drift checks."""

from __future__ import annotations

from typing import Any

import duckdb
import polars as pl
from pydantic import BaseModel, Field

from featurestore.definitions.dtypes import dtype_kind, dtype_name
from featurestore.offline.sql import ident

__all__ = ["FeatureProfile", "profile_frame"]

QUANTILE_POINTS = [i / 100 for i in range(101)]
TOP_K = 20


class FeatureProfile(BaseModel):
    """A summary of one column; numeric fields are None for other kinds and empty columns."""

    dtype: str
    kind: str  # numeric, categorical, boolean or temporal
    count: int
    null_count: int
    mean: float | None = None
    std: float | None = None
    min: Any = None
    max: Any = None
    quantiles: list[float] = Field(default_factory=list)  # at 0%, 1%, ..., 100%
    bin_edges: list[float] = Field(default_factory=list)  # deciles; outer bins are open
    bin_counts: list[int] = Field(default_factory=list)  # len(bin_edges) + 1 bins
    top_categories: list[tuple[Any, int]] = Field(default_factory=list)
    other_count: int = 0
    distinct_count: int | None = None


def _kind(dtype: pl.DataType) -> str:
    kind = dtype_kind(dtype)
    if kind in ("int", "float", "decimal"):
        return "numeric"
    if kind == "bool":
        return "boolean"
    if kind in ("date", "datetime"):
        return "temporal"
    return "categorical"


def profile_frame(
    frame: pl.DataFrame, columns: list[str] | None = None
) -> dict[str, FeatureProfile]:
    """Profile ``columns`` (default: all) of ``frame`` in a few DuckDB scans."""
    columns = columns if columns is not None else frame.columns
    if not columns:
        return {}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", frame.select(columns).to_arrow())
    kinds = {c: _kind(frame.schema[c]) for c in columns}
    stats: list[str] = ["count(*) AS n"]
    for i, c in enumerate(columns):
        col = ident(c)
        stats.append(f"count({col}) AS c{i}")
        if kinds[c] == "numeric":
            x = f"CAST({col} AS DOUBLE)"
            stats += [
                f"avg({x}) AS mean{i}",
                f"stddev_samp({x}) AS std{i}",
                f"min({x}) AS min{i}",
                f"max({x}) AS max{i}",
                f"quantile_cont({x}, {QUANTILE_POINTS}) AS q{i}",
            ]
        elif kinds[c] == "temporal":
            stats += [f"min({col}) AS min{i}", f"max({col}) AS max{i}"]
        if kinds[c] in ("categorical", "boolean"):
            stats.append(f"approx_count_distinct({col}) AS d{i}")
    row = con.execute(f"SELECT {', '.join(stats)} FROM t").fetchone()
    assert row is not None
    names = ["n"] + [s.rsplit(" AS ", 1)[1] for s in stats[1:]]
    got = dict(zip(names, row, strict=True))
    total = int(got["n"])

    profiles: dict[str, FeatureProfile] = {}
    bins: list[str] = []
    for i, c in enumerate(columns):
        non_null = int(got[f"c{i}"])
        p = FeatureProfile(
            dtype=dtype_name(frame.schema[c])
            if dtype_kind(frame.schema[c]) != "other"
            else str(frame.schema[c]),
            kind=kinds[c],
            count=total,
            null_count=total - non_null,
            min=got.get(f"min{i}"),
            max=got.get(f"max{i}"),
            distinct_count=got.get(f"d{i}"),
        )
        if kinds[c] == "numeric" and non_null:
            p.mean, p.std = got[f"mean{i}"], got[f"std{i}"]
            p.quantiles = [float(q) for q in got[f"q{i}"]]
            p.bin_edges = p.quantiles[10:100:10]
            col = f"CAST({ident(c)} AS DOUBLE)"
            edges = ", ".join(repr(e) for e in p.bin_edges)
            # bin = 1-based position of the first edge >= x; past the last edge: no position
            bins.append(
                f"histogram(CASE WHEN {col} IS NOT NULL THEN coalesce("
                f"list_position(list_transform([{edges}], lambda e: {col} <= e), true), "
                f"{len(p.bin_edges) + 1}) END) AS b{i}"
            )
        profiles[c] = p
    if bins:
        brow = con.execute(f"SELECT {', '.join(bins)} FROM t").fetchone()
        assert brow is not None
        numeric = [c for c in columns if profiles[c].bin_edges]
        for c, hist in zip(numeric, brow, strict=True):
            p = profiles[c]
            counts = [0] * (len(p.bin_edges) + 1)
            for pos, n in (hist or {}).items():
                if pos is not None:
                    counts[pos - 1] += int(n)
            p.bin_counts = counts
    for c in columns:
        if kinds[c] in ("categorical", "boolean") and profiles[c].null_count < total:
            col = ident(c)
            top = con.execute(
                f"SELECT {col}, count(*) AS n FROM t WHERE {col} IS NOT NULL "
                f"GROUP BY 1 ORDER BY n DESC, 1 LIMIT {TOP_K}"
            ).fetchall()
            p = profiles[c]
            p.top_categories = [(v, int(n)) for v, n in top]
            p.other_count = total - p.null_count - sum(n for _, n in p.top_categories)
    con.close()
    return profiles
