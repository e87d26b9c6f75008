"""Pushed events in the offline store: where a push's part file goes for each kind of source
path, the sources that cannot take one (each refusal naming the ways out), the column types a
part takes, rows refused before anything is written, atomic and concurrent writes, PushSource,
the push modes, an online store that fails after the part is written, and the property that
a training set at T equals online at T, on SQLite and on a real Redis.

Aggregation features follow a push online at once; plain features reading the same source
follow only at the next materialization (until then online holds what was materialized, while
training sets already see the pushed rows).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fnmatch
import glob
import itertools
import os
import re
import textwrap
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from redis_process import RedisProcess

from featurestore import (
    FeatureReferenceError,
    FeatureStore,
    OnlineRequestError,
    PushError,
    SchemaMismatchError,
)
from featurestore.definitions import FileSource
from featurestore.online._codec import encode_key
from featurestore.sources._appends import part_path
from featurestore.sources._scans import files_glob

Row = dict[str, Any]
UTC = dt.UTC
BASE = dt.datetime(2025, 1, 1, tzinfo=UTC)
H = dt.timedelta(hours=1)
MINUTE = dt.timedelta(minutes=1)
REDIS_URL = "redis://127.0.0.1:6379/0"

# one source feeding an aggregation view and a plain view; one feeding only a plain view; a
# PushSource whose batch source another plain view reads directly
DEFINITIONS = '''
"""Definitions of the append tests."""

from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource, PushSource
from featurestore.definitions import Count, Sum

user = Entity("user", join_keys=["user_id"])
txns = FileSource(name="txns", path="data/txns/", timestamp_field="ts")

user_txn = FeatureView(
    name="user_txn",
    entities=[user],
    source=txns,
    owner="tests",
    aggregations=[
        Count(window=timedelta(hours=1), name="count_1h"),
        Sum("amount", window=timedelta(days=1), name="spend_1d"),
    ],
)

last_txn = FeatureView(
    name="last_txn",
    entities=[user],
    source=txns,
    owner="tests",
    features=[Feature("amount", pl.Float64), Feature("merchant", pl.String)],
)

profiles = FeatureView(
    name="profiles",
    entities=[user],
    source=FileSource(name="profile_rows", path="data/profiles/", timestamp_field="ts"),
    owner="tests",
    features=[Feature("age", pl.Int64)],
)

clicks = FileSource(name="clicks", path="data/clicks/*.parquet", timestamp_field="ts")

user_clicks = FeatureView(
    name="user_clicks",
    entities=[user],
    source=PushSource(name="click_push", batch_source=clicks),
    owner="tests",
    aggregations=[Count(window=timedelta(hours=1), name="clicks_1h")],
)

last_click = FeatureView(
    name="last_click",
    entities=[user],
    source=clicks,
    owner="tests",
    features=[Feature("page", pl.String)],
)
'''

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

# one view over one source; ``path`` varies
PATH_DEFINITIONS = """
import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource

