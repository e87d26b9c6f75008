"""Hypothesis strategies for fuzzing featurestore's Python API, shared by the tests in
tests/fuzz and by benchmarks/fuzz.py.

- ``definitions()``: calls of the definition constructors (Entity, Feature, FileSource,
  PushSource, RequestSource, the aggregations, FeatureView, on-demand views, FeatureService)
  with names valid and invalid, dtypes supported and not, bounds, allowed values and defaults
  of fitting and mismatched types, Polars expressions from a small grammar (row-wise or not,
  serializable or not), windows zero, negative, huge or not timedeltas at all. A call's
  arguments may be calls themselves, evaluated first (see :class:`Call`).
- ``training_args()``: spines of random shapes and types (Polars, lazy, pandas with duplicate
  column names, Arrow, Parquet or CSV files, other objects) with the other arguments of
  ``get_training_set``.
- ``online_args()``: the arguments of ``get_online_features``: entities and request data of
  random shapes and types, request times of random types.
- ``push_args()``: the arguments of ``store.push``: rows as records, dicts of lists, frames or
  other objects, with random types, NaN and infinities, ISO times with offsets, or nothing.

Every strategy draws data only: nothing is built against a store until a check in
:mod:`checks` runs it. Pushed rows never carry the known entities of :mod:`repo`, so what is
stored for those must survive the fuzzing unchanged.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import math
import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import hypothesis.strategies as st
import numpy as np
import polars as pl

from featurestore import (
    Count,
    CountDistinct,
    Entity,
    Feature,
    FeatureService,
    FeatureView,
    FileSource,
    Last,
    Max,
    Mean,
    Min,
    PushSource,
    RequestSource,
    StdDev,
    Sum,
    on_demand_feature_view,
)
from featurestore.definitions import Aggregation
from featurestore.definitions._aggregation import MAX_WINDOW

from .repo import KNOWN_MERCHANTS, KNOWN_USERS, REFS, SERVICE

__all__ = [
    "Call",
    "SpineFile",
    "definitions",
    "describe",
    "evaluate",
    "online_args",
    "push_args",
    "training_args",
]

# --- deferred calls ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """A call to make later, shown as the code that makes it (so a failing example reads as a
    reproducer). Arguments that are calls are made first."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        name = getattr(self.fn, "__name__", repr(self.fn))
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


def evaluate(value: Any) -> Any:
    """``value`` with every :class:`Call` inside it (in lists, tuples and dict values) made."""
    if isinstance(value, Call):
        return value.fn(*(evaluate(a) for a in value.args), **evaluate(value.kwargs))
    if isinstance(value, list):
        return [evaluate(v) for v in value]
    if isinstance(value, tuple):
        return tuple(evaluate(v) for v in value)
    if isinstance(value, dict):
        return {k: evaluate(v) for k, v in value.items()}
    return value


def _call(
    fn: Callable[..., Any], *args: st.SearchStrategy[Any], **optional: st.SearchStrategy[Any]
) -> st.SearchStrategy[Call]:
    """Calls of ``fn`` with positional arguments drawn from ``args`` and any subset of the
    keyword arguments in ``optional``."""
    return st.builds(
        Call,
        st.just(fn),
        st.tuples(*args),
        st.fixed_dictionaries({}, optional=optional),
    )


# --- values -----------------------------------------------------------------------------------

_IDENTIFIER = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(
    lambda s: not s.startswith("__fs")
)
_BAD_NAMES = st.sampled_from(
    ["", " ", "1abc", "a-b", "user id", "__fs_x", "a:b", "ä", "x" * 300, "a\n", "\x00", "DROP;"]
)


class _Opaque:
    """An object featurestore has never heard of."""

    def __repr__(self) -> str:
        return "_Opaque()"


JUNK = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.binary(max_size=4),
    st.builds(_Opaque),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    st.sampled_from([pl.col("x"), np.int64(3), np.float64("nan"), dt.date(2024, 1, 1), {1, 2}]),
)
names = st.one_of(_IDENTIFIER, _IDENTIFIER, _BAD_NAMES, st.text(max_size=6), JUNK)
# names that can be dict keys
keys = st.one_of(
    _IDENTIFIER, _IDENTIFIER, _BAD_NAMES, st.text(max_size=6), st.integers(), st.none()
)
texts = st.one_of(st.text(max_size=8), JUNK)

