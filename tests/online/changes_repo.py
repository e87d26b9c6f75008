"""The repo of the definition-change tests: a view of plain features and a view of aggregations
over their own sources, two on-demand views (one reading a whole view, one a ``"view:feature"``
reference), the rows they hold, and every kind of change to their definitions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import polars as pl
from conftest import USER, definitions, source, view

from .conftest import Row

D = dt.datetime
H = dt.timedelta(hours=1)
DAY = dt.timedelta(days=1)
T = D(2024, 3, 1)
SETTINGS = "materialization: {max_invalid_rate: 0.5}\nserving: {reload_interval_seconds: 0}\n"

ON_DEMAND = """
basket_request = RequestSource("basket_request", schema={"amount": pl.Float64})


@on_demand_feature_view(
    sources=[basket_request, items], schema=[Feature("per_unit", pl.Float64)]
)
def basket(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") / pl.col("price")).alias("per_unit"))


@on_demand_feature_view(
    sources=[basket_request, "items:ratio"], schema=[Feature("scaled", pl.Float64)]
)
def scaling(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") * pl.col("ratio")).alias("scaled"))
"""
DEFINITIONS = definitions(
    USER,
    view(
        "items",
        source("items_src", "data/items.parquet"),
        ttl="timedelta(days=10)",
        features=[
            'Feature("country", pl.String, default="unknown")',
            'Feature("stock", pl.Int64, ge=0, le=100)',
            'Feature("price", pl.Float64)',
            'Feature("in_stock", pl.Boolean, expr=pl.col("stock") > 5)',
            'Feature("ratio", pl.Float64, expr=(pl.col("price") / 3).round(3))',
        ],
    ),
    view(
        "txns",
        source("txns_src", "data/txns.parquet"),
        aggregations=[
            'Count(window=timedelta(days=1), name="n_1d")',
            'Sum("amount", window=timedelta(hours=6), name="spend_6h")',
            'Mean("amount", window=timedelta(hours=12), name="mean_12h")',
            'Max("amount", window=timedelta(hours=12), name="max_12h")',
        ],
    ),
    ON_DEMAND,
    doc="Definitions of the definition-change tests.",
)

ITEMS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us"),
    "ts2": pl.Datetime("us"),
    "country": pl.String(),
    "stock": pl.Int64(),
    "price": pl.Float64(),
}
TXNS_SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us"),
    "amount": pl.Float64(),
    "qty": pl.Int64(),
}


def item(uid: int, ts: D, ts2: D, country: str | None, stock: int, price: float) -> Row:
    return dict(zip(ITEMS_SCHEMA, (uid, ts, ts2, country, stock, price), strict=True))


# ts and ts2 pick different latest rows; user 2 is 5 days old (fresh under a 10-day ttl, stale
# under 3 days), user 3 20 days old, user 4's stock breaks le=20, user 5 has a row after T
ITEMS = [
    item(1, T - 4 * DAY, T - DAY, "FR", 10, 2.5),
    item(1, T - DAY, T - 4 * DAY, "FR", 12, 3.0),
    item(2, T - 5 * DAY, T - 5 * DAY, None, 6, 1.0),
    item(3, T - 20 * DAY, T - 2 * DAY, "GB", 3, 4.0),
    item(4, T - 2 * DAY, T - 2 * DAY, "DE", 50, 7.777),
    item(5, T - 2 * H, T - 2 * H, "US", 7, 1 / 3),
    item(5, T + DAY, T + DAY, "US", 99, 9.0),
]
ITEMS_V2 = [
    item(1, T - DAY, T - DAY, "NL", 30, 9.5),
    item(2, T - DAY, T - DAY, None, 1, 2.0),
    item(4, T - 6 * H, T - 6 * H, "IT", 5, 0.5),
    item(5, T - 2 * DAY, T - 2 * DAY, "ES", 8, 5.0),
]
TXNS: list[Row] = [
    dict(zip(TXNS_SCHEMA, event, strict=True))
    for event in [
        (1, T, 1000.0, 1),
        (1, T - H, 10.0, 2),
        (1, T - 5 * H, 20.0, 3),
        (1, T - 10 * H, 5.0, 4),
        (1, T - 20 * H, 1.0, 5),
        (1, T - 30 * H, 100.0, 6),
        (1, T - 3 * DAY, 7.0, 7),
        (2, T - 2 * H, 3.0, None),
        (2, T - 40 * H, 7.0, 8),
        (3, T - 36 * H, 2.0, 9),
        (4, T - 3 * H, 2.0, 10),
        (4, T + H, 9.0, 11),
        (5, T - 7 * H, None, 12),
    ]
]
USERS = [1, 2, 3, 4, 5, 6]  # user 6 has no data
AMOUNTS = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
ITEM_REFS = [f"items:{f}" for f in ("country", "stock", "price", "in_stock", "ratio")]
ON_DEMAND_REFS = ["basket:per_unit", "scaling:scaled"]


@dataclass(frozen=True)
class Change:
    """An edit of the definitions and the references it leaves served under their earlier
    fingerprint (``outdated``) or withheld as STALE (``withheld``) until rebuilt."""

    edits: tuple[tuple[str, str], ...]
    outdated: frozenset[str]
    withheld: frozenset[str] = field(default_factory=frozenset)


CHANGES = {
    "expression_argument": Change(
        (('pl.col("stock") > 5', 'pl.col("stock") > 6'),),
        frozenset({"items:in_stock", "basket:per_unit"}),
    ),
    "expression_round_feeds_a_view_feature_source": Change(
        ((".round(3)", ".round(2)"),),
        frozenset({"items:ratio", "basket:per_unit", "scaling:scaled"}),
    ),
    "dtype": Change(
        (('Feature("stock", pl.Int64', 'Feature("stock", pl.Float64'),),
        frozenset({"items:stock", "basket:per_unit"}),
    ),
    "bounds": Change(
        (("ge=0, le=100", "ge=0, le=20"),),
        frozenset({"items:stock", "basket:per_unit"}),
    ),
    "default": Change(
        (('default="unknown"', 'default="none"'),),
        frozenset({"items:country", "basket:per_unit"}),
    ),
    "ttl": Change(
        (("ttl=timedelta(days=10)", "ttl=timedelta(days=3)"),),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "source_path": Change(
        (("data/items.parquet", "data/items_v2.parquet"),),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "source_timestamp_field": Change(
        (
            (
                'path="data/items.parquet", timestamp_field="ts"',
                'path="data/items.parquet", timestamp_field="ts2"',
            ),
        ),
        frozenset({*ITEM_REFS, *ON_DEMAND_REFS}),
    ),
    "window_grows": Change(
        (
            ("Count(window=timedelta(days=1)", "Count(window=timedelta(days=2)"),
            ('Sum("amount", window=timedelta(hours=6)', 'Sum("amount", window=timedelta(hours=12)'),
        ),
        frozenset({"txns:n_1d"}),
    ),
    "window_shrinks": Change(
        (
            ("Count(window=timedelta(days=1)", "Count(window=timedelta(hours=8)"),
            (
                'Mean("amount", window=timedelta(hours=12)',
                'Mean("amount", window=timedelta(hours=3)',
            ),
        ),
        frozenset(),
    ),
    "on_demand_body": Change(
        (('pl.col("amount") / pl.col("price")', 'pl.col("amount") * pl.col("price")'),),
        frozenset(),
    ),
    "added_feature": Change(
        (
            (
                '        Feature("in_stock"',
                '        Feature("doubled", pl.Float64, expr=pl.col("price") * 2),\n'
                '        Feature("in_stock"',
            ),
            (
                '        Max("amount", window=timedelta(hours=12), name="max_12h"),',
                '        Max("amount", window=timedelta(hours=12), name="max_12h"),\n'
                '        Max("amount", window=timedelta(hours=2), name="max_2h"),\n'
                '        Sum("qty", window=timedelta(hours=6), name="qty_6h", dtype="Int64"),',
            ),
        ),
        frozenset(),
        frozenset({"items:doubled", "txns:qty_6h"}),
    ),
}
