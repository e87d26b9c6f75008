"""Point-in-time training sets against a brute-force oracle, over tables made by hypothesis.

Event times sit on a coarse grid (half hours, give or take a microsecond) so that ties on
event_time, ties broken by created time and rows exactly at ``t - ttl`` are common; spine times
are drawn on the same grid or at a source row's time plus 0, the ttl, or either one microsecond
off. The grid straddles the start of daylight saving time in New York.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import (
    ALL_REFS,
    DECLARED_DTYPES,
    ORACLE_ON_DEMAND,
    ORACLE_VIEWS,
    REQUEST_KINDS,
    USER_MERCHANT_TTL,
    USER_STATS_TTL,
    PitRepo,
)
from .oracle import candidate_rows, expected_training_set

Row = dict[str, Any]
US = dt.timedelta(microseconds=1)
BASE = dt.datetime(2024, 3, 10, 3, 0)  # naive UTC; New York moves to EDT at 07:00 UTC
STEP = dt.timedelta(minutes=30)
TTLS = {"user_stats": USER_STATS_TTL, "user_merchant": USER_MERCHANT_TTL, "account_risk": None}
TIMESTAMP_FIELDS = {"user_stats": "event_time", "user_merchant": "ts", "account_risk": "as_of"}
SPINE_ZONES = [None, "UTC", "America/New_York", "Asia/Kathmandu"]

SLOW = [HealthCheck.too_slow]

grid_times = st.builds(
    lambda k, j: BASE + k * STEP + j * US,
    st.integers(0, 16),
    st.sampled_from([0, 0, 0, 0, 1, -1]),
)
quarters = st.integers(-10, 10).map(lambda n: n / 4)


def maybe(strategy: st.SearchStrategy[Any], weight: int = 3) -> st.SearchStrategy[Any]:
    """``strategy`` or None, None drawn about once in ``weight + 1`` draws."""
    return st.one_of(st.none(), *[strategy] * weight)


def user_stats_rows(times: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[Row]:
    """Rows of user_stats: user 3 is common, user 4 never appears, some times are null."""
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, 3, 3, None]),
            "event_time": maybe(times, weight=8),
            "created": maybe(grid_times),
            "score": maybe(quarters),
            "level": maybe(st.integers(-2, 12)),
            "tier": st.sampled_from(["gold", "silver", "bronze", None]),
        }
    )


def user_merchant_rows(times: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[Row]:
    """Rows of the CSV source keyed by (user_id, merchant_id); merchant m9 never appears."""
    return st.fixed_dictionaries(
        {
            "user_id": st.sampled_from([1, 2, 3, None]),
            "merchant_id": st.sampled_from(["m1", "m2", "m2"]),
            "ts": times,
            "n_txn": maybe(st.integers(0, 50)),
            "avg_amt": maybe(st.integers(-20, 20).map(lambda n: n / 2)),
        }
    )


def account_rows(times: st.SearchStrategy[dt.datetime]) -> st.SearchStrategy[Row]:
    """Rows of the account glob, keyed by (bank, acct), with UTC-aware event times."""
    return st.fixed_dictionaries(
        {
            "bank": st.sampled_from(["b1", "b2"]),
            "acct": st.sampled_from([1, 2]),
            "as_of": times.map(lambda t: t.replace(tzinfo=dt.UTC)),
            "loaded_at": maybe(grid_times),
            "risk": maybe(st.integers(-1, 5).map(lambda n: n / 4)),
            "label": st.sampled_from(["a", "bc", "Xy", None]),
        }
    )


@st.composite
def source_table(
    draw: st.DrawFn, rows: st.SearchStrategy[Row], identity: tuple[str, ...], max_size: int
) -> list[Row]:
    """Rows unique in ``identity`` (keys, event and created time), some repeated verbatim, in
    random file order."""
    unique = draw(
        st.lists(
            rows, min_size=1, max_size=max_size, unique_by=lambda r: tuple(r[c] for c in identity)
        )
    )
    copies = draw(st.lists(st.sampled_from(unique), max_size=3))
    return draw(st.permutations([*unique, *copies]))


KEYS = {
    "user_stats": ("user_id",),
    "user_merchant": ("user_id", "merchant_id"),
    "account_risk": ("bank", "acct"),
}

spine_rows = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from([1, 2, 3, 4, None]),
        "merchant_id": st.sampled_from(["m1", "m2", "m9"]),
        "bank": st.sampled_from(["b1", "b2"]),
        "acct": st.sampled_from([1, 2, 3]),
        "event_timestamp": grid_times,
        "amount": maybe(st.integers(-4, 20).map(lambda n: n / 2)),
        "note": st.integers(0, 3),
    }
)


@st.composite
def spine_row(draw: st.DrawFn, sources: dict[str, list[Row]]) -> Row:
    """A spine row with naive UTC time: random, or aimed at source rows' keys and at one
    row's event time or ttl edge, give or take a microsecond."""
    row = draw(spine_rows)
    for view in ("account_risk", "user_stats", "user_merchant"):
        if draw(st.integers(0, 3)):
            row.update(
                {k: v for k, v in draw(st.sampled_from(sources[view])).items() if k in KEYS[view]}
            )
    anchors = [
        (view, source_row)
        for view, rows in sources.items()
        for source_row in rows
        if source_row[TIMESTAMP_FIELDS[view]] is not None
    ]
    if not anchors or draw(st.integers(0, 3)) == 0:
        return row
    view, source_row = draw(st.sampled_from(anchors))
    row.update({k: source_row[k] for k in KEYS[view]})
    event_time = source_row[TIMESTAMP_FIELDS[view]].replace(tzinfo=None)
    offset = draw(st.sampled_from([dt.timedelta(0), TTLS[view] or 10 * STEP]))
    row["event_timestamp"] = event_time + offset + draw(st.sampled_from([0, 1, -1])) * US
    return row


