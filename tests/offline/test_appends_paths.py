"""Where pushed events land in a source's files: the part a push writes for each kind of source
path, the sources that cannot take one (each refusal naming the ways out), and the column types
a part takes, with rows refused before anything is written."""

from __future__ import annotations

import datetime as dt
import fnmatch
import glob
import itertools
import re
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from conftest import rows_frame

from featurestore import (
    FeatureStore,
    PushError,
    SchemaMismatchError,
)
from featurestore.definitions import FileSource
from featurestore.sources._appends import part_path
from featurestore.sources._scans import files_glob

from .push_repo import (
    BASE,
    PUSHED_FORMS,
    T_SCHEMA,
    TS_TYPES,
    H,
    as_written,
    listing,
    offline,
    path_definitions,
    zone_schema,
    zones_definitions,
)

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
    files = {existing: rows_frame(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])}
    # a file beside the parts that the glob does not read: it must stay unread
    if path == "data/t/part-*.parquet":
        files["data/t/other.parquet"] = rows_frame(
            T_SCHEMA, [{"user_id": 3, "ts": BASE, "amount": 9.0}]
        )
    store = make_store(path_definitions(path), files)
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
    files = {existing: rows_frame(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])}
    store = make_store(path_definitions(path), files)
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
    files = {
        "data/t/part-0.parquet": rows_frame(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])
    }
    store = make_store(path_definitions(path), files)
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


def test_parts_take_the_sources_column_types_and_times_keep_their_instant(
    make_store: Callable[..., FeatureStore],
) -> None:
    seed = {"user_id": 1, "score": 0.5, "qty": 1, "seen": BASE, "note": "seed"}
    files = {
        f"data/{kind}/base.parquet": rows_frame(
            zone_schema(kind), [{**seed, "ts": as_written(kind, BASE)}]
        )
        for kind in TS_TYPES
    }
    store = make_store(zones_definitions(), files)
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
        "data/utc/base.parquet": rows_frame(
            zone_schema("utc"),
            [{"user_id": 1, "ts": BASE, "score": 0.5, "qty": 1, "seen": BASE, "note": "x"}],
        )
    }
    store = make_store(zones_definitions("utc"), files)
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
    files = {"data/t/base.parquet": rows_frame(whole, [{"user_id": 1, "ts": BASE, "amount": 3}])}
    store = make_store(path_definitions("data/t/"), files)
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
        path_definitions("data/t/"),
        {"data/t/seed.parquet": rows_frame(T_SCHEMA, [{"user_id": 1, "ts": BASE, "amount": 1.0}])},
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