_OFFSETS = [dt.timedelta(hours=5, minutes=30), dt.timedelta(hours=-3), dt.timedelta(hours=14)]
TIMEZONES = st.sampled_from([None, dt.UTC, *(dt.timezone(o) for o in _OFFSETS)])
_INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
floats = st.one_of(
    st.floats(), st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 1e308, 5e-324])
)
datetimes = st.one_of(
    st.datetimes(timezones=TIMEZONES),
    st.sampled_from(
        [
            dt.datetime.min,
            dt.datetime.max,
            dt.datetime.min.replace(tzinfo=dt.UTC),
            dt.datetime.max.replace(tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            dt.datetime(1970, 1, 1),
            dt.datetime(2024, 6, 1, tzinfo=dt.UTC),
        ]
    ),
)
dates = st.one_of(st.dates(), st.sampled_from([dt.date.min, dt.date.max]))
# one value of any kind a user might pass
scalars = st.one_of(
    st.none(),
    _INT64,
    st.integers(),
    floats,
    st.booleans(),
    st.text(max_size=6),
    dates,
    datetimes,
    st.decimals(allow_nan=False, places=3),
    st.sampled_from([decimal.Decimal("NaN"), decimal.Decimal("-Infinity")]),
    st.timedeltas(),
    st.binary(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.sampled_from([np.int64(7), np.float32(1.5), np.datetime64("2024-01-01"), pl.lit(1)]),
)

# --- dtypes -----------------------------------------------------------------------------------

SUPPORTED_DTYPES: list[Any] = [
    pl.Int8,
    pl.Int16,
    pl.Int32,
    pl.Int64,
    pl.UInt8,
    pl.UInt16,
    pl.UInt32,
    pl.UInt64,
    pl.Float32,
    pl.Float64,
    pl.Boolean,
    pl.String,
    pl.Date,
    pl.Datetime,
    pl.Int64(),
    pl.Datetime("ns"),
    pl.Datetime("us", "UTC"),
    pl.Datetime("ms", "Asia/Kolkata"),
    "Int64",
    "int",
    "float",
    "bool",
    "str",
    "utf8",
    "DATE",
    "datetime",
]
UNSUPPORTED_DTYPES: list[Any] = [
    pl.List(pl.Int64),
    pl.List,
    pl.Struct({"a": pl.Int8}),
    pl.Struct,
    pl.Decimal(10, 2),
    pl.Decimal,
    pl.Categorical,
    pl.Categorical(),
    pl.Enum(["a", "b"]),
    pl.Object,
    pl.Null,
    pl.Null(),
    pl.Time,
    pl.Duration("us"),
    pl.Duration,
    pl.Binary,
    pl.Array(pl.Int8, 2),
    pl.Int128,
    pl.UInt128,
    pl.Float16,
    pl.Unknown,
    pl.DataType,
    "bogus",
    "",
    "Int 64",
    "list[int]",
    int,
    float,
    str,
    bool,
    dt.datetime,
    object,
    None,
    3,
]
dtypes = st.one_of(
    st.sampled_from(SUPPORTED_DTYPES),
    st.sampled_from(SUPPORTED_DTYPES),
    st.sampled_from(UNSUPPORTED_DTYPES),
    JUNK,
)

# --- Polars expressions from a small grammar --------------------------------------------------

_COLUMNS = ["age", "score", "amount", "country", "updated_at", "signup_at", "vip", "missing"]
_LITERALS = st.one_of(
    _INT64,
    st.floats(),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
    st.dates(),
    st.datetimes(timezones=TIMEZONES),
)


def _safe(build: Callable[..., pl.Expr]) -> Callable[..., pl.Expr]:
    """``build``, or its first argument when Polars refuses to build the expression (only the
    library under test is being fuzzed, not Polars' own constructors)."""

    @functools.wraps(build)
    def wrapper(*exprs: pl.Expr) -> pl.Expr:
        try:
            return build(*exprs)
        except Exception:
            return exprs[0]

    return wrapper


_BINARY: list[Callable[[pl.Expr, pl.Expr], pl.Expr]] = [
    operator.add,
    operator.sub,
    operator.mul,
    operator.truediv,
    operator.floordiv,
    operator.mod,
    operator.pow,
    operator.eq,
    operator.ne,
    operator.lt,
    operator.ge,
    operator.and_,
    operator.or_,
    lambda a, b: a.fill_null(b),
    lambda a, b: pl.concat_str([a, b]),
    lambda a, b: pl.max_horizontal(a, b),
    lambda a, b: a.is_in(b),
    lambda a, b: a.over(b),
]
_UNARY: list[Callable[[pl.Expr], pl.Expr]] = [
    operator.neg,
    operator.invert,
    abs,
    lambda e: e.is_null(),
    lambda e: e.cast(pl.Int64),
    lambda e: e.cast(pl.String),
    lambda e: e.cast(pl.Float32, strict=False),
    lambda e: e.round(1),
    lambda e: e.sqrt(),
    lambda e: e.log(),
    lambda e: e.clip(0, 10),
    lambda e: e.dt.total_days(),
    lambda e: e.dt.year(),
    lambda e: e.str.len_chars(),
    lambda e: e.str.to_uppercase(),
    lambda e: e.alias("renamed"),
    lambda e: e.is_in([1, 2]),
    # not row-wise: aggregations, windows, shifts, reorderings
    lambda e: e.sum(),
    lambda e: e.mean(),
    lambda e: e.shift(1),
    lambda e: e.cum_sum(),
    lambda e: e.over("user_id"),
    lambda e: e.rank(),
    lambda e: e.sort(),
    lambda e: e.first(),
    lambda e: e.unique(),
    lambda e: e.head(2),
    lambda e: e.implode(),
    lambda e: e.explode(),
    # Python functions: cannot be serialized, so cannot be fingerprinted
    lambda e: e.map_elements(lambda x: x, return_dtype=pl.Int64),
    lambda e: e.map_batches(lambda s: s),
]
_leaves = st.one_of(
    st.builds(pl.col, st.sampled_from(_COLUMNS)),
    st.builds(_safe(pl.lit), _LITERALS),
    st.just(pl.all()),
    st.just(pl.len()),
)


def _branches(children: st.SearchStrategy[pl.Expr]) -> st.SearchStrategy[pl.Expr]:
    return st.one_of(
        st.builds(lambda op, a, b: _safe(op)(a, b), st.sampled_from(_BINARY), children, children),
        st.builds(lambda op, a: _safe(op)(a), st.sampled_from(_UNARY), children),
        st.builds(
            _safe(lambda c, a, b: pl.when(c).then(a).otherwise(b)), children, children, children
        ),
    )


expressions = st.recursive(_leaves, _branches, max_leaves=6)

# --- windows ----------------------------------------------------------------------------------

windows = st.one_of(
    st.timedeltas(min_value=dt.timedelta(microseconds=1), max_value=dt.timedelta(days=3650)),
    st.sampled_from(
        [
            dt.timedelta(0),
            dt.timedelta(microseconds=-1),
            dt.timedelta(days=-7),
            dt.timedelta(microseconds=1),
            MAX_WINDOW,
            MAX_WINDOW + dt.timedelta(microseconds=1),
            dt.timedelta.max,
            dt.timedelta.min,
        ]
    ),
    st.timedeltas(),
    st.sampled_from([7, 3600.0, "7d", "P7D", np.timedelta64(1, "D")]),
    JUNK,
)

# --- definitions ------------------------------------------------------------------------------

_KINDS: dict[str, tuple[list[Any], st.SearchStrategy[Any]]] = {
    "int": ([pl.Int8, pl.Int32, pl.Int64, pl.UInt8, pl.UInt64], st.one_of(st.integers(), floats)),
    "float": ([pl.Float32, pl.Float64], st.one_of(floats, st.integers())),
    "bool": ([pl.Boolean], st.booleans()),
    "string": ([pl.String], st.text(max_size=4)),
    "date": ([pl.Date], st.one_of(dates, datetimes)),
    "datetime": ([pl.Datetime, pl.Datetime("us", "UTC")], st.one_of(datetimes, dates)),
}


@st.composite
def _typed_feature(draw: st.DrawFn) -> Call:
    """A feature whose bounds, allowed values and default are mostly of its own kind, so the
    checks between them (ordering, bounds of the default) run: naive against aware times,
    NaN bounds, a default outside the bounds."""
    dtypes_of, values_of = _KINDS[draw(st.sampled_from(sorted(_KINDS)))]
    value = st.one_of(values_of, values_of, values_of, scalars)
    kwargs: dict[str, Any] = {}
    for key in ("ge", "le", "default"):
        if draw(st.booleans()):
            kwargs[key] = draw(value)
    if draw(st.booleans()):
        kwargs["allowed"] = draw(
            st.one_of(st.tuples(value), st.tuples(value, value), st.lists(value, max_size=3))
        )
    if draw(st.booleans()):
        kwargs["expr"] = draw(expressions)
    return Call(Feature, (draw(_IDENTIFIER), draw(st.sampled_from(dtypes_of))), kwargs)


_random_feature = _call(
    Feature,
    names,
    dtypes,
    expr=st.one_of(expressions, JUNK),
    ge=scalars,
    le=scalars,
    allowed=st.one_of(st.tuples(scalars), st.lists(scalars, max_size=3), JUNK),
    nullable=st.one_of(st.booleans(), JUNK),
    default=scalars,
    description=texts,
    drift=JUNK,
    skew=JUNK,
)
features = st.one_of(_typed_feature(), _random_feature)
good_features = st.builds(
    lambda n, d: Call(Feature, (n, d)), _IDENTIFIER, st.sampled_from(SUPPORTED_DTYPES[:14])
)

entities = _call(
    Entity,
    names,
    join_keys=st.one_of(st.lists(names, max_size=3), JUNK),
    description=texts,
    tags=st.one_of(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2), JUNK),
)
good_entities = st.builds(lambda n: Call(Entity, (n,)), _IDENTIFIER)

_PATHS = st.one_of(
    st.sampled_from(
        [
            "data/x.parquet",
            "data/x/",
            "data/x.csv",
            "data/x.csv.gz",
            "data/*.parquet",
            "data/**/*.pq",
            "x",
            "",
            "/abs/path.parquet",
            "..\\up\\",
            "data/X.PARQUET",
        ]
    ),
    st.text(max_size=8),
    JUNK,
)
file_sources = _call(
    FileSource,
    name=names,
    path=_PATHS,
    timestamp_field=names,
    created_timestamp_field=st.one_of(names, st.just("ts")),
    file_format=st.one_of(st.sampled_from(["parquet", "csv", "json", "PARQUET"]), JUNK),
    description=texts,
    owner=texts,
    tags=JUNK,
)
good_file_sources = st.builds(
    lambda n, p: Call(FileSource, (), {"name": n, "path": p, "timestamp_field": "ts"}),
    _IDENTIFIER,
    st.sampled_from(["data/a.parquet", "data/a/", "data/*.parquet", "data/a.csv"]),
)
push_sources = _call(
    PushSource,
    name=names,
    batch_source=st.one_of(good_file_sources, file_sources, JUNK),
    path=_PATHS,
    timestamp_field=names,
    created_timestamp_field=names,
    file_format=JUNK,
)
request_sources = st.one_of(
    _call(
        RequestSource,
        names,
        schema=st.one_of(st.dictionaries(keys, dtypes, max_size=3), JUNK),
        description=texts,
    ),
    _call(RequestSource, names, fields=st.dictionaries(_IDENTIFIER, dtypes, max_size=2)),
)
good_request_sources = st.builds(
    lambda n, c: Call(RequestSource, (n,), {"schema": {c: pl.Float64}}), _IDENTIFIER, _IDENTIFIER
)

_AGGREGATIONS = [Sum, Count, Mean, Min, Max, Last, StdDev, CountDistinct, Aggregation]
aggregations = st.sampled_from(_AGGREGATIONS).flatmap(
    lambda cls: st.one_of(
        _call(cls, window=windows, name=names, dtype=dtypes, description=texts),
        _call(cls, names, window=windows, name=names, dtype=dtypes, column=names),
        st.builds(
            lambda col, w, n: Call(cls, (col,), {"window": w, "name": n}),
            st.one_of(st.none(), _IDENTIFIER),
            windows,
            _IDENTIFIER,
        ),
    )
)

feature_views = _call(
    FeatureView,
    name=names,
    entities=st.one_of(st.lists(st.one_of(good_entities, entities, JUNK), max_size=3), JUNK),
    source=st.one_of(good_file_sources, file_sources, push_sources, JUNK),
    features=st.one_of(st.lists(st.one_of(good_features, features, JUNK), max_size=3), JUNK),
    aggregations=st.one_of(st.lists(st.one_of(aggregations, JUNK), max_size=2), JUNK),
    owner=st.one_of(st.just("team"), texts),
    ttl=windows,
    description=texts,
    tags=JUNK,
    online=st.one_of(st.booleans(), JUNK),
)
good_feature_views = st.builds(
    lambda n, e, s, fs: Call(
        FeatureView,
        (),
        {"name": n, "entities": [e], "source": s, "features": fs, "owner": "team"},
    ),
    _IDENTIFIER,
    good_entities,
    good_file_sources,
    st.lists(good_features, min_size=1, max_size=2, unique_by=lambda c: c.args[0]),
)


def _one(df: pl.DataFrame) -> pl.DataFrame:
    return df


def _two(df: pl.DataFrame, other: pl.DataFrame) -> pl.DataFrame:
    return df


def _none() -> None:
    return None


def _keyword_only(*, df: pl.DataFrame) -> pl.DataFrame:
    return df


def _varargs(*frames: pl.DataFrame) -> pl.DataFrame:
    return frames[0]


class _CallableObject:
    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        return df

    def __repr__(self) -> str:
        return "_CallableObject()"


class _NoSignature:
    """A callable whose signature cannot be read."""

    @property
    def __signature__(self) -> Any:
        raise TypeError("no signature")

    def __call__(self, df: pl.DataFrame) -> pl.DataFrame:
        return df

    def __repr__(self) -> str:
        return "_NoSignature()"


_UDFS = [
    _one,
    _two,
    _none,
    _keyword_only,
    _varargs,
    lambda df: df,
    functools.partial(_two, pl.DataFrame()),
    functools.partial(_two),
    _CallableObject(),
    _NoSignature(),
    print,
    len,
    int,
    pl.DataFrame,
    3,
    "udf",
    None,
]


def _on_demand(udf: Any, **kwargs: Any) -> Any:
    """``on_demand_feature_view(**kwargs)(udf)``: the decorator applied to ``udf``."""
    return on_demand_feature_view(**kwargs)(udf)


_SOURCES = st.one_of(
    good_request_sources,
    request_sources,
    good_feature_views,
    st.sampled_from(REFS),
    st.sampled_from(["view:feature", "nocolon", ":", "a:b:c", "a: b", ""]),
    JUNK,
)
on_demand_views = st.builds(
    Call,
    st.just(_on_demand),
    st.tuples(st.sampled_from(_UDFS)),
    st.fixed_dictionaries(
        {
            "sources": st.one_of(st.lists(_SOURCES, max_size=3), JUNK),
            "schema": st.one_of(
                st.dictionaries(keys, dtypes, max_size=2),
                st.lists(st.one_of(good_features, features, JUNK), max_size=2),
                JUNK,
            ),
        },
        optional={
            "name": st.one_of(names, st.none()),
            "owner": texts,
            "description": st.one_of(texts, st.none()),
            "tags": JUNK,
        },
    ),
)
feature_services = _call(
    FeatureService,
    names,
    st.one_of(
        st.lists(
            st.one_of(good_feature_views, feature_views, st.sampled_from(REFS), names),
            max_size=3,
        ),
        JUNK,
    ),
    owner=texts,
    description=texts,
    tags=JUNK,
)


def definitions() -> st.SearchStrategy[Call]:
    """Calls of every definition constructor."""
    return st.one_of(
        entities,
        features,
        features,
        file_sources,
        push_sources,
        request_sources,
        aggregations,
        aggregations,
        feature_views,
        feature_views,
        on_demand_views,
        feature_services,
    )


# --- frames: spines and push rows ----------------------------------------------------------


def _not_known(value: Any) -> bool:
    """Whether ``value`` is no key of the known entities (whose stored values must survive)."""
    try:
        if value in KNOWN_USERS or value in KNOWN_MERCHANTS:
            return False
    except TypeError:  # unhashable
        pass
    text = str(value)
    return not any(str(k) in text for k in (*KNOWN_USERS, *KNOWN_MERCHANTS))


_ISO = st.one_of(
    st.builds(lambda t: t.isoformat(), datetimes),
    st.builds(lambda t: t.isoformat(sep=" "), datetimes),
    st.builds(lambda d: d.isoformat(), dates),
    st.sampled_from(
        [
            "2024-06-01T00:00:00Z",
            "2024-06-01T10:00:00+05:30",
            "2024-06-01T10:00:00-0300",
            "2024-06-01T10:00:00.123456789+14:00",
            " 2024-06-01 10:00 ",
            "2024-13-45T25:61:00",
            "yesterday",
            "",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-12:00",
            "2024-06-01T00:00:00+99:99",
        ]
    ),
)
# values of a column, by kind
_KIND_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "int": _INT64,
    "bigint": st.integers(),
    "float": floats,
    "string": st.text(max_size=5),
    "iso": _ISO,
    "bool": st.booleans(),
    "date": dates,
    "datetime": st.datetimes(timezones=st.none()),
    "aware": st.datetimes(timezones=st.just(dt.UTC)),
    "offset": st.datetimes(timezones=TIMEZONES),
    "extreme": datetimes,
    "null": st.none(),
    "decimal": st.decimals(allow_nan=False, allow_infinity=False, places=2),
    "duration": st.timedeltas(),
    "list": st.lists(st.integers(-5, 5), max_size=2),
    "bytes": st.binary(max_size=3),
    "mixed": scalars,
}
_SPINE_COLUMNS = [
    "user_id",
    "merchant_id",
    "event_timestamp",
    "amount",
    "txn_date",
    "channel",
    "ts",
]
_PUSH_COLUMNS = ["user_id", "merchant_id", "ts", "created", "amount", "channel"]


