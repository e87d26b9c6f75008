"""The comparison of one feature's served values with their offline replay: counts, statistics,
histogram, examples, likely causes and the verdict."""

from __future__ import annotations

import datetime as dt
from itertools import pairwise
from typing import Any

import numpy as np
import polars as pl

from featurestore._format import number
from featurestore.definitions._dtypes import dtype_name
from featurestore.monitoring._report import Verdict
from featurestore.monitoring._skew._causes import CAUSES, Cause, CauseContext
from featurestore.monitoring._skew._report import SkewFeatureResult
from featurestore.monitoring._skew._specs import Spec, view_col

__all__ = ["compare"]

EXAMPLES = 5  # mismatching rows shown per feature
TOP_PAIRS = 5  # most frequent (served, offline) pairs of mismatching categorical values
HISTOGRAM_CATEGORIES = 10
WATCHED_STATUSES = ("STALE", "DEFAULTED", "NOT_FOUND")


def compare(
    s: Spec, frame: pl.DataFrame | None, specs: list[Spec], event_times_logged: bool
) -> SkewFeatureResult:
    """Statistics, verdict, likely causes, histogram and examples of one feature."""
    rows = frame.filter(pl.col(s.col("m"))) if frame is not None else None
    result = SkewFeatureResult(
        ref=s.ref,
        owner=s.owner,
        dtype=dtype_name(s.feature.dtype),
        kind=s.kind,
        config=s.config,
        verdict=Verdict.INSUFFICIENT_DATA,
        reasons=[],
        rows_compared=0 if rows is None else rows.height,
        mismatches=0,
        served_null_offline_value=0,
        served_value_offline_null=0,
    )
    if rows is None or rows.height == 0:
        result.reasons.append("not served in the window: nothing to compare")
        return result
    _count(result, rows, s)
    served, offline = pl.col(s.col("s")), pl.col(s.col("o"))
    bad_rows = rows.filter(pl.col(s.col("bad")))
    if s.kind == "numeric":
        result.smape_pct, result.abs_diff_quantiles = _numeric_stats(rows, served, offline)
    else:
        result.top_pairs = _top_pairs(bad_rows, served, offline)
    context = CauseContext(s, bad_rows, specs, event_times_logged)
    found = [c for c in (cause(context) for cause in CAUSES) if c is not None]
    result.causes = {c.stat: c.rows for c in found if c.stat is not None}
    result.histogram = _histogram(rows, s)
    result.examples = _examples(bad_rows, s, event_times_logged)
    _judge(result, found)
    return result


def _count(result: SkewFeatureResult, rows: pl.DataFrame, s: Spec) -> None:
    """The mismatches of each kind and the shares of the watched served statuses."""
    status = pl.col(s.col("st"))
    counts = rows.select(
        pl.col(s.col("vm")).sum().alias("vm"),
        pl.col(s.col("sn")).sum().alias("sn"),
        pl.col(s.col("on")).sum().alias("on"),
        *((status == st).mean().alias(st) for st in WATCHED_STATUSES),
    ).row(0, named=True)
    result.mismatches = int(counts["vm"])
    result.served_null_offline_value = int(counts["sn"])
    result.served_value_offline_null = int(counts["on"])
    result.served_status_shares = {st: counts[st] for st in WATCHED_STATUSES}


def _numeric_stats(
    rows: pl.DataFrame, served: pl.Expr, offline: pl.Expr
) -> tuple[float | None, dict[str, float | None]]:
    """SMAPE in percent and quantiles of |served - offline| over rows where both are present."""
    a, b = served.cast(pl.Float64), offline.cast(pl.Float64)
    both = rows.filter(served.is_not_null() & offline.is_not_null())
    diff = (a - b).abs()
    denominator = a.abs() + b.abs()
    out = both.select(
        (pl.when(denominator == 0).then(0.0).otherwise(200.0 * diff / denominator))
        .mean()
        .alias("smape"),
        *(diff.quantile(q, "linear").alias(f"p{round(q * 100)}") for q in (0.5, 0.95, 0.99)),
    ).row(0, named=True)
    return out.pop("smape"), out


def _top_pairs(
    bad_rows: pl.DataFrame, served: pl.Expr, offline: pl.Expr
) -> list[tuple[Any, Any, int]]:
    """The most frequent (served, offline) pairs among the mismatching rows."""
    pairs = (
        bad_rows.group_by(served.alias("served"), offline.alias("offline"))
        .len()
        .sort(["len", "served", "offline"], descending=[True, False, False], nulls_last=True)
        .head(TOP_PAIRS)
    )
    return [(p["served"], p["offline"], int(p["len"])) for p in pairs.iter_rows(named=True)]


