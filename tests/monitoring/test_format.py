"""The number forms the reports, their HTML and the CLI share: a short form for statistics, an
exact one for example values, and percentages that never round a non-zero share to zero."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from featurestore._format import exact, number, percent


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "-"),
        (0, "0"),
        (3008, "3,008"),
        (-3008, "-3,008"),
        (2**60, "1,152,921,504,606,846,976"),  # every digit of a large integer
        (0.0, "0"),
        (41.9, "41.9"),
        (0.1965, "0.1965"),
        (1234.5678, "1,235"),
        (12345.678, "12,346"),
        (-98765.4, "-98,765"),
        (1.23456e-40, "1.235e-40"),
        (np.float64(0.25), "0.25"),
        (math.nan, "nan"),
        (math.inf, "inf"),
        (-math.inf, "-inf"),
    ],
)
def test_number(value: float | int | None, text: str) -> None:
    assert number(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "null"),
        (1234567, "1234567"),
        (1.5, "1.5"),
        (1.4999, "1.4999"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-300, "1e-300"),
        (math.nan, "nan"),
    ],
)
def test_exact(value: float | int | None, text: str) -> None:
    assert exact(value) == text


@given(st.floats(allow_nan=False), st.floats(allow_nan=False))
def test_exact_never_prints_two_floats_the_same(a: float, b: float) -> None:
    assert (exact(a) == exact(b)) == (a == b and math.copysign(1, a) == math.copysign(1, b))


@pytest.mark.parametrize(
    ("share", "text"),
    [
        (None, "-"),
        (math.nan, "n/a"),
        (0.0, "0.0%"),
        (0.0001, "<0.1%"),
        (0.0004999, "<0.1%"),
        (0.0006, "0.1%"),
        (0.01, "1.0%"),
        (0.2567, "25.7%"),
        (1.0, "100.0%"),
    ],
)
def test_percent(share: float | None, text: str) -> None:
    assert percent(share) == text
