"""Error messages: each names the object, what was expected and what was found."""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import DEFINITIONS, spine_frame, users_frame

import featurestore.errors as errors_module
from featurestore import (
    ApplyError,
    FeatureReferenceError,
    FeatureStore,
    FeatureStoreError,
    OnlineRequestError,
    RequestSource,
    SchemaMismatchError,
    SourceError,
    SourceNotFoundError,
    SpineError,
    TransformError,
    on_demand_feature_view,
)
from featurestore._transforms import run_on_demand

MakeRepo = Callable[..., Path]
FEATURE = ["user_profile:age"]

SECOND_VIEW = """
import polars as pl

from definitions import user, users_source
from featurestore import Feature, FeatureView

user_profile_v2 = FeatureView(
    name="user_profile_v2",
    entities=[user],
    source=users_source,
    owner="risk-team",
    features=[Feature("age", pl.Int64)],
)
"""


def _message(exc_type: type[BaseException], call: Callable[[], Any]) -> str:
    with pytest.raises(exc_type) as info:
        call()
    return str(info.value)


def _contains(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_every_error_derives_from_feature_store_error() -> None:
    classes = [
        obj
        for _, obj in inspect.getmembers(errors_module, inspect.isclass)
        if obj.__module__ == errors_module.__name__
    ]
    assert {c.__name__ for c in classes} == set(errors_module.__all__)
    for cls in classes:
        assert issubclass(cls, FeatureStoreError), cls
    assert not FeatureStoreError.transient


# --- references -----------------------------------------------------------------------------


def test_unknown_view(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        FeatureReferenceError,
        lambda: store.get_training_set(spine, features=["user_profil:age"]),
    )
    _contains(
        msg,
        "Feature view 'user_profil' is not defined",
        "Did you mean 'user_profile'?",
        "Known views: txn_risk, user_profile",
    )


def test_unknown_feature(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        FeatureReferenceError,
        lambda: store.get_training_set(spine, features=["user_profile:agee"]),
    )
    _contains(
        msg,
        "Feature 'user_profile:agee' is not defined",
        "Did you mean",
        "age'?",
        "Known features of view 'user_profile': country, age, tenure_days.",
    )


def test_unknown_on_demand_feature(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        FeatureReferenceError,
        lambda: store.get_training_set(spine, features=["txn_risk:amount_per_ag"]),
    )
    _contains(msg, "'txn_risk:amount_per_ag'", "amount_per_age")


def test_unknown_feature_without_close_match(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        FeatureReferenceError,
        lambda: store.get_training_set(spine, features=["user_profile:zzzzzz"]),
    )
    assert "Did you mean" not in msg
    _contains(msg, "country, age, tenure_days")


@pytest.mark.parametrize("ref", ["user_profile.age", "user_profile", "a:b:c", ":age", "age:"])
def test_malformed_reference(store: FeatureStore, spine: pl.DataFrame, ref: str) -> None:
    msg = _message(FeatureReferenceError, lambda: store.get_training_set(spine, features=[ref]))
    _contains(msg, repr(ref), "'view:feature'")


def test_both_or_neither_features_and_service(store: FeatureStore, spine: pl.DataFrame) -> None:
    for kwargs in ({}, {"features": ["user_profile:age"], "feature_service": "risk_model"}):
        msg = _message(FeatureReferenceError, lambda kw=kwargs: store.get_training_set(spine, **kw))
        _contains(msg, "features=", "feature_service=", "exactly one")
    msg = _message(FeatureReferenceError, lambda: store.get_training_set(spine, features=[]))
    _contains(msg, "no features")


def test_unknown_service(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        FeatureReferenceError,
        lambda: store.get_training_set(spine, feature_service="risk_modl"),
    )
    _contains(
        msg,
        "Feature service 'risk_modl' is not defined",
        "Did you mean 'risk_model'?",
        "Known services: risk_model",
    )


def test_two_features_with_the_same_name(make_repo: MakeRepo, spine: pl.DataFrame) -> None:
    store = FeatureStore(make_repo(files={"more.py": SECOND_VIEW}))
    store.apply()
    refs = ["user_profile:age", "user_profile_v2:age"]
    msg = _message(FeatureReferenceError, lambda: store.get_training_set(spine, features=refs))
    _contains(
        msg, "'user_profile:age'", "'user_profile_v2:age'", "'age'", "full_feature_names=True"
    )
    out = store.get_training_set(spine, features=refs, full_feature_names=True).to_polars()
    assert out.columns[-2:] == ["user_profile__age", "user_profile_v2__age"]
    assert out["user_profile__age"].to_list()[:3] == [30, 31, 45]
    assert out["user_profile_v2__age"].to_list()[:4] == [30, 31, 45, 200]  # no bounds, no ttl


def test_requested_feature_collides_with_a_spine_column(
    store: FeatureStore, spine: pl.DataFrame
) -> None:
    msg = _message(
        SpineError,
        lambda: store.get_training_set(
            spine.with_columns(age=pl.lit(1)), features=["user_profile:age"]
        ),
    )
    _contains(msg, "['age']", "full_feature_names=True")


# --- the spine ------------------------------------------------------------------------------


def test_spine_without_a_join_key(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        SpineError,
        lambda: store.get_training_set(spine.drop("user_id"), features=["user_profile:age"]),
    )
    _contains(msg, "join key 'user_id'", "'user_profile'", "event_timestamp, amount")


def test_spine_without_the_timestamp_column(store: FeatureStore, spine: pl.DataFrame) -> None:
    renamed = spine.rename({"event_timestamp": "event_time"})
    msg = _message(
        SpineError, lambda: store.get_training_set(renamed, features=["user_profile:age"])
    )
    _contains(msg, "'event_timestamp'", "user_id, event_time, amount", "timestamp_column=")
    ts = store.get_training_set(
        renamed, features=["user_profile:age"], timestamp_column="event_time"
    )
    assert ts.to_polars()["age"].to_list()[:3] == [30, 31, 45]


@pytest.mark.parametrize(
    ("column", "found"),
    [
        (pl.col("event_timestamp").dt.strftime("%Y-%m-%d"), "String"),
        (pl.col("event_timestamp").dt.epoch("s"), "Int64"),
    ],
)
def test_spine_timestamp_of_the_wrong_type(
    store: FeatureStore, spine: pl.DataFrame, column: pl.Expr, found: str
) -> None:
    bad = spine.with_columns(column)
    msg = _message(SpineError, lambda: store.get_training_set(bad, features=["user_profile:age"]))
    _contains(msg, "'event_timestamp'", found, "Datetime")


def test_spine_timestamp_with_nulls(store: FeatureStore, spine: pl.DataFrame) -> None:
    bad = spine.with_columns(
        pl.when(pl.int_range(pl.len()) % 2 == 0)
        .then(pl.col("event_timestamp"))
        .alias("event_timestamp")
    )
    msg = _message(SpineError, lambda: store.get_training_set(bad, features=["user_profile:age"]))
    _contains(msg, "'event_timestamp'", "3 null")


def test_spine_key_of_the_wrong_type(store: FeatureStore, spine: pl.DataFrame) -> None:
    bad = spine.with_columns(pl.col("user_id").cast(pl.String))
    msg = _message(SpineError, lambda: store.get_training_set(bad, features=["user_profile:age"]))
    _contains(msg, "'user_id'", "String", "Int64", "'users'")


def test_spine_without_a_request_column(store: FeatureStore, spine: pl.DataFrame) -> None:
    msg = _message(
        SpineError,
        lambda: store.get_training_set(spine.drop("amount"), features=["txn_risk:amount_per_age"]),
    )
    _contains(msg, "request column 'amount'", "txn_risk", "user_id, event_timestamp")


def test_spine_request_column_of_the_wrong_type(store: FeatureStore, spine: pl.DataFrame) -> None:
    bad = spine.with_columns(pl.col("amount").cast(pl.String))
    msg = _message(
        SpineError, lambda: store.get_training_set(bad, features=["txn_risk:amount_per_age"])
    )
    _contains(msg, "'amount'", "String", "Float64")


def test_spine_of_an_unsupported_kind(store: FeatureStore) -> None:
    msg = _message(
        SpineError, lambda: store.get_training_set([1, 2], features=["user_profile:age"])
    )
    _contains(msg, "spine", "list")


def test_spine_path_that_does_not_exist(store: FeatureStore, tmp_path: Path) -> None:
    missing = tmp_path / "nope.parquet"
    msg = _message(
        SpineError, lambda: store.get_training_set(missing, features=["user_profile:age"])
    )
    _contains(msg, str(missing))


# --- sources after apply --------------------------------------------------------------------


def test_source_file_missing_after_apply(store: FeatureStore, spine: pl.DataFrame) -> None:
    (store.repo.root / "data" / "users.parquet").unlink()
    msg = _message(
        SourceNotFoundError, lambda: store.get_training_set(spine, features=["user_profile:age"])
    )
    _contains(msg, "source 'users'", "users.parquet", "matches no file")


def test_source_column_vanished_after_apply(store: FeatureStore, spine: pl.DataFrame) -> None:
    users_frame().drop("age").write_parquet(store.repo.root / "data" / "users.parquet")
    msg = _message(
        SchemaMismatchError, lambda: store.get_training_set(spine, features=["user_profile:age"])
    )
    _contains(
        msg, "source 'users'", "'age'", "'user_profile:age'", "not found in the source", "country"
    )


def test_source_column_changed_type_after_apply(store: FeatureStore, spine: pl.DataFrame) -> None:
    frame = users_frame().with_columns(pl.col("age").cast(pl.String))
    frame.write_parquet(store.repo.root / "data" / "users.parquet")
    msg = _message(
        SchemaMismatchError, lambda: store.get_training_set(spine, features=["user_profile:age"])
    )
    _contains(msg, "source 'users'", "'age'", "'user_profile:age'", "String", "Int64")


def test_source_timestamp_changed_type_after_apply(
    store: FeatureStore, spine: pl.DataFrame
) -> None:
    frame = users_frame().with_columns(pl.col("updated_at").dt.strftime("%Y-%m-%d"))
    frame.write_parquet(store.repo.root / "data" / "users.parquet")
    msg = _message(
        SchemaMismatchError,
        lambda: store.get_training_set(spine, features=["user_profile:country"]),
    )
    _contains(msg, "source 'users'", "'updated_at'", "String", "Datetime")


def test_validate_reports_problems_per_view(store: FeatureStore) -> None:
    (values,) = store.validate()  # the test data holds an age of 200 against le=130
    assert not values.ok and any("above le=130" in p for p in values.problems)
    users_frame().drop("age").write_parquet(store.repo.root / "data" / "users.parquet")
    (report,) = store.validate()
    assert not report.ok
    assert (report.view, report.source) == ("user_profile", "users")
    assert any("'age'" in p for p in report.problems)


# --- transforms -----------------------------------------------------------------------------

REQUEST = RequestSource("req", schema={"amount": pl.Float64})
INPUTS = pl.DataFrame({"amount": [1.0, 2.0, 3.0]})


def _odfv(fn: Callable[[pl.DataFrame], Any]) -> Any:
    return on_demand_feature_view(sources=[REQUEST], schema={"ratio": pl.Float64}, name="risky")(fn)


@pytest.mark.parametrize(
    ("fn", "fragments"),
    [
        (
            lambda df: df.select(pl.col("amount").alias("other")),
            ["lacks", "['ratio']", "found ['other']"],
        ),
        (
            lambda df: df.select(pl.col("amount").cast(pl.Int64).alias("ratio")),
            ["ratio: expected Float64, found Int64"],
        ),
        (lambda df: df.head(1).select(pl.col("amount").alias("ratio")), ["1 rows", "3 input rows"]),
        (lambda df: df["amount"], ["DataFrame", "found Series"]),
        (lambda df: None, ["DataFrame", "found NoneType"]),
        (lambda df: 1 / 0, ["ZeroDivisionError"]),
    ],
    ids=["missing_column", "wrong_dtype", "wrong_row_count", "series", "none", "raises"],
)
def test_on_demand_function_misbehaving(fn: Callable[..., Any], fragments: list[str]) -> None:
    msg = _message(TransformError, lambda: run_on_demand(_odfv(fn), INPUTS))
    _contains(msg, "on-demand view 'risky'", *fragments)


@pytest.mark.parametrize(
    "fn",
    [
        lambda df: df.select((pl.col("amount") * 2).alias("ratio")),
        lambda df: df.lazy().select((pl.col("amount") * 2).alias("ratio")),
        lambda df: [(pl.col("amount") * 2).alias("ratio")],
        lambda df: {"ratio": pl.col("amount") * 2},
        lambda df: (pl.col("amount") * 2).alias("ratio"),
        lambda df: df.with_columns((pl.col("amount") * 2).alias("ratio"), extra=pl.lit(1)),
    ],
    ids=["frame", "lazy", "list", "dict", "expr", "extra_columns"],
)
def test_on_demand_function_return_forms(fn: Callable[..., Any]) -> None:
    out = run_on_demand(_odfv(fn), INPUTS)
    assert out.schema["ratio"] == pl.Float64
    assert out["ratio"].to_list() == [2.0, 4.0, 6.0]


def test_on_demand_failure_while_building_a_training_set(
    make_repo: MakeRepo, spine: pl.DataFrame
) -> None:
    # head(1) returns zero rows for the empty frame apply checks with, so apply passes
    text = DEFINITIONS.replace("return df.select(", "return df.head(1).select(")
    store = FeatureStore(make_repo(definitions=text))
    store.apply()
    msg = _message(
        TransformError,
        lambda: store.get_training_set(spine, features=["txn_risk:amount_per_age"]),
    )
    _contains(msg, "on-demand view 'txn_risk'", "1 rows", "6 input rows")


def test_expression_failure_while_building_a_training_set(
    make_repo: MakeRepo, spine: pl.DataFrame
) -> None:
    text = DEFINITIONS.replace(
        '        Feature("age", pl.Int64, ge=0, le=130),\n',
        '        Feature("age", pl.Int64, ge=0, le=130),\n'
        '        Feature("code", pl.Int64, expr=pl.col("country").str.to_integer()),\n',
    )
    store = FeatureStore(make_repo(definitions=text))
    store.apply()
    msg = _message(
        TransformError, lambda: store.get_training_set(spine, features=["user_profile:code"])
    )
    _contains(msg, "user_profile:code")


def test_training_set_with_date_spine_times(store: FeatureStore, spine: pl.DataFrame) -> None:
    dated = spine.with_columns(pl.col("event_timestamp").dt.date())
    out = store.get_training_set(dated, features=["user_profile:age"]).to_polars()
    assert out["event_timestamp"].dtype == pl.Date
    assert out["age"].to_list()[:3] == [30, 31, 45]
    assert out["event_timestamp"][0] == dt.date(2024, 1, 15)


# --- faults: typed errors where raw exceptions came out ------------------------------------


def test_a_pandas_spine_with_duplicate_columns_is_a_spine_error(store: FeatureStore) -> None:
    pandas = pytest.importorskip("pandas")
    frame = spine_frame().to_pandas()
    frame.columns = ["user_id", "event_timestamp", "user_id"]
    msg = _message(SpineError, lambda: store.get_training_set(frame, features=FEATURE))
    _contains(msg, "duplicate column names", "'user_id'")
    assert isinstance(frame, pandas.DataFrame)


@pytest.mark.parametrize(
    ("request_time", "fragment"),
    [("yesterday", "'yesterday' is not an ISO 8601 time"), (12, "must be a datetime")],
)
def test_a_request_time_that_is_no_time_is_a_request_error(
    store: FeatureStore, request_time: Any, fragment: str
) -> None:
    store.materialize(end=dt.datetime(2024, 3, 1))
    msg = _message(
        OnlineRequestError,
        lambda: store.get_online_features(
            features=FEATURE, entities={"user_id": [1]}, request_time=request_time
        ),
    )
    _contains(msg, fragment)


def test_a_request_time_given_as_iso_text_is_taken(store: FeatureStore) -> None:
    store.materialize(end=dt.datetime(2024, 3, 1))
    text = store.get_online_features(
        features=FEATURE, entities={"user_id": [1]}, request_time="2024-02-15T00:00:00Z"
    )
    typed = store.get_online_features(
        features=FEATURE,
        entities={"user_id": [1]},
        request_time=dt.datetime(2024, 2, 15, tzinfo=dt.UTC),
    )
    assert (text.values, text.statuses) == (typed.values, typed.statuses)


def test_a_join_key_whose_type_changed_since_apply_is_refused_and_flagged(
    store: FeatureStore,
) -> None:
    store.materialize(end=dt.datetime(2024, 3, 1))
    users_frame().with_columns(pl.col("user_id").cast(pl.String)).write_parquet(
        store.repo.root / "data" / "users.parquet"
    )
    fresh = FeatureStore(store.repo.root)
    try:
        msg = _message(SchemaMismatchError, lambda: fresh.materialize(end=dt.datetime(2024, 3, 2)))
        _contains(msg, "join key 'user_id'", "Int64 when the view was applied", "String now")
        problems = fresh.status(dt.datetime(2024, 3, 2)).flagged
        assert any("join key 'user_id' was Int64" in p for p in problems), problems
    finally:
        fresh.close()


def test_a_bad_value_deep_in_a_large_csv_is_a_source_error_naming_the_line(
    make_repo: MakeRepo,
) -> None:
    n = 40_000  # DuckDB guesses CSV types from the first 20,480 rows
    csv_lines = ["user_id,updated_at,signup_at,country,age"]
    csv_lines += [
        f"{i},2024-01-01 00:00:00,2023-01-01 00:00:00,FR,{'abc' if i == 30_000 else 30}"
        for i in range(n)
    ]
    root = make_repo(definitions=DEFINITIONS.replace("data/users.parquet", "data/users.csv"))
    (root / "data" / "users.csv").write_text("\n".join(csv_lines) + "\n")
    store = FeatureStore(root)
    try:
        store.apply()  # the first rows fit: apply cannot see the bad value
        spine = pl.DataFrame(
            {"user_id": [1], "event_timestamp": [dt.datetime(2024, 2, 1)]},
            schema_overrides={"user_id": pl.Int64},
        )
        for call in (
            lambda: store.get_training_set(spine, features=FEATURE),
            lambda: store.materialize(end=dt.datetime(2024, 2, 1)),
        ):
            msg = _message(SourceError, call)
            _contains(msg, "source 'users'", "users.csv", "line 30,002", "'age'", "'abc'")
    finally:
        store.close()


def test_a_ragged_csv_says_it_could_not_be_parsed_and_where(make_repo: MakeRepo) -> None:
    root = make_repo(definitions=DEFINITIONS.replace("data/users.parquet", "data/users.csv"))
    (root / "data" / "users.csv").write_text(
        "user_id,updated_at,signup_at,country,age\n"
        "1,2024-01-01,2023-01-01,FR,30\n"
        "2,2024-01-02,2023-01-01,US,40,extra,fields\n"
    )
    msg = _message(ApplyError, lambda: FeatureStore(root).apply())
    _contains(msg, "could not be parsed as CSV", "line 3 has 7 fields", "has 5")