_RECENT = st.datetimes(  # around the fuzzing repo's data
    min_value=dt.datetime(2024, 4, 1), max_value=dt.datetime(2024, 8, 1), timezones=st.just(dt.UTC)
)
_USUAL_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "user_id": st.one_of(st.sampled_from(KNOWN_USERS), st.integers(0, 9), _INT64),
    "merchant_id": st.one_of(st.sampled_from(KNOWN_MERCHANTS), st.text(max_size=4)),
    "event_timestamp": st.one_of(_RECENT, _KIND_VALUES["aware"]),
    "ts": st.one_of(_RECENT, _ISO),
    "created": st.one_of(_RECENT, _ISO),
    "amount": floats,
    "txn_date": dates,
    "channel": st.sampled_from(["online", "pos", "mobile", ""]),
}
_UNKNOWN_KEYS: dict[str, st.SearchStrategy[Any]] = {  # keys fit for pushes: none known
    "user_id": st.one_of(st.integers(0, 9), _INT64),
    "merchant_id": st.text(max_size=4),
}
_REQUIRED = ("user_id", "merchant_id", "event_timestamp", "ts")  # keys and times: rarely null


@st.composite
def _column(draw: st.DrawFn, name: str, rows: int, keep_known: bool, kind: str | None) -> list[Any]:
    """``rows`` values for column ``name`` of ``kind`` (None: the values it should hold, with
    nulls only in columns that may have them)."""
    if kind is None:
        table = _USUAL_VALUES if keep_known or name not in _UNKNOWN_KEYS else _UNKNOWN_KEYS
        values = table.get(name, scalars)
        if name not in _REQUIRED:
            values = st.one_of(values, values, values, st.none())
    else:
        values = st.one_of(_KIND_VALUES[kind], _KIND_VALUES[kind], _KIND_VALUES[kind], st.none())
    if not keep_known and name in ("user_id", "merchant_id"):
        values = values.filter(_not_known)
    return draw(st.lists(values, min_size=rows, max_size=rows))


