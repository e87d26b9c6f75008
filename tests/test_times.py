"""Durations as people write and read them: ``parse_duration`` and ``format_duration``."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore._times import format_duration, parse_duration

UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", dt.timedelta(seconds=90)),
        ("30m", dt.timedelta(minutes=30)),
        ("12h", dt.timedelta(hours=12)),
        (" 7D ", dt.timedelta(days=7)),
        ("2w", dt.timedelta(weeks=2)),
        ("1.5h", dt.timedelta(minutes=90)),
    ],
)
def test_parse_duration(text: str, expected: dt.timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "d", "7", "7y", "0d", "-1d", "1d2h", "1 d"])
def test_parse_duration_refuses_other_text(text: str) -> None:
    assert parse_duration(text) is None


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0, "0s"),
        (0.25, "0.2s"),
        (45, "45s"),
        (65, "1m 5s"),
        (3600, "1h"),
        (3661, "1h 1m"),
        (3 * 86400 + 4 * 3600 + 5, "3d 4h"),
        (30 * 86400, "4w 2d"),
        (86400 + 59, "1d"),  # the two largest units: days and (zero) hours
        (-90, "-1m 30s"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


@given(st.integers(min_value=1, max_value=10**9))
def test_format_duration_keeps_the_two_largest_units(seconds: int) -> None:
    parts = format_duration(seconds).split(" ")
    assert 1 <= len(parts) <= 2
    sizes = [UNITS[p[-1]] for p in parts]
    shown = sum(int(p[:-1]) * size for p, size in zip(parts, sizes, strict=True))
    largest = max(size for size in UNITS.values() if size <= seconds)
    assert sizes[0] == largest  # starts at the largest unit that fits
    assert len(sizes) == 1 or sizes[1] == next(s for s in UNITS.values() if s < largest)
    assert 0 <= seconds - shown < (sizes[1] if len(sizes) == 2 else largest)
