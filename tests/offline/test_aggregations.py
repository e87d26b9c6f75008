"""Windowed aggregations in training sets, checked against the brute-force oracle.

The repo has a view with plain features and a dozen aggregations (every kind, three window
lengths, one with odd microseconds) over a source with a created timestamp, and a view keyed by
two entities over a UTC-aware source without one. Event times sit on a coarse grid, so ties
and events exactly at a window edge are common; spine times are aimed at ``event + window``
give or take a microsecond. Every check runs on both SQL paths (join and window) and on the
default choice between them.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import textwrap
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore
from featurestore.definitions import (
    Count,
    CountDistinct,
    Entity,
    FeatureView,
    FileSource,
    Last,
    Mean,
    StdDev,
    Sum,
)
from featurestore.errors import ApplyError, SchemaMismatchError
from featurestore.offline._point_in_time import WINDOW_ABOVE, AggregationScan, point_in_time_sql
from featurestore.sources._sql import SPINE_ROW, SPINE_TS, ident, timestamp_sql

from .oracle import (
    OracleAggregation,
    OracleFeature,
    OracleOnDemand,
    OracleView,
    expected_training_set,
)

Row = dict[str, Any]
US = dt.timedelta(microseconds=1)
W1 = dt.timedelta(hours=1)
W2 = dt.timedelta(hours=3, microseconds=7)
W3 = dt.timedelta(days=1)
TTL = dt.timedelta(minutes=30)
BASE = dt.datetime(2024, 3, 10, 3, 0)
STEP = dt.timedelta(minutes=20)
PATHS = [0.0, WINDOW_ABOVE, math.inf]  # window path, the default choice, join path
ZONES = [None, "UTC", "America/New_York"]
SLOW = [HealthCheck.too_slow]

DEFINITIONS = '''
"""Definitions of the aggregation test repo."""

from datetime import timedelta

import polars as pl

from featurestore import (
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions import Count, CountDistinct, Last, Max, Mean, Min, StdDev, Sum

W1 = timedelta(hours=1)
W2 = timedelta(hours=3, microseconds=7)
W3 = timedelta(days=1)

user = Entity("user", join_keys=["user_id"])
merchant = Entity("merchant", join_keys=["merchant_id"])

user_txn = FeatureView(
    name="user_txn",
    entities=[user],
    owner="tests",
    ttl=timedelta(minutes=30),
    source=FileSource(
        name="txns",
        path="data/txns.parquet",
        timestamp_field="event_time",
        created_timestamp_field="created",
    ),
    features=[
        Feature("amount", pl.Float64),
        Feature("amount_x2", pl.Float64, expr=pl.col("amount") * 2),
    ],
    aggregations=[
        Sum("amount", window=W1, name="spend_1h"),
        Sum("qty", window=W2, name="qty_3h", dtype=pl.Int64),
        Sum("qty", window=W1, name="qty_1h_float"),
        Count(window=W1, name="n_1h"),
        Count(window=W2, name="n_3h"),
        Mean("amount", window=W2, name="mean_3h"),
        Min("qty", window=W1, name="min_qty_1h", dtype=pl.Int64),
        Max("amount", window=W2, name="max_3h"),
        Last("merchant_id", window=W2, name="last_merchant_3h", dtype=pl.String),
        Last("amount", window=W1, name="last_amount_1h"),
        StdDev("amount", window=W2, name="sd_3h"),
        CountDistinct("merchant_id", window=W2, name="merchants_3h"),
    ],
)

pair_txn = FeatureView(
    name="pair_txn",
    entities=[user, merchant],
    owner="tests",
    source=FileSource(name="pair_txns", path="data/pair_txns.parquet", timestamp_field="ts"),
    aggregations=[
        Count(window=W3, name="pair_n_1d"),
        Sum("amount", window=W1, name="pair_spend_1h"),
        Last("amount", window=W3, name="pair_last_1d"),
        Max("amount", window=W3, name="pair_max_1d"),
    ],
)

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
'''

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
    for view, view_rows in rows.items():
        schema = SCHEMAS[view]
        frame = pl.DataFrame(
            [[r.get(c) for r in view_rows] for c in schema], schema=schema, orient="col"
        )
        frame.write_parquet(data / FILES[view])
    return rows


@dataclass
class AggRepo:
    """An applied repo whose source files each test rewrites."""

    root: Path
    store: FeatureStore

    def write(self, user_txn: Sequence[Row] = (), pair_txn: Sequence[Row] = ()) -> dict:
        return write_sources(self.root, user_txn, pair_txn)


@pytest.fixture(scope="module")
def agg_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AggRepo]:
    root = tmp_path_factory.mktemp("agg") / "repo"
    root.mkdir()
    (root / "featurestore.yaml").write_text("project: agg_tests\n")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())
    write_sources(root)
    store = FeatureStore(root)
    store.apply()
    yield AggRepo(root, store)
    store.close()


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


# --- property test ---------------------------------------------------------------------------

OFFSETS = [0, 0, 0, 1, -1, 7, -7]
grid_times = st.builds(
    lambda k, j: BASE + k * STEP + j * US, st.integers(0, 14), st.sampled_from(OFFSETS)
)


def maybe(strategy: st.SearchStrategy[Any], weight: int = 3) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), *[strategy] * weight)


def txn_rows(
    times: st.SearchStrategy[dt.datetime], created: st.SearchStrategy[dt.datetime]
) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 1, 1, 2, 3, None]),
            "event_time": maybe(times, weight=10),
            "created": maybe(created),
            "amount": maybe(st.integers(-8, 40).map(lambda n: n / 4)),
            "qty": maybe(st.integers(-5, 20)),
            "merchant_id": maybe(st.sampled_from(["m1", "m2", "m3"])),
        }
    )


def pair_rows(times: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[Row]:
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, None]),
            "merchant_id": st.sampled_from(["m1", "m2", None]),
            "ts": times.map(lambda t: t.replace(tzinfo=dt.UTC)),
            "amount": maybe(st.integers(-4, 20).map(lambda n: n / 2)),
        }
    )


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(grid_times, min_size=1, max_size=3, unique=True))
    times = st.one_of(*[st.sampled_from(pool)] * 3, grid_times)
    # unique in (key, event time, created): ties there would make the plain features
    # ambiguous; the pair source, with no plain features, has ties of every kind
    identity = ("user_id", "event_time", "created")
    created = st.one_of(st.sampled_from(pool), grid_times)
    txns = draw(
        st.lists(
            txn_rows(times, created),
            min_size=1,
            max_size=25,
            unique_by=lambda r: tuple(r[c] for c in identity),
        )
    )
    for row in draw(st.lists(st.sampled_from(txns), max_size=4)):  # twins tied on event time
        twin = draw(txn_rows(times, created)) | {"user_id": row["user_id"]}
        twin["event_time"] = row["event_time"]
        if all(tuple(twin[c] for c in identity) != tuple(r[c] for c in identity) for r in txns):
            txns.append(twin)
    pairs = draw(st.lists(pair_rows(times), max_size=12))
    anchors = [(r["user_id"], r["merchant_id"], r["event_time"]) for r in txns]
    anchors += [(r["user_id"], r["merchant_id"], r["ts"].replace(tzinfo=None)) for r in pairs]
    anchors = [a for a in anchors if a[2] is not None]
    random_row = st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, 3, 4, None]),
            "merchant_id": st.sampled_from(["m1", "m2", "m9", None]),
            "event_timestamp": grid_times,
            "req_amount": maybe(st.integers(0, 20).map(float)),
        }
    )
    spine = []
    for _ in range(draw(st.integers(1, 20))):
        row = draw(random_row)
        if anchors and draw(st.integers(0, 3)):  # aimed at an event's keys and window edge
            user, merchant, t = draw(st.sampled_from(anchors))
            offset = draw(st.sampled_from([dt.timedelta(0), W1, W2, W3]))
            when = t + offset + draw(st.sampled_from([0, 1, -1])) * US
            row |= {"user_id": user, "merchant_id": merchant, "event_timestamp": when}
        spine.append(row)
    return {
        "txns": txns,
        "pairs": pairs,
        "spine": spine,
        "refs": draw(
            st.one_of(
                st.just(list(ALL_REFS)),
                st.lists(st.sampled_from(ALL_REFS), min_size=1, max_size=8, unique=True),
            )
        ),
        "zone": draw(st.sampled_from(ZONES)),
        "path": draw(st.sampled_from(PATHS)),
        "full_feature_names": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None, suppress_health_check=SLOW)
@given(scenario=scenarios())
def test_aggregations_match_oracle(agg_repo: AggRepo, scenario: dict[str, Any]) -> None:
    """Every kind, window edge, tie, null and path agrees with the oracle."""
    written = agg_repo.write(scenario["txns"], scenario["pairs"])
    check(
        agg_repo,
        spine_frame(scenario["spine"], scenario["zone"]),
        scenario["refs"],
        written,
        scenario["path"],
        scenario["full_feature_names"],
    )


# --- edges, empty windows, nulls and ties ----------------------------------------------------


def txn(t: dt.datetime, **values: Any) -> Row:
    """A user_txn row of user 1 at ``t``."""
    row = {"user_id": 1, "event_time": t, "created": t, "amount": 1.0, "qty": 1}
    return row | {"merchant_id": "m1"} | values


@pytest.mark.parametrize("path", PATHS)
def test_window_edges(agg_repo: AggRepo, path: float) -> None:
    """An event at T is in ``(t - window, t)`` from T + 1us to T + window - 1us only."""
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t, amount=2.5, qty=4)])
    times = [t - US, t, t + US, t + W1 - US, t + W1, t + W2 - US, t + W2]
    spine = spine_frame([{"user_id": 1, "event_timestamp": when} for when in times])
    refs = ["user_txn:n_1h", "user_txn:n_3h", "user_txn:spend_1h", "user_txn:mean_3h"]
    out = check(agg_repo, spine, refs, written, path)
    assert out["n_1h"].to_list() == [0, 0, 1, 1, 0, 0, 0]
    assert out["n_3h"].to_list() == [0, 0, 1, 1, 1, 1, 0]
    assert out["spend_1h"].to_list() == [0.0, 0.0, 2.5, 2.5, 0.0, 0.0, 0.0]
    assert out["mean_3h"].to_list() == [None, None, 2.5, 2.5, 2.5, 2.5, None]


@pytest.mark.parametrize("path", PATHS)
def test_entity_without_events(agg_repo: AggRepo, path: float) -> None:
    """No events: counts and sums are 0 and PRESENT; the other kinds null and NOT_FOUND.
    A null key finds no events either."""
    written = agg_repo.write([txn(BASE)], [])
    spine = spine_frame(
        [
            {"user_id": 4, "merchant_id": "m1", "event_timestamp": BASE + STEP},
            {"user_id": None, "merchant_id": "m1", "event_timestamp": BASE + STEP},
        ]
    )
    out = check(agg_repo, spine, AGG_REFS, written, path)
    zero = {
        "spend_1h": 0.0,
        "qty_3h": 0,
        "qty_1h_float": 0.0,
        "n_1h": 0,
        "n_3h": 0,
        "merchants_3h": 0,
        "pair_n_1d": 0,
        "pair_spend_1h": 0.0,
    }
    for name in (r.split(":")[1] for r in AGG_REFS):
        assert out[name].to_list() == [zero.get(name)] * 2, name
    ts = agg_repo.store.get_training_set(spine, features=["user_txn:n_1h", "user_txn:mean_3h"])
    assert {f.ref: f.statuses for f in ts.metadata.features} == {
        "user_txn:n_1h": {"PRESENT": 2},
        "user_txn:mean_3h": {"NOT_FOUND": 2},
    }


@pytest.mark.parametrize("path", PATHS)
def test_null_values_are_ignored_except_by_count(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write(
        [
            txn(t - 3 * US, amount=1.0, qty=5, merchant_id="m2"),
            txn(t - 2 * US, amount=None, qty=None, merchant_id=None),
            txn(t - US, amount=None, qty=2, merchant_id=None),
        ]
    )
    spine = spine_frame([{"user_id": 1, "event_timestamp": t}])
    out = check(agg_repo, spine, AGG_REFS[:12], written, path)
    got = out.row(0, named=True)
    assert got["n_1h"] == 3
    assert got["spend_1h"] == 1.0 and got["qty_3h"] == 7 and got["min_qty_1h"] == 2
    assert got["mean_3h"] == 1.0 and got["max_3h"] == 1.0 and got["sd_3h"] is None
    assert got["last_amount_1h"] == 1.0 and got["last_merchant_3h"] == "m2"
    assert got["merchants_3h"] == 1


@pytest.mark.parametrize("path", PATHS)
def test_all_null_values_give_zero_sums_and_not_found(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t - US, amount=None, qty=None, merchant_id=None)])
    spine = spine_frame([{"user_id": 1, "event_timestamp": t}])
    refs = ["user_txn:n_1h", "user_txn:spend_1h", "user_txn:qty_3h", "user_txn:mean_3h"]
    out = check(agg_repo, spine, refs, written, path)
    assert out.row(0) == (1, None, t, None, 1, 0.0, 0, None)


@pytest.mark.parametrize("path", PATHS)
def test_stddev_is_the_sample_deviation_and_null_below_two(agg_repo: AggRepo, path: float) -> None:
    t = BASE + 3 * STEP
    written = agg_repo.write([txn(t - 2 * US, amount=2.0), txn(t - US, amount=4.0)])
    spine = spine_frame(
        [{"user_id": 1, "event_timestamp": t - US}, {"user_id": 1, "event_timestamp": t}]
    )
    out = check(agg_repo, spine, ["user_txn:sd_3h"], written, path)
    assert out["sd_3h"].to_list() == [None, pytest.approx(math.sqrt(2.0))]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("reverse", [False, True])
def test_last_ties_go_to_created_then_to_the_greatest_value(
    agg_repo: AggRepo, path: float, reverse: bool
) -> None:
    """Tied event times: the latest created wins, a null created loses; tied created too, or a
    source without created times: the greatest value, whatever the file order."""
    t = BASE + 3 * STEP
    rows = [
        txn(t, created=t + US, amount=1.0, merchant_id="late"),
        txn(t, created=None, amount=9.0, merchant_id="null"),
        txn(t, created=t, amount=5.0, merchant_id="early"),
        txn(t - US, created=t + W1, amount=7.0, merchant_id="older"),
    ]
    tied = [
        txn(t, created=t, amount=a, merchant_id=m) | {"user_id": 2}
        for a, m in [(3.0, "b"), (8.0, "a"), (6.0, "c")]
    ]
    pairs = [
        {"user_id": 1, "merchant_id": "m1", "ts": t.replace(tzinfo=dt.UTC), "amount": a}
        for a in (2.0, 4.0, 3.0)
    ]
    if reverse:
        rows, tied, pairs = rows[::-1], tied[::-1], pairs[::-1]
    written = agg_repo.write([*rows, *tied], pairs)
    spine = spine_frame(
        [{"user_id": u, "merchant_id": "m1", "event_timestamp": t + US} for u in (1, 2)]
    )
    refs = ["user_txn:last_amount_1h", "user_txn:last_merchant_3h", "pair_txn:pair_last_1d"]
    out = check(agg_repo, spine, refs, written, path)
    assert out["last_amount_1h"].to_list() == [1.0, 8.0]
    assert out["last_merchant_3h"].to_list() == ["late", "c"]  # its own value breaks the tie
    assert out["pair_last_1d"].to_list() == [4.0, None]


def test_mixed_with_plain_expression_and_on_demand_features(agg_repo: AggRepo) -> None:
    """Aggregations, plain and expression features (with their ttl, which does not apply to
    aggregations) and on-demand features over aggregation outputs, through a service too."""
    t = BASE + 3 * STEP
    written = agg_repo.write(
        [txn(t - W1 + US, amount=4.0), txn(t - 2 * W1, amount=10.0)],
        [{"user_id": 1, "merchant_id": "m1", "ts": (t - W1).replace(tzinfo=dt.UTC), "amount": 3.0}],
    )
    spine = spine_frame(
        [
            {"user_id": 1, "merchant_id": "m1", "event_timestamp": t, "req_amount": 10.0},
            {"user_id": 4, "merchant_id": "m1", "event_timestamp": t, "req_amount": 1.0},
        ]
    )
    for path in PATHS:
        out = check(agg_repo, spine, ALL_REFS, written, path)
        assert out["amount"].to_list() == [None, None]  # older than the 30 min ttl
        assert out["n_3h"].to_list() == [2, 0]
        assert out["above_mean"].to_list() == [3.0, None]
        assert out["first_in_3h"].to_list() == [False, True]
        check(agg_repo, spine, ALL_REFS[:5], written, path, full_feature_names=True)
    ts = agg_repo.store.get_training_set(spine, feature_service="svc")
    assert ts.to_polars().columns[-6:] == [
        "pair_n_1d",
        "pair_spend_1h",
        "pair_last_1d",
        "pair_max_1d",
        "spend_1h",
        "above_mean",
    ]
    assert ts.to_polars()["pair_n_1d"].to_list() == [1, 0]
    applied = {r.ref: r for r in agg_repo.store.list_features()}
    assert applied["user_txn:spend_1h"].kind == "aggregation"
    assert (
        ts.metadata.fingerprints()["user_txn:spend_1h"] == applied["user_txn:spend_1h"].fingerprint
    )


def test_both_paths_in_one_query_on_skewed_keys(
    agg_repo: AggRepo, caplog: pytest.LogCaptureFixture
) -> None:
    """A key with many events and spine points takes the window path, light keys the join
    path, in the same query; the values are the oracle's either way."""
    heavy = [
        txn(BASE + i * dt.timedelta(minutes=1), amount=float(i % 7), qty=i % 5)
        | {"merchant_id": f"m{i % 4}", "created": None if i % 3 else BASE}
        for i in range(400)
    ]
    light = [txn(BASE + i * STEP, amount=1.5, qty=i) | {"user_id": 2} for i in range(5)]
    written = agg_repo.write([*heavy, *light])
    spine_rows = [
        {"user_id": 1, "event_timestamp": BASE + i * dt.timedelta(minutes=2, microseconds=1)}
        for i in range(200)
    ]
    spine_rows += [{"user_id": 2, "event_timestamp": BASE + i * STEP} for i in range(6)]
    caplog.set_level(logging.INFO, logger="featurestore.offline._engine")
    refs = list(AGG_REFS[:12])
    check(agg_repo, spine_frame(spine_rows), refs, written, WINDOW_ABOVE)
    assert "keys_on_window_path=1" in caplog.text
    caplog.clear()
    check(agg_repo, spine_frame(spine_rows[200:]), refs, written, WINDOW_ABOVE)
    assert "keys_on_window_path=0" in caplog.text


