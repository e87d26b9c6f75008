"""The value rules' fast path: for a value already of the feature's dtype with no rule or
default, the cheap expressions give exactly what the general ones give."""

from __future__ import annotations

import math
from typing import Any

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from featurestore import Feature
from featurestore._value_rules import MATCH_FOUND, MATCH_NONE, MATCH_STALE, resolve

DTYPES: dict[str, tuple[pl.DataType, st.SearchStrategy[Any]]] = {
    "float": (pl.Float64(), st.floats(allow_nan=True, allow_infinity=True)),
    "float32": (pl.Float32(), st.floats(width=32, allow_nan=True, allow_infinity=True)),
    "int": (pl.Int64(), st.integers(-(2**63), 2**63 - 1)),
    "string": (pl.String(), st.text(max_size=5)),
    "bool": (pl.Boolean(), st.booleans()),
}


@st.composite
def columns(draw: st.DrawFn) -> tuple[pl.DataType, list[Any], list[int]]:
    dtype, values = DTYPES[draw(st.sampled_from(sorted(DTYPES)))]
    rows = draw(st.lists(st.tuples(st.one_of(st.none(), values), st.sampled_from([0, 1, 2]))))
    return dtype, [v for v, _ in rows], [m for _, m in rows]


@settings(max_examples=200, deadline=None)
@given(column=columns())
def test_the_fast_path_equals_the_general_rules(
    column: tuple[pl.DataType, list[Any], list[int]],
) -> None:
    dtype, values, matches = column
    assert {MATCH_NONE, MATCH_STALE, MATCH_FOUND} == {0, 1, 2}
    frame = pl.DataFrame(
        {"x": pl.Series(values, dtype=dtype), "m": pl.Series(matches, dtype=pl.UInt8)}
    )
    feature = Feature("x", dtype)
    general = frame.select(resolve(feature, pl.col("x"), pl.col("m"), "x"))
    fast = frame.select(resolve(feature, pl.col("x"), pl.col("m"), "x", raw_dtype=dtype))
    assert fast.schema == general.schema
    assert fast["x__status"].to_list() == general["x__status"].to_list()
    for a, b in zip(fast["x"].to_list(), general["x"].to_list(), strict=True):
        assert a == b or (a is None and b is None) or (math.isnan(a) and math.isnan(b))
