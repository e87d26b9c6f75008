"""The sides of a drift report: their text forms, and reports between a saved training set, a
view's source windows and serving-log windows of a real store, with the errors of each."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from conftest import USER, definitions, source, view

from featurestore import FeatureReferenceError, FeatureStore
from featurestore.errors import ReportError
from featurestore.monitoring import (
    ServingLogSide,
    SourceSide,
    TrainingSetSide,
    parse_side,
    to_side,
)
from featurestore.monitoring._report import Verdict

NOW = dt.datetime(2025, 3, 10, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("data/train.parquet", TrainingSetSide(Path("data/train.parquet"))),
        ("log:7d", ServingLogSide(NOW - dt.timedelta(days=7), NOW)),
        ("log:12h", ServingLogSide(NOW - dt.timedelta(hours=12), NOW)),
        (
            "log:2025-03-01..2025-03-08",
            ServingLogSide(
                dt.datetime(2025, 3, 1, tzinfo=dt.UTC), dt.datetime(2025, 3, 8, tzinfo=dt.UTC)
            ),
        ),
        (
            "log:2025-03-01T06:30Z..",
            ServingLogSide(dt.datetime(2025, 3, 1, 6, 30, tzinfo=dt.UTC), NOW),
        ),
        (
            "source:user_stats:2025-03-01..2025-03-02T12:00",
            SourceSide(
                "user_stats",
                dt.datetime(2025, 3, 1, tzinfo=dt.UTC),
                dt.datetime(2025, 3, 2, 12, tzinfo=dt.UTC),
            ),
        ),
        ("source:user_stats:1w", SourceSide("user_stats", NOW - dt.timedelta(weeks=1), NOW)),
    ],
)
def test_parse_side(text: str, expected: object) -> None:
    assert parse_side(text, now=NOW) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("log:", "expected a window START..END"),
        ("log:7x", "expected a window START..END"),
        ("log:2025-13-01..2025-03-02", "not an ISO date"),
        ("log:2025-03-08..2025-03-01", "starts at or after its end"),
        ("source:user_stats", "source:VIEW:START..END"),
        ("yesterday", "cannot read 'yesterday' as a drift side"),
    ],
)
def test_parse_side_errors(text: str, message: str) -> None:
    with pytest.raises(ReportError, match=message):
        parse_side(text, now=NOW)


def test_to_side() -> None:
    side = ServingLogSide(None, NOW)
    assert to_side(side) is side
    assert to_side(Path("a.parquet")) == TrainingSetSide(Path("a.parquet"))
    assert isinstance(to_side("log:1d"), ServingLogSide)
    with pytest.raises(ReportError, match="found int"):
        to_side(3)  # type: ignore[arg-type]


SCALED = """
@on_demand_feature_view(
    sources=[RequestSource("req", schema={"x": pl.Float64}), stats],
    schema={"ratio": pl.Float64},
)
def scaled(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("x") / pl.col("amount")).alias("ratio"))
"""
DEFINITIONS = definitions(
    "from featurestore.definitions._monitoring import DriftConfig",
    USER,
    view(
        "stats",
        source("events", "data/events.parquet"),
        owner='"risk-team"',
        features=[
            'Feature("amount", pl.Float64, drift=DriftConfig(psi_flag=0.3))',
            'Feature("double_amount", pl.Float64, expr=pl.col("amount") * 2)',
            'Feature("country", pl.String)',
            'Feature("active", pl.Boolean)',
        ],
    ),
    SCALED,
    doc="Definitions of the drift test repo.",
)

JAN, FEB, MAR = dt.datetime(2024, 1, 1), dt.datetime(2024, 2, 1), dt.datetime(2024, 3, 1)
USERS = 1500


def _events(rng: np.random.Generator) -> pl.DataFrame:
    """Two rows per user in January and two in February, when amounts and countries drift."""
    frames = []
    for month, drift in ((JAN, 0.0), (FEB, 1.0)):
        n = 2 * USERS
        frames.append(
            pl.DataFrame(
                {
                    "user_id": np.tile(np.arange(USERS), 2),
                    "ts": [month + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 40000, n)],
                    "amount": rng.normal(100 + 15 * drift, 10, n),
                    "country": rng.choice(
                        ["FR", "US", "DE"], n, p=[0.5 - drift / 4, 0.3, 0.2 + drift / 4]
                    ),
                    "active": rng.random(n) < 0.5,
                },
                schema_overrides={"ts": pl.Datetime("us")},
            )
        )
    return pl.concat(frames)


@pytest.fixture
def drift_store(make_repo: Callable[..., Path]) -> Any:
    rng = np.random.default_rng(0)
    repo = make_repo(
        "drift",
        DEFINITIONS,
        config="project: drift\nserving_log: {enabled: true}\n",
        data={"data/events.parquet": _events(rng)},
    )
    store = FeatureStore(repo)
    store.apply()
    yield store
    store.close()


def _january_training_set(store: Any, tmp_path: Path) -> Path:
    spine = pl.DataFrame(
        {
            "user_id": np.arange(USERS),
            "event_timestamp": [FEB - dt.timedelta(seconds=1)] * USERS,
            "x": np.ones(USERS),
        },
        schema_overrides={"event_timestamp": pl.Datetime("us")},
    )
    refs = ["stats:amount", "stats:double_amount", "stats:country", "stats:active", "scaled:ratio"]
    return store.get_training_set(spine, refs).save(tmp_path / "january.parquet")


def test_training_set_against_source_windows(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    feb = drift_store.drift_report(TrainingSetSide(path), SourceSide("stats", FEB, MAR))
    assert set(feb.flagged) == {"stats:amount", "stats:double_amount", "stats:country"}
    assert {f.ref for f in feb.features} == {
        "stats:amount",
        "stats:double_amount",
        "stats:country",
        "stats:active",
    }  # the on-demand feature has no source
    amount = next(f for f in feb.features if f.ref == "stats:amount")
    assert amount.owner == "risk-team" and amount.stats["rows_current"] == 2 * USERS
    assert feb.settings["overrides"] == "stats:amount: psi_flag=0.3"
    assert feb.to_dict()["summary"]["reference"] == "training set january.parquet"
    jan = drift_store.drift_report(TrainingSetSide(path), SourceSide("stats", JAN, FEB))
    assert jan.flagged == []
    # the source rows of the window against the training set's rows as the current side
    back = drift_store.drift_report(
        SourceSide("stats", JAN, FEB), TrainingSetSide(path), ["stats:amount"]
    )
    assert [f.ref for f in back.features] == ["stats:amount"] and back.flagged == []


def test_serving_log_windows(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    drift_store.materialize(end=MAR)  # February values online
    users = list(range(USERS))
    drift_store.get_online_features(
        features=["stats:amount", "stats:country"], entities={"user_id": users}
    )
    drift_store.get_online_features(
        features=["stats:amount", "stats:active"], entities={"user_id": users[:1000]}
    )
    report = drift_store.drift_report(TrainingSetSide(path), parse_side("log:1d"))
    by_ref = {f.ref: f for f in report.features}
    assert set(by_ref) == {"stats:amount", "stats:country", "stats:active"}
    assert by_ref["stats:amount"].stats["rows_current"] == USERS + 1000  # both requests
    assert by_ref["stats:active"].stats["rows_current"] == 1000  # only the second served it
    assert set(report.flagged) == {"stats:amount", "stats:country"}
    assert report.current_label.startswith("serving log [")
    # the log as the reference: profiles per feature from the records that served it
    same = drift_store.drift_report(ServingLogSide(), ServingLogSide(), ["stats:amount"])
    assert same.features[0].verdict is Verdict.OK and same.features[0].stats["psi"] < 1e-9


def test_side_errors(drift_store: Any, tmp_path: Path) -> None:
    path = _january_training_set(drift_store, tmp_path)
    with pytest.raises(
        FeatureReferenceError,
        match=r"'stats:amout' is not in training set january\.parquet\. "
        r"Did you mean 'stats:amount'",
    ):
        drift_store.drift_report(
            TrainingSetSide(path), SourceSide("stats", FEB, MAR), ["stats:amout"]
        )
    with pytest.raises(FeatureReferenceError, match="Did you mean 'stats'"):
        drift_store.drift_report(TrainingSetSide(path), SourceSide("stat", FEB, MAR))
    with pytest.raises(ReportError, match="'scaled' is an on-demand view"):
        drift_store.drift_report(TrainingSetSide(path), SourceSide("scaled", FEB, MAR))
    with pytest.raises(ReportError, match="does not exist"):
        drift_store.drift_report(TrainingSetSide(tmp_path / "nope.parquet"), ServingLogSide())
    with pytest.raises(ReportError, match="serving log has no records"):
        drift_store.drift_report(TrainingSetSide(path), ServingLogSide(JAN, FEB))
