"""A repo for monitoring tests: an on-demand view that serves its request values as features, so
a test decides exactly which values each hour serves; a reference training set of the same
values; and serving in past hours through the in-process path, which writes the serving log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from featurestore import FeatureStore

START = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
FEATURES = ["payment:amount_v", "payment:channel_v", "payment:flag_v"]

DEFINITIONS = """
import polars as pl
from featurestore import Feature, RequestSource, on_demand_feature_view

pay = RequestSource(
    "pay", schema={"amount": pl.Float64, "channel": pl.String, "flag": pl.Boolean}
)


@on_demand_feature_view(
    sources=[pay],
    schema=[
        Feature("amount_v", pl.Float64),
        Feature("channel_v", pl.String),
        Feature("flag_v", pl.Boolean),
    ],
    owner="risk",
)
def payment(df: pl.DataFrame) -> list[pl.Expr]:
    return [
        pl.col("amount").alias("amount_v"),
        pl.col("channel").alias("channel_v"),
        pl.col("flag").alias("flag_v"),
    ]
"""


def config(alerts: str = "", extra: str = "") -> str:
    """featurestore.yaml with the serving log on and ``ref.parquet`` as the reference."""
    text = (
        "project: payments\n"
        "serving_log: {enabled: true, flush_interval_seconds: 0.05}\n"
        "monitoring:\n"
        "  reference: ref.parquet\n"
        "  consistency_sample: 0\n"
    )
    if alerts:
        text += "  alerts:\n" + "".join(f"    {line}\n" for line in alerts.strip().splitlines())
    return text + extra


def draw(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict[str, list[Any]]:
    """Request values: amounts N(shift, 1), three channels, flags true 30% of the time."""
    return {
        "amount": rng.normal(shift, 1.0, n).tolist(),
        "channel": rng.choice(["pos", "web", "app"], n).tolist(),
        "flag": (rng.random(n) < 0.3).tolist(),
    }


def open_repo(make_repo: Callable[..., Path], alerts: str = "", extra: str = "") -> FeatureStore:
    """The repo applied, with a 5,000-row reference training set saved as ref.parquet."""
    root = make_repo(definitions=DEFINITIONS, config=config(alerts, extra), data={})
    store = FeatureStore(root)
    store.apply()
    rng = np.random.default_rng(0)
    spine = pl.DataFrame(
        {"event_timestamp": [START - dt.timedelta(days=1)] * 5000} | draw(rng, 5000)
    )
    store.get_training_set(spine, FEATURES).save(root / "ref.parquet")
    return store


def serve_hours(
    store: FeatureStore,
    hours: range,
    rows: int = 2000,
    shift: Callable[[int], float] = lambda hour: 0.0,
    seed: int = 1,
) -> int:
    """Serve ``rows`` request rows in each of ``hours`` (hours after START), in batches of 500
    spread over the hour; returns the rows served. The log is flushed."""
    rng = np.random.default_rng(seed)
    served = 0
    for hour in hours:
        values = draw(rng, rows, shift(hour))
        for i in range(0, rows, 500):
            at = START + dt.timedelta(hours=hour, minutes=i * 59 // rows)
            batch = {k: v[i : i + 500] for k, v in values.items()}
            store.get_online_features(FEATURES, request_data=batch, request_time=at)
            served += len(batch["amount"])
    store.serving_log.flush()
    return served
