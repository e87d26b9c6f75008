"""Training sets without a spine: the spine read from the sources' events in a range, or each
entity once at the range's end, against a brute-force oracle of the spine and of the join."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore.errors import SpineError

from .conftest import ORACLE_VIEWS, SCHEMAS, PitRepo
from .oracle import expected_training_set, to_utc
from .test_point_in_time import (
    BASE,
    KEYS,
    SLOW,
    STEP,
    TIMESTAMP_FIELDS,
    account_rows,
    grid_times,
    same,
    source_table,
    user_merchant_rows,
    user_stats_rows,
)

Row = dict[str, Any]

# batch features only: on-demand views need request columns, which no source holds
REFS = [
    "user_stats:score",
    "user_stats:level",
    "user_merchant:n_txn",
    "user_merchant:avg_amt",
    "account_risk:risk_pct",
]
ZONES = [None, "UTC", "Asia/Kathmandu"]


def oracle_spine(
    written: dict[str, list[Row]],
    refs: list[str],
    start: dt.datetime | None,
    end: dt.datetime | None,
    latest: bool,
) -> list[Row]:
    """The spine rows a range should give, by brute force (times naive UTC)."""
    views = list(dict.fromkeys(r.split(":")[0] for r in refs))
    keys = list(dict.fromkeys(k for v in views for k in KEYS[v]))
    low, high = (None if t is None else to_utc(t) for t in (start, end))
    events: set[tuple[Any, ...]] = set()
    for view in views:
        if not all(k in SCHEMAS[view] for k in keys):
            continue
        for row in written[view]:
            t = row[TIMESTAMP_FIELDS[view]]
            if t is None or any(row[k] is None for k in keys):
                continue
            t = to_utc(t)
            if (low is None or t >= low) and (high is None or t <= high):
                events.add((*(row[k] for k in keys), t))
    if latest:
        assert high is not None
        entities = sorted({e[:-1] for e in events})
        return [{**dict(zip(keys, e, strict=True)), "event_timestamp": high} for e in entities]
    ordered = sorted(events, key=lambda e: (e[-1], *e[:-1]))
    return [{**dict(zip(keys, e[:-1], strict=True)), "event_timestamp": e[-1]} for e in ordered]


@st.composite
def ranges(draw: st.DrawFn) -> tuple[dt.datetime | None, dt.datetime | None]:
    """A start and an end on the sources' grid (either may be open), in some time zone."""
    bounds = sorted(draw(st.lists(grid_times, min_size=2, max_size=2)))
    zone = draw(st.sampled_from(ZONES))

    def shown(t: dt.datetime) -> dt.datetime:
        return t if zone is None else t.replace(tzinfo=dt.UTC).astimezone(ZoneInfo(zone))

    start = draw(st.one_of(st.none(), st.just(shown(bounds[0]))))
    end = draw(st.one_of(st.none(), st.just(shown(bounds[1]))))
    return start, end


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    pool = draw(st.lists(grid_times, min_size=1, max_size=4, unique=True))
    times = st.one_of(st.sampled_from(pool), grid_times)
    start, end = draw(ranges())
    # a feature set whose join keys some requested source holds together
    refs = draw(
        st.sampled_from(
            [
                ["user_stats:score"],
                ["user_stats:score", "user_stats:level", "user_merchant:n_txn"],
                ["user_merchant:avg_amt"],
                ["account_risk:risk_pct"],
                ["user_merchant:n_txn", "user_stats:level"],
            ]
        )
    )
    latest = draw(st.booleans())
    return {
        "user_stats": draw(
            source_table(user_stats_rows(times), ("user_id", "event_time", "created"), 10)
        ),
        "user_merchant": draw(
            source_table(user_merchant_rows(times), ("user_id", "merchant_id", "ts"), 8)
        ),
        "accounts": draw(
            source_table(account_rows(times), ("bank", "acct", "as_of", "loaded_at"), 8)
        ),
        "refs": refs,
        "start": start,
        # no bound at all is a forgotten spine (refused): an open range has one bound
        "end": end if end is not None or (start is not None and not latest) else BASE + 20 * STEP,
        "latest": latest,
    }


