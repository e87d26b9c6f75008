"""The repo of the push tests: a source feeding an aggregation view and a plain view, one feeding
only a plain view, a PushSource whose batch source another plain view reads directly; one-view
repos over a source at any path or with any time zone; the rows they hold and how the tests
read them back offline and online."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
from conftest import USER, definitions, rows_frame, source, view

from featurestore import FeatureStore
from featurestore.online._codec import encode_key

Row = dict[str, Any]
UTC = dt.UTC
BASE = dt.datetime(2025, 1, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)

DEFINITIONS = definitions(
    USER,
    f"txns = {source('txns', 'data/txns/')}",
    view(
        "user_txn",
        "txns",
        aggregations=[
            'Count(window=timedelta(hours=1), name="count_1h")',
            'Sum("amount", window=timedelta(days=1), name="spend_1d")',
        ],
    ),
    view(
        "last_txn",
        "txns",
        features=['Feature("amount", pl.Float64)', 'Feature("merchant", pl.String)'],
    ),
    view(
        "profiles", source("profile_rows", "data/profiles/"), features=['Feature("age", pl.Int64)']
    ),
    f"clicks = {source('clicks', 'data/clicks/*.parquet')}",
    view(
        "user_clicks",
        'PushSource(name="click_push", batch_source=clicks)',
        aggregations=['Count(window=timedelta(hours=1), name="clicks_1h")'],
    ),
    view("last_click", "clicks", features=['Feature("page", pl.String)']),
    doc="Definitions of the push tests.",
)

TXN_SCHEMA = {
    "user_id": pl.Int64(),
    "ts": pl.Datetime("us", "UTC"),
    "amount": pl.Float64(),
    "merchant": pl.String(),
}
PROFILE_SCHEMA = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "age": pl.Int64()}
CLICK_SCHEMA = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "page": pl.String()}
AGG_REFS = ["user_txn:count_1h", "user_txn:spend_1d"]
PLAIN_REFS = ["last_txn:amount", "last_txn:merchant"]
USERS = [1, 2, 3]


def path_definitions(path: str) -> str:
    """One view, ``t``, over one source, ``t``, at ``path``."""
    return definitions(
        USER, view("t", source("t", path), features=['Feature("amount", pl.Float64)'])
    )


T_SCHEMA = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64()}


def zones_definitions(*kinds: str) -> str:
    """One view per kind of event time (``utc``, ``paris``, ``naive``: all by default), each over
    its own directory."""
    return definitions(
        USER,
        *(
            view(
                kind,
                source(f"{kind}_src", f"data/{kind}/"),
                features=['Feature("score", pl.Float64)', 'Feature("qty", pl.Int64)'],
            )
            for kind in kinds or TS_TYPES
        ),
    )


TS_TYPES = {
    "utc": pl.Datetime("us", "UTC"),
    "paris": pl.Datetime("us", "Europe/Paris"),
    "naive": pl.Datetime("us"),
}


def zone_schema(kind: str) -> dict[str, pl.DataType]:
    """Narrower types than the pushed values (Int32 key, Float32, Int16), a zone-aware
    datetime column no view reads, and a text column no push sets."""
    return {
        "user_id": pl.Int32(),
        "ts": TS_TYPES[kind],
        "score": pl.Float32(),
        "qty": pl.Int16(),
        "seen": pl.Datetime("ms", "Asia/Tokyo"),
        "note": pl.String(),
    }


def as_written(kind: str, instant: dt.datetime) -> dt.datetime:
    """``instant`` as a value of the ``ts`` column of ``kind`` (naive columns hold UTC)."""
    if kind == "naive":
        return instant.astimezone(UTC).replace(tzinfo=None)
    return instant.astimezone(ZoneInfo(TS_TYPES[kind].time_zone))  # type: ignore[attr-defined]


PUSHED_FORMS: dict[str, Callable[[dt.datetime], Any]] = {
    "aware": lambda t: t.astimezone(dt.timezone(dt.timedelta(hours=5))),
    "naive": lambda t: t.astimezone(UTC).replace(tzinfo=None),
    "iso_text": lambda t: t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
}


def txn(user: int, ts: dt.datetime, amount: float | None = 1.0, merchant: str = "m") -> Row:
    return {"user_id": user, "ts": ts, "amount": amount, "merchant": merchant}


def default_files() -> dict[str, pl.DataFrame]:
    return {
        "data/txns/base.parquet": rows_frame(TXN_SCHEMA, [txn(1, BASE, 10.0, "a")]),
        "data/profiles/base.parquet": rows_frame(
            PROFILE_SCHEMA, [{"user_id": 1, "ts": BASE, "age": 30}]
        ),
        "data/clicks/base.parquet": rows_frame(
            CLICK_SCHEMA, [{"user_id": 1, "ts": BASE, "page": "/"}]
        ),
    }


def listing(store: FeatureStore) -> list[str]:
    """Every file under the repo's data directory, hidden and temporary ones included."""
    data = store.repo.root / "data"
    return sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())


def offline(
    store: FeatureStore, refs: list[str], at: dt.datetime, users: list[int] = USERS
) -> dict[str, list[Any]]:
    """A training set of ``refs`` for ``users`` at ``at``, column by column."""
    spine = pl.DataFrame(
        {"user_id": users, "event_timestamp": [at] * len(users)},
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    frame = store.get_training_set(spine, features=refs).to_polars()
    return {c: frame[c].to_list() for c in frame.columns if c not in spine.columns}


def online(
    store: FeatureStore, refs: list[str], at: dt.datetime, users: list[int] = USERS
) -> dict[str, list[Any]]:
    response = store.get_online_features(
        features=refs, entities={"user_id": users}, request_time=at
    )
    return response.values


def stored_events(store: FeatureStore, view: str, users: list[int] = USERS) -> list[Any]:
    """The raw online events of an aggregation view, per user."""
    return store.online.read(f"{view}@events", [encode_key((u,)) for u in users])
