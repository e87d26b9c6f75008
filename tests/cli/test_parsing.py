"""The command line's value parsing on its own: comma lists, typed NAME=V1,V2 values, ISO
times and durations, and one value broadcast to every row."""

from __future__ import annotations

import datetime as dt

import click
import polars as pl
import pytest

from featurestore.cli._commands._parsing import (
    ISO_DATETIME,
    Duration,
    broadcast,
    parse_assignments,
    parse_value,
    split_list,
)


def test_split_list_strips_and_drops_empty_items() -> None:
    assert split_list(["a, b,,", " c ", ""]) == ["a", "b", "c"]


@pytest.mark.parametrize(
    ("text", "dtype", "value"),
    [
        ("42", pl.Int32(), 42),
        ("2.5", pl.Float64(), 2.5),
        ("Yes", pl.Boolean(), True),
        ("f", pl.Boolean(), False),
        ("2025-03-01", pl.Date(), dt.date(2025, 3, 1)),
        ("2025-03-01T12:00:00+02:00", pl.Datetime("us"), dt.datetime(2025, 3, 1, 10)),
        (
            "2025-03-01T12:00:00",
            pl.Datetime("us", "UTC"),
            dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC),
        ),
        ("pos", pl.String(), "pos"),
    ],
)
def test_parse_value_reads_each_kind(text: str, dtype: pl.DataType, value: object) -> None:
    assert parse_value(text, dtype) == value
    assert type(parse_value(text, dtype)) is type(value)


@pytest.mark.parametrize(("text", "dtype"), [("x", pl.Int64()), ("maybe", pl.Boolean())])
def test_parse_value_refuses_what_the_dtype_cannot_hold(text: str, dtype: pl.DataType) -> None:
    with pytest.raises(ValueError):
        parse_value(text, dtype)


def test_parse_assignments_types_every_value_and_names_the_bad_one() -> None:
    dtypes: dict[str, pl.DataType] = {"user_id": pl.Int64(), "channel": pl.String()}
    parsed = parse_assignments(["user_id=1, 2", "channel=pos"], dtypes, "--entity", "join key")
    assert parsed == {"user_id": [1, 2], "channel": ["pos"]}
    with pytest.raises(click.BadParameter, match="join key 'user_id' takes Int64 values; 'x'"):
        parse_assignments(["user_id=1,x"], dtypes, "--entity", "join key")


def test_broadcast_repeats_single_values_and_refuses_other_lengths() -> None:
    entities = {"user_id": [1, 2, 3], "merchant_id": [7]}
    request = {"amount": [2.5]}
    assert broadcast(entities, request) == [
        "--entity merchant_id=7 used for each of the 3 rows",
        "--request amount=2.5 used for each of the 3 rows",
    ]
    assert entities == {"user_id": [1, 2, 3], "merchant_id": [7, 7, 7]}
    assert request == {"amount": [2.5, 2.5, 2.5]}
    with pytest.raises(click.UsageError, match="--request amount has 2"):
        broadcast({"user_id": [1, 2, 3]}, {"amount": [1.0, 2.0]})
    assert broadcast({"user_id": [1]}, {"amount": [1.0]}) == []  # one row: nothing repeated


def test_times_are_utc_and_durations_read_units() -> None:
    assert ISO_DATETIME.convert("2025-03-01T12:00:00+02:00", None, None) == dt.datetime(
        2025, 3, 1, 10, tzinfo=dt.UTC
    )
    assert ISO_DATETIME.convert("2025-03-01", None, None) == dt.datetime(2025, 3, 1, tzinfo=dt.UTC)
    assert Duration().convert("90s", None, None) == dt.timedelta(seconds=90)
    assert Duration().convert("2w", None, None) == dt.timedelta(weeks=2)
    with pytest.raises(click.BadParameter, match="'soon' is not a duration"):
        Duration().convert("soon", None, None)
