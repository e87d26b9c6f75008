"""Per-feature profiles computed in DuckDB: counts, nulls, moments, quantiles, CDF counts, decile
bin counts and categories. Saved with training sets as the reference for drift checks.

A numeric profile counts its values at ``cdf_points``: every one of its 101 percentiles and the
double just below each, so its CDF is exact there, ties and point masses included. A profile
taken *at* a reference (``profile_frame(frame, reference=profiles)``) counts at the reference's
points, bin edges and categories instead of its own: it needs no sort, compares with the
reference point by point, and profiles of several frames taken at one reference merge exactly
(:func:`merge_profiles`). NaN counts as null (validation never passes NaN on).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Any

import duckdb
import numpy as np
import polars as pl
from pydantic import BaseModel, Field

from featurestore.definitions._dtypes import dtype_kind, dtype_name
from featurestore.errors import ReportError
from featurestore.sources._sql import ident

__all__ = ["FeatureProfile", "feature_kind", "merge_profiles", "profile_frame"]

QUANTILE_POINTS = [i / 100 for i in range(101)]
TOP_K = 20
MAX_CATEGORIES = 1000


class FeatureProfile(BaseModel):
    """A summary of one column; numeric fields are None or empty for other kinds and for
    empty columns."""

    dtype: str
    kind: str  # numeric, categorical, boolean or temporal
    count: int
    null_count: int
    mean: float | None = None
    std: float | None = None
    min: Any = None
    max: Any = None
    quantiles: list[float] = Field(default_factory=list)  # 0%, 1%, ..., 100%; own profiles only
    cdf_points: list[float] = Field(default_factory=list)  # ascending
    cdf_counts: list[int] = Field(default_factory=list)  # non-null values <= each point
    # [lo, hi]: the 1st and 99th percentile (of the reference, when taken at one), and
    # [sum of (lo - x) over x below lo, sum of (x - hi) over x above hi]: exact tail integrals
    tail_points: list[float] = Field(default_factory=list)
    tail_sums: list[float] = Field(default_factory=list)
    bin_edges: list[float] = Field(default_factory=list)  # deciles; outer bins are open
    bin_counts: list[int] = Field(default_factory=list)  # len(bin_edges) + 1 bins
    top_categories: list[tuple[Any, int]] = Field(default_factory=list)
    other_count: int = 0  # non-null values outside top_categories
    distinct_count: int | None = None
    # every category with its count when there are at most MAX_CATEGORIES (else None); in a
    # profile taken at a reference, the reference's categories with their counts here
    categories: list[tuple[Any, int]] | None = None
    unseen_count: int | None = None  # taken at a reference: values outside its categories
    at_reference: bool = False  # counted at another profile's points and categories

    @property
    def non_null(self) -> int:
        return self.count - self.null_count

    def cdf(self, points: list[float]) -> np.ndarray:
        """Non-null values at or below each of ``points``, which must be among cdf_points."""
        at = np.searchsorted(self.cdf_points, points, side="right") - 1
        return np.asarray(self.cdf_counts, dtype=np.int64)[at]


def feature_kind(dtype: pl.DataType) -> str:
    """How a report treats a dtype: numeric, boolean, temporal or categorical."""
    kind = dtype_kind(dtype)
    if kind in ("int", "float", "decimal"):
        return "numeric"
    if kind == "bool":
        return "boolean"
    if kind in ("date", "datetime"):
        return "temporal"
    return "categorical"


def _dtype_text(dtype: pl.DataType) -> str:
    return dtype_name(dtype) if dtype_kind(dtype) != "other" else str(dtype)


def _cdf_points_of(quantiles: list[float]) -> list[float]:
    """Each distinct quantile and the double just below it, ascending."""
    distinct = set(quantiles)
    return sorted(distinct | {math.nextafter(q, -math.inf) for q in distinct})


def _counts_at(histogram: Mapping[float, int] | None, points: list[float]) -> list[int]:
    """Cumulative counts at ``points`` from a DuckDB ``histogram(x, points)`` map, whose key
    ``k`` counts the values in (previous key, k] (past the last point: the overflow bin)."""
    items = sorted((k, n) for k, n in (histogram or {}).items() if k is not None)
    keys = np.array([k for k, _ in items], dtype=np.float64)
    cum = np.concatenate([[0], np.cumsum([n for _, n in items], dtype=np.int64)])
    counts: list[int] = cum[np.searchsorted(keys, points, side="right")].astype(int).tolist()
    return counts


def _bins(profile: FeatureProfile, edges: list[float]) -> list[int]:
    """Counts per bin (-inf, e1], (e1, e2], ..., (e_last, inf) from the CDF counts."""
    cum = [0, *profile.cdf(edges).tolist(), profile.non_null]
    return [b - a for a, b in itertools.pairwise(cum)]


def _numeric_sql(i: int, col: str, reference: FeatureProfile | None) -> list[str]:
    x = f"CAST({ident(col)} AS DOUBLE)"
    if reference is None:
        return [
            f"avg({x}) AS mean{i}",
            f"stddev_samp({x}) AS std{i}",
            f"min({x}) AS min{i}",
            f"max({x}) AS max{i}",
            f"quantile_cont({x}, {QUANTILE_POINTS}) AS q{i}",
        ]
    # centred on the reference mean: sums of squares stay accurate, and cost less than stddev
    c = repr(float(reference.mean or 0.0))
    return [
        f"sum({x} - {c}) AS s{i}",
        f"sum(({x} - {c}) * ({x} - {c})) AS ss{i}",
        f"min({x}) AS min{i}",
        f"max({x}) AS max{i}",
        *_tails_and_counts_sql(i, x),
    ]


def _tails_and_counts_sql(i: int, x: str) -> list[str]:
    return [
        f"sum(greatest($lo{i} - {x}, 0)) AS below{i}",
        f"sum(greatest({x} - $hi{i}, 0)) AS above{i}",
        f"histogram({x}, $p{i}) AS h{i}",
    ]


def _check_reference(column: str, kind: str, reference: FeatureProfile) -> None:
    if kind != reference.kind:
        raise ReportError(
            f"column {column!r} is {kind} but its reference profile is {reference.kind}; "
            "compare columns of the same kind (cast the column first)"
        )
    if kind == "numeric" and reference.non_null and not reference.cdf_points:
        raise ReportError(
            f"the reference profile of {column!r} has no CDF points (it was saved by an older "
            "version); profile the reference rows again with profile_frame()"
        )


def profile_frame(
    frame: pl.DataFrame,
    columns: list[str] | None = None,
    *,
    reference: Mapping[str, FeatureProfile] | None = None,
) -> dict[str, FeatureProfile]:
    """Profile ``columns`` (default: all) of ``frame`` in DuckDB: two scans (one when taken at
    a reference) plus one GROUP BY per categorical or boolean column.

    With ``reference``, each column found there is profiled at its reference profile: counted
    at the reference's CDF points, bin edges and categories, without quantiles of its own.
    """
    columns = columns if columns is not None else frame.columns
    if not columns:
        return {}
    refs = {c: reference[c] for c in columns if reference and c in reference}
    data = frame.select(columns)
    floats = [c for c in columns if dtype_kind(data.schema[c]) == "float"]
    if floats:
        data = data.with_columns(pl.col(floats).fill_nan(None))
    kinds = {
        c: refs[c].kind if data.schema[c] == pl.Null and c in refs else feature_kind(data.schema[c])
        for c in columns
    }
    for c, ref in refs.items():
        _check_reference(c, kinds[c], ref)
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("t", data.to_arrow())
        return _profile(con, data, columns, kinds, refs)
    finally:
        con.close()


def _profile(
    con: duckdb.DuckDBPyConnection,
    data: pl.DataFrame,
    columns: list[str],
    kinds: dict[str, str],
    refs: dict[str, FeatureProfile],
) -> dict[str, FeatureProfile]:
    stats: list[str] = ["count(*) AS n"]
    params: dict[str, Any] = {}
    for i, c in enumerate(columns):
        stats.append(f"count({ident(c)}) AS c{i}")
        ref = refs.get(c)
        if kinds[c] == "numeric" and (ref is None or ref.cdf_points):
            stats += _numeric_sql(i, c, ref)
            if ref is not None:
                params |= _point_params(i, ref)
        elif kinds[c] == "temporal":
            stats += [f"min({ident(c)}) AS min{i}", f"max({ident(c)}) AS max{i}"]
    (row,) = con.execute(f"SELECT {', '.join(stats)} FROM t", params).fetchall()
    got = dict(zip([s.rsplit(" AS ", 1)[1] for s in stats], row, strict=True))
    total = int(got["n"])

    profiles: dict[str, FeatureProfile] = {}
    own: dict[str, int] = {}  # numeric columns profiled at their own quantiles -> position
    for i, c in enumerate(columns):
        p = FeatureProfile(
            dtype=_dtype_text(data.schema[c]),
            kind=kinds[c],
            count=total,
            null_count=total - int(got[f"c{i}"]),
            min=got.get(f"min{i}"),
            max=got.get(f"max{i}"),
            at_reference=c in refs,
        )
        if kinds[c] == "numeric" and c in refs and refs[c].cdf_points:
            _fill_at_reference(p, got, i, refs[c])
        elif kinds[c] == "numeric" and c not in refs and p.non_null:
            p.mean, p.std = got[f"mean{i}"], got[f"std{i}"]
            p.quantiles = [float(q) for q in got[f"q{i}"]]
            p.cdf_points = _cdf_points_of(p.quantiles)
            p.tail_points = [p.quantiles[1], p.quantiles[99]]
            p.bin_edges = p.quantiles[10:100:10]
            own[c] = i
        profiles[c] = p
    if own:
        sql = [
            e
            for c, i in own.items()
            for e in _tails_and_counts_sql(i, f"CAST({ident(c)} AS DOUBLE)")
        ]
        params = {k: v for c, i in own.items() for k, v in _point_params(i, profiles[c]).items()}
        (brow,) = con.execute(f"SELECT {', '.join(sql)} FROM t", params).fetchall()
        got = dict(zip([e.rsplit(" AS ", 1)[1] for e in sql], brow, strict=True))
        for c, i in own.items():
            _fill_counts(profiles[c], got, i)
    for c in columns:
        if kinds[c] in ("categorical", "boolean"):
            _fill_categories(con, profiles[c], c, refs.get(c))
    return profiles


def _point_params(i: int, at: FeatureProfile) -> dict[str, Any]:
    lo, hi = at.tail_points
    return {f"lo{i}": lo, f"hi{i}": hi, f"p{i}": at.cdf_points}


def _fill_counts(p: FeatureProfile, got: dict[str, Any], i: int) -> None:
    """CDF counts, tail sums and bin counts from the histogram scan."""
    p.cdf_counts = _counts_at(got[f"h{i}"], p.cdf_points)
    p.tail_sums = [float(got[f"below{i}"] or 0.0), float(got[f"above{i}"] or 0.0)]
    p.bin_counts = _bins(p, p.bin_edges)


def _fill_at_reference(p: FeatureProfile, got: dict[str, Any], i: int, ref: FeatureProfile) -> None:
    """Moments, CDF counts, tails and bins of a column counted at ``ref``'s points."""
    n = p.non_null
    p.cdf_points, p.tail_points = list(ref.cdf_points), list(ref.tail_points)
    p.bin_edges = list(ref.bin_edges)
    _fill_counts(p, got, i)
    if n:
        s, ss = float(got[f"s{i}"]), float(got[f"ss{i}"])
        p.mean = float(ref.mean or 0.0) + s / n
        p.std = math.sqrt(max(ss - s * s / n, 0.0) / (n - 1)) if n > 1 else None