_other_names = st.one_of(_IDENTIFIER, _BAD_NAMES, st.text(max_size=4))
_kinds = st.sampled_from(sorted(_KIND_VALUES))


@st.composite
def columns(
    draw: st.DrawFn, usual: list[str], keep_known: bool = True
) -> list[tuple[str, list[Any]]]:
    """Named columns of equal length: fit for their use (``usual`` columns with the values
    they should hold), or such columns with one thing wrong (a column missing, of another
    kind, with nulls, duplicated, or a column more), or random ones."""
    rows = draw(st.integers(0, 5))
    mode = draw(st.sampled_from(["fit", "fit", "one_wrong", "one_wrong", "random"]))
    chosen: list[str] = list(usual)
    kinds: dict[str, str | None] = dict.fromkeys(usual)
    if mode == "one_wrong":
        wrong = draw(st.sampled_from(["missing", "kind", "nulls", "duplicate", "extra"]))
        victim = draw(st.sampled_from(usual))
        if wrong == "missing":
            chosen.remove(victim)
        elif wrong == "kind":
            kinds[victim] = draw(_kinds)
        elif wrong == "nulls":
            kinds[victim] = "null"
        elif wrong == "duplicate":
            chosen.append(victim)
        else:
            chosen.append(draw(_other_names))
    elif mode == "random":
        chosen = draw(st.lists(st.sampled_from(usual), unique=True, max_size=len(usual)))
        chosen += draw(st.lists(_other_names, max_size=2))
        if draw(st.integers(0, 9)) == 0 and chosen:
            chosen.append(draw(st.sampled_from(chosen)))
        kinds = {name: draw(st.one_of(st.none(), _kinds)) for name in chosen}
    if draw(st.booleans()):
        draw(st.randoms()).shuffle(chosen)
    return [(name, draw(_column(name, rows, keep_known, kinds.get(name)))) for name in chosen]


