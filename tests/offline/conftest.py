"""Fixtures for the offline tests: a feature repo of three views and an on-demand view, written
into a temporary directory, and the same definitions described for the brute-force oracle.

The views cover a created timestamp, a composite key over two entities (user + merchant), an
entity with two join keys (bank + acct), a CSV source, a glob over several Parquet files, naive
and UTC-aware timestamps, defaults, bounds, allowed values, expressions and a ttl with odd
microseconds. Tests rewrite the source files per example; their schemas never change, so the
repo is applied once.
"""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import MERCHANT, USER, definitions, rows_frame, source, view, write_repo

from featurestore import FeatureStore

from . import agg_repo as aggregations
from . import push_repo
from .oracle import OracleFeature, OracleOnDemand, OracleView

Row = dict[str, Any]

USER_STATS_TTL = dt.timedelta(hours=2)
# odd microseconds: float arithmetic on this ttl would be off by one microsecond
USER_MERCHANT_TTL = dt.timedelta(hours=1, minutes=10, microseconds=7)

ON_DEMAND = """
txn_request = RequestSource("txn_request", schema={"amount": pl.Float64})


@on_demand_feature_view(
    sources=[txn_request, user_stats],
    schema=[Feature("amount_ratio", pl.Float64), Feature("amount_level", pl.Float64, ge=0)],
)
def txn_features(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("amount") / (pl.col("score").abs() + 1.0)).alias("amount_ratio"),
        (pl.col("amount") * pl.col("level")).cast(pl.Float64).alias("amount_level"),
    )
"""
DEFINITIONS = definitions(
    USER,
    MERCHANT,
    'account = Entity("account", join_keys=["bank", "acct"])',
    view(
        "user_stats",
        source("user_stats_src", "data/user_stats.parquet", "event_time", created="created"),
        ttl="timedelta(hours=2)",
        features=[
            'Feature("score", pl.Float64)',
            'Feature("level", pl.Int64, ge=0, le=10, default=0)',
            'Feature("score_plus", pl.Float64, ge=-4, expr=pl.col("score") * 2 + pl.col("level"))',
            'Feature("tier", pl.String, allowed=("gold", "silver"), nullable=False)',
        ],
    ),
    view(
        "user_merchant",
        source("user_merchant_src", "data/user_merchant.csv"),
        entities="user, merchant",
        ttl="timedelta(hours=1, minutes=10, microseconds=7)",
        features=[
            'Feature("n_txn", pl.Int64, nullable=False, default=0)',
            'Feature("avg_amt", pl.Float64)',
        ],
    ),
    view(
        "account_risk",
        source("account_src", "data/accounts/*.parquet", "as_of", created="loaded_at"),
        entities="account",
        features=[
            'Feature("risk", pl.Float64, ge=0, le=1)',
            'Feature("risk_pct", pl.Float64, expr=pl.col("risk") * 100)',
            """
            Feature(
                "label_upper", pl.String, default="NONE", expr=pl.col("label").str.to_uppercase()
            )
            """,
        ],
    ),
    ON_DEMAND,
    doc="Definitions of the point-in-time test repo.",
)


def _score_plus(row: Row) -> Any:
    if row["score"] is None or row["level"] is None:
        return None
    return row["score"] * 2 + row["level"]


def _risk_pct(row: Row) -> Any:
    return None if row["risk"] is None else row["risk"] * 100


def _label_upper(row: Row) -> Any:
    return None if row["label"] is None else row["label"].upper()


def _txn_features(inputs: Row) -> Row:
    amount, score, level = inputs["amount"], inputs["score"], inputs["level"]
    return {
        "amount_ratio": None if amount is None or score is None else amount / (abs(score) + 1.0),
        "amount_level": None if amount is None or level is None else float(amount * level),
    }


ORACLE_VIEWS = (
    OracleView(
        name="user_stats",
        keys=("user_id",),
        timestamp="event_time",
        created="created",
        ttl=USER_STATS_TTL,
        features=(
            OracleFeature("score", "float"),
            OracleFeature("level", "int", ge=0, le=10, default=0),
            OracleFeature("score_plus", "float", compute=_score_plus, ge=-4),
            OracleFeature("tier", "string", allowed=("gold", "silver"), nullable=False),
        ),
    ),
    OracleView(
        name="user_merchant",
        keys=("user_id", "merchant_id"),
        timestamp="ts",
        ttl=USER_MERCHANT_TTL,
        features=(
            OracleFeature("n_txn", "int", nullable=False, default=0),
            OracleFeature("avg_amt", "float"),
        ),
    ),
    OracleView(
        name="account_risk",
        keys=("bank", "acct"),
        timestamp="as_of",
        created="loaded_at",
        features=(
            OracleFeature("risk", "float", ge=0, le=1),
            OracleFeature("risk_pct", "float", compute=_risk_pct),
            OracleFeature("label_upper", "string", compute=_label_upper, default="NONE"),
        ),
    ),
)

ORACLE_ON_DEMAND = (
    OracleOnDemand(
        name="txn_features",
        request_columns=("amount",),
        views=("user_stats",),
        features=(
            OracleFeature("amount_ratio", "float"),
            OracleFeature("amount_level", "float", ge=0),
        ),
        compute=_txn_features,
    ),
)

REQUEST_KINDS = {"amount": "float"}

ALL_REFS = tuple(
    f"{v.name}:{f.name}" for v in (*ORACLE_VIEWS, *ORACLE_ON_DEMAND) for f in v.features
)

