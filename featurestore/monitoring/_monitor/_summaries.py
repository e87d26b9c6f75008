"""Hourly summaries of served values: per hour and feature, the counts a drift statistic needs,
counted at the reference's fixed points (CDF points and bins, categories), so that the summary
of any window is the sum of its hours' rows, with no rescan of the log.

A row holds: rows served, nulls, the count of each status, the sum and sum of squares of the
values about the reference's mean, min and max, the cumulative counts at the reference's CDF
points, the tail sums and bin counts (numeric), the counts of the reference's categories and of
unseen ones (categorical and boolean: false and true), and the replayed rows compared and
matched by the sampled consistency check.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from featurestore._profiles import TOP_K, FeatureProfile, _bins, feature_kind, profile_frame
from featurestore._value_rules import FeatureStatus
from featurestore.serving._serving_log import decode_json_column

__all__ = [
    "LIST_COLUMNS",
    "STATUS_COLUMNS",
    "SUMMARY_SCHEMA",
    "sum_summaries",
    "summarize_log",
    "window_profile",
]

STATUS_COLUMNS = {s.value: s.value.lower() for s in FeatureStatus}
LIST_COLUMNS = ("cdf_counts", "bin_counts", "category_counts")
_ADDED = ("rows", "nulls", *STATUS_COLUMNS.values(), "s", "ss", "tail_below", "tail_above")
_ADDED += ("unseen", "compared", "matched")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# dtypes the grouped query decodes itself, as json_transform types; others go through Polars
_JSON_TYPES: dict[pl.DataType, str] = {pl.Float64(): "DOUBLE", pl.Int64(): "BIGINT"}
_JSON_TYPES |= {pl.String(): "VARCHAR", pl.Boolean(): "BOOLEAN"}

SUMMARY_SCHEMA: dict[str, pl.DataType] = {
    "hour": pl.Datetime("us", "UTC"),
    "feature": pl.String(),
    "rows": pl.Int64(),
    "nulls": pl.Int64(),
    **{c: pl.Int64() for c in STATUS_COLUMNS.values()},
    "s": pl.Float64(),
    "ss": pl.Float64(),
    "min": pl.Float64(),
    "max": pl.Float64(),
    "tail_below": pl.Float64(),
    "tail_above": pl.Float64(),
    "cdf_counts": pl.List(pl.Int64()),
    "bin_counts": pl.List(pl.Int64()),
    "category_counts": pl.List(pl.Int64()),
    "unseen": pl.Int64(),
    "compared": pl.Int64(),
    "matched": pl.Int64(),
}


def vocabulary(reference: FeatureProfile) -> list[Any]:
    """The categories a categorical or boolean feature is counted by."""
    if reference.kind == "boolean":
        return [False, True]
    known = reference.categories if reference.categories is not None else reference.top_categories
    return [v for v, _ in known]


def _summary_row(
    hour: Any, ref: str, profile: FeatureProfile, reference: FeatureProfile, values: pl.Series
) -> dict[str, Any]:
    """A profile taken at ``reference`` as a summary row (statuses filled by the caller)."""
    n = profile.non_null
    row = _empty_row(hour, ref, profile.count, profile.null_count)
    if reference.kind == "numeric" and n and profile.cdf_counts:
        s = ((profile.mean or 0.0) - (reference.mean or 0.0)) * n
        var = (profile.std or 0.0) ** 2 * (n - 1) if n > 1 else 0.0
        row |= {"s": s, "ss": var + s * s / n, "min": profile.min, "max": profile.max}
        row |= {"tail_below": profile.tail_sums[0], "tail_above": profile.tail_sums[1]}
        row |= {"cdf_counts": profile.cdf_counts, "bin_counts": profile.bin_counts}
    elif reference.kind == "boolean":
        trues = int(values.sum() or 0)
        row["category_counts"] = [n - trues, trues]
    elif reference.kind == "categorical":
        row["category_counts"] = [c for _, c in profile.categories or []]
        row["unseen"] = profile.unseen_count or 0
    return row


def _empty_row(hour: Any, ref: str, count: int, nulls: int) -> dict[str, Any]:
    row: dict[str, Any] = {"hour": hour, "feature": ref, "rows": count, "nulls": nulls}
    row |= {"compared": 0, "matched": 0, "unseen": 0, **{c: [] for c in LIST_COLUMNS}}
    row |= {"s": 0.0, "ss": 0.0, "min": None, "max": None, "tail_below": 0.0, "tail_above": 0.0}
    return row


def _fast(ref: str, reference: FeatureProfile, dtype: pl.DataType) -> bool:
    """Whether the grouped query counts ``ref``: a plain dtype of the reference's kind."""
    return any(dtype == d for d in _JSON_TYPES) and feature_kind(dtype) == reference.kind


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _spec(types: Mapping[str, str]) -> str:
    """A ``json_transform`` structure as a SQL literal."""
    return _lit(json.dumps(dict(types)))