user = Entity("user", join_keys=["user_id"])
t = FeatureView(
    name="t",
    entities=[user],
    source=FileSource(name="t", path="{path}", timestamp_field="ts"),
    owner="tests",
    features=[Feature("amount", pl.Float64)],
)
"""
T_SCHEMA = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "amount": pl.Float64()}


def rows(schema: dict[str, pl.DataType], records: list[Row]) -> pl.DataFrame:
    """Records as a frame with a fixed schema (absent fields are null)."""
    return pl.DataFrame([[r.get(c) for r in records] for c in schema], schema=schema, orient="col")


def txn(user: int, ts: dt.datetime, amount: float | None = 1.0, merchant: str = "m") -> Row:
    return {"user_id": user, "ts": ts, "amount": amount, "merchant": merchant}


def default_files() -> dict[str, pl.DataFrame]:
    return {
        "data/txns/base.parquet": rows(TXN_SCHEMA, [txn(1, BASE, 10.0, "a")]),
        "data/profiles/base.parquet": rows(PROFILE_SCHEMA, [{"user_id": 1, "ts": BASE, "age": 30}]),
        "data/clicks/base.parquet": rows(CLICK_SCHEMA, [{"user_id": 1, "ts": BASE, "page": "/"}]),
    }


def write_repo(
    root: Path, definitions: str, files: dict[str, pl.DataFrame], project: str, online: str = ""
) -> Path:
    root.mkdir(parents=True)
    (root / "featurestore.yaml").write_text(f"project: {project}\n{online}")
    (root / "definitions.py").write_text(textwrap.dedent(definitions).lstrip())
    for rel, frame in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel.endswith(".csv"):
            frame.write_csv(path)
        else:
            frame.write_parquet(path)
    return root


@pytest.fixture
def make_store(tmp_path: Path) -> Iterator[Callable[..., FeatureStore]]:
    """A factory of applied stores, each over a fresh repo and project; closed afterwards."""
    stores: list[FeatureStore] = []
    counter = itertools.count()

    def make(
        definitions: str = DEFINITIONS,
        files: dict[str, pl.DataFrame] | None = None,
        online: str = "",
    ) -> FeatureStore:
        i = next(counter)
        project = f"appends_{i}_{uuid.uuid4().hex[:8]}"
        root = write_repo(
            tmp_path / f"repo{i}", definitions, files or default_files(), project, online
        )
        store = FeatureStore(root)
        store.apply()
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


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


# --- where parts go -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "existing", "directory", "name_glob"),
    [
        ("data/t/", "data/t/old/base.parquet", "data/t", "push-*.parquet"),
        ("data/t/*.parquet", "data/t/base.parquet", "data/t", "*.parquet"),
        ("data/t/part-*.parquet", "data/t/part-0.parquet", "data/t", "part-*.parquet"),
        ("data/t/**/*.parquet", "data/t/2024/12/base.parquet", "data/t", "*.parquet"),
    ],
)
def test_a_part_goes_where_the_sources_path_or_glob_reads_it(
    make_store: Callable[..., FeatureStore],
    path: str,
    existing: str,
    directory: str,
    name_glob: str,
) -> None:
    files = {existing: rows(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])}
    # a file beside the parts that the glob does not read: it must stay unread
    if path == "data/t/part-*.parquet":
        files["data/t/other.parquet"] = rows(T_SCHEMA, [{"user_id": 3, "ts": BASE, "amount": 9.0}])
    store = make_store(PATH_DEFINITIONS.format(path=path), files)
    root = store.repo.root
    result = store.push("t", [{"user_id": 2, "ts": BASE, "amount": 2.0}])

    assert result.offline_file is not None
    part = Path(result.offline_file)
    assert part.parent == root / directory
    assert fnmatch.fnmatchcase(part.name, name_glob), part.name
    assert part.name.endswith(".parquet") and not part.name.startswith(".")
    assert str(part) in glob.glob(files_glob(store.repo.views["t"].source, root), recursive=True)
    # a second push gets a name of its own
    again = store.push("t", [{"user_id": 2, "ts": BASE + H, "amount": 4.0}])
    assert again.offline_file != result.offline_file
    assert offline(store, ["t:amount"], BASE + 2 * H) == {"amount": [1.0, 4.0, None]}
    # the same place from part_path itself, without a store
    source = FileSource(name="t", path=path, timestamp_field="ts")
    other = part_path(source, root)
    assert other.parent == root / directory and fnmatch.fnmatchcase(other.name, name_glob)
    assert other != part


WAYS_OUT = (
    "point the source at a directory of Parquet files",
    "give the view a PushSource(name='t_push', batch_source=FileSource(path=",
    "push with to='online' to update only the online store",
)
REFUSED = [
    ("data/t.parquet", "data/t.parquet", "it reads the single file 'data/t.parquet'"),
    ("data/t.csv", "data/t.csv", "it reads CSV files"),
    ("data/t/*.csv", "data/t/a.csv", "it reads CSV files"),
    (
        "data/t*/*.parquet",
        "data/t1/a.parquet",
        "its glob 'data/t*/*.parquet' has wildcards in directory names",
    ),
    (
        "data/t/part-[0-9].parquet",
        "data/t/part-0.parquet",
        "no new file name matches the last part of its glob 'part-[0-9].parquet'",
    ),
]


@pytest.mark.parametrize(("path", "existing", "why"), REFUSED)
def test_a_source_that_cannot_take_a_part_is_refused_naming_the_ways_out(
    make_store: Callable[..., FeatureStore], path: str, existing: str, why: str
) -> None:
    files = {existing: rows(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])}
    store = make_store(PATH_DEFINITIONS.format(path=path), files)
    before = listing(store)
    with pytest.raises(PushError) as caught:
        store.push("t", [{"user_id": 2, "ts": BASE, "amount": 2.0}])
    message = str(caught.value)
    assert message.startswith(f"cannot push to source 't': {why}, so pushed events")
    for way in WAYS_OUT:
        assert way in message, (way, message)
    assert listing(store) == before
    with pytest.raises(PushError, match="cannot push to source 't'"):
        part_path(store.repo.views["t"].source, store.repo.root)


@pytest.mark.parametrize(("path", "existing", "why"), REFUSED)
def test_the_ways_out_suggest_plain_directories_not_globs(
    tmp_path: Path, path: str, existing: str, why: str
) -> None:
    """The suggested ``path='...'`` values are directories a user can create: no wildcards
    copied from the glob the source reads."""
    source = FileSource(name="t", path=path, timestamp_field="ts")
    with pytest.raises(PushError) as caught:
        part_path(source, tmp_path)
    suggested = re.findall(r"path='([^']*)'", str(caught.value))
    assert len(suggested) == 2, str(caught.value)
    for directory in suggested:
        assert directory.endswith("/") and not set("*?[") & set(directory), str(caught.value)


def test_a_glob_matching_one_fixed_name_never_replaces_an_earlier_push(
    make_store: Callable[..., FeatureStore],
) -> None:
    """``part-?.parquet`` has no ``*`` for a new name: either refuse the push like a glob no
    new name can match, or give each push a file of its own; never silently replace the
    previous push's part."""
    path = "data/t/part-?.parquet"
    files = {"data/t/part-0.parquet": rows(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])}
    store = make_store(PATH_DEFINITIONS.format(path=path), files)
    before = listing(store)
    try:
        first = store.push("t", [{"user_id": 2, "ts": BASE, "amount": 2.0}])
    except PushError as exc:
        assert all(way in str(exc) for way in WAYS_OUT), str(exc)
        assert listing(store) == before
        return
    second = store.push("t", [{"user_id": 3, "ts": BASE, "amount": 3.0}])
    assert first.offline_file != second.offline_file, "both pushes wrote the same file"
    assert offline(store, ["t:amount"], BASE + H) == {"amount": [1.0, 2.0, 3.0]}