def _fill_categories(
    con: duckdb.DuckDBPyConnection, p: FeatureProfile, column: str, ref: FeatureProfile | None
) -> None:
    """Top categories, distinct count and category counts from one GROUP BY over ``column``."""
    value = ident(column) if p.kind == "boolean" else f"CAST({ident(column)} AS VARCHAR)"
    counts = con.sql(
        f"SELECT {value} AS value, count(*) AS n FROM t WHERE {ident(column)} IS NOT NULL "
        "GROUP BY 1 ORDER BY n DESC, 1"
    ).pl()
    p.top_categories = [(v, int(n)) for v, n in counts.head(TOP_K).iter_rows()]
    p.other_count = p.non_null - sum(n for _, n in p.top_categories)
    p.distinct_count = counts.height
    if ref is None:
        if counts.height <= MAX_CATEGORIES:
            p.categories = [(v, int(n)) for v, n in counts.iter_rows()]
        return
    vocabulary = [
        v for v, _ in (ref.categories if ref.categories is not None else ref.top_categories)
    ]
    if counts.height:
        wanted = pl.DataFrame({"value": vocabulary}, schema={"value": counts.schema["value"]})
        found = wanted.join(counts, on="value", how="left", maintain_order="left")
        p.categories = [(v, int(n or 0)) for v, n in found.iter_rows()]
    else:
        p.categories = [(v, 0) for v in vocabulary]
    if ref.categories is not None:
        p.unseen_count = p.non_null - sum(n for _, n in p.categories)


