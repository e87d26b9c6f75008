"""On-demand views in row mode: the same logic written over one row (a dict) and over a frame
gives identical training sets and identical online values and statuses; the outputs are typed
and checked alike on both paths; the Python twin of the value rules agrees with the Polars
rules."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from typing import Any

import polars as pl
import pytest
from conftest import USER, definitions, rows_frame, source, view, write_repo
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import Feature, FeatureStore, RequestSource, on_demand_feature_view
from featurestore._row_mode import row_outputs
from featurestore._value_rules import MATCH_FOUND, FeatureStatus, resolve, resolve_value
from featurestore.definitions._fingerprint import on_demand_definition
from featurestore.errors import DefinitionError, TransformError

T0 = dt.datetime(2024, 1, 1)
NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)
SCHEMA: dict[str, pl.DataType] = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us"),
    "age": pl.Int64(),
    "score": pl.Float64(),
    "country": pl.String(),
    "seen": pl.Datetime("us", "UTC"),
}
OUTPUTS = """[
        Feature("ratio", pl.Float64, ge=0),
        Feature("label", pl.String, default="none"),
        Feature("keen", pl.Boolean, nullable=False),
        Feature("days", pl.Int32),
        Feature("seen_day", pl.Date),
    ]"""
FRAME = f"""
@on_demand_feature_view(sources=[txn, profile], schema={OUTPUTS})
def by_frame(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("amount") / (pl.col("age") + 1)).alias("ratio"),
        pl.col("country").str.to_uppercase().alias("label"),
        (pl.col("score") > 0.5).alias("keen"),
        (pl.col("when") - pl.col("seen").dt.date()).dt.total_days().cast(pl.Int32).alias("days"),
        pl.col("seen").dt.date().alias("seen_day"),
    )
"""
ROWS = f"""
@on_demand_feature_view(sources=[txn, profile], schema={OUTPUTS}, mode="rows")
def by_rows(row: dict) -> dict:
    amount, age, score, seen = row["amount"], row["age"], row["score"], row["seen"]
    day = seen.date() if seen is not None else None
    return {{
        "ratio": None if amount is None or age is None else amount / (age + 1),
        "label": None if row["country"] is None else row["country"].upper(),
        "keen": None if score is None else score > 0.5,
        "days": None if day is None or row["when"] is None else (row["when"] - day).days,
        "seen_day": day,
    }}