# --- the column types of a part -------------------------------------------------------

ZONES_DEFINITIONS = """
import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource

user = Entity("user", join_keys=["user_id"])
""" + "".join(
    f'''
{kind} = FeatureView(
    name="{kind}",
    entities=[user],
    source=FileSource(name="{kind}_src", path="data/{kind}/", timestamp_field="ts"),
    owner="tests",
    features=[Feature("score", pl.Float64), Feature("qty", pl.Int64)],
)
'''
    for kind in ("utc", "paris", "naive")
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


def test_parts_take_the_sources_column_types_and_times_keep_their_instant(
    make_store: Callable[..., FeatureStore],
) -> None:
    files = {
        f"data/{kind}/base.parquet": rows(
            zone_schema(kind),
            [
                {
                    "user_id": 1,
                    "ts": as_written(kind, BASE),
                    "score": 0.5,
                    "qty": 1,
                    "seen": BASE,
                    "note": "seed",
                }
            ],
        )
        for kind in TS_TYPES
    }
    store = make_store(ZONES_DEFINITIONS, files)
    user = itertools.count(10)
    wrong_types: list[str] = []
    for kind in TS_TYPES:
        expected = pq.read_schema(store.repo.root / f"data/{kind}/base.parquet")
        for k, (form, convert) in enumerate(PUSHED_FORMS.items(), start=1):
            u = next(user)
            instant = BASE + k * H + dt.timedelta(microseconds=250)
            seen = BASE + dt.timedelta(days=k, milliseconds=7)
            result = store.push(
                f"{kind}_src",
                [
                    {
                        "user_id": u,
                        "ts": convert(instant),
                        "score": 1.25 * k,
                        "qty": k,
                        "seen": seen.astimezone(dt.timezone(dt.timedelta(hours=-3))),
                    }
                ],
            )
            context = f"{form} time pushed to the {kind} source"
            assert result.offline_file is not None, context
            written = pq.read_schema(result.offline_file)
            wrong_types += [
                f"{context}: {f.name} is {written.field(f.name).type}, the files have {f.type}"
                for f in expected
                if written.field(f.name).type != f.type
            ]
            assert written.names == expected.names, context
            row = pl.read_parquet(result.offline_file).row(0, named=True)
            ts = row["ts"]  # the same instant, naive columns holding UTC
            assert (ts.tzinfo is None) == (kind == "naive"), (context, ts)
            assert ts == as_written(kind, instant), (context, ts)
            assert row["seen"] == seen, (context, row["seen"])
            assert row["note"] is None, context  # not pushed: null
            assert (row["user_id"], row["score"], row["qty"]) == (u, 1.25 * k, k), context
            # the offline join sees the row from its instant on, not a microsecond earlier
            ref = [f"{kind}:score"]
            before = offline(store, ref, instant - dt.timedelta(microseconds=1), [u])
            assert before == {"score": [None]}, context
            assert offline(store, ref, instant, [u]) == {"score": [1.25 * k]}, context
    assert not wrong_types, "parts not in the source's column types:\n" + "\n".join(wrong_types)


def test_unknown_columns_and_uncastable_values_are_refused_with_nothing_written(
    make_store: Callable[..., FeatureStore],
) -> None:
    files = {
        "data/utc/base.parquet": rows(
            zone_schema("utc"),
            [{"user_id": 1, "ts": BASE, "score": 0.5, "qty": 1, "seen": BASE, "note": "x"}],
        )
    }
    definitions = ZONES_DEFINITIONS.split("\nparis = ")[0]
    store = make_store(definitions, files)
    good = {"user_id": 2, "ts": BASE + H, "score": 1.0, "qty": 2}
    before = listing(store)

    with pytest.raises(SchemaMismatchError) as caught:
        store.push("utc_src", [{**good, "colour": "red", "size": 3}])
    assert "pushed column(s) ['colour', 'size'] are not columns of source 'utc_src'" in str(
        caught.value
    )
    assert "nothing was written" in str(caught.value)
    assert "user_id, ts, score, qty, seen, note" in str(caught.value)

    bad_values = [
        ({**good, "qty": 70_000}, "'qty'"),  # beyond the files' Int16
        ({**good, "seen": "not a time"}, "'seen'"),  # text for a datetime column no view reads
        ({**good, "user_id": 2**40}, "'user_id'"),  # beyond the files' Int32 key
    ]
    for record, column in bad_values:
        with pytest.raises(SchemaMismatchError) as caught:
            store.push("utc_src", [good, record])
        message = str(caught.value)
        assert f"pushed column {column}" in message and "in source 'utc_src'" in message, message
        assert "nothing was written" in message
        assert listing(store) == before, record
    # rows a view cannot use are refused before the types are even looked at
    with pytest.raises(SchemaMismatchError, match="'ts' is null in 1 pushed row"):
        store.push("utc_src", [good, {**good, "ts": None}])
    with pytest.raises(SchemaMismatchError, match="must hold ISO 8601 times"):
        store.push("utc_src", [{**good, "ts": "noon on new year's day"}])
    assert listing(store) == before
    assert offline(store, ["utc:score"], BASE + 2 * H, [1, 2]) == {"score": [0.5, None]}


def test_a_fractional_number_for_an_integer_column_is_refused_or_kept_never_truncated(
    make_store: Callable[..., FeatureStore],
) -> None:
    """The files hold whole amounts (Int64) for a Float64 feature: a pushed 2.5 must be
    refused with nothing written, or kept as 2.5, not written as 2."""
    whole = {"user_id": pl.Int64(), "ts": pl.Datetime("us", "UTC"), "amount": pl.Int64()}
    files = {"data/t/base.parquet": rows(whole, [{"user_id": 1, "ts": BASE, "amount": 3}])}
    store = make_store(PATH_DEFINITIONS.format(path="data/t/"), files)
    before = listing(store)
    try:
        store.push("t", [{"user_id": 2, "ts": BASE, "amount": 2.5}])
    except SchemaMismatchError as exc:
        assert "nothing was written" in str(exc)
        assert listing(store) == before
        return
    assert offline(store, ["t:amount"], BASE + H, [1, 2]) == {"amount": [3.0, 2.5]}


def test_the_first_push_into_an_empty_directory_sets_the_columns(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store(
        PATH_DEFINITIONS.format(path="data/t/"),
        {"data/t/seed.parquet": rows(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])},
    )
    (store.repo.root / "data/t/seed.parquet").unlink()  # applied, then emptied (e.g. retention)
    assert listing(store) == []
    # amounts as a JSON client sends whole numbers: integers
    first = store.push("t", [{"user_id": 1, "ts": "2025-01-01T00:00:00Z", "amount": 2}])
    assert first.offline_file is not None and Path(first.offline_file).is_file()
    assert offline(store, ["t:amount"], BASE + H, [1]) == {"amount": [2.0]}
    second = store.push("t", [{"user_id": 2, "ts": BASE, "amount": 2.5}])
    assert second.offline_file is not None
    # the Float64 feature must keep 2.5: the first part must not make the source an integer one
    assert offline(store, ["t:amount"], BASE + H, [1, 2]) == {"amount": [2.0, 2.5]}


# --- atomicity and concurrency ---------------------------------------------------------


def test_a_write_that_fails_part_way_leaves_nothing_visible(
    make_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    files_before = listing(store)
    offline_before = offline(store, [*AGG_REFS, *PLAIN_REFS], at)
    online_before = online(store, [*AGG_REFS, *PLAIN_REFS], at)
    events_before = stored_events(store, "user_txn")
    written: list[int] = []

    def failing(table: pa.Table, where: Any, **kwargs: Any) -> None:
        where.write(b"PAR1" + b"\x00" * 4096)  # a few bytes of a file, then the disk is full
        where.flush()
        written.append(os.fstat(where.fileno()).st_size)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", failing)
    with pytest.raises(OSError, match="No space left"):
        store.push("txns", [txn(2, BASE + MINUTE, 5.0)])
    assert written and written[0] >= 4100  # the failure really came part-way through a file
    assert listing(store) == files_before  # no part, no temporary file
    assert offline(store, [*AGG_REFS, *PLAIN_REFS], at) == offline_before
    assert online(store, [*AGG_REFS, *PLAIN_REFS], at) == online_before
    assert stored_events(store, "user_txn") == events_before
    monkeypatch.undo()
    store.push("txns", [txn(2, BASE + MINUTE, 5.0)])
    assert offline(store, AGG_REFS, at) == {"count_1h": [1, 1, 0], "spend_1d": [10.0, 5.0, 0.0]}


ROUNDS = 10  # pairs of simultaneous pushes


def test_two_pushes_at_the_same_time_both_land(
    make_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rounds of two pushes from two threads into one store (as the server's thread pool
    runs them): each pair starts together and meets inside the writer, both temporary files
    open, then both written, before either is renamed. Every push must land. (A store that
    writes one push at a time cannot meet there: the wait gives up after half a second and
    the pushes go on one after the other.)"""
    store = make_store()
    store.materialize(BASE)
    original = pq.write_table
    barriers: dict[str, threading.Barrier] = {}

    def meet(name: str) -> None:
        with contextlib.suppress(threading.BrokenBarrierError):
            barriers[name].wait()

    def together(table: pa.Table, where: Any, **kwargs: Any) -> None:
        meet("write")  # both temporary files exist before either is written
        original(table, where, **kwargs)
        meet("rename")  # and both are written before either is renamed

    monkeypatch.setattr(pq, "write_table", together)
    results: list[Any] = []

    def push(user: int, at: dt.datetime) -> None:
        meet("start")
        try:
            results.append(store.push("txns", [txn(user, at, float(user))]))
        except BaseException as exc:
            results.append(exc)
            for barrier in barriers.values():
                barrier.abort()  # the other push need not wait for this one

    for r in range(ROUNDS):
        barriers.update({n: threading.Barrier(2, timeout=0.5) for n in ("write", "rename")})
        barriers["start"] = threading.Barrier(2, timeout=5)
        at = BASE + (r + 1) * MINUTE
        threads = [threading.Thread(target=push, args=(u, at)) for u in (2, 3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert not any(t.is_alive() for t in threads)
    failed = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not failed, f"{len(failed)} of {2 * ROUNDS} pushes failed: {failed[0]}"
    files = {r.offline_file for r in results}
    assert len(files) == 2 * ROUNDS and all(Path(f).is_file() for f in files)
    assert not [f for f in listing(store) if f.endswith(".tmp")]
    at = BASE + 30 * MINUTE
    expected = {"count_1h": [1, ROUNDS, ROUNDS], "spend_1d": [10.0, 2.0 * ROUNDS, 3.0 * ROUNDS]}
    assert offline(store, AGG_REFS, at) == expected
    assert online(store, AGG_REFS, at) == expected


# --- PushSource and push modes ----------------------------------------------------------


def test_a_push_source_appends_to_its_batch_source_where_views_see_it(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    result = store.push("click_push", [{"user_id": 2, "ts": BASE + MINUTE, "page": "/cart"}])
    assert result.offline_file is not None
    part = Path(result.offline_file)
    assert part.parent == store.repo.root / "data" / "clicks"
    assert result.entities == {"user_clicks": 1}
    refs = ["user_clicks:clicks_1h", "last_click:page"]
    assert offline(store, refs, at) == {"clicks_1h": [1, 1, 0], "page": ["/", "/cart", None]}
    assert online(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}
    with pytest.raises(FeatureReferenceError, match="Did you mean 'click_push'"):
        store.push("clicks_push", [{"user_id": 2, "ts": BASE, "page": "/"}])


def test_a_push_under_the_batch_sources_own_name_moves_the_push_sources_views_too(
    make_store: Callable[..., FeatureStore],
) -> None:
    """The batch FileSource takes pushes under its own name too (PushSource's docstring); the
    events land in the files that ``user_clicks`` reads through the PushSource, so its online
    window must move with them as with a push under the PushSource's name."""
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    result = store.push("clicks", [{"user_id": 2, "ts": BASE + MINUTE, "page": "/x"}])
    assert result.offline_file is not None
    assert offline(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}
    assert online(store, ["user_clicks:clicks_1h"], at) == {"clicks_1h": [1, 1, 0]}, (
        f"online behind the files after the push ({result})"
    )


def test_to_offline_writes_the_part_and_leaves_online_alone(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    refs = [*AGG_REFS, *PLAIN_REFS]
    online_before = online(store, refs, at)
    events_before = stored_events(store, "user_txn")
    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0, "b")], to="offline")
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert (result.entities, result.late, result.online_error) == ({}, {}, None)
    assert stored_events(store, "user_txn") == events_before
    assert online(store, refs, at) == online_before
    assert offline(store, refs, at) == {
        "count_1h": [1, 1, 0],
        "spend_1d": [10.0, 5.0, 0.0],
        "amount": [10.0, 5.0, None],
        "merchant": ["a", "b", None],
    }
    store.materialize(BASE + MINUTE, force=True)
    assert online(store, refs, at) == offline(store, refs, at)


def test_to_online_writes_no_part(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    files = listing(store)
    offline_before = offline(store, [*AGG_REFS, *PLAIN_REFS], at)
    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0)], to="online")
    assert result.offline_file is None
    assert result.entities == {"user_txn": 1}
    assert listing(store) == files
    assert offline(store, [*AGG_REFS, *PLAIN_REFS], at) == offline_before
    assert online(store, AGG_REFS, at) == {"count_1h": [1, 1, 0], "spend_1d": [10.0, 5.0, 0.0]}
    # a source with no aggregation view online: an online push would change nothing
    with pytest.raises(FeatureReferenceError, match="to='online_and_offline'"):
        store.push("profile_rows", [{"user_id": 2, "ts": BASE, "age": 20}], to="online")
    assert listing(store) == files


