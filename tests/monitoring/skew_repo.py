"""The skew tests' repo: a profile view, an activity view and an on-demand view over a request
source (its function reads state outside its definition), a view whose values are set pair by
pair, their rows, and a factory of applied stores that log what they serve."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from conftest import USER, source, view
from conftest import definitions as assemble

from featurestore import FeatureStore
from featurestore.monitoring._skew import SkewReport

D = dt.datetime
BASE = D(2024, 1, 1)  # event time of the first version of every row
T0 = D(2024, 2, 1)  # materialization
LATE = D(2024, 2, 3)  # rows that arrive after the materialization
T1 = D(2024, 2, 10)  # requests
T2 = D(2024, 2, 20)
CONFIG = "project: skew\nserving_log: {enabled: true}\n"

# the on-demand view; its function reads state outside its definition
RISK = """
txn = RequestSource("txn", schema={"amount": pl.Float64})


@on_demand_feature_view(sources=[txn, activity], schema={"amount_x": pl.Float64})
def risk(df: pl.DataFrame) -> pl.DataFrame:
    factor = float(os.environ.get("SKEW_TEST_FACTOR", "2"))  # state outside the definition
    return df.select((pl.col("amount") * factor + pl.col("spend")).alias("amount_x"))
"""
SKEW_CONFIG = "from featurestore.definitions._monitoring import SkewConfig"

# one view whose values the tests set pair by pair: served first, then rewritten at the same
# event time, so only the value differs (no stale row, no definition change)
PAIRS_DEFINITIONS = assemble(
    SKEW_CONFIG,
    USER,
    view(
        "m",
        source("m_src", "data/m.parquet"),
        ttl="timedelta(days=60)",
        features=[
            'Feature("a", pl.Float64, skew=SkewConfig(abs_tol=0.5, rel_tol=0.0))',
            'Feature("r", pl.Float64, skew=SkewConfig(abs_tol=0.0, rel_tol=0.25))',
            'Feature("d", pl.Float64)',
            'Feature("n", pl.Int64)',
            'Feature("c", pl.String)',
        ],
    ),
    doc="Definitions of the tolerance test repo.",
)
PAIR_COLUMNS = {"a": pl.Float64, "r": pl.Float64, "d": pl.Float64, "n": pl.Int64, "c": pl.String}
PROFILE = ["profile:country", "profile:age", "profile:score"]
ACTIVITY = ["activity:clicks", "activity:spend"]
ALL = [*PROFILE, *ACTIVITY, "risk:amount_x"]
COUNTRIES = ["FR", "US", "DE", "IT"]


def definitions(age: str = "", score: str = "") -> str:
    """The skew test repo's module; ``age``/``score`` add keyword arguments to those features."""
    return assemble(
        "import os",
        SKEW_CONFIG,
        USER,
        view(
            "profile",
            source("profiles", "data/profile.parquet", "updated_at"),
            owner='"growth"',
            ttl="timedelta(days=365)",
            features=[
                'Feature("country", pl.String)',
                f'Feature("age", pl.Int64{age})',
                f'Feature("score", pl.Float64{score})',
            ],
        ),
        view(
            "activity",
            source("activity_src", "data/activity.parquet"),
            owner='"ads"',
            features=['Feature("clicks", pl.Int64)', 'Feature("spend", pl.Float64)'],
        ),
        RISK,
        doc="Definitions of the skew test repo.",
    )


def profile_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    """One profile row per user; ``bump`` shifts every value (a newer version of the row)."""
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "updated_at": [at] * len(uid),
            "country": [COUNTRIES[(i + bump) % 4] for i in uid],
            "age": 20 + uid % 50 + bump,
            "score": np.sin(uid.astype(float)) * 100 + bump * 0.5,
        },
        schema_overrides={"updated_at": pl.Datetime("us")},
    )


def activity_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    """One activity row per user; ``bump`` shifts every value."""
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "ts": [at] * len(uid),
            "clicks": uid % 7 + bump,
            "spend": np.cos(uid.astype(float)) * 10 + bump,
        },
        schema_overrides={"ts": pl.Datetime("us")},
    )


class Stores:
    """A factory of applied stores over repos written with the serving log on (the profile and
    activity sources of ``n`` users unless ``data`` says otherwise); :meth:`close` closes them."""

    def __init__(self, make_repo: Callable[..., Path]) -> None:
        self.make_repo = make_repo
        self.opened: list[FeatureStore] = []

    def __call__(
        self,
        definitions_text: str | None = None,
        data: dict[str, pl.DataFrame] | None = None,
        n: int = 3000,
        name: str = "repo",
    ) -> FeatureStore:
        root = self.make_repo(
            name,
            definitions_text or definitions(),
            config=CONFIG,
            data=data
            or {
                "data/profile.parquet": profile_rows(range(n), BASE),
                "data/activity.parquet": activity_rows(range(n), BASE),
            },
        )
        store = FeatureStore(root)
        store.apply()
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


def serve(
    store: FeatureStore, ids: range | list[int], at: dt.datetime, features: list[str] = ALL
) -> None:
    """One logged request for ``ids`` at ``at``; the amount is the user id over 10."""
    request = {"amount": [i / 10 for i in ids]} if "risk:amount_x" in features else None
    store.get_online_features(
        features=features,
        entities={"user_id": list(ids)},
        request_data=request,
        request_time=at,
    )


def write(store: FeatureStore, path: str, frame: pl.DataFrame) -> None:
    """Replace a source file of the store's repo with ``frame``."""
    frame.write_parquet(store.repo.root / path)


def reopen(store: FeatureStore, definitions_text: str) -> FeatureStore:
    """Close ``store`` (flushing its log), change the definitions and load the repo again."""
    store.close()
    (store.repo.root / "definitions.py").write_text(definitions_text.lstrip())
    return FeatureStore(store.repo.root)


def pairs_frame(columns: dict[str, list[Any]], at: dt.datetime = BASE) -> pl.DataFrame:
    """One row per user of the pairs view, each column padded with a constant."""
    n = max(len(v) for v in columns.values())
    padding = {"a": 1.0, "r": 1.0, "d": 1.0, "n": 1, "c": "FR"}
    data: dict[str, Any] = {"user_id": list(range(n)), "ts": [at] * n}
    for name, dtype in PAIR_COLUMNS.items():
        values = columns.get(name, [])
        data[name] = pl.Series(values + [padding[name]] * (n - len(values)), dtype=dtype)
    return pl.DataFrame(data, schema_overrides={"ts": pl.Datetime("us")})


def run_pairs(
    open_store: Callable[..., FeatureStore],
    pairs: dict[str, list[tuple[Any, Any]]],
    served_at: dt.datetime = BASE,
) -> tuple[SkewReport, int]:
    """Serve the first value of each pair, rewrite the source with the second, report."""
    served = {k: [p[0] for p in v] for k, v in pairs.items()}
    offline = {k: [p[1] for p in v] for k, v in pairs.items()}
    first = pairs_frame(served, served_at)
    store = open_store(PAIRS_DEFINITIONS, {"data/m.parquet": first})
    store.materialize(end=T0)
    write(store, "data/m.parquet", pairs_frame(offline, served_at))
    serve(store, range(first.height), T1, [f"m:{c}" for c in PAIR_COLUMNS])
    return store.skew_report(), first.height


def mismatching_users(report: SkewReport, ref: str) -> set[int]:
    """The users of a feature's example rows."""
    return {e["user_id"] for e in report.result(ref).examples}
