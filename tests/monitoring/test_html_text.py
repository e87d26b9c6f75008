"""The report page's text forms: floats cut to a few significant digits (within half a unit of
the last shown digit, and never two different values alike in one row), times and windows as
dates, lists and maps in words, and example cells that keep the whole value as a tooltip."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore.monitoring._html._text import (
    DIGITS,
    example_cells,
    plain,
    significant,
    significant_all,
)
from featurestore.monitoring._time_text import readable, readable_labels

FINITE = st.floats(allow_nan=False, allow_infinity=False)


def mantissa_digits(text: str) -> int:
    """The significant digits a number's text shows ("-0.00120" shows three)."""
    return len(text.split("e")[0].lstrip("-").replace(".", "").lstrip("0"))


@given(FINITE, st.integers(1, 17))
def test_significant_shows_at_most_n_digits_within_half_a_unit(value: float, digits: int) -> None:
    """Rounded to ``digits`` digits, or to fewer when the value's shortest exact form has
    fewer: within half a unit of the last digit kept, and exact once every digit is asked."""
    text = significant(value, digits)
    assert mantissa_digits(text) <= digits
    kept = min(digits, mantissa_digits(repr(value)))
    if value:
        exact, shown = Decimal(value), Decimal(text)
        assert abs(shown - exact) <= Decimal(5) * Decimal(10) ** (exact.adjusted() - kept)
    if digits == 17:
        assert float(text) == value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (3123.2400000000002, "3123.24"),
        (0.1 + 0.2, "0.3"),
        (1234567.891, "1234568"),
        (12345678.9, "1.234568e+07"),
        (1e-300, "1e-300"),
        (-0.000123456789, "-0.0001234568"),
        (math.nan, "n/a"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_significant(value: float, text: str) -> None:
    assert significant(value) == text


@given(st.lists(st.floats(allow_nan=False), max_size=8))
def test_a_row_never_shows_two_different_floats_alike(values: list[float]) -> None:
    texts = significant_all(values)
    distinct = {repr(v): t for v, t in zip(values, texts, strict=True)}
    assert len(set(distinct.values())) == len(distinct)
    for value, text in zip(values, texts, strict=True):
        assert any(text == significant(value, d) for d in range(DIGITS, 18))


def test_a_row_adds_digits_only_to_values_that_would_look_alike() -> None:
    values = [3123.2400000000002, 0.1 + 0.2, 1.5, 1.5000001, 2.0, 2.0]
    assert significant_all(values) == ["3123.24", "0.3", "1.5", "1.5000001", "2", "2"]
    assert significant_all([3123.2400000000002, 3123.24]) == ["3123.2400000000002", "3123.24"]


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "Drift of serving log [2024-12-01T00:00Z, 2026-01-01T00:00Z) against training set t",
            "Drift of serving log 2024-12-01 → 2026-01-01 against training set t",
        ),
        (
            "offline replay, 2024-12-20T00:00:00+00:00 to 2025-03-05T00:00:00+00:00",
            "offline replay, 2024-12-20 → 2025-03-05",
        ),
        (  # a window shorter than two days keeps the time of day
            "serving log [2025-03-01T10:00Z, 2025-03-02T09:30:15.123456Z)",
            "serving log 2025-03-01 10:00 → 2025-03-02 09:30:15 UTC",
        ),
        ("serving log [..., 2025-03-02T09:30Z)", "serving log … → 2025-03-02 09:30 UTC"),
        ("generated 2026-12-07T07:07:39.855782+00:00", "generated 2026-12-07 07:07:39 UTC"),
        ("2025-01-03 00:00:00+00:00", "2025-01-03 00:00 UTC"),
        ("2025-01-03T10:00:00+02:00", "2025-01-03 10:00 +0200"),
        ("the first record to the last, 2025-01-01", "the first record to the last, 2025-01-01"),
    ],
)
def test_readable_times_and_windows(text: str, shown: str) -> None:
    assert readable(text) == shown
    assert readable(shown) == shown  # made readable twice, nothing changes


def test_bin_labels_show_dates_or_times_by_their_spacing() -> None:
    week_us, start = 7 * 86_400_000_000, 1_735_862_400_000_000  # 2025-01-03
    weeks = [f"({start + k * week_us}, {start + (k + 1) * week_us}]" for k in range(2)]
    assert readable_labels(weeks, epoch_us=True) == [
        "(2025-01-03, 2025-01-10]",
        "(2025-01-10, 2025-01-17]",
    ]
    assert readable_labels(weeks) == weeks  # numbers are only times in a temporal chart
    hours = ["<= 2025-01-03T00:00:00Z", "> 2025-01-03T06:00:00Z"]
    assert readable_labels(hours) == ["<= 2025-01-03 00:00", "> 2025-01-03 06:00"]
    assert readable_labels(["(0.0392, 0.0562]", "null"], epoch_us=True) == [
        "(0.0392, 0.0562]",
        "null",
    ]


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        ([], "none"),
        ({}, "none"),
        (["v:a", "v:b"], "v:a, v:b"),
        ({"PRESENT": 3, "NOT_FOUND": 1234}, "PRESENT: 3, NOT_FOUND: 1,234"),
        (math.nan, "n/a"),
        (0.2531416, "0.2531"),
        (dt.datetime(2025, 1, 3, tzinfo=dt.UTC), "2025-01-03 00:00 UTC"),
        ("2025-01-03 00:00:00+00:00", "2025-01-03 00:00 UTC"),
        (True, "true"),
    ],
)
def test_plain(value: Any, text: str) -> None:
    assert plain(value) == text


def test_example_cells_are_short_and_keep_the_whole_value() -> None:
    row: list[Any] = [
        1234567,
        3123.2400000000002,
        1.5,
        None,
        False,
        "2025-02-19T08:29:32.462612+00:00",
        dt.datetime(2025, 2, 19, 8, 29),
        "x" * 100,
        [],
        {"a": 1},
    ]
    cells = example_cells(row)
    assert [c.text for c in cells] == [
        "1234567",
        "3123.24",
        "1.5",
        "null",
        "false",
        "2025-02-19 08:29:32",
        "2025-02-19 08:29",
        "x" * 39 + "…",
        "(empty)",
        '{"a": 1}',
    ]
    assert [c.full for c in cells] == [
        None,
        "3123.2400000000002",
        None,
        None,
        None,
        "2025-02-19T08:29:32.462612+00:00",
        "2025-02-19T08:29:00",
        "x" * 100,
        "[]",
        None,
    ]
    assert [c.numeric for c in cells] == [True, True, True] + [False] * 7