def test_an_unknown_push_mode_is_refused(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    files, events = listing(store), stored_events(store, "user_txn")
    with pytest.raises(OnlineRequestError) as caught:
        store.push("txns", [txn(2, BASE)], to="both")  # type: ignore[arg-type]
    assert "push to='both' is not a push mode" in str(caught.value)
    assert "'online_and_offline' (the default), 'online' or 'offline'" in str(caught.value)
    assert (listing(store), stored_events(store, "user_txn")) == (files, events)


def test_a_source_of_plain_views_only_changes_online_at_the_next_materialization(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    at = BASE + H
    assert online(store, ["profiles:age"], at) == {"age": [30, None, None]}
    result = store.push(
        "profile_rows",
        [{"user_id": 1, "ts": BASE + MINUTE, "age": 31}, {"user_id": 2, "ts": BASE, "age": 20}],
    )
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert (result.entities, result.online_error) == ({}, None)
    assert offline(store, ["profiles:age"], at) == {"age": [31, 20, None]}
    assert online(store, ["profiles:age"], at) == {"age": [30, None, None]}
    store.materialize(BASE + MINUTE)
    assert online(store, ["profiles:age"], at) == {"age": [31, 20, None]}


# --- an online store that fails after the part is written -------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisProcess]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = RedisProcess(directory)
    server.start()
    yield server
    server.stop()


def test_an_online_store_failure_after_the_part_is_written_keeps_the_push(
    make_store: Callable[..., FeatureStore], own_redis: RedisProcess
) -> None:
    online_yaml = (
        f"online_store: {{type: redis, url: '{own_redis.url}', key_prefix: 'fsown:', "
        "timeout_seconds: 0.5}\n"
    )
    store = make_store(online=online_yaml)
    store.materialize(BASE)
    at = BASE + 30 * MINUTE
    refs = [*AGG_REFS, *PLAIN_REFS]
    assert online(store, refs, at) == offline(store, refs, at)
    own_redis.stop()

    started = time.monotonic()
    result = store.push("txns", [txn(2, BASE + MINUTE, 5.0, "b"), txn(1, BASE + 2 * MINUTE, 1.0)])
    assert time.monotonic() - started < 5
    assert result.offline_file is not None and Path(result.offline_file).is_file()
    assert result.online_error is not None
    assert own_redis.url in result.online_error, result.online_error
    assert result.online_error.endswith(
        "the events are in the source's files, and the next materialization brings them online"
    )
    assert pl.read_parquet(result.offline_file).height == 2
    expected = {
        "count_1h": [2, 1, 0],
        "spend_1d": [11.0, 5.0, 0.0],
        "amount": [1.0, 5.0, None],
        "merchant": ["m", "b", None],
    }
    assert offline(store, refs, at) == expected

    own_redis.start()  # the data saved at shutdown comes back
    store.materialize(BASE + 2 * MINUTE, force=True)
    assert online(store, refs, at) == expected
    assert online(store, refs, BASE + 2 * H) == offline(store, refs, BASE + 2 * H)


# --- training set at T equals online at T, on both stores -------------------------------


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({exc}); start one with "
            "'redis-server --port 6379 --daemonize yes'",
            pytrace=False,
        )
    yield client
    client.close()


@pytest.fixture(params=["sqlite", "redis"])
def online_yaml(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "sqlite":
        yield ""
        return
    client: redis.Redis = request.getfixturevalue("redis_client")
    prefix = f"fstest:appends:{uuid.uuid4().hex[:12]}:"
    yield f"online_store: {{type: redis, url: '{REDIS_URL}', key_prefix: '{prefix}'}}\n"
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)


GRID = 10 * MINUTE
pushed_event = st.fixed_dictionaries(
    {
        "user_id": st.sampled_from(USERS),
        "slot": st.integers(-12, 30),  # ten-minute slots around the materialization at BASE
        "amount": st.one_of(st.none(), st.sampled_from([0.5, 2.0, 7.25, 100.0])),
        "merchant": st.sampled_from(["a", "b", "c"]),
    }
)


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    batches=st.lists(st.lists(pushed_event, min_size=1, max_size=6), min_size=1, max_size=4),
    offsets=st.lists(st.sampled_from([0, 1, 10, 60, 61, 600]), min_size=1, max_size=3),
    to=st.sampled_from(["online_and_offline", "offline"]),
)
def test_a_training_set_at_t_equals_online_at_t_after_pushes(
    make_store: Callable[..., FeatureStore],
    online_yaml: str,
    batches: list[list[Row]],
    offsets: list[int],
    to: str,
) -> None:
    """Aggregations follow a push (default mode) at once; plain features of the same source
    (and aggregations pushed with to="offline") only after the next materialization."""
    seed = [txn(1, BASE - 3 * GRID, 10.0, "a"), txn(2, BASE - GRID, 4.0, "z")]
    files = {**default_files(), "data/txns/base.parquet": rows(TXN_SCHEMA, seed)}
    store = make_store(online=online_yaml, files=files)
    store.materialize(BASE)
    # one event per user and time: of two rows tied on keys and event time (no created
    # timestamp), "either may be chosen" (README, point-in-time semantics), by a training set
    # and by a materialization alike, so a tie could differ between the two
    taken = {(1, -3), (2, -1)}
    pushed = []
    for batch in batches:
        events = []
        for e in batch:
            if (e["user_id"], e["slot"]) not in taken:
                taken.add((e["user_id"], e["slot"]))
                events.append(
                    txn(e["user_id"], BASE + e["slot"] * GRID, e["amount"], e["merchant"])
                )
        if events:
            pushed.append(events)
    newest = max(e["ts"] for e in [*seed, *itertools.chain(*pushed)])
    times = sorted({max(newest, BASE) + m * MINUTE for m in offsets})
    plain_before = {t: online(store, PLAIN_REFS, t) for t in times}
    aggs_before = {t: online(store, AGG_REFS, t) for t in times}
    for batch in pushed:
        result = store.push("txns", batch, to=to)  # type: ignore[arg-type]
        assert result.events == len(batch) and result.online_error is None
    for t in times:
        if to == "online_and_offline":
            assert online(store, AGG_REFS, t) == offline(store, AGG_REFS, t), t
        else:
            assert online(store, AGG_REFS, t) == aggs_before[t], t
        assert online(store, PLAIN_REFS, t) == plain_before[t], t  # plain: not yet
    store.materialize(newest, force=True)
    for t in times:
        refs = [*AGG_REFS, *PLAIN_REFS]
        assert online(store, refs, t) == offline(store, refs, t), t