def first_that_works(*builders: Callable[[], Any]) -> Any:
    """The result of the first builder that does not fail (Polars may even panic: pyo3's
    PanicException is no Exception). The last one must not fail."""
    for build in builders[:-1]:
        try:
            return build()
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException:
            continue
    return builders[-1]()


def _as_text(name: str, values: list[Any]) -> pl.Series:
    return pl.Series(name, [None if v is None else repr(v) for v in values], dtype=pl.String)


def _series(name: str, values: list[Any]) -> pl.Series:
    """A Polars column of ``values``, as typed as Polars makes it (text when it cannot)."""
    if any(isinstance(v, decimal.Decimal) and not v.is_finite() for v in values):
        return _as_text(name, values)  # Polars panics on them (and says so on stderr)
    return first_that_works(
        lambda: pl.Series(name, values),
        lambda: pl.Series(name, values, strict=False),
        lambda: pl.Series(name, values, dtype=pl.Object),
        lambda: _as_text(name, values),
    )


def polars_frame(cols: list[tuple[str, list[Any]]]) -> pl.DataFrame:
    """A Polars frame of ``cols`` (a duplicated name keeps its first column)."""
    seen: dict[str, pl.Series] = {}
    for name, values in cols:
        seen.setdefault(name, _series(name, values))
    return first_that_works(
        lambda: pl.DataFrame(list(seen.values())),
        lambda: pl.DataFrame([_as_text(s.name, s.to_list()) for s in seen.values()]),
    )