def _judge(result: SkewFeatureResult, causes: list[Cause]) -> None:
    """Verdict and reasons from the mismatch rate, the row count and the likely causes."""
    cfg = result.config
    rate = result.mismatch_rate or 0.0
    bad = result.mismatches + result.null_mismatches
    n = result.rows_compared
    what = (
        f"{result.mismatches:,} mismatches and {result.null_mismatches:,} null mismatches "
        f"in {n:,} rows compared ({rate:.3%})"
    )
    if rate > cfg.max_mismatch_rate:
        result.verdict = Verdict.FLAGGED
        result.reasons.append(f"{what} exceed the {cfg.max_mismatch_rate:.3%} limit")
    elif n < cfg.min_rows:
        result.verdict = Verdict.INSUFFICIENT_DATA
        result.reasons.append(
            f"only {n:,} rows compared: a mismatch rate within {cfg.max_mismatch_rate:.3%} is "
            f"not yet supported (it needs at least {cfg.min_rows:,}); so far {what}"
        )
    elif bad:
        result.verdict = Verdict.WARN
        result.reasons.append(f"{what}, within the {cfg.max_mismatch_rate:.3%} limit")
    else:
        result.verdict = Verdict.OK
    if bad:
        ranked = [c.reason for c in sorted(causes, key=lambda c: -c.rows) if c.reason]
        result.reasons.extend(
            ranked
            or [
                "no likely cause found: the same definition and the same source rows were "
                "used online and offline; see the examples"
            ]
        )


def _histogram(rows: pl.DataFrame, s: Spec) -> dict[str, Any] | None:
    """Shares of served and offline values per bin (offline deciles) or category, and null."""
    if s.kind == "temporal":
        return None
    served, offline = rows[s.col("s")], rows[s.col("o")]
    if s.kind == "numeric":
        bins = _numeric_bins(served, offline)
        if bins is None:
            return None
        labels, current, reference = bins
    else:
        labels, current, reference = _category_bins(served, offline)
    if served.null_count() or offline.null_count():
        labels.append("null")
        current.append(served.null_count())
        reference.append(offline.null_count())
    return {
        "labels": labels,
        "reference": [c / rows.height for c in reference],
        "current": [c / rows.height for c in current],
        "reference_label": "offline replay",
        "current_label": "served",
    }


def _numeric_bins(
    served: pl.Series, offline: pl.Series
) -> tuple[list[str], list[int], list[int]] | None:
    """Labels and served and offline counts over the offline deciles (None without values)."""
    a = served.drop_nulls().cast(pl.Float64).to_numpy()
    b = offline.drop_nulls().cast(pl.Float64).to_numpy()
    basis = b if b.size else a
    if not basis.size:
        return None
    edges = np.unique(np.quantile(basis, np.linspace(0.1, 0.9, 9)))
    labels = [f"<= {number(edges[0])}"]
    labels += [f"({number(lo)}, {number(hi)}]" for lo, hi in pairwise(edges)]
    labels.append(f"> {number(edges[-1])}")
    bins = len(edges) + 1
    current = np.bincount(np.searchsorted(edges, a, side="left"), minlength=bins).tolist()
    reference = np.bincount(np.searchsorted(edges, b, side="left"), minlength=bins).tolist()
    return labels, current, reference


def _category_bins(served: pl.Series, offline: pl.Series) -> tuple[list[str], list[int], list[int]]:
    """Labels and served and offline counts of the most frequent values, then "other"."""
    both = pl.concat([served.cast(pl.String), offline.cast(pl.String)]).drop_nulls()
    top = both.value_counts(sort=True, name="n").head(HISTOGRAM_CATEGORIES)
    labels = top[both.name].to_list()
    current = [int((served.cast(pl.String) == c).sum()) for c in labels]
    reference = [int((offline.cast(pl.String) == c).sum()) for c in labels]
    rest_s = served.drop_nulls().len() - sum(current)
    rest_o = offline.drop_nulls().len() - sum(reference)
    if rest_s or rest_o:
        labels.append("other")
        current.append(rest_s)
        reference.append(rest_o)
    return labels, current, reference


def _examples(bad_rows: pl.DataFrame, s: Spec, event_times_logged: bool) -> list[dict[str, Any]]:
    """The first few mismatching rows: request, keys, both values and the served status."""
    cols = [
        pl.col("request_id"),
        pl.col("request_time"),
        *(pl.col(k) for k in s.keys),
        *(pl.col(c) for c in s.request_columns),
        pl.col(s.col("s")).alias("served"),
        pl.col(s.col("o")).alias("offline"),
        pl.col(s.col("st")).alias("status"),
    ]
    if event_times_logged and not s.on_demand:
        cols += [
            pl.col(view_col("se", s.parts[0])).alias("served_event_time"),
            pl.col(view_col("oe", s.parts[0])).alias("offline_event_time"),
        ]
    return [
        {k: v.isoformat() if isinstance(v, dt.datetime | dt.date) else v for k, v in row.items()}
        for row in bad_rows.head(EXAMPLES).select(cols).iter_rows(named=True)
    ]