@st.composite
def scenarios(draw: st.DrawFn) -> dict[str, Any]:
    """Source tables, a spine (duplicated rows included) and a request.

    Event times come mostly from a few shared instants, so ties on event_time are common.
    """
    pool = draw(st.lists(grid_times, min_size=1, max_size=4, unique=True))
    times = st.one_of(st.sampled_from(pool), st.sampled_from(pool), grid_times)
    user_stats = draw(
        source_table(user_stats_rows(times), ("user_id", "event_time", "created"), max_size=14)
    )
    user_merchant = draw(
        source_table(user_merchant_rows(times), ("user_id", "merchant_id", "ts"), max_size=10)
    )
    accounts = draw(
        source_table(account_rows(times), ("bank", "acct", "as_of", "loaded_at"), max_size=10)
    )
    n_parts = draw(st.integers(1, 3))
    parts: list[list[Row]] = [[] for _ in range(n_parts)]
    for row in accounts:
        parts[draw(st.integers(0, n_parts - 1))].append(row)
    sources = {"user_stats": user_stats, "user_merchant": user_merchant, "account_risk": accounts}

    spine = draw(st.lists(spine_row(sources), min_size=1, max_size=20))
    for _ in range(draw(st.integers(0, 3))):
        spine.insert(draw(st.integers(0, len(spine))), dict(draw(st.sampled_from(spine))))
    return {
        "parts": parts,
        "sources": sources,
        "spine": spine,
        "zone": draw(st.sampled_from(SPINE_ZONES)),
        "refs": draw(st.lists(st.sampled_from(ALL_REFS), min_size=1, unique=True)),
        "full_feature_names": draw(st.booleans()),
        "unit": draw(st.sampled_from(["us", "us", "ns", "ms"])),
        "as_arrow": draw(st.booleans()),
    }