# --- apply-time checks -------------------------------------------------------------------------


def test_apply_checks_aggregation_columns(make_repo: Any) -> None:
    """A missing column and a column of the wrong type are both reported, nothing applied."""
    definitions = """
        from datetime import timedelta

        import polars as pl

        from featurestore import Entity, FeatureView, FileSource
        from featurestore.definitions import Count, CountDistinct, Mean, Sum

        user = Entity("user", join_keys=["user_id"])
        users = FileSource(name="users", path="data/users.parquet", timestamp_field="updated_at")
        bad = FeatureView(
            name="bad",
            entities=[user],
            source=users,
            owner="tests",
            aggregations=[
                Sum("country", window=timedelta(days=1), name="country_sum"),
                Mean("amount", window=timedelta(days=1), name="amount_mean"),
                Sum("age", window=timedelta(days=1), name="age_sum", dtype=pl.Int64),
                Count(window=timedelta(days=1), name="n"),
                CountDistinct("country", window=timedelta(days=1), name="countries"),
            ],
        )
    """
    store = FeatureStore(make_repo(definitions=definitions))
    with pytest.raises(ApplyError) as info:
        store.apply()
    problems = info.value.problems
    assert len(problems) == 2, problems
    assert "'bad:country_sum'" in problems[0] and "String" in problems[0]
    assert "Float64" in problems[0]
    assert "'bad:amount_mean'" in problems[1] and "vanished" in problems[1]
    assert not (store.repo.data_dir / "registry.json").exists()
    store.close()