def pandas_frame(cols: list[tuple[str, list[Any]]]) -> Any:
    """A pandas frame of ``cols``, duplicated names included."""
    import pandas as pd

    n = len(cols[0][1]) if cols else 0
    frame = pd.DataFrame(index=range(n))
    for i, (name, values) in enumerate(cols):
        frame.insert(i, name, pd.Series(values, dtype=object), allow_duplicates=True)
    for name in dict.fromkeys(name for name, _ in cols):
        if isinstance(frame[name], pd.Series):  # pandas' own type where it infers one
            inferred = first_that_works(frame[name].infer_objects, lambda: None)
            if inferred is not None:
                frame[name] = inferred
    return frame


def arrow_table(cols: list[tuple[str, list[Any]]]) -> Any:
    """An Arrow table of ``cols`` (Object columns, which have no Arrow type, as text)."""
    import pyarrow as pa

    frame = polars_frame(cols)
    return first_that_works(
        frame.to_arrow,
        lambda: pl.DataFrame([_as_text(c.name, c.to_list()) for c in frame]).to_arrow(),
        lambda: pa.table({f"c{i}": pa.array([None] * frame.height) for i in range(frame.width)}),
    )


@dataclass(frozen=True)
class SpineFile:
    """A spine to be written to a file (Parquet or CSV) before the call, or a path that does
    not hold one: ``kind`` "parquet", "csv", "missing", "directory" or "not_parquet"."""

    kind: str
    cols: tuple[tuple[str, tuple[Any, ...]], ...] = ()

    def frame(self) -> pl.DataFrame:
        return polars_frame([(n, list(v)) for n, v in self.cols])


