"""Declaring definitions: every invalid declaration fails early with a message naming the
definition (kind and name) and the offending field; valid ones stay usable."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import polars as pl
import pytest

from featurestore import (
    DefinitionError,
    Entity,
    Feature,
    FeatureReferenceError,
    FeatureService,
    FeatureView,
    FileSource,
    OnDemandFeatureView,
    RequestSource,
    on_demand_feature_view,
)
from featurestore.definitions import (
    Count,
    CountDistinct,
    Last,
    Max,
    Mean,
    Min,
    StdDev,
    Sum,
)
from featurestore.definitions._fingerprint import (
    aggregation_definition,
    feature_definition,
    fingerprint,
)

USER = Entity("user", join_keys=["user_id"])
SOURCE = FileSource(name="users", path="data/users.parquet", timestamp_field="updated_at")
REQUEST = RequestSource("txn_request", schema={"amount": pl.Float64})


def _view(**overrides: Any) -> FeatureView:
    kwargs: dict[str, Any] = {
        "name": "user_profile",
        "entities": [USER],
        "source": SOURCE,
        "owner": "risk-team",
        "features": [Feature("age", pl.Int64)],
    }
    kwargs.update(overrides)
    return FeatureView(**kwargs)


def _fails(build: Callable[[], object], *fragments: str) -> str:
    """Assert ``build`` raises DefinitionError whose message contains every fragment."""
    with pytest.raises(DefinitionError) as info:
        build()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


# --- names ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["bad name", "1st", "bad-name", "", "__fs_internal"])
def test_bad_feature_name(bad: str) -> None:
    _fails(lambda: Feature(bad, pl.Int64), f"Feature {bad!r}", "'name'")


@pytest.mark.parametrize(
    ("build", "label"),
    [
        (lambda: Entity("user id"), "Entity 'user id'"),
        (lambda: FileSource(name="my src", path="a.parquet", timestamp_field="t"), "FileSource"),
        (lambda: RequestSource("req-1", schema={"a": pl.Int64}), "RequestSource 'req-1'"),
        (lambda: _view(name="user profile"), "FeatureView 'user profile'"),
        (lambda: FeatureService("svc!", features=["a:b"]), "FeatureService 'svc!'"),
    ],
)
def test_bad_definition_names(build: Callable[[], object], label: str) -> None:
    _fails(build, label, "field 'name'", "letter")


def test_bad_join_key_and_request_column() -> None:
    _fails(lambda: Entity("user", join_keys=["user id"]), "Entity 'user'", "join_keys", "user id")
    _fails(lambda: Entity("user", join_keys=["a", "a"]), "Entity 'user'", "join_keys", "unique")
    _fails(
        lambda: RequestSource("req", schema={"bad col": pl.Int64}),
        "RequestSource 'req'",
        "schema",
        "bad col",
    )


def test_entity_defaults_its_join_key_to_its_name() -> None:
    assert Entity("merchant").join_keys == ["merchant"]


# --- features -------------------------------------------------------------------------------


def test_ge_greater_than_le() -> None:
    _fails(lambda: Feature("age", pl.Int64, ge=10, le=1), "Feature 'age'", "ge", "le", "10")


@pytest.mark.parametrize(
    ("dtype", "default"),
    [(pl.Int64, "a"), (pl.Int64, True), (pl.Int64, 1.5), (pl.String, 3), (pl.Boolean, 1)],
)
def test_default_of_the_wrong_type(dtype: Any, default: Any) -> None:
    msg = _fails(lambda: Feature("f", dtype, default=default), "Feature 'f'", "default")
    assert repr(default) in msg
    assert type(default).__name__ in msg


def test_default_outside_the_bounds_or_allowed_values() -> None:
    _fails(lambda: Feature("age", pl.Int64, ge=0, le=130, default=131), "Feature 'age'", "default")
    _fails(lambda: Feature("age", pl.Int64, ge=0, default=-1), "Feature 'age'", "default", "-1")
    _fails(
        lambda: Feature("c", pl.String, allowed=("FR", "US"), default="DE"),
        "Feature 'c'",
        "default",
        "'DE'",
    )


def test_empty_or_mistyped_allowed_values() -> None:
    _fails(lambda: Feature("c", pl.String, allowed=()), "Feature 'c'", "allowed")
    _fails(lambda: Feature("c", pl.String, allowed=("FR", 1)), "Feature 'c'", "allowed", "1")


def test_bounds_need_an_orderable_dtype() -> None:
    _fails(lambda: Feature("c", pl.String, ge=1), "Feature 'c'", "ge/le", "String")


def test_bound_of_the_wrong_type() -> None:
    _fails(lambda: Feature("age", pl.Int64, ge=dt.date(2020, 1, 1)), "Feature 'age'", "ge")


@pytest.mark.parametrize(
    "dtype", [pl.List(pl.Int64), pl.List, pl.Struct, pl.Object, pl.Struct({"a": pl.Int64}), "nope"]
)
def test_unsupported_dtype(dtype: Any) -> None:
    msg = _fails(lambda: Feature("f", dtype), "Feature 'f'", "field 'dtype'", "supported")
    assert "Int64" in msg and "String" in msg  # the supported list is shown


@pytest.mark.parametrize("alias", ["int", "float", "str", "bool", "Utf8", "Datetime"])
def test_dtype_names_are_accepted(alias: str) -> None:
    assert isinstance(Feature("f", alias).dtype, pl.DataType)


@pytest.mark.parametrize(
    "expr",
    [
        pl.col("x").mean(),
        pl.col("x").shift(),
        pl.col("x").cum_sum(),
        pl.col("x").rank(),
        pl.col("x").sum().over("k"),
        pl.col("x").sort(),
        pl.col("x").diff(),
        pl.col("x").rolling_mean(3),
        pl.col("x").first(),
        pl.col("x").unique(),
        pl.col("x").filter(pl.col("x") > 0),
        pl.col("x").forward_fill(),
        pl.len(),
    ],
    ids=str,
)
def test_non_row_wise_expression(expr: pl.Expr) -> None:
    _fails(lambda: Feature("f", pl.Float64, expr=expr), "Feature 'f'", "field 'expr'", "row-wise")


@pytest.mark.parametrize(
    "expr",
    [pl.col("x") - pl.col("x").mean(), pl.col("x").fill_null(pl.col("x").median())],
    ids=str,
)
def test_nested_aggregation_is_not_row_wise(expr: pl.Expr) -> None:
    _fails(lambda: Feature("f", pl.Float64, expr=expr), "Feature 'f'", "field 'expr'", "row-wise")


def test_expression_without_source_column() -> None:
    _fails(lambda: Feature("f", pl.Float64, expr=pl.lit(1.0)), "Feature 'f'", "field 'expr'")


@pytest.mark.parametrize(
    "expr",
    [
        pl.col("a") * 2 + pl.col("b"),
        pl.when(pl.col("a") > 1).then(pl.col("a")).otherwise(None),
        (pl.col("t1") - pl.col("t0")).dt.total_days(),
        pl.col("s").str.to_uppercase(),
        pl.col("a").clip(0, 1),
    ],
    ids=str,
)
def test_row_wise_expressions_are_accepted(expr: pl.Expr) -> None:
    feature = Feature("f", pl.Float64, expr=expr)
    assert set(feature.source_columns) == set(expr.meta.root_names())


@pytest.mark.filterwarnings("ignore::polars.exceptions.PolarsInefficientMapWarning")
def test_python_udf_expression_gives_a_definition_outcome() -> None:
    expr = pl.col("x").map_elements(lambda v: v * 2, return_dtype=pl.Float64)
    with contextlib.suppress(DefinitionError):
        Feature("f", pl.Float64, expr=expr)


def test_positional_arguments() -> None:
    feature = Feature("age", pl.Int32, ge=0)
    assert (feature.name, feature.dtype, feature.ge) == ("age", pl.Int32(), 0)
    _fails(lambda: Feature("age", pl.Int32, 0), "Feature", "positional")  # type: ignore[misc]
    _fails(lambda: Feature("age", pl.Int32, name="x"), "Feature", "'name'")


def test_definitions_are_frozen() -> None:
    feature = Feature("age", pl.Int64)
    with pytest.raises(Exception, match="frozen"):
        feature.name = "other"  # type: ignore[misc]


# --- feature views --------------------------------------------------------------------------


def test_view_without_owner() -> None:
    _fails(
        lambda: FeatureView(
            name="v", entities=[USER], source=SOURCE, features=[Feature("a", pl.Int64)]
        ),
        "FeatureView 'v'",
        "field 'owner'",
    )
    _fails(lambda: _view(owner="  "), "FeatureView 'user_profile'", "owner")


def test_view_without_entities() -> None:
    msg = _fails(lambda: _view(entities=[]), "FeatureView 'user_profile'")
    assert re.search(r"entit(y|ies)", msg)


def test_view_without_features() -> None:
    _fails(lambda: _view(features=[]), "FeatureView 'user_profile'", "feature")


def test_duplicate_feature_names() -> None:
    _fails(
        lambda: _view(features=[Feature("age", pl.Int64), Feature("age", pl.Int32)]),
        "FeatureView 'user_profile'",
        "unique",
        "'age'",
    )


def test_feature_named_like_a_join_key() -> None:
    _fails(
        lambda: _view(features=[Feature("user_id", pl.Int64)]),
        "FeatureView 'user_profile'",
        "join key",
        "user_id",
    )


def test_entities_sharing_a_join_key() -> None:
    other = Entity("account", join_keys=["user_id"])
    _fails(lambda: _view(entities=[USER, other]), "FeatureView 'user_profile'", "user_id")


@pytest.mark.parametrize("ttl", [timedelta(0), timedelta(days=-1)])
def test_non_positive_ttl(ttl: timedelta) -> None:
    _fails(lambda: _view(ttl=ttl), "FeatureView 'user_profile'", "field 'ttl'", "positive")


def test_valid_view() -> None:
    view = _view(
        entities=[USER, Entity("merchant")],
        ttl=timedelta(days=1),
        features=[
            Feature("age", pl.Int64, ge=0, le=130),
            Feature("double_age", pl.Int64, expr=pl.col("age") * 2),
        ],
    )
    assert view.join_keys == ["user_id", "merchant"]
    assert view.feature_names == ["age", "double_age"]
    assert view.source_columns() == ["age"]


# --- sources --------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["data/users.json", "data/users", "data/users.parquet.bak"])
def test_file_source_with_unknown_format(path: str) -> None:
    _fails(
        lambda: FileSource(name="users", path=path, timestamp_field="t"),
        "FileSource 'users'",
        repr(path),
        "file_format",
    )


@pytest.mark.parametrize(
    ("path", "fmt"),
    [("a.parquet", "parquet"), ("A.PQ", "parquet"), ("a.csv", "csv"), ("x/*.csv.gz", "csv")],
)
def test_file_source_format_inferred(path: str, fmt: str) -> None:
    assert FileSource(name="s", path=path, timestamp_field="t").file_format == fmt


def test_file_source_explicit_format() -> None:
    src = FileSource(name="s", path="data/export", timestamp_field="t", file_format="csv")
    assert src.file_format == "csv"


def test_file_source_created_field_equal_to_timestamp_field() -> None:
    _fails(
        lambda: FileSource(
            name="s", path="a.parquet", timestamp_field="t", created_timestamp_field="t"
        ),
        "FileSource 's'",
        "created_timestamp_field",
    )


def test_request_source_schema() -> None:
    _fails(lambda: RequestSource("req", schema={}), "RequestSource 'req'", "schema")
    _fails(lambda: RequestSource("req", schema={"a": pl.Object}), "RequestSource 'req'", "Object")
    assert RequestSource("req", schema={"a": "float"}).fields == {"a": pl.Float64()}


# --- on-demand views ------------------------------------------------------------------------


def test_on_demand_function_with_wrong_number_of_parameters() -> None:
    def two(df: pl.DataFrame, extra: int) -> pl.DataFrame:
        return df

    def none() -> pl.DataFrame:
        return pl.DataFrame()

    for fn, n in ((two, 2), (none, 0)):
        _fails(
            lambda fn=fn: on_demand_feature_view(sources=[REQUEST], schema={"o": pl.Float64})(fn),
            f"OnDemandFeatureView {fn.__name__!r}",
            "exactly one argument",
            f"found {n}",
        )


def test_on_demand_extra_parameters_with_defaults_are_fine() -> None:
    def scaled(df: pl.DataFrame, factor: float = 2.0) -> pl.DataFrame:
        return df.select((pl.col("amount") * factor).alias("o"))

    odfv = on_demand_feature_view(sources=[REQUEST], schema={"o": pl.Float64})(scaled)
    assert odfv.feature_names == ["o"]


def test_on_demand_input_column_from_two_sources() -> None:
    view = _view(features=[Feature("amount", pl.Float64)])

    def f(df: pl.DataFrame) -> pl.DataFrame:
        return df

    _fails(
        lambda: on_demand_feature_view(sources=[REQUEST, view], schema={"o": pl.Float64})(f),
        "OnDemandFeatureView 'f'",
        "'amount'",
        "'txn_request'",
        "'user_profile'",
    )


def test_on_demand_bad_schema() -> None:
    def f(df: pl.DataFrame) -> pl.DataFrame:
        return df

    _fails(
        lambda: on_demand_feature_view(sources=[REQUEST], schema={"o": pl.List(pl.Int64)})(f),
        "OnDemandFeatureView 'f'",
        "dtype",
    )
    _fails(
        lambda: on_demand_feature_view(sources=[REQUEST], schema={})(f),
        "OnDemandFeatureView 'f'",
        "schema",
    )
    _fails(
        lambda: on_demand_feature_view(sources=[], schema={"o": pl.Float64})(f),
        "OnDemandFeatureView 'f'",
        "sources",
    )


def test_decorated_function_stays_callable() -> None:
    @on_demand_feature_view(sources=[REQUEST], schema={"doubled": pl.Float64}, owner="risk")
    def doubled(df: pl.DataFrame) -> pl.DataFrame:
        """Twice the amount."""
        return df.select((pl.col("amount") * 2).alias("doubled"))

    assert isinstance(doubled, OnDemandFeatureView)
    assert doubled.name == "doubled"
    assert doubled.description == "Twice the amount."
    assert doubled.owner == "risk"
    out = doubled(pl.DataFrame({"amount": [1.5, None, 4.0]}))
    assert isinstance(out, pl.DataFrame)
    assert out["doubled"].to_list() == [3.0, None, 8.0]
    assert doubled.udf.__name__ == "doubled"


def test_on_demand_name_override_and_feature_list_schema() -> None:
    def f(df: pl.DataFrame) -> list[pl.Expr]:
        return [pl.col("amount").alias("o")]

    odfv = on_demand_feature_view(
        name="renamed", sources=[REQUEST], schema=[Feature("o", pl.Float64, ge=0)]
    )(f)
    assert odfv.name == "renamed"
    assert odfv.features[0].ge == 0


# --- feature services -----------------------------------------------------------------------


@pytest.mark.parametrize("ref", ["user_profile.age", "user_profile", "a:b:c"])
def test_feature_service_with_malformed_reference(ref: str) -> None:
    _fails(
        lambda: FeatureService("svc", features=[ref]),
        "FeatureService 'svc'",
        "field 'features'",
        repr(ref),
        "view:feature",
    )


@pytest.mark.parametrize("ref", [":age", "user_profile:"])
def test_feature_service_with_empty_reference_part(ref: str) -> None:
    _fails(lambda: FeatureService("svc", features=[ref]), "FeatureService 'svc'", repr(ref))


def test_feature_service_without_features() -> None:
    _fails(lambda: FeatureService("svc", features=[]), "FeatureService 'svc'", "features")


def test_feature_service_references() -> None:
    view = _view(features=[Feature("age", pl.Int64), Feature("country", pl.String)])
    svc = FeatureService("svc", [view, "user_profile:age", "txn_risk:ratio"])
    assert svc.references() == ["user_profile:age", "user_profile:country", "txn_risk:ratio"]


# --- windowed aggregations ------------------------------------------------------------------

HOUR = timedelta(hours=1)
US = timedelta(microseconds=1)


def test_aggregations_describe_themselves() -> None:
    spend = Sum("amount", window=timedelta(days=7), name="spend_7d")
    assert (spend.kind, spend.column, spend.name, spend.dtype) == (
        "sum",
        "amount",
        "spend_7d",
        pl.Float64,
    )
    assert spend.window_us == 7 * 86_400_000_000 and spend.empty_value == 0
    assert spend.feature == Feature("spend_7d", pl.Float64)
    count = Count(window=HOUR, name="n_1h")
    assert (count.kind, count.column, count.dtype, count.empty_value) == (
        "count",
        None,
        pl.Int64,
        0,
    )
    kinds = {
        Mean: ("mean", pl.Float64, None),
        Min: ("min", pl.Float64, None),
        Max: ("max", pl.Float64, None),
        Last: ("last", pl.Float64, None),
        StdDev: ("stddev", pl.Float64, None),
        CountDistinct: ("count_distinct", pl.Int64, 0),
    }
    for cls, (kind, dtype, empty) in kinds.items():
        agg = cls("x", window=HOUR, name="a")
        assert (agg.kind, agg.dtype, agg.empty_value) == (kind, dtype, empty)


@pytest.mark.parametrize(
    ("build", "fragments"),
    [
        (lambda: Sum("amount", window=timedelta(0), name="s"), ["Sum 's'", "window", "positive"]),
        (lambda: Mean("amount", window=-HOUR, name="m"), ["Mean 'm'", "positive"]),
        (lambda: Sum("amount", window=7, name="s"), ["window", "timedelta"]),
        (lambda: Sum("amount", window=timedelta(days=40_000), name="s"), ["at most"]),
        (lambda: Sum("amount", name="s"), ["Sum 's'", "window"]),
        (lambda: Sum(window=HOUR, name="s"), ["Sum 's'", "needs a source column"]),
        (lambda: Count("amount", window=HOUR, name="n"), ["Count 'n'", "no column"]),
        (lambda: Sum("amount", window=HOUR, name="bad name"), ["aggregation name"]),
        (lambda: Sum("amount", window=HOUR, name="s", dtype=pl.String), ["Float64 or Int64"]),
        (lambda: Mean("amount", window=HOUR, name="m", dtype=pl.Int64), ["Mean gives Float64"]),
        (lambda: Count(window=HOUR, name="n", dtype=pl.Float64), ["Count gives Int64"]),
        (lambda: Last("amount", window=HOUR, name="l", dtype=pl.List(pl.Int64)), ["dtype"]),
    ],
)
def test_invalid_aggregations(build: Callable[[], object], fragments: list[str]) -> None:
    _fails(build, *fragments)


def test_aggregation_dtypes_accept_and_check_source_columns() -> None:
    assert Sum("qty", window=HOUR, name="s", dtype=pl.Int64).dtype == pl.Int64
    assert Last("merchant", window=HOUR, name="l", dtype="str").dtype == pl.String
    assert Sum("x", window=HOUR, name="s", dtype=pl.Int64).accepts(pl.Int32())
    assert not Sum("x", window=HOUR, name="s", dtype=pl.Int64).accepts(pl.Float64())
    assert Sum("x", window=HOUR, name="s").accepts(pl.Decimal(10, 2))
    assert not Mean("x", window=HOUR, name="m").accepts(pl.String())
    assert Min("x", window=HOUR, name="m", dtype=pl.Datetime).accepts(pl.Date())
    assert CountDistinct("x", window=HOUR, name="d").accepts(pl.String())
    assert not CountDistinct("x", window=HOUR, name="d").accepts(pl.List(pl.Int64))
    assert Count(window=HOUR, name="n").accepts(pl.Null())


def test_view_with_aggregations_only_or_mixed() -> None:
    spend, n = Sum("amount", window=HOUR, name="spend"), Count(window=HOUR, name="n")
    only = _view(features=[], aggregations=[spend, n])
    assert only.feature_names == ["spend", "n"] and only.aggregation_names == ["spend", "n"]
    assert only.feature("n").dtype == pl.Int64 and only.aggregation("n") is n
    mixed = _view(aggregations=[spend])
    assert mixed.feature_names == ["age", "spend"] and mixed.aggregation("age") is None
    assert mixed.source_columns() == ["age", "amount"]
    with pytest.raises(FeatureReferenceError, match="Known features of view 'user_profile': age, "):
        mixed.feature("spnd")


def test_view_needs_a_feature_or_an_aggregation() -> None:
    _fails(lambda: _view(features=[], aggregations=[]), "feature or aggregation")


@pytest.mark.parametrize(
    "aggregations",
    [
        [Sum("amount", window=HOUR, name="age")],
        [Sum("amount", window=HOUR, name="s"), Count(window=2 * HOUR, name="s")],
    ],
)
def test_aggregation_names_are_unique_across_the_view(aggregations: list[Any]) -> None:
    _fails(lambda: _view(aggregations=aggregations), "FeatureView 'user_profile'", "unique")


def test_aggregation_named_like_a_join_key() -> None:
    agg = Count(window=HOUR, name="user_id")
    _fails(lambda: _view(aggregations=[agg]), "join key", "user_id")


def test_aggregation_fingerprint_covers_its_definition_not_the_ttl() -> None:
    base_agg = Sum("amount", window=HOUR, name="spend")
    base_view = _view(ttl=timedelta(days=1), aggregations=[base_agg])

    def fp(view: FeatureView, agg: Any) -> str:
        return fingerprint(aggregation_definition(view, agg))

    base = fp(base_view, base_agg)
    created = FileSource(
        name="users",
        path="data/users.parquet",
        timestamp_field="updated_at",
        created_timestamp_field="created",
    )
    changed = {
        "kind": fp(base_view, Mean("amount", window=HOUR, name="spend")),
        "column": fp(base_view, Sum("fee", window=HOUR, name="spend")),
        "window": fp(
            base_view, Sum("amount", window=HOUR + timedelta(microseconds=1), name="spend")
        ),
        "dtype": fp(base_view, Sum("amount", window=HOUR, name="spend", dtype=pl.Int64)),
        "source": fp(_view(source=created, aggregations=[base_agg]), base_agg),
        "keys": fp(_view(entities=[Entity("acct")], aggregations=[base_agg]), base_agg),
    }
    assert len({base, *changed.values()}) == len(changed) + 1, changed
    same = [
        fp(_view(ttl=timedelta(days=9), aggregations=[base_agg]), base_agg),
        fp(_view(owner="other", description="d", aggregations=[base_agg]), base_agg),
        fp(base_view, Sum("amount", window=HOUR, name="spend", description="weekly")),
    ]
    assert same == [base] * 3
    plain = fingerprint(feature_definition(base_view, base_view.features[0]))
    assert plain != fingerprint(
        feature_definition(_view(ttl=timedelta(days=9)), base_view.features[0])
    )