def _value_sql(i: int, ref: str, reference: FeatureProfile) -> list[str]:
    """The aggregates of one fast feature, as ``profile_frame`` counts them at a reference."""
    x = f"v[{_lit(ref)}]"
    out = [f"count({x}) AS c{i}"]
    if reference.kind == "numeric" and reference.cdf_points:
        d, c = f"CAST({x} AS DOUBLE)", repr(float(reference.mean or 0.0))
        out += [f"sum({d} - {c}) AS s{i}", f"sum(({d} - {c}) * ({d} - {c})) AS ss{i}"]
        out += [f"min({d}) AS min{i}", f"max({d}) AS max{i}"]
        out += [f"sum(greatest($lo{i} - {d}, 0)) AS below{i}"]
        out += [f"sum(greatest({d} - $hi{i}, 0)) AS above{i}"]
    elif reference.kind == "boolean":
        out.append(f"count_if({x}) AS t{i}")
    elif reference.kind == "categorical":
        out.append(f"histogram(CAST({x} AS VARCHAR)) AS h{i}")
    return out


def _grouped_sql(
    fast: Mapping[str, FeatureProfile], monitored: list[str], dtypes: Mapping[str, pl.DataType]
) -> tuple[str, str, dict[str, Any]]:
    """Two statements: one decoding the monitored values (``v``) of the records and their
    statuses (``s``) unless the text is the list's all-PRESENT text (most records: ``allp``,
    counted without decoding), then one query of each fast feature's aggregates and each
    monitored feature's status counts per hour and feature list."""
    types = {r: next(t for d, t in _JSON_TYPES.items() if d == dtypes[r]) for r in fast}
    values = f'json_transform("values", {_spec(types)})' if fast else "NULL"
    statuses = f"json_transform(statuses, {_spec(dict.fromkeys(monitored, 'VARCHAR'))})"
    decode = (
        f"CREATE TEMP TABLE d AS SELECT hour_us, gid, {values} AS v, "
        "coalesce(statuses = list_extract($tpl, gid + 1), false) AS allp, "
        f"CASE WHEN allp THEN NULL ELSE {statuses} END AS s FROM t"
    )
    aggs = ["count(*) AS n", "count_if(allp) AS allp"]
    params: dict[str, Any] = {}
    for i, (ref, reference) in enumerate(fast.items()):
        aggs += _value_sql(i, ref, reference)
        if reference.kind == "numeric" and reference.cdf_points:
            params |= dict(zip((f"lo{i}", f"hi{i}"), reference.tail_points, strict=True))
    for j, ref in enumerate(monitored):
        x = f"s[{_lit(ref)}]"
        aggs += [f"count_if({x} = {_lit(st)}) AS st{j}_{k}" for k, st in enumerate(STATUS_COLUMNS)]
    return decode, f"SELECT hour_us, gid, {', '.join(aggs)} FROM d GROUP BY ALL", params