def test_training_set_rechecks_the_source(agg_repo: AggRepo) -> None:
    """A source whose aggregation column changed type fails before any SQL runs."""
    bad = pl.DataFrame(
        {
            "user_id": [1],
            "event_time": [BASE],
            "created": [BASE],
            "amount": ["oops"],
            "qty": [1],
            "merchant_id": ["m1"],
        }
    )
    bad.write_parquet(agg_repo.root / "data" / "txns.parquet")
    spine = spine_frame([{"user_id": 1, "event_timestamp": BASE}])
    with pytest.raises(SchemaMismatchError, match="spend_1h"):
        agg_repo.store.get_training_set(spine, features=["user_txn:spend_1h"])
    agg_repo.write()


# --- the SQL text ------------------------------------------------------------------------------


def agg_scan(window_above: float = WINDOW_ABOVE, created: bool = True) -> AggregationScan:
    return AggregationScan(
        alias="a0",
        scan=ident("src"),
        join_keys=("user_id",),
        timestamp=timestamp_sql("event_time", pl.Datetime("us")),
        created=timestamp_sql("created", pl.Datetime("us")) if created else None,
        aggregations=(
            Sum("x", window=W1, name="s"),
            Count(window=W2, name="n"),
            Mean("x", window=W2, name="m"),
            Last("x", window=W1, name="l"),
            CountDistinct("k", window=W1, name="d"),
            StdDev("x", window=W2, name="sd"),
        ),
        spine_range_us=(1_000, 9_000),
        window_above=window_above,
    )