# --- bad push input: refused with a typed error, or taken as the issue asks ---------------


def test_nan_and_infinity_are_refused_with_nothing_written(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    before, at = listing(store), BASE + 30 * MINUTE
    served = online(store, AGG_REFS, at)
    for bad in (float("nan"), float("inf"), float("-inf")):
        with pytest.raises(SchemaMismatchError, match="NaN or infinite values in 1 pushed row"):
            store.push("txns", [txn(1, BASE + MINUTE, 2.0), txn(2, BASE + MINUTE, bad)])
    assert listing(store) == before
    assert online(store, AGG_REFS, at) == served


def test_times_with_any_utc_offset_are_taken(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    store.materialize(BASE)
    pushed = [
        {"user_id": 2, "ts": "2025-01-01T05:10:00+05:00", "amount": 1.0, "merchant": "a"},
        {"user_id": 2, "ts": "2024-12-31T20:20:00-0400", "amount": 2.0, "merchant": "a"},
        {"user_id": 3, "ts": "2025-01-01T00:30:00Z", "amount": 4.0, "merchant": "a"},
        {"user_id": 3, "ts": "2025-01-01T00:40:00", "amount": 8.0, "merchant": "a"},
    ]
    result = store.push("txns", pushed)
    assert result.events == 4 and result.offline_file is not None
    # 00:10 and 00:20 UTC for user 2, 00:30 and 00:40 for user 3
    times = pl.read_parquet(result.offline_file)["ts"].to_list()
    assert [t.astimezone(dt.UTC).strftime("%H:%M") for t in times] == [
        "00:10",
        "00:20",
        "00:30",
        "00:40",
    ]
    at = BASE + 45 * MINUTE
    assert online(store, AGG_REFS, at) == offline(store, AGG_REFS, at)
    assert online(store, ["user_txn:spend_1d"], at)["spend_1d"][1:] == [3.0, 12.0]


def test_an_empty_push_is_taken_and_writes_nothing(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store()
    before = listing(store)
    for empty in ([], {}, pl.DataFrame()):
        result = store.push("txns", empty)
        assert (result.events, result.offline_file, result.entities) == (0, None, {})
    assert listing(store) == before


def test_keys_of_another_kind_than_the_sources_are_refused(
    make_store: Callable[..., FeatureStore],
) -> None:
    store = make_store()
    store.materialize(BASE)
    before = listing(store)
    for key in ("abc'--", "2"):  # text where the source holds integers
        with pytest.raises(SchemaMismatchError, match="join key 'user_id' holds integers"):
            store.push("txns", [{**txn(1, BASE + MINUTE), "user_id": key}])
    assert listing(store) == before
    assert online(store, AGG_REFS, BASE + 30 * MINUTE)["count_1h"] == [1, 0, 0]
