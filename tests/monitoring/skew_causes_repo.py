"""The skew cause tests' repo: a profile and an activity view (directory sources), an
aggregation view over payments, and on-demand views over whole views, over one view:feature
input, and one whose function reads state outside its definition; their rows, and a factory of
applied stores that log what they serve."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
from conftest import USER, source, view
from conftest import definitions as assemble

from featurestore import FeatureStore
from featurestore.monitoring._report import Verdict
from featurestore.monitoring._skew import SkewReport
from tests.monitoring.skew_repo import activity_rows

D = dt.datetime
BASE = D(2024, 1, 1)  # event time of the first version of every row
MID = D(2024, 1, 15)
T0 = D(2024, 2, 1)  # materialization
LATE = D(2024, 2, 3)  # rows and events that arrive after the materialization
T1 = D(2024, 2, 10)  # requests
T2 = D(2024, 2, 12)
N = 3000  # users: the default min_rows, so a clean feature passes rather than lacks data
CONFIG = "project: skew_causes\nserving_log: {enabled: true}\n"

# on-demand views over whole views, over one view:feature input, and one whose function reads
# state outside its definition
ON_DEMAND = """
txn = RequestSource("txn", schema={"amount": pl.Float64})


@on_demand_feature_view(sources=[txn, profile, activity], schema={"mix": pl.Float64})
def both(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") + pl.col("age") + pl.col("spend")).alias("mix"))


@on_demand_feature_view(sources=[txn, "activity:spend"], schema={"spend_x": pl.Float64})
def one_input(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") * 2 + pl.col("spend")).alias("spend_x"))


@on_demand_feature_view(sources=[txn, profile], schema={"scaled": pl.Float64})
def scaled(df: pl.DataFrame) -> pl.DataFrame:
    factor = float(os.environ.get("SKEW_CAUSES_FACTOR", "2"))  # state outside the definition
    return df.select((pl.col("amount") * factor + pl.col("age")).alias("scaled"))
"""

PROFILE = ["profile:age", "profile:score"]
ACTIVITY = ["activity:clicks", "activity:spend"]
SPEND = ["spend:n_60d", "spend:amount_60d"]
FRESHNESS = {
    "definition_changed_rows": 0,
    "earlier_definition_rows": 0,
    "served_older_rows": 0,
    "served_newer_rows": 0,
}
EVENTS = {
    "definition_changed_rows": 0,
    "earlier_definition_rows": 0,
    "served_older_rows": 0,
    "pushed_missing_offline_rows": 0,
}


def definitions(age: str = "") -> str:
    """The module; ``age`` adds keyword arguments to the age feature."""
    return assemble(
        "import os",
        USER,
        view(
            "profile",
            source("profiles", "data/profile/", "updated_at"),
            owner='"growth"',
            ttl="timedelta(days=365)",
            features=[f'Feature("age", pl.Int64{age})', 'Feature("score", pl.Float64)'],
        ),
        view(
            "activity",
            source("activity_src", "data/activity/"),
            owner='"ads"',
            ttl="timedelta(days=365)",
            features=['Feature("clicks", pl.Int64)', 'Feature("spend", pl.Float64)'],
        ),
        view(
            "spend",
            source("txns", "data/txns/"),
            owner='"payments"',
            aggregations=[
                'Count(window=timedelta(days=60), name="n_60d")',
                'Sum("amount", window=timedelta(days=60), name="amount_60d")',
            ],
        ),
        ON_DEMAND,
        doc="Definitions of the skew cause tests.",
    )


def profile_rows(ids: range | list[int], at: dt.datetime, bump: int = 0) -> pl.DataFrame:
    """One profile row per user; ``bump`` shifts every value (a newer version of the row)."""
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "updated_at": [at] * len(uid),
            "age": 20 + uid % 50 + bump,
            "score": np.sin(uid.astype(float)) * 100 + bump * 0.5,
        },
        schema_overrides={"updated_at": pl.Datetime("us")},
    )


def txn_rows(ids: range | list[int], at: dt.datetime, amount: float = 1.0) -> pl.DataFrame:
    """One payment per user, spread over ten hours from ``at``."""
    uid = np.asarray(ids, dtype=np.int64)
    return pl.DataFrame(
        {
            "user_id": uid,
            "ts": [at + dt.timedelta(hours=int(u % 10)) for u in uid],
            "amount": uid / 10 + amount,
        },
        schema_overrides={"ts": pl.Datetime("us")},
    )


class Stores:
    """A factory of applied stores over the causes repo (serving log on); :meth:`close` closes
    them and every store registered with :meth:`track`."""

    def __init__(self, make_repo: Callable[..., Path]) -> None:
        self.make_repo = make_repo
        self.opened: list[FeatureStore] = []

    def __call__(self, definitions_text: str | None = None) -> FeatureStore:
        root = self.make_repo(
            "repo",
            definitions_text or definitions(),
            config=CONFIG,
            data={
                "data/profile/base.parquet": profile_rows(range(N), BASE),
                "data/activity/base.parquet": activity_rows(range(N), BASE),
                "data/txns/base.parquet": txn_rows(range(N), BASE),
            },
        )
        store = FeatureStore(root)
        store.apply()
        self.opened.append(store)
        return store

    def track(self, store: FeatureStore) -> None:
        """Close ``store`` with the others."""
        self.opened.append(store)

    def close(self) -> None:
        for store in self.opened:
            store.close()


def serve(
    store: FeatureStore, features: list[str], ids: range = range(N), at: dt.datetime = T1
) -> None:
    """One logged request for ``ids`` at ``at``; the amount is the user id over 10."""
    on_demand = any(f.split(":")[0] in ("both", "one_input", "scaled") for f in features)
    store.get_online_features(
        features=features,
        entities={"user_id": list(ids)},
        request_data={"amount": [i / 10 for i in ids]} if on_demand else None,
        request_time=at,
    )


def add_file(store: FeatureStore, path: str, frame: pl.DataFrame) -> None:
    """A new file in a source's directory, as an upstream job writes one (not a push)."""
    frame.write_parquet(store.repo.root / path)


def fingerprint(store: FeatureStore, ref: str) -> str:
    """The fingerprint the store's registry holds for ``ref``."""
    return {f.ref: f.fingerprint for f in store.list_features()}[ref]


def assert_clean(report: SkewReport, refs: list[str]) -> None:
    """Each of ``refs`` passed, with no mismatch and no reason."""
    for ref in refs:
        r = report.result(ref)
        assert (r.verdict, r.mismatches, r.null_mismatches, r.reasons) == (
            Verdict.OK,
            0,
            0,
            [],
        ), (ref, r.reasons)


def stale_activity(open_store: Stores, ids: range | list[int] = range(60)) -> FeatureStore:
    """A store whose activity rows of users ``ids`` changed after the materialization
    (profile rows did not)."""
    store = open_store()
    store.materialize(end=T0)
    add_file(store, "data/activity/late.parquet", activity_rows(ids, LATE, bump=1))
    return store