def merge_profiles(a: FeatureProfile, b: FeatureProfile) -> FeatureProfile:
    """One profile of the rows of both, e.g. two days of serving, each taken at one reference.

    Counts, CDF counts, bins, tails, moments, bounds and category counts merge exactly. A merged
    numeric profile has no quantiles of its own; merged top categories are approximate when a
    side recorded more than ``MAX_CATEGORIES`` categories.
    """
    if a.kind != b.kind:
        raise ReportError(f"cannot merge a {a.kind} profile with a {b.kind} profile")
    if a.at_reference != b.at_reference:
        raise ReportError(
            "cannot merge a profile taken at a reference with one taken at its own quantiles"
        )
    if (
        a.kind == "numeric"
        and a.non_null
        and b.non_null
        and (
            a.cdf_points != b.cdf_points
            or a.bin_edges != b.bin_edges
            or a.tail_points != b.tail_points
        )
    ):
        raise ReportError(
            "cannot merge numeric profiles counted at different points; take both at one "
            "reference with profile_frame(frame, reference=...) to merge them"
        )
    out = (a if a.non_null or not b.non_null else b).model_copy(deep=True)
    out.count, out.null_count = a.count + b.count, a.null_count + b.null_count
    present = [p for p in (a, b) if p.min is not None]
    out.min = min(p.min for p in present) if present else None
    out.max = max(p.max for p in present) if present else None
    if a.kind == "numeric" and a.non_null and b.non_null:
        _merge_numeric(out, a, b)
    elif a.kind in ("categorical", "boolean"):
        _merge_categories(out, a, b)
    return out