DECLARED_DTYPES: dict[str, pl.DataType] = {
    "float": pl.Float64(),
    "int": pl.Int64(),
    "string": pl.String(),
}

SCHEMAS: dict[str, dict[str, pl.DataType]] = {
    "user_stats": {
        "user_id": pl.Int64(),
        "event_time": pl.Datetime("us"),
        "created": pl.Datetime("us"),
        "score": pl.Float64(),
        "level": pl.Int64(),
        "tier": pl.String(),
    },
    "user_merchant": {
        "user_id": pl.Int64(),
        "merchant_id": pl.String(),
        "ts": pl.Datetime("us"),
        "n_txn": pl.Int64(),
        "avg_amt": pl.Float64(),
    },
    "account_risk": {
        "bank": pl.String(),
        "acct": pl.Int64(),
        "as_of": pl.Datetime("us", "UTC"),
        "loaded_at": pl.Datetime("us"),
        "risk": pl.Float64(),
        "label": pl.String(),
    },
}

# DuckDB guesses CSV column types from the values, and an all-null column reads as text:
# every CSV written gets this row, whose keys no spine uses, so each column has a value.
CSV_ANCHOR: Row = {
    "user_id": 999_999,
    "merchant_id": "m_anchor",
    "ts": dt.datetime(2000, 1, 1),
    "n_txn": 1,
    "avg_amt": 0.5,
}


def to_frame(name: str, rows: Sequence[Row]) -> pl.DataFrame:
    """Source rows as a frame with the view's fixed source schema."""
    return rows_frame(SCHEMAS[name], rows)


def write_sources(
    root: Path,
    user_stats: Sequence[Row] = (),
    user_merchant: Sequence[Row] = (),
    account_parts: Sequence[Sequence[Row]] = ((),),
) -> dict[str, list[Row]]:
    """Write every source file of the repo at ``root``, one Parquet file per account part.

    Returns the rows as written, per view, for the oracle.
    """
    data = root / "data"
    (data / "accounts").mkdir(parents=True, exist_ok=True)
    to_frame("user_stats", user_stats).write_parquet(data / "user_stats.parquet")
    csv_rows = [*user_merchant, CSV_ANCHOR]
    to_frame("user_merchant", csv_rows).write_csv(data / "user_merchant.csv")
    accounts = data / "accounts"
    for old in accounts.glob("*.parquet"):
        old.unlink()
    for i, part in enumerate(account_parts):
        to_frame("account_risk", part).write_parquet(accounts / f"part-{i:03d}.parquet")
    return {
        "user_stats": list(user_stats),
        "user_merchant": csv_rows,
        "account_risk": [r for part in account_parts for r in part],
    }


def write_pit_repo(root: Path) -> Path:
    """Write featurestore.yaml, the definitions module and one row per source into ``root``."""
    write_repo(root, DEFINITIONS, project="pit_tests", data={})
    t = dt.datetime(2024, 1, 1)
    write_sources(
        root,
        user_stats=[
            {"user_id": 1, "event_time": t, "created": t, "score": 1.0, "level": 1, "tier": "gold"}
        ],
        account_parts=[
            [
                {
                    "bank": "b1",
                    "acct": 1,
                    "as_of": t.replace(tzinfo=dt.UTC),
                    "loaded_at": t,
                    "risk": 0.5,
                    "label": "x",
                }
            ]
        ],
    )
    return root


@dataclass
class PitRepo:
    """An applied repo whose source files each test rewrites."""

    root: Path
    store: FeatureStore

    def write_sources(
        self,
        user_stats: Sequence[Row] = (),
        user_merchant: Sequence[Row] = (),
        account_parts: Sequence[Sequence[Row]] = ((),),
    ) -> dict[str, list[Row]]:
        """See :func:`write_sources`."""
        return write_sources(self.root, user_stats, user_merchant, account_parts)


@pytest.fixture(scope="module")
def pit_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PitRepo]:
    """The point-in-time test repo, applied once per test module."""
    root = write_pit_repo(tmp_path_factory.mktemp("pit") / "repo")
    store = FeatureStore(root)
    store.apply()
    yield PitRepo(root, store)
    store.close()


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores of the push tests' repo (see :mod:`push_repo`) or of other
    ``definitions`` over ``files``, each over a fresh repo and project; closed afterwards."""
    stores: list[FeatureStore] = []
    counter = itertools.count()

    def make(
        definitions: str = push_repo.DEFINITIONS,
        files: dict[str, pl.DataFrame] | None = None,
        online: str = "",
    ) -> FeatureStore:
        i = next(counter)
        project = f"appends_{i}_{uuid.uuid4().hex[:8]}"
        config = f"project: {project}\n{online}"
        data = files or push_repo.default_files()
        store = FeatureStore(
            write_repo(tmp_path / f"repo{i}", definitions, config=config, data=data)
        )
        store.apply()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture(scope="module")
def agg_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[aggregations.AggRepo]:
    """The aggregation test repo (see :mod:`agg_repo`), applied once per test module."""
    root = write_repo(
        tmp_path_factory.mktemp("agg") / "repo",
        aggregations.DEFINITIONS,
        project="agg_tests",
        data={},
    )
    aggregations.write_sources(root)
    store = FeatureStore(root)
    store.apply()
    yield aggregations.AggRepo(root, store)
    store.close()