def _fast_row(
    hour: dt.datetime, ref: str, reference: FeatureProfile, got: Mapping[str, Any], i: int
) -> dict[str, Any]:
    """A fast feature's summary row from its aggregates ``got`` (statuses filled later)."""
    n = int(got[f"c{i}"])
    row = _empty_row(hour, ref, int(got["n"]), int(got["n"]) - n)
    if reference.kind == "numeric" and n and reference.cdf_points:
        row |= {"s": float(got[f"s{i}"]), "ss": float(got[f"ss{i}"])}
        row |= {"min": float(got[f"min{i}"]), "max": float(got[f"max{i}"])}
        row |= {"tail_below": float(got[f"below{i}"]), "tail_above": float(got[f"above{i}"])}
        p = FeatureProfile(dtype="", kind="numeric", count=n, null_count=0)
        p.cdf_points, p.cdf_counts = reference.cdf_points, list(got[f"h{i}"])
        row |= {"cdf_counts": p.cdf_counts, "bin_counts": _bins(p, reference.bin_edges)}
    elif reference.kind == "boolean":
        trues = int(got[f"t{i}"] or 0)
        row["category_counts"] = [n - trues, trues]
    elif reference.kind == "categorical":
        found = got[f"h{i}"] or {}
        counts = [int(found.get(v, 0)) for v in vocabulary(reference)]
        row["category_counts"] = counts
        row["unseen"] = n - sum(counts) if reference.categories is not None else 0
    return row


def _feature_lists(log: pl.DataFrame) -> tuple[np.ndarray, list[list[str]]]:
    """A small integer per record naming its feature list, and the lists."""
    key = pl.col("features").list.join("\n")  # as one text: far cheaper to group than lists
    groups = log.select(key.alias("k"), "features").with_row_index("i")
    groups = groups.group_by("k").agg("i", pl.col("features").first())
    ids = np.zeros(log.height, dtype=np.int32)
    for k, rows in enumerate(groups["i"]):
        ids[rows.to_numpy()] = k
    return ids, [list(f) for f in groups["features"].to_list()]


def _all_present(features: list[str]) -> str:
    """The statuses text the serving log writes when every feature of a list is PRESENT."""
    status = FeatureStatus.PRESENT.value
    return json.dumps(dict.fromkeys(features, status), separators=(",", ":"), ensure_ascii=False)


def _grouped(
    log: pl.DataFrame,
    lists: list[list[str]],
    fast: Mapping[str, FeatureProfile],
    monitored: list[str],
    dtypes: Mapping[str, pl.DataType],
) -> list[dict[str, Any]]:
    """The grouped query's result rows, one per hour and feature list, with the CDF counts
    of the numeric features (``h<i>``)."""
    decode, sql, params = _grouped_sql(fast, monitored, dtypes)
    con = duckdb.connect()
    try:
        con.register("t", log.to_arrow(compat_level=pl.CompatLevel.newest()))
        con.execute(decode, {"tpl": [_all_present(f) for f in lists]})
        cursor = con.execute(sql, params)
        names = [d[0] for d in cursor.description or []]
        got = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        _add_cdf_counts(con, got, fast)
        return got
    finally:
        con.close()