class TestSql:
    def test_frames_are_open_at_both_ends_in_integer_microseconds(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        for window in (W1, W2):
            us = window // US
            assert f"RANGE BETWEEN {us - 1} PRECEDING AND 1 PRECEDING" in sql
        assert sql.count("RANGE BETWEEN") == 2  # one frame per distinct window length
        assert f"e.__fs_t < p.__fs_t AND e.__fs_t > p.__fs_t - {W2 // US}" in sql

    def test_shorter_windows_filter_the_join(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        assert f"sum(e.__fs_x0) FILTER (WHERE e.__fs_t > p.__fs_t - {W1 // US})" in sql
        assert "avg(e.__fs_x0) AS" in sql  # the longest window needs no filter
        assert "count(e.__fs_t) AS" in sql

    def test_inputs_are_cast_once_per_distinct_expression(self) -> None:
        scan = agg_scan()
        assert scan.inputs == {'CAST("x" AS DOUBLE)': "__fs_x0", '"k"': "__fs_x1"}

    def test_events_are_bounded_by_the_spine_range(self) -> None:
        sql = "\n".join(agg_scan().ctes("__fs_spine"))
        assert 'epoch_us(CAST("event_time" AS TIMESTAMP)) < 9000' in sql
        assert f'epoch_us(CAST("event_time" AS TIMESTAMP)) > {1_000 - W2 // US}' in sql

    def test_last_orders_by_time_then_created_then_value(self) -> None:
        with_created = "\n".join(agg_scan().ctes("__fs_spine"))
        assert "{'t': e.__fs_t, 'c': e.__fs_c, 'v': e.__fs_x0}" in with_created
        assert 'COALESCE(epoch_us(CAST("created" AS TIMESTAMP)), -9223372036854775808)' in (
            with_created
        )
        without = "\n".join(agg_scan(created=False).ctes("__fs_spine"))
        assert "{'t': e.__fs_t, 'v': e.__fs_x0}" in without
        assert "__fs_c" not in without

    def test_join_path_alone_has_no_window(self) -> None:
        sql = "\n".join(agg_scan(math.inf).ctes("__fs_spine"))
        assert "OVER" not in sql and "a0_heavy" not in sql

    def test_outputs_fill_empty_windows_for_counts_and_sums_only(self) -> None:
        out = agg_scan().outputs()
        assert out[0] == 'CAST(COALESCE(a0."a0__s", 0) AS DOUBLE) AS "a0__s"'
        assert out[1] == 'CAST(COALESCE(a0."a0__n", 0) AS BIGINT) AS "a0__n"'
        assert out[2] == 'CAST(a0."a0__m" AS DOUBLE) AS "a0__m"'
        assert out[4] == 'CAST(COALESCE(a0."a0__d", 0) AS BIGINT) AS "a0__d"'

    @pytest.mark.parametrize("window_above", PATHS)
    def test_query_runs_without_an_engine(self, window_above: float) -> None:
        """The text alone, on two in-memory tables: the heavy-key count and the values."""
        con = duckdb.connect()
        t0 = dt.datetime(2024, 1, 1)
        con.register(
            "src",
            pl.DataFrame(
                {
                    "user_id": [1, 1, 1, 2],
                    "event_time": [t0, t0 + US, t0 + W1, t0],
                    "created": [t0, None, t0, t0],
                    "x": [1.0, 2.0, 4.0, 8.0],
                    "k": ["a", "b", "b", "c"],
                }
            ).to_arrow(),
        )
        spine = pl.DataFrame(
            {SPINE_ROW: [0, 1, 2], "user_id": [1, 1, 3], SPINE_TS: [t0 + W1, t0 + W1 + US, t0]},
            schema={SPINE_ROW: pl.UInt32, "user_id": pl.Int64, SPINE_TS: pl.Datetime("us")},
        )
        con.register("__fs_spine", spine.to_arrow())
        first, last = (int(v) for v in spine[SPINE_TS].dt.epoch("us").sort()[[0, -1]])
        scan = replace(agg_scan(window_above), spine_range_us=(first, last))
        heavy = con.execute(scan.heavy_keys_sql("__fs_spine")).fetchall()[0][0]
        assert heavy == (1 if window_above == 0 else 0)
        rows = con.execute(point_in_time_sql("__fs_spine", [], aggregations=[scan])).fetchall()
        # at t0 + 1h the 1h window holds the event at t0 + 1us only; the 3h window all before
        assert rows[0][1:] == (2.0, 2, 1.5, 2.0, 1, pytest.approx(math.sqrt(0.5)))
        assert rows[1][1:] == (4.0, 3, 7 / 3, 4.0, 1, pytest.approx(math.sqrt(7 / 3)))
        assert rows[2][1:] == (0.0, 0, None, None, 0, None)
        con.close()


# --- the view's API -----------------------------------------------------------------------------


def test_view_exposes_aggregations_as_features() -> None:
    user = Entity("user", join_keys=["user_id"])
    source = FileSource(name="t", path="t.parquet", timestamp_field="ts")
    view = FeatureView(
        name="v",
        entities=[user],
        source=source,
        owner="o",
        aggregations=[Sum("amount", window=W1, name="spend"), Count(window=W2, name="n")],
    )
    assert view.feature_names == ["spend", "n"]
    assert view.aggregation("spend") == Sum("amount", window=W1, name="spend")
    assert view.aggregation("nope") is None
    assert view.feature("n").dtype == pl.Int64
    assert view.source_columns() == ["amount"]