def spine_frame(rows: list[Row], zone: str | None, unit: str = "us") -> pl.DataFrame:
    """The spine as a user would pass it: naive UTC, or in ``zone``; times in ``unit``."""
    frame = pl.DataFrame(
        rows,
        schema={
            "user_id": pl.Int64,
            "merchant_id": pl.String,
            "bank": pl.String,
            "acct": pl.Int64,
            "event_timestamp": pl.Datetime("us"),
            "amount": pl.Float64,
            "note": pl.Int64,
        },
    ).with_columns(pl.col("event_timestamp").cast(pl.Datetime(unit)))  # type: ignore[arg-type]
    if zone is not None:
        frame = frame.with_columns(
            pl.col("event_timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone(zone)
        )
    return frame


def same(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 and True from 1, and takes NaN to equal NaN."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    return type(a) is type(b) and a == b


def check_against_oracle(
    repo: PitRepo,
    spine: pl.DataFrame,
    refs: list[str],
    sources: dict[str, list[Row]],
    full_feature_names: bool = False,
    as_arrow: bool = False,
) -> pl.DataFrame:
    """Build a training set and assert it equals the oracle's, values and statuses alike."""
    ts = repo.store.get_training_set(
        spine.to_arrow() if as_arrow else spine,
        features=refs,
        full_feature_names=full_feature_names,
    )
    out = ts.to_polars()
    want_rows, want_counts = expected_training_set(
        spine.to_dicts(),
        refs,
        ORACLE_VIEWS,
        sources,
        ORACLE_ON_DEMAND,
        full_feature_names=full_feature_names,
        request_kinds=REQUEST_KINDS,
    )
    columns = [r.replace(":", "__") if full_feature_names else r.split(":")[1] for r in refs]
    assert out.columns == [*spine.columns, *columns]
    assert out.select(spine.columns).equals(spine), "spine columns changed or rows reordered"
    kinds = {
        f"{v.name}:{f.name}": f.kind for v in (*ORACLE_VIEWS, *ORACLE_ON_DEMAND) for f in v.features
    }
    for ref, column in zip(refs, columns, strict=True):
        assert out.schema[column] == DECLARED_DTYPES[kinds[ref]], column
    got_rows = out.to_dicts()
    assert len(got_rows) == len(want_rows) == ts.metadata.row_count
    for i, (got, want) in enumerate(zip(got_rows, want_rows, strict=True)):
        wrong = {c: (got[c], want[c]) for c in columns if not same(got[c], want[c])}
        assert not wrong, f"spine row {i} {spine.row(i, named=True)}: (engine, oracle) = {wrong}"
    got_counts = {f.ref: f.statuses for f in ts.metadata.features}
    assert [f.ref for f in ts.metadata.features] == refs
    assert [f.column for f in ts.metadata.features] == columns
    assert got_counts == {ref: dict(c) for ref, c in want_counts.items()}
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=SLOW)
@given(scenario=scenarios())
def test_training_set_matches_oracle(pit_repo: PitRepo, scenario: dict[str, Any]) -> None:
    """Every view, ttl edge, tie, null, default, zone and request shape agrees with the oracle."""
    written = pit_repo.write_sources(
        scenario["sources"]["user_stats"],
        scenario["sources"]["user_merchant"],
        scenario["parts"],
    )
    check_against_oracle(
        pit_repo,
        spine_frame(scenario["spine"], scenario["zone"], scenario["unit"]),
        scenario["refs"],
        written,
        scenario["full_feature_names"],
        scenario["as_arrow"],
    )


@settings(max_examples=40, deadline=None, suppress_health_check=SLOW)
@given(
    order=st.permutations(range(5)),
    split=st.lists(st.integers(0, 2), min_size=5, max_size=5),
    zone=st.sampled_from(SPINE_ZONES),
)
def test_ties_go_to_the_latest_created_whatever_the_file_order(
    pit_repo: PitRepo, order: list[int], split: list[int], zone: str | None
) -> None:
    """Rows tied on event_time: the latest created wins, a null created loses, in any order and
    across the files of a glob."""
    t = BASE + 4 * STEP
    created = [None, t - STEP, t + 3 * STEP, t, t + STEP]  # the winner is index 2
    stats = [
        {"user_id": 1, "event_time": t, "created": c, "score": i / 4, "level": i, "tier": "gold"}
        for i, c in enumerate(created)
    ]
    accounts = [
        {
            "bank": "b1",
            "acct": 1,
            "as_of": t.replace(tzinfo=dt.UTC),
            "loaded_at": c,
            "risk": i / 4,
            "label": f"l{i}",
        }
        for i, c in enumerate(created)
    ]
    parts: list[list[Row]] = [[], [], []]
    for i in order:
        parts[split[i]].append(accounts[i])
    written = pit_repo.write_sources([stats[i] for i in order], [], parts)
    spine = [
        {"user_id": 1, "merchant_id": "m1", "bank": "b1", "acct": 1, "event_timestamp": when}
        for when in (t, t + STEP, t - US)
    ]
    refs = ["user_stats:score", "user_stats:level", "account_risk:risk", "account_risk:risk_pct"]
    out = check_against_oracle(pit_repo, spine_frame(spine, zone), refs, written)
    assert out["level"].to_list() == [2, 2, 0]
    assert out["risk"].to_list() == [0.5, 0.5, None]


@settings(max_examples=25, deadline=None, suppress_health_check=SLOW)
@given(order=st.permutations(range(4)), zone=st.sampled_from(SPINE_ZONES))
def test_rows_tied_in_keys_and_times_give_one_of_them(
    pit_repo: PitRepo, order: list[int], zone: str | None
) -> None:
    """Rows identical in keys, event and created time are duplicates: either may be chosen,
    but all features of the view come from one row."""
    t = BASE + 2 * STEP
    stats = [
        {"user_id": 2, "event_time": t, "created": t, "score": float(i), "level": i, "tier": tier}
        for i, tier in enumerate(["gold", "silver", "gold", "silver"])
    ]
    stats.append(
        {"user_id": 2, "event_time": t - US, "created": t, "score": 9.0, "level": 9, "tier": "gold"}
    )
    rows = [stats[i] for i in order] + [stats[4]]
    pit_repo.write_sources(rows)
    spine = spine_frame([{"user_id": 2, "event_timestamp": t + US}] * 2, zone)
    out = pit_repo.store.get_training_set(
        spine, features=["user_stats:score", "user_stats:level", "user_stats:tier"]
    ).to_polars()
    match, winners = candidate_rows(
        ORACLE_VIEWS[0], rows, spine.row(0, named=True), "event_timestamp"
    )
    assert match == "found" and len(winners) == 4
    allowed = {(r["score"], r["level"], r["tier"]) for r in winners}
    for got in out.select("score", "level", "tier").iter_rows():
        assert got in allowed


def test_ttl_edges(pit_repo: PitRepo) -> None:
    """``t - ttl <= event_time`` is inclusive; one microsecond older is STALE; one microsecond
    in the future is not yet visible. The user_merchant ttl has odd microseconds."""
    t = BASE + 3 * STEP
    written = pit_repo.write_sources(
        [{"user_id": 1, "event_time": t, "created": None, "score": 1.5, "level": 3, "tier": None}],
        [{"user_id": 1, "merchant_id": "m1", "ts": t, "n_txn": 5, "avg_amt": 2.5}],
    )
    edges = [t - US, t, t + USER_MERCHANT_TTL, t + USER_MERCHANT_TTL + US]
    edges += [t + USER_STATS_TTL, t + USER_STATS_TTL + US]
    spine = [{"user_id": 1, "merchant_id": "m1", "event_timestamp": when} for when in edges]
    refs = ["user_stats:score", "user_stats:level", "user_merchant:n_txn", "user_merchant:avg_amt"]
    for zone in SPINE_ZONES:
        out = check_against_oracle(pit_repo, spine_frame(spine, zone), refs, written)
        assert out["score"].to_list() == [None, 1.5, 1.5, 1.5, 1.5, None]
        assert out["level"].to_list() == [0, 3, 3, 3, 3, 0]
        assert out["n_txn"].to_list() == [0, 5, 5, 0, 0, 0]
        assert out["avg_amt"].to_list() == [None, 2.5, 2.5, None, None, None]
    ts = pit_repo.store.get_training_set(pl.DataFrame(spine), features=refs)
    statuses = {f.ref: f.statuses for f in ts.metadata.features}
    assert statuses["user_stats:score"] == {"NOT_FOUND": 1, "PRESENT": 4, "STALE": 1}
    assert statuses["user_stats:level"] == {"DEFAULTED": 1, "PRESENT": 4, "STALE": 1}
    assert statuses["user_merchant:n_txn"] == {"DEFAULTED": 1, "PRESENT": 2, "STALE": 3}
    assert statuses["user_merchant:avg_amt"] == {"NOT_FOUND": 1, "PRESENT": 2, "STALE": 3}


def test_spine_zone_is_read_as_an_instant(pit_repo: PitRepo) -> None:
    """A New York spine time and a UTC-aware source time of the same instant match; the same
    wall-clock reading taken as UTC would not."""
    t = dt.datetime(2024, 3, 10, 8, 0)  # 04:00 EDT
    written = pit_repo.write_sources(
        account_parts=[
            [
                {
                    "bank": "b2",
                    "acct": 2,
                    "as_of": t.replace(tzinfo=dt.UTC),
                    "loaded_at": None,
                    "risk": 0.25,
                    "label": "bc",
                }
            ]
        ]
    )
    spine = [{"bank": "b2", "acct": 2, "event_timestamp": t}]
    for zone in SPINE_ZONES:
        out = check_against_oracle(
            pit_repo, spine_frame(spine, zone), ["account_risk:label_upper"], written
        )
        assert out["label_upper"].to_list() == ["BC"]
    wall = pl.DataFrame(
        {"bank": ["b2"], "acct": [2], "event_timestamp": [dt.datetime(2024, 3, 10, 4, 0)]}
    ).with_columns(pl.col("event_timestamp").dt.replace_time_zone("America/New_York"))
    out = pit_repo.store.get_training_set(wall, features=["account_risk:label_upper"])
    assert out.to_polars()["label_upper"].to_list() == ["BC"]
    early = wall.with_columns(pl.col("event_timestamp") - US)
    out = pit_repo.store.get_training_set(early, features=["account_risk:label_upper"])
    assert out.to_polars()["label_upper"].to_list() == ["NONE"]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_duplicate_spine_rows_are_kept_in_order(pit_repo: PitRepo, order: tuple[int, ...]) -> None:
    """Spine rows come back in spine order, duplicates included, whatever their times."""
    t = BASE + 6 * STEP
    stats = [
        {"user_id": u, "event_time": t, "created": t, "score": float(u), "level": u, "tier": "gold"}
        for u in (1, 2, 3)
    ]
    written = pit_repo.write_sources(stats)
    base = [{"user_id": u, "event_timestamp": t + (3 - u) * US, "note": u} for u in (1, 2, 3)]
    spine = [base[i] for i in order] + [base[order[0]]] + [base[i] for i in order]
    out = check_against_oracle(
        pit_repo, spine_frame(spine, "America/New_York"), ["user_stats:level"], written
    )
    assert out["level"].to_list() == [r["user_id"] for r in spine]