def _merge_numeric(out: FeatureProfile, a: FeatureProfile, b: FeatureProfile) -> None:
    na, nb = a.non_null, b.non_null
    n = na + nb
    ma, mb = float(a.mean or 0.0), float(b.mean or 0.0)
    m2 = sum(float(p.std or 0.0) ** 2 * (p.non_null - 1) for p in (a, b))
    m2 += (mb - ma) ** 2 * na * nb / n
    out.mean = ma + (mb - ma) * nb / n
    out.std = math.sqrt(m2 / (n - 1))
    out.quantiles = []
    out.cdf_counts = [x + y for x, y in zip(a.cdf_counts, b.cdf_counts, strict=True)]
    out.tail_sums = [x + y for x, y in zip(a.tail_sums, b.tail_sums, strict=True)]
    out.bin_counts = [x + y for x, y in zip(a.bin_counts, b.bin_counts, strict=True)]


def _known_counts(p: FeatureProfile) -> dict[Any, int]:
    return dict(p.top_categories) | dict(p.categories or [])


def _merge_categories(out: FeatureProfile, a: FeatureProfile, b: FeatureProfile) -> None:
    ca, cb = _known_counts(a), _known_counts(b)
    merged = {v: n for v in ca | cb if (n := ca.get(v, 0) + cb.get(v, 0))}
    out.top_categories = sorted(merged.items(), key=lambda kv: (-kv[1], str(kv[0])))[:TOP_K]
    out.other_count = out.non_null - sum(n for _, n in out.top_categories)
    complete_tops = a.other_count == 0 and b.other_count == 0  # every value is in a top list
    out.categories, out.distinct_count = None, len(merged) if complete_tops else None
    if a.categories is not None and b.categories is not None:
        ka, kb = dict(a.categories), dict(b.categories)
        both = {v: ka.get(v, 0) + kb.get(v, 0) for v in ka | kb}
        if a.at_reference:  # one vocabulary: the reference's, in its order
            out.categories = list(both.items())
        elif len(both) <= MAX_CATEGORIES:
            out.categories = sorted(both.items(), key=lambda kv: (-kv[1], str(kv[0])))
            out.distinct_count = len(both)
    out.unseen_count = (
        a.unseen_count + b.unseen_count
        if a.unseen_count is not None and b.unseen_count is not None
        else None
    )
