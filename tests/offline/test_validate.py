"""``validate`` checks values, not only schemas: per feature, the source rows whose value breaks
a declared rule (and so is INVALID in training sets and online), with examples; through the
library and the ``featurestore validate`` command."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import USER, definitions, source, view

from featurestore import FeatureStore
from featurestore._store import SourceReport
from featurestore.offline._value_checks import FeatureCheck
from tests.cli.helpers import run

LEVEL = 'Feature("level", pl.Int8)'


def users_definitions(level: str = LEVEL) -> str:
    """The ``users`` view, whose source breaks every kind of rule; ``level`` declares the
    ``level`` feature."""
    return definitions(
        USER,
        view(
            "users",
            source("users_src", "data/users.parquet", "updated_at"),
            ttl="timedelta(days=3650)",
            features=[
                'Feature("age", pl.Int64, ge=0, le=130)',
                'Feature("plan", pl.String, allowed=("free", "pro"))',
                'Feature("country", pl.String, nullable=False)',
                """
                Feature(
                    "tenure_days",
                    pl.Int64,
                    ge=0,
                    expr=(pl.col("updated_at") - pl.col("signup_at")).dt.total_days(),
                )
                """,
                'Feature("score", pl.Float64)',
                level,
                'Feature("city", pl.String, nullable=False, default="unknown")',
            ],
            aggregations=[
                'Sum("big", window=timedelta(days=7), name="big_7d", dtype=pl.Int64)',
                'Mean("score", window=timedelta(days=7), name="score_mean_7d")',
            ],
        ),
        doc="A view whose source breaks every kind of rule.",
    )


DEFINITIONS = users_definitions()

PLAIN = ["age", "plan", "country", "tenure_days", "score", "level", "city"]
FEATURES = [*PLAIN, "big_7d", "score_mean_7d"]


def dirty_frame() -> pl.DataFrame:
    """Ten rows; the last two (no key, no event time) are never served, so never checked."""
    t = dt.datetime
    return pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5, 6, 7, 8, None, 10],
            "updated_at": [t(2024, 1, d) for d in range(1, 10)] + [None],
            "signup_at": [t(2023, 1, 1)] * 5 + [t(2024, 6, 1)] + [t(2023, 1, 1)] * 4,
            "age": [30, 150, -3, 40, 50, 60, 70, None, 999, 999],
            "plan": ["free", "pro", "gold", "free", "free", "pro", "free", None, "x", "x"],
            "country": ["FR", None, "US", None, "DE", "FR", "FR", "FR", None, None],
            "score": [0.5, float("nan"), 1.0, 2.0, float("inf"), 0.1, 0.2, None, 0.0, 0.0],
            "level": [1, 2, 300, 4, 5, 6, 7, 8, 300, 300],
            "city": ["Paris", None, "Lyon", "Nice", "Paris", "Paris", None, "Lyon", None, None],
            "big": [1, 2, 3, 4, 5, 6, 2**64 - 1, 8, 2**64 - 1, 2**64 - 1],
        },
        schema_overrides={
            "user_id": pl.Int64,
            "updated_at": pl.Datetime("us"),
            "signup_at": pl.Datetime("us"),
            "big": pl.UInt64,
        },
    )


def clean_frame() -> pl.DataFrame:
    """The dirty rows, each broken value replaced by a valid one (nulls where allowed)."""
    return (
        dirty_frame()
        .head(8)
        .with_columns(
            age=pl.Series([30, 15, 3, 40, 50, 60, 70, None]),
            plan=pl.Series(["free", "pro", "pro", "free", "free", "pro", "free", None]),
            country=pl.lit("FR"),
            signup_at=pl.lit(dt.datetime(2023, 1, 1)).cast(pl.Datetime("us")),
            score=pl.Series([0.5, 1.5, 1.0, 2.0, 3.0, 0.1, 0.2, None]),
            level=pl.Series([1, 2, 3, 4, 5, 6, 7, 8]),
            big=pl.Series([1, 2, 3, 4, 5, 6, 7, 8], dtype=pl.UInt64),
        )
    )


@pytest.fixture
def open_repo(make_repo: Callable[..., Path]) -> Iterator[Callable[[pl.DataFrame], FeatureStore]]:
    stores: list[FeatureStore] = []

    def open_(frame: pl.DataFrame) -> FeatureStore:
        root = make_repo(f"repo{len(stores)}", DEFINITIONS, data={"data/users.parquet": frame})
        stores.append(FeatureStore(root))
        return stores[-1]

    yield open_
    for store in stores:
        store.close()


def checks(report: SourceReport) -> dict[str, FeatureCheck]:
    return {c.feature.split(":")[1]: c for c in report.features}


def test_validate_counts_the_rows_that_break_each_rule(
    open_repo: Callable[[pl.DataFrame], FeatureStore],
) -> None:
    (report,) = open_repo(dirty_frame()).validate()
    assert not report.ok
    assert report.rows == 8  # rows without a key or an event time are never served
    found = checks(report)
    assert list(found) == FEATURES
    summary = {
        name: (c.rows, c.invalid, c.nulls, c.broken) for name, c in found.items() if not c.ok
    }
    assert summary == {
        "age": (8, 2, 0, {"above le=130": 1, "below ge=0": 1}),
        "plan": (8, 1, 0, {"not in allowed=['free', 'pro']": 1}),
        "country": (8, 2, 2, {"null (nullable=False)": 2}),
        "tenure_days": (8, 1, 0, {"below ge=0": 1}),
        "score": (8, 2, 0, {"NaN or infinite": 2}),
        "level": (8, 1, 0, {"not castable to Int8": 1}),
        "big_7d": (8, 1, 0, {"not castable to Int64": 1}),
    }
    assert found["city"].ok and found["city"].invalid == 0  # nulls take the default
    assert found["score_mean_7d"].ok  # NaN and inf cast to Float64: nothing to report

    def examples(name: str) -> list[tuple[dict[str, Any], Any]]:
        return [(e.keys, e.value) for e in found[name].examples]

    assert examples("age") == [({"user_id": 2}, 150), ({"user_id": 3}, -3)]
    assert examples("plan") == [({"user_id": 3}, "gold")]
    assert examples("country") == [({"user_id": 2}, None), ({"user_id": 4}, None)]
    assert examples("tenure_days") == [
        ({"user_id": 6}, (dt.date(2024, 1, 6) - dt.date(2024, 6, 1)).days)
    ]
    (nan, inf) = examples("score")
    assert nan[0] == {"user_id": 2} and nan[1] != nan[1] and inf == ({"user_id": 5}, float("inf"))
    assert examples("level") == [({"user_id": 3}, 300)]
    assert examples("big_7d") == [({"user_id": 7}, 2**64 - 1)]
    assert found["age"].examples[0].event_time == dt.datetime(2024, 1, 2)
    assert found["age"].rule == "Int64, ge=0, le=130"

    # one problem per broken feature, naming the count, the rule and an example
    assert len(report.problems) == 7
    (age,) = [p for p in report.problems if "'users:age'" in p]
    assert "2 of 8 row(s)" in age and "1 above le=130, 1 below ge=0" in age
    assert "e.g. user_id=2 at 2024-01-02 00:00:00: 150" in age


def test_validate_counts_agree_with_training_set_statuses(
    open_repo: Callable[[pl.DataFrame], FeatureStore],
) -> None:
    store = open_repo(dirty_frame())
    (report,) = store.validate()
    store.apply()
    spine = (
        dirty_frame()
        .head(8)
        .select("user_id", pl.col("updated_at").alias("event_timestamp"))
        .with_columns(pl.col("event_timestamp") + dt.timedelta(microseconds=1))
    )
    ts = store.get_training_set(spine, features=[f"users:{f}" for f in PLAIN])
    invalid = {f.ref.split(":")[1]: f.statuses.get("INVALID", 0) for f in ts.metadata.features}
    assert invalid == {name: c.invalid for name, c in checks(report).items() if name in PLAIN}
    assert sum(invalid.values()) == 9


def test_validate_is_ok_on_clean_values(open_repo: Callable[[pl.DataFrame], FeatureStore]) -> None:
    (report,) = open_repo(clean_frame()).validate()
    assert report.ok, report.problems
    assert report.rows == 8
    assert all(c.ok and c.invalid == 0 and not c.examples for c in report.features)
    assert [c.feature for c in report.features] == [f"users:{f}" for f in FEATURES]


def test_a_schema_problem_skips_the_value_check(
    open_repo: Callable[[pl.DataFrame], FeatureStore],
) -> None:
    (report,) = open_repo(dirty_frame().drop("plan")).validate()
    assert len(report.problems) == 1 and "'plan'" in report.problems[0]
    assert report.features == [] and report.rows is None


def test_an_expression_failing_on_the_data_is_a_problem(make_repo: Callable[..., Path]) -> None:
    changed = users_definitions('Feature("level", pl.Int64, expr=pl.col("code").str.to_integer())')
    frame = dirty_frame().with_columns(code=pl.Series(["1", "2", "x3"] + ["4"] * 7))
    store = FeatureStore(make_repo(definitions=changed, data={"data/users.parquet": frame}))
    try:
        (report,) = store.validate()
    finally:
        store.close()
    level = checks(report)["level"]
    assert not level.ok and level.error is not None
    (problem,) = [p for p in report.problems if "'users:level'" in p]
    assert "fails on the source data" in problem


def value_table(text: str) -> list[str]:
    """The lines of the value checks' table, words single-spaced, from its header on."""
    lines = [" ".join(line.split()) for line in text.splitlines()]
    start = lines.index("feature rule invalid broken rule examples")
    return lines[start + 2 : lines.index("", start)]