_FRAME_KINDS = ["polars", "polars", "lazy", "pandas", "pandas", "arrow", "batch", "file"]


@st.composite
def frames(draw: st.DrawFn, usual: list[str], keep_known: bool = True) -> Any:
    """A table of random columns in a random container."""
    cols = draw(columns(usual, keep_known))
    kind = draw(st.sampled_from(_FRAME_KINDS))
    if kind == "polars":
        return polars_frame(cols)
    if kind == "lazy":
        return polars_frame(cols).lazy()
    if kind == "pandas":
        return pandas_frame(cols)
    if kind == "arrow":
        return arrow_table(cols)
    if kind == "batch":
        table = arrow_table(cols)
        return table.to_batches()[0] if table.num_rows else table
    file_kind = draw(st.sampled_from(["parquet", "parquet", "csv", "missing", "directory"]))
    return SpineFile(file_kind, tuple((n, tuple(v)) for n, v in cols))


_feature_lists = st.one_of(
    st.lists(st.sampled_from(REFS), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from(REFS), min_size=1, max_size=4),  # duplicates
    st.just(REFS),
    st.lists(
        st.one_of(
            st.sampled_from(REFS),
            st.sampled_from(["user_profile:nope", "nope:age", "age", "txn_risk:", ""]),
            JUNK,
        ),
        max_size=3,
    ),
    st.sampled_from(["user_profile:age", ("user_profile:age",)]),
    JUNK,
)
_services = st.one_of(st.just(SERVICE), st.sampled_from(["nope", ""]), JUNK)


@st.composite
def _refs(draw: st.DrawFn) -> dict[str, Any]:
    """``features`` or ``feature_service`` (mostly one of them, sometimes both or neither)."""
    which = draw(st.sampled_from(["features", "features", "features", "service", "both", "none"]))
    out: dict[str, Any] = {}
    if which in ("features", "both"):
        out["features"] = draw(_feature_lists)
    if which in ("service", "both"):
        out["feature_service"] = draw(_services)
    return out