def _add_cdf_counts(
    con: duckdb.DuckDBPyConnection, got: list[dict[str, Any]], fast: Mapping[str, FeatureProfile]
) -> None:
    """Each numeric feature's cumulative counts at its reference's CDF points, per hour and
    feature list: binned in NumPy (DuckDB's ``histogram`` over bins costs far more)."""
    numeric = {
        i: r for i, (r, p) in enumerate(fast.items()) if p.kind == "numeric" and p.cdf_points
    }
    if not numeric:
        return
    cols = ", ".join(f"CAST(v[{_lit(r)}] AS DOUBLE) AS x{i}" for i, r in numeric.items())
    frame = con.sql(f"SELECT hour_us // 3600000000 AS h, gid, {cols} FROM d").pl()
    lists = int(frame["gid"].max() or 0) + 1
    keys, group = np.unique(
        frame["h"].to_numpy() * lists + frame["gid"].to_numpy(), return_inverse=True
    )
    at = [int(np.searchsorted(keys, r["hour_us"] // 3600000000 * lists + r["gid"])) for r in got]
    for i, ref in numeric.items():
        points = np.asarray(fast[ref].cdf_points, dtype=np.float64)
        x = frame[f"x{i}"].to_numpy()
        keep, width = ~np.isnan(x), points.size + 1
        index = group[keep] * width + np.searchsorted(points, x[keep])
        bins = np.bincount(index, minlength=keys.size * width).reshape(-1, width)
        cdf = np.cumsum(bins[:, :-1], axis=1)
        for row, k in zip(got, at, strict=True):
            row[f"h{i}"] = cdf[k].tolist()


def _fallback_rows(
    log: pl.DataFrame,
    gid: int,
    served: list[str],
    reference: Mapping[str, FeatureProfile],
    dtypes: Mapping[str, pl.DataType],
) -> dict[tuple[Any, str], dict[str, Any]]:
    """Rows of features the grouped query does not decode (temporal and other dtypes), one
    ``profile_frame`` per hour, for the records of list ``gid``."""
    group = log.filter(pl.col("gid") == gid)
    frame = pl.concat(
        [group.select("hour"), decode_json_column(group, "values", {r: dtypes[r] for r in served})],
        how="horizontal",
    )
    out = {}
    for (hour,), part in frame.partition_by("hour", as_dict=True, maintain_order=True).items():
        profiles = profile_frame(part, served, reference=reference)
        for ref in served:
            out[(hour, ref)] = _summary_row(hour, ref, profiles[ref], reference[ref], part[ref])
    return out


def _rows_of(
    got: Mapping[str, Any],
    hour: dt.datetime,
    served: list[str],
    monitored: list[str],
    fast: Mapping[str, FeatureProfile],
    slow: Mapping[tuple[Any, str], dict[str, Any]],
) -> list[dict[str, Any]]:
    """The summary rows of one hour and feature list from the grouped query's ``got`` (and
    the rows of the features it does not decode, ``slow``), with their status counts."""
    position = {r: i for i, r in enumerate(fast)}
    rows = []
    for j, ref in enumerate(monitored):
        if ref not in served:
            continue
        if ref in fast:
            row = _fast_row(hour, ref, fast[ref], got, position[ref])
        else:
            row = slow[(hour, ref)]
        row |= {c: int(got[f"st{j}_{k}"] or 0) for k, c in enumerate(STATUS_COLUMNS.values())}
        row[STATUS_COLUMNS[FeatureStatus.PRESENT.value]] += int(got["allp"] or 0)
        rows.append(row)
    return rows


def summarize_log(
    log: pl.DataFrame,
    reference: Mapping[str, FeatureProfile],
    dtypes: Mapping[str, pl.DataType],
) -> pl.DataFrame:
    """Summary rows (one per hour and feature) of serving log records, for the features of
    ``reference`` they served; ``dtypes`` gives each feature's declared dtype."""
    if log.is_empty():
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    ids, lists = _feature_lists(log)
    served = [list(dict.fromkeys(r for r in f if r in reference and r in dtypes)) for f in lists]
    monitored = list(dict.fromkeys(r for s in served for r in s))
    if not monitored:
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    fast = {r: reference[r] for r in monitored if _fast(r, reference[r], dtypes[r])}
    truncated = pl.col("request_time").dt.truncate("1h")
    log = log.with_columns(hour=truncated, hour_us=truncated.dt.epoch("us"), gid=pl.Series(ids))
    slow = {
        gid: _fallback_rows(log, gid, [r for r in s if r not in fast], reference, dtypes)
        for gid, s in enumerate(served)
        if any(r not in fast for r in s)
    }
    rows: list[dict[str, Any]] = []
    for got in _grouped(log, lists, fast, monitored, dtypes):
        gid, hour = int(got["gid"]), _EPOCH + dt.timedelta(microseconds=int(got["hour_us"]))
        rows += _rows_of(got, hour, served[gid], monitored, fast, slow.get(gid, {}))
    return sum_summaries(pl.DataFrame(rows, schema=SUMMARY_SCHEMA, orient="row"))


def _summed_lists(column: pl.Series, group: np.ndarray, groups: int) -> pl.Series:
    """Per group, the element-wise sum of the lists of ``column`` whose rows ``group`` maps
    to it (empty and null lists count nothing; a group with none gets an empty list)."""
    arrow = column.rechunk().to_arrow()
    lens = pc.fill_null(pc.list_value_length(arrow), 0).to_numpy().astype(np.int64)
    values = pc.list_flatten(arrow).to_numpy().astype(np.float64)
    width = np.zeros(groups, dtype=np.int64)
    np.maximum.at(width, group, lens)
    ends = np.cumsum(width)
    first_of_row = (ends - width)[group]
    row_start = np.cumsum(lens) - lens
    element = np.arange(values.size) - np.repeat(row_start, lens) + np.repeat(first_of_row, lens)
    total = np.rint(np.bincount(element, weights=values, minlength=int(ends[-1] if groups else 0)))
    offsets = pa.array(np.concatenate([[0], ends]), type=pa.int64())
    lists = pa.LargeListArray.from_arrays(offsets, pa.array(total.astype(np.int64)))
    return pl.Series(column.name, lists, dtype=pl.List(pl.Int64()))


def sum_summaries(rows: pl.DataFrame, by: Sequence[str] = ("hour", "feature")) -> pl.DataFrame:
    """Rows with the same ``by`` values added into one: counts, sums and lists added, the
    least min and the greatest max kept."""
    if rows.is_empty():
        return rows
    keys = list(by)
    aggs = [*[pl.col(c).sum() for c in _ADDED], pl.col("min").min(), pl.col("max").max()]
    out = rows.with_row_index("__fs_row").group_by(keys, maintain_order=True).agg(*aggs, "__fs_row")
    members = out["__fs_row"]
    group = np.empty(rows.height, dtype=np.int64)
    group[members.explode().to_numpy()] = np.repeat(np.arange(out.height), members.list.len())
    out = out.with_columns(_summed_lists(rows[c], group, out.height) for c in LIST_COLUMNS)
    return out.select([*keys, *[c for c in SUMMARY_SCHEMA if c not in keys and c in out.columns]])


def window_profile(row: Mapping[str, Any], reference: FeatureProfile) -> FeatureProfile:
    """The profile, taken at ``reference``, of the values a (summed) summary row counts."""
    count, nulls = int(row["rows"]), int(row["nulls"])
    n = count - nulls
    p = FeatureProfile(
        dtype=reference.dtype,
        kind=reference.kind,
        count=count,
        null_count=nulls,
        at_reference=True,
    )
    if reference.kind == "numeric" and reference.cdf_points:
        p.cdf_points, p.tail_points = list(reference.cdf_points), list(reference.tail_points)
        p.bin_edges = list(reference.bin_edges)
        p.cdf_counts = list(row["cdf_counts"]) or [0] * len(reference.cdf_points)
        p.bin_counts = list(row["bin_counts"]) or [0] * (len(reference.bin_edges) + 1)
        p.tail_sums = [float(row["tail_below"]), float(row["tail_above"])]
        if n:
            s, ss = float(row["s"]), float(row["ss"])
            p.mean = float(reference.mean or 0.0) + s / n
            p.std = math.sqrt(max(ss - s * s / n, 0.0) / (n - 1)) if n > 1 else None
            p.min, p.max = row["min"], row["max"]
    elif reference.kind in ("categorical", "boolean"):
        counts = list(row["category_counts"]) or [0] * len(vocabulary(reference))
        categories = [(v, int(c)) for v, c in zip(vocabulary(reference), counts, strict=True)]
        p.categories = categories
        p.top_categories = sorted(
            (kv for kv in categories if kv[1]), key=lambda kv: (-kv[1], str(kv[0]))
        )[:TOP_K]
        p.other_count = n - sum(c for _, c in p.top_categories)
        p.unseen_count = int(row["unseen"]) if reference.categories is not None else None
    return p