"""
DEFINITIONS = definitions(
    USER,
    view(
        "profile",
        source("users", "data/users.parquet"),
        ttl="timedelta(days=3650)",
        features=[
            'Feature("age", pl.Int64)',
            'Feature("score", pl.Float64)',
            'Feature("country", pl.String)',
            'Feature("seen", pl.Datetime("us", "UTC"))',
        ],
    ),
    'txn = RequestSource("txn", schema={"amount": pl.Float64, "when": pl.Date})',
    FRAME,
    ROWS,
)
REFS = ["ratio", "label", "keen", "days", "seen_day"]
SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    root = tmp_path_factory.mktemp("rows") / "repo"
    write_repo(root, DEFINITIONS, data={"data/users.parquet": users([])})
    opened = FeatureStore(root)
    opened.apply()
    yield opened
    opened.close()


def users(rows: list[dict[str, Any]]) -> pl.DataFrame:
    return rows_frame(SCHEMA, rows)


profile_rows = st.fixed_dictionaries(
    {
        "user_id": st.integers(1, 4),
        "ts": st.integers(0, 20).map(lambda h: T0 + dt.timedelta(hours=h)),
        "age": st.one_of(st.none(), st.integers(0, 90)),
        "score": st.one_of(st.none(), st.floats(-1, 2, allow_nan=False), st.just(math.inf)),
        "country": st.sampled_from(["fr", "us", "Ω", None]),
        "seen": st.one_of(
            st.none(),
            st.integers(0, 10**6).map(
                lambda m: (T0 + dt.timedelta(minutes=m)).replace(tzinfo=dt.UTC)
            ),
        ),
    }
)
requests = st.lists(
    st.tuples(
        st.integers(1, 5),
        st.one_of(st.none(), st.floats(-10, 100, allow_nan=False, allow_infinity=False)),
        st.one_of(st.none(), st.dates(dt.date(2023, 1, 1), dt.date(2026, 1, 1))),
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(
    rows=st.lists(profile_rows, max_size=8, unique_by=lambda r: (r["user_id"], r["ts"])),
    asks=requests,
)
def test_row_mode_and_frame_mode_agree_offline_and_online(
    store: FeatureStore, rows: list[dict[str, Any]], asks: list[tuple[int, Any, Any]]
) -> None:
    users(rows).write_parquet(store.repo.root / "data" / "users.parquet")
    store.materialize(end=NOW, force=True)  # each example replaces the source: no guard
    ids, amounts, whens = (list(c) for c in zip(*asks, strict=True))
    spine = pl.DataFrame(
        {"user_id": ids, "event_timestamp": [NOW] * len(ids), "amount": amounts, "when": whens},
        schema_overrides={"amount": pl.Float64, "when": pl.Date},
    )
    both = [f"{v}:{c}" for v in ("by_frame", "by_rows") for c in REFS]
    train = store.get_training_set(spine, features=both, full_feature_names=True).to_polars()
    for column in REFS:
        assert train[f"by_rows__{column}"].equals(train[f"by_frame__{column}"]), column
    statuses = {
        f.ref: f.statuses
        for f in store.get_training_set(
            spine, features=both, full_feature_names=True
        ).metadata.features
    }
    for column in REFS:
        assert statuses[f"by_rows:{column}"] == statuses[f"by_frame:{column}"], column

    online = store.get_online_features(
        both,
        entities={"user_id": ids},
        request_data={"amount": amounts, "when": whens},
        full_feature_names=True,
        request_time=NOW,
    )
    for column in REFS:
        frame, rows_ = f"by_frame__{column}", f"by_rows__{column}"
        assert online.values[rows_] == online.values[frame], column
        assert online.statuses[rows_] == online.statuses[frame], column
        assert online.values[rows_] == train[rows_].to_list(), f"online vs offline: {column}"


def ratio_view(fn: Any, dtype: Any = pl.Float64) -> Any:
    txn = RequestSource("txn", schema={"amount": pl.Float64})
    return on_demand_feature_view(sources=[txn], schema={"ratio": dtype}, mode="rows")(fn)


@pytest.mark.parametrize(
    ("fn", "dtype", "message"),
    [
        (lambda row: 1 / 0, pl.Float64, r"'rv'.*raised ZeroDivisionError.*on the row \{'amount'"),
        (lambda row: [row["amount"]], pl.Float64, "must return a dict of its outputs"),
        (lambda row: {"other": 1.0}, pl.Float64, r"lacks declared output 'ratio'"),
        (lambda row: {"ratio": "1.5"}, pl.Float64, r"'ratio' is Float64, so it takes a float"),
        (lambda row: {"ratio": True}, pl.Int64, r"takes an int or None; found True"),
        (lambda row: {"ratio": 300}, pl.Int8, r"takes an int from -128 to 127.*on row 0"),
        (lambda row: {"ratio": dt.datetime(2024, 1, 1)}, pl.Date, "takes a date"),
        (
            lambda row: {"ratio": dt.datetime(2024, 1, 1)},
            pl.Datetime("us", "UTC"),
            "takes an aware datetime",
        ),
    ],
)
def test_bad_outputs_are_transform_errors(fn: Any, dtype: Any, message: str) -> None:
    fn.__name__ = "rv"
    odfv = ratio_view(fn, dtype)
    with pytest.raises(TransformError, match=message):
        row_outputs(odfv, [{"amount": 1.0}])


def test_outputs_are_typed_as_a_frame_holds_them() -> None:
    def rv(row: dict[str, Any]) -> dict[str, Any]:
        return {"ratio": 2}

    assert row_outputs(ratio_view(rv), [{"amount": 1.0}]) == {"ratio": [2.0]}
    ny = dt.datetime(2024, 1, 1, 7, tzinfo=dt.timezone(dt.timedelta(hours=-5)))

    def when(row: dict[str, Any]) -> dict[str, Any]:
        return {"ratio": ny}

    [got] = row_outputs(ratio_view(when, pl.Datetime("us", "UTC")), [{}])["ratio"]
    assert got == ny and got.utcoffset() == dt.timedelta(0)


def test_a_row_function_takes_one_argument_and_the_mode_is_fingerprinted() -> None:
    def two(row: dict[str, Any], extra: int) -> dict[str, Any]:
        return {}

    with pytest.raises(DefinitionError, match=r"exactly one argument \(a dict of one row"):
        ratio_view(two)

    def rv(row: dict[str, Any]) -> dict[str, Any]:
        return {"ratio": row["amount"]}

    rows = ratio_view(rv)
    frame = rows.model_copy(update={"mode": "frame"})
    feature = rows.features[0]
    assert on_demand_definition(rows, feature, [], {})["mode"] == "rows"
    assert "mode" not in on_demand_definition(frame, feature, [], {})  # as before modes


rules = st.fixed_dictionaries(
    {
        "ge": st.one_of(st.none(), st.integers(-5, 0)),
        "le": st.one_of(st.none(), st.integers(0, 5)),
        "nullable": st.booleans(),
        "default": st.one_of(st.none(), st.just(0.0)),  # within every drawn bound
    }
)


@settings(max_examples=200, deadline=None)
@given(
    rule=rules,
    value=st.one_of(st.none(), st.floats(-8, 8), st.just(math.inf), st.just(math.nan)),
)
def test_the_python_rules_agree_with_the_polars_rules(rule: dict[str, Any], value: Any) -> None:
    feature = Feature("x", pl.Float64, **rule)
    raw = pl.Series("x", [value], dtype=pl.Float64)
    frame = pl.DataFrame({"x": raw}).select(resolve(feature, pl.col("x"), pl.lit(MATCH_FOUND), "x"))
    want = (frame["x"][0], FeatureStatus(frame["x__status"][0]))
    got = resolve_value(feature, value)
    assert got[1] == want[1]
    assert got[0] == want[0] or (got[0] is None and want[0] is None)