@st.composite
def training_args(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of ``store.get_training_set``; ``spine`` may be a :class:`SpineFile`
    to write first."""
    kwargs = draw(_refs())
    spine = draw(st.one_of(frames(_SPINE_COLUMNS), frames(_SPINE_COLUMNS), JUNK))
    kwargs["spine"] = spine
    if draw(st.booleans()):
        kwargs["full_feature_names"] = draw(st.one_of(st.booleans(), JUNK))
    if draw(st.integers(0, 3)) == 0:
        kwargs["timestamp_column"] = draw(
            st.one_of(st.sampled_from(["ts", "user_id", "amount", "txn_date", "nope"]), names)
        )
    return kwargs


_sequences = st.sampled_from([list, tuple, np.array, pl.Series, "pandas", set, "generator"])


def _container(kind: Any, values: list[Any]) -> Any:
    if kind == "pandas":
        import pandas as pd

        return pd.Series(values, dtype=object)
    if kind == "generator":
        return (v for v in values)
    return first_that_works(lambda: kind(values), lambda: values)


@st.composite
def _request_columns(draw: st.DrawFn, usual: list[str]) -> Any:
    """A mapping of column -> values (mostly lists of one length), or something else."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.one_of(JUNK, st.text(max_size=3), st.just(pl.DataFrame({"user_id": [1]}))))
    cols = draw(columns(usual))
    out: dict[Any, Any] = {}
    for name, values in cols:
        if draw(st.integers(0, 7)) == 0:
            values = values[: draw(st.integers(0, len(values)))]  # unequal lengths
        out[name] = _container(draw(_sequences), values) if draw(st.integers(0, 5)) == 0 else values
        if draw(st.integers(0, 15)) == 0:
            out[name] = draw(JUNK)
    if draw(st.integers(0, 15)) == 0:
        out[draw(st.one_of(st.integers(), st.none(), st.binary(max_size=2)))] = [1]  # no string
    return out


_request_times = st.one_of(
    st.none(),
    datetimes,
    _ISO,
    st.sampled_from(
        [
            dt.date(2024, 6, 1),
            dt.time(12, 0),
            0,
            1.7e9,
            np.datetime64("2024-06-01T00:00:00"),
            "now",
            b"2024-06-01",
        ]
    ),
    st.builds(lambda t: __import__("pandas").Timestamp(t), st.datetimes(timezones=TIMEZONES)),
    JUNK,
)


@st.composite
def online_args(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of ``store.get_online_features``."""
    kwargs = draw(_refs())
    if draw(st.integers(0, 5)) > 0:
        kwargs["entities"] = draw(_request_columns(["user_id", "merchant_id"]))
    if draw(st.booleans()):
        kwargs["request_data"] = draw(_request_columns(["amount", "txn_date", "channel"]))
    if draw(st.booleans()):
        kwargs["request_time"] = draw(_request_times)
    if draw(st.integers(0, 3)) == 0:
        kwargs["full_feature_names"] = draw(st.one_of(st.booleans(), JUNK))
    return kwargs


@st.composite
def _push_rows(draw: st.DrawFn) -> Any:
    """Rows in any of the shapes push takes (and some it does not); never of a known user."""
    shape = draw(
        st.sampled_from(["records", "records", "columns", "polars", "arrow", "pandas", "other"])
    )
    if shape == "other":
        return draw(
            st.one_of(
                st.sampled_from([[], {}, (), pl.DataFrame(), "rows", [[1, 2]], [1, 2]]),
                st.dictionaries(st.sampled_from(_PUSH_COLUMNS), _INT64.filter(_not_known)),
                JUNK.filter(_not_known),
            )
        )
    cols = draw(columns(_PUSH_COLUMNS, keep_known=False))
    if shape == "records":
        n = len(cols[0][1]) if cols else draw(st.integers(0, 2))
        records = [{name: values[i] for name, values in cols} for i in range(n)]
        for record in records:  # some rows lack a column
            if record and draw(st.integers(0, 7)) == 0:
                record.pop(draw(st.sampled_from(sorted(record, key=str))))
        return records
    if shape == "columns":
        out = {name: values for name, values in cols}
        if out and draw(st.integers(0, 7)) == 0:  # unequal lengths
            name = draw(st.sampled_from(sorted(out, key=str)))
            out[name] = out[name][:-1]
        return out
    if shape == "polars":
        return polars_frame(cols)
    if shape == "arrow":
        return arrow_table(cols)
    return pandas_frame(cols)


_SOURCE_NAMES = st.one_of(
    st.just("txns"), st.just("txns"), st.just("txns"), st.just("users"), names
)


@st.composite
def push_args(draw: st.DrawFn) -> dict[str, Any]:
    """Keyword arguments of ``store.push``."""
    kwargs: dict[str, Any] = {"source": draw(_SOURCE_NAMES), "rows": draw(_push_rows())}
    if draw(st.booleans()):
        kwargs["to"] = draw(
            st.one_of(st.sampled_from(["online_and_offline", "online", "offline"]), texts)
        )
    return kwargs


def describe(value: Any) -> str:
    """A short text of a drawn value for reports (frames by their schema)."""
    if isinstance(value, pl.DataFrame | pl.LazyFrame):
        return f"{type(value).__name__}(schema={dict(value.collect_schema())})"
    if type(value).__module__.startswith("pandas"):
        return f"pandas {type(value).__name__}(dtypes={dict(getattr(value, 'dtypes', {}))})"
    text = repr(value)
    return text if len(text) < 300 else text[:300] + "..."
