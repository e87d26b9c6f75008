"""The repo of the aggregation tests: a view with plain features and a dozen aggregations (every
kind, three window lengths, one with odd microseconds) over a source with a created timestamp,
a view keyed by two entities over a UTC-aware source without one, an on-demand view over both
kinds and a service; the same definitions described for the brute-force oracle, and the check
of a training set against it."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
from conftest import MERCHANT, USER, definitions, rows_frame, source, view

from featurestore import FeatureStore

from .oracle import (
    OracleAggregation,
    OracleFeature,
    OracleOnDemand,
    OracleView,
    expected_training_set,
)

Row = dict[str, Any]
W1 = dt.timedelta(hours=1)
W2 = dt.timedelta(hours=3, microseconds=7)
W3 = dt.timedelta(days=1)
TTL = dt.timedelta(minutes=30)

ON_DEMAND = """
txn_request = RequestSource("txn_request", schema={"req_amount": pl.Float64})


@on_demand_feature_view(
    sources=[txn_request, user_txn],
    schema={"above_mean": pl.Float64, "first_in_3h": pl.Boolean},
)
def txn_vs_history(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("req_amount") - pl.col("mean_3h")).alias("above_mean"),
        (pl.col("n_3h") == 0).alias("first_in_3h"),
    )


svc = FeatureService("svc", [pair_txn, "user_txn:spend_1h", "txn_vs_history:above_mean"])
"""
DEFINITIONS = definitions(
    """
    W1 = timedelta(hours=1)
    W2 = timedelta(hours=3, microseconds=7)
    W3 = timedelta(days=1)
    """,
    USER,
    MERCHANT,
    view(
        "user_txn",
        source("txns", "data/txns.parquet", "event_time", created="created"),
        ttl="timedelta(minutes=30)",
        features=[
            'Feature("amount", pl.Float64)',
            'Feature("amount_x2", pl.Float64, expr=pl.col("amount") * 2)',
        ],
        aggregations=[
            'Sum("amount", window=W1, name="spend_1h")',
            'Sum("qty", window=W2, name="qty_3h", dtype=pl.Int64)',
            'Sum("qty", window=W1, name="qty_1h_float")',
            'Count(window=W1, name="n_1h")',
            'Count(window=W2, name="n_3h")',
            'Mean("amount", window=W2, name="mean_3h")',
            'Min("qty", window=W1, name="min_qty_1h", dtype=pl.Int64)',
            'Max("amount", window=W2, name="max_3h")',
            'Last("merchant_id", window=W2, name="last_merchant_3h", dtype=pl.String)',
            'Last("amount", window=W1, name="last_amount_1h")',
            'StdDev("amount", window=W2, name="sd_3h")',
            'CountDistinct("merchant_id", window=W2, name="merchants_3h")',
        ],
    ),
    view(
        "pair_txn",
        source("pair_txns", "data/pair_txns.parquet"),
        entities="user, merchant",
        aggregations=[
            'Count(window=W3, name="pair_n_1d")',
            'Sum("amount", window=W1, name="pair_spend_1h")',
            'Last("amount", window=W3, name="pair_last_1d")',
            'Max("amount", window=W3, name="pair_max_1d")',
        ],
    ),
    ON_DEMAND,
    doc="Definitions of the aggregation test repo.",
)

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "user_txn": {
        "user_id": pl.Int64(),
        "event_time": pl.Datetime("us"),
        "created": pl.Datetime("us"),
        "amount": pl.Float64(),
        "qty": pl.Int64(),
        "merchant_id": pl.String(),
    },
    "pair_txn": {
        "user_id": pl.Int64(),
        "merchant_id": pl.String(),
        "ts": pl.Datetime("us", "UTC"),
        "amount": pl.Float64(),
    },
}
FILES = {"user_txn": "txns.parquet", "pair_txn": "pair_txns.parquet"}


def _above_mean(row: Row) -> Row:
    amount, mean = row["req_amount"], row["mean_3h"]
    return {
        "above_mean": None if amount is None or mean is None else amount - mean,
        "first_in_3h": row["n_3h"] == 0,
    }


ORACLE_VIEWS = (
    OracleView(
        name="user_txn",
        keys=("user_id",),
        timestamp="event_time",
        created="created",
        ttl=TTL,
        features=(
            OracleFeature("amount", "float"),
            OracleFeature(
                "amount_x2",
                "float",
                compute=lambda r: None if r["amount"] is None else r["amount"] * 2,
            ),
        ),
        aggregations=(
            OracleAggregation("spend_1h", "sum", W1, "amount"),
            OracleAggregation("qty_3h", "sum", W2, "qty", out="int"),
            OracleAggregation("qty_1h_float", "sum", W1, "qty"),
            OracleAggregation("n_1h", "count", W1, out="int"),
            OracleAggregation("n_3h", "count", W2, out="int"),
            OracleAggregation("mean_3h", "mean", W2, "amount"),
            OracleAggregation("min_qty_1h", "min", W1, "qty", out="int"),
            OracleAggregation("max_3h", "max", W2, "amount"),
            OracleAggregation("last_merchant_3h", "last", W2, "merchant_id", out="string"),
            OracleAggregation("last_amount_1h", "last", W1, "amount"),
            OracleAggregation("sd_3h", "stddev", W2, "amount"),
            OracleAggregation("merchants_3h", "count_distinct", W2, "merchant_id", out="int"),
        ),
    ),
    OracleView(
        name="pair_txn",
        keys=("user_id", "merchant_id"),
        timestamp="ts",
        aggregations=(
            OracleAggregation("pair_n_1d", "count", W3, out="int"),
            OracleAggregation("pair_spend_1h", "sum", W1, "amount"),
            OracleAggregation("pair_last_1d", "last", W3, "amount"),
            OracleAggregation("pair_max_1d", "max", W3, "amount"),
        ),
    ),
)
ORACLE_ON_DEMAND = (
    OracleOnDemand(
        name="txn_vs_history",
        request_columns=("req_amount",),
        views=("user_txn",),
        features=(OracleFeature("above_mean", "float"), OracleFeature("first_in_3h", "bool")),
        compute=_above_mean,
    ),
)
KIND_DTYPES = {
    "float": pl.Float64(),
    "int": pl.Int64(),
    "string": pl.String(),
    "bool": pl.Boolean(),
}
OUT_KINDS = {
    f"{v.name}:{x.name}": (x.out if isinstance(x, OracleAggregation) else x.kind)
    for v in ORACLE_VIEWS
    for x in (*v.features, *v.aggregations)
} | {f"txn_vs_history:{f.name}": f.kind for f in ORACLE_ON_DEMAND[0].features}
AGG_REFS = tuple(f"{v.name}:{a.name}" for v in ORACLE_VIEWS for a in v.aggregations)
ALL_REFS = tuple(OUT_KINDS)


def write_sources(root: Path, user_txn: Sequence[Row] = (), pair_txn: Sequence[Row] = ()) -> dict:
    """Write both source files; returns the rows per view, for the oracle."""
    data = root / "data"
    data.mkdir(parents=True, exist_ok=True)
    rows = {"user_txn": list(user_txn), "pair_txn": list(pair_txn)}
    for name, view_rows in rows.items():
        rows_frame(SCHEMAS[name], view_rows).write_parquet(data / FILES[name])
    return rows


@dataclass
class AggRepo:
    """An applied repo whose source files each test rewrites."""

    root: Path
    store: FeatureStore

    def write(self, user_txn: Sequence[Row] = (), pair_txn: Sequence[Row] = ()) -> dict:
        return write_sources(self.root, user_txn, pair_txn)


def spine_frame(rows: list[Row], zone: str | None = None) -> pl.DataFrame:
    frame = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Int64,
            "merchant_id": pl.String,
            "event_timestamp": pl.Datetime("us"),
            "req_amount": pl.Float64,
        },
    )
    if zone is not None:
        frame = frame.with_columns(
            pl.col("event_timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
        )
    return frame


def same(a: Any, b: Any) -> bool:
    """Exact for ints, strings and bools (1 is not 1.0); floats to 1e-9, as sums and means
    depend on the order of addition."""
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return type(a) is type(b) and a == b


def check(
    repo: AggRepo,
    spine: pl.DataFrame,
    refs: Sequence[str],
    sources: dict[str, list[Row]],
    window_above: float,
    full_feature_names: bool = False,
) -> pl.DataFrame:
    """Build a training set on one path and assert it equals the oracle's, statuses too."""
    repo.store.offline.window_above = window_above
    ts = repo.store.get_training_set(
        spine, features=list(refs), full_feature_names=full_feature_names
    )
    out = ts.to_polars()
    want_rows, want_counts = expected_training_set(
        spine.to_dicts(),
        refs,
        ORACLE_VIEWS,
        sources,
        ORACLE_ON_DEMAND,
        full_feature_names=full_feature_names,
        request_kinds={"req_amount": "float"},
    )
    columns = [r.replace(":", "__") if full_feature_names else r.split(":")[1] for r in refs]
    assert out.columns == [*spine.columns, *columns]
    assert out.select(spine.columns).equals(spine)
    for ref, column in zip(refs, columns, strict=True):
        assert out.schema[column] == KIND_DTYPES[OUT_KINDS[ref]], column
    for i, (got, want) in enumerate(zip(out.to_dicts(), want_rows, strict=True)):
        wrong = {c: (got[c], want[c]) for c in columns if not same(got[c], want[c])}
        assert not wrong, f"path {window_above}, spine row {i} {spine.row(i)}: {wrong}"
    assert {f.ref: f.statuses for f in ts.metadata.features} == {
        ref: dict(c) for ref, c in want_counts.items()
    }
    return out