@settings(max_examples=120, deadline=None, suppress_health_check=SLOW)
@given(scenario=scenarios())
def test_spine_from_events_matches_the_oracle(pit_repo: PitRepo, scenario: dict[str, Any]) -> None:
    """The spine is every distinct event of the sources holding all keys, in the range, ordered
    by time then keys (or each entity once at the end); the features are the point-in-time
    join's on that spine."""
    written = pit_repo.write_sources(
        scenario["user_stats"], scenario["user_merchant"], [scenario["accounts"]]
    )
    refs, start, end, latest = (scenario[k] for k in ("refs", "start", "end", "latest"))
    ts = pit_repo.store.get_training_set(features=refs, start=start, end=end, latest=latest)
    out = ts.to_polars()
    want_spine = oracle_spine(written, refs, start, end, latest)
    keys = [c for c in out.columns if c in ("user_id", "merchant_id", "bank", "acct")]
    assert out.schema["event_timestamp"] == pl.Datetime("us", "UTC")
    got_spine = [
        {**{k: row[k] for k in keys}, "event_timestamp": to_utc(row["event_timestamp"])}
        for row in out.to_dicts()
    ]
    assert got_spine == want_spine, f"range {start} .. {end}, latest={latest}"
    want_rows, _ = expected_training_set(want_spine, refs, ORACLE_VIEWS, written)
    for got, want in zip(out.to_dicts(), want_rows, strict=True):
        columns = [r.split(":")[1] for r in refs]
        wrong = {c: (got[c], want[c]) for c in columns if not same(got[c], want[c])}
        assert not wrong, f"row {got}: (engine, oracle) = {wrong}"
    events = ts.metadata.events
    assert events is not None and events.latest == latest


def test_on_demand_features_need_a_spine(pit_repo: PitRepo) -> None:
    with pytest.raises(SpineError, match=r"request column\(s\) \['amount'\].*pass a spine"):
        pit_repo.store.get_training_set(
            features=["txn_features:amount_ratio"], end=dt.datetime(2024, 1, 2)
        )


def test_keys_no_source_holds_together_are_refused(pit_repo: PitRepo) -> None:
    with pytest.raises(SpineError, match=r"join keys \['user_id', 'bank', 'acct'\] together"):
        pit_repo.store.get_training_set(
            features=["user_stats:score", "account_risk:risk"], end=dt.datetime(2024, 1, 2)
        )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"spine": pl.DataFrame({"user_id": [1]}), "latest": True}, "not both"),
        ({}, "pass a spine"),
        ({"start": dt.datetime(2024, 2, 1), "end": dt.datetime(2024, 1, 1)}, "is after end"),
        ({"start": "2024-01-01"}, "start must be a datetime"),
    ],
)
def test_a_range_or_a_spine(pit_repo: PitRepo, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SpineError, match=message):
        pit_repo.store.get_training_set(features=["user_stats:score"], **kwargs)


def test_latest_defaults_to_now_and_a_date_is_midnight_utc(pit_repo: PitRepo) -> None:
    t = dt.datetime(2024, 1, 1)
    pit_repo.write_sources(
        [{"user_id": 2, "event_time": t, "created": t, "score": 1.5, "level": 1, "tier": "gold"}]
    )
    before = dt.datetime.now(dt.UTC)
    latest = pit_repo.store.get_training_set(features=["user_stats:score"], latest=True)
    [row] = latest.to_polars().to_dicts()
    assert row["user_id"] == 2 and row["event_timestamp"] >= before
    assert (
        latest.metadata.events is not None and latest.metadata.events.end == row["event_timestamp"]
    )
    on_day = pit_repo.store.get_training_set(
        features=["user_stats:score"], start=dt.date(2024, 1, 1), end=dt.date(2024, 1, 1)
    )
    assert on_day.to_polars()["event_timestamp"].to_list() == [t.replace(tzinfo=dt.UTC)]