def test_cli_validate_shows_the_counts_and_exits_1(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(definitions=DEFINITIONS, data={"data/users.parquet": dirty_frame()})
    result = run("validate", cwd=repo)
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "│ users │ users_src │ data/users.parquet │ 8 │ 7 problem(s) │" in [
        " ".join(line.split()) for line in out.splitlines()
    ]
    assert "users: values of 8 row(s)" in out
    at = "user_id={} at 2024-01-0{} 00:00:00: {}".format
    assert value_table(out) == [
        f"users:age Int64, ge=0, le=130 2 25.0% 1 above le=130 {at(2, 2, 150)}",
        f"1 below ge=0 {at(3, 3, -3)}",
        "users:plan String, allowed=['free', 'pro'] 1 12.5% 1 not in allowed=['free', 'pro'] "
        + at(3, 3, "'gold'"),
        f"users:country String, not null 2 25.0% 2 null (nullable=False) {at(2, 2, 'null')}",
        at(4, 4, "null"),
        f"users:tenure_days Int64, ge=0 1 12.5% 1 below ge=0 {at(6, 6, -147)}",
        f"users:score Float64, finite 2 25.0% 2 NaN or infinite {at(2, 2, 'nan')}",
        at(5, 5, "inf"),
        f"users:level Int8 1 12.5% 1 not castable to Int8 {at(3, 3, 300)}",
        "users:city String 0 - -",
        "users:big_7d input castable to Int64 1 12.5% 1 not castable to Int64 "
        + at(7, 7, 2**64 - 1),
        "users:score_mean_7d input castable to Float64 0 - -",
    ]
    assert out.splitlines()[-2:] == [
        "Rows breaking a rule get status INVALID in training sets and online: the value is "
        "replaced by the feature's default, or null.",
        "1 of 1 source(s) have problems.",
    ]

    as_json = run("validate", "--json", cwd=repo)
    assert as_json.returncode == 1, as_json.stderr
    (report,) = json.loads(as_json.stdout)
    assert report["ok"] is False and report["rows"] == 8 and len(report["problems"]) == 7
    found = {f["feature"]: f for f in report["features"]}
    age = found["users:age"]
    assert (age["rows"], age["invalid"], age["nulls"]) == (8, 2, 0)
    assert age["broken"] == {"above le=130": 1, "below ge=0": 1}
    assert age["examples"][0] == {
        "keys": {"user_id": 2},
        "event_time": "2024-01-02T00:00:00",
        "value": 150,
        "reason": "above le=130",
    }
    assert found["users:country"]["nulls"] == 2
    assert [e["value"] for e in found["users:score"]["examples"]] == ["nan", "inf"]
    assert found["users:city"]["ok"] is True


def test_cli_validate_exits_0_on_clean_values(make_repo: Callable[..., Path]) -> None:
    repo = make_repo(definitions=DEFINITIONS, data={"data/users.parquet": clean_frame()})
    result = run("validate", cwd=repo)
    assert result.returncode == 0, result.stdout + result.stderr
    rows = value_table(result.stdout)
    assert [row.split()[0] for row in rows] == [f"users:{f}" for f in FEATURES]
    assert all(row.endswith(" 0 - -") for row in rows)
    assert result.stdout.splitlines()[-1] == (
        "All 1 source(s) match their declarations, values included."
    )
