"""Value checks of one view's source: which rows break the declared rules.

The schema check (:func:`featurestore.sources._schema.view_problems`) says whether a source
*can* feed a view; this says whether its *values* do. For every plain feature it computes the
value from the source columns with the shared transform code
(:func:`featurestore._transforms.feature_expr`) and its status with the shared rules
(:func:`featurestore._value_rules.resolve`), exactly as training sets and online serving do, and
counts the rows whose status is ``INVALID``: a value that cannot be cast to the declared dtype,
a NaN or infinite float, a value outside ``ge``/``le`` or not in ``allowed``, or a null for a
``nullable=False`` feature without a default. Each such row is attributed to the first rule it
breaks, in that order, and up to :data:`MAX_EXAMPLES` rows are kept as examples (keys, event
time and the offending value), one per broken rule first. Aggregations have no per-value rules
but the cast of their input column to the type they aggregate in, which DuckDB does in the
same SQL the offline and online paths run (:func:`featurestore.sources._sql.input_sql`); input
values that cannot be cast are counted the same way.

Only rows the engines can ever use are checked: rows with an event time and every join key
(the point-in-time join and materialization skip the others).

Cost: one full scan of the source, reading only the join keys, the event time and the columns
the features and aggregations read, streamed from DuckDB in Arrow batches of
:data:`BATCH_ROWS` rows, so memory stays at about one batch of those columns whatever the
source's size; time grows linearly with its rows (a few seconds per ten million rows for a
handful of features).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import duckdb
import polars as pl

from featurestore._transforms import feature_expr
from featurestore._value_rules import MATCH_FOUND, FeatureStatus, resolve
from featurestore.definitions import Aggregation, Feature, FeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import EVENT_TS, ident, input_sql, timestamp_sql

__all__ = [
    "BATCH_ROWS",
    "MAX_EXAMPLES",
    "FeatureCheck",
    "ValueExample",
    "ViewValues",
    "check_values",
]

MAX_EXAMPLES = 5
BATCH_ROWS = 1_000_000
_REASON = "__fs_reason"
_RAW = "__fs_raw"
_STATUS = "__fs_status"


@dataclass
class ValueExample:
    """One source row whose value breaks a rule."""

    keys: dict[str, Any]
    event_time: dt.datetime | None
    value: Any
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "keys": self.keys,
            "event_time": self.event_time.isoformat() if self.event_time else None,
            "value": _json_value(self.value),
            "reason": self.reason,
        }

    def __str__(self) -> str:
        keys = ", ".join(f"{k}={value_text(v)}" for k, v in self.keys.items())
        when = self.event_time.isoformat(sep=" ") if self.event_time else "no time"
        return f"{keys} at {when}: {value_text(self.value)}"


@dataclass
class FeatureCheck:
    """What the value check found for one feature or aggregation of a view."""

    feature: str  # "view:name"
    rows: int  # source rows checked
    invalid: int  # rows whose value is INVALID (nulls included); of an aggregation, the
    # rows whose input value cannot be cast
    nulls: int  # of those, nulls of a feature declared nullable=False without a default
    rule: str  # the declared rules, as text
    broken: dict[str, int] = field(default_factory=dict)  # rule broken -> rows
    examples: list[ValueExample] = field(default_factory=list)
    error: str | None = None  # the feature's expression failed on the source data
    aggregation: bool = False  # a windowed aggregation (its input is checked) or a feature

    @property
    def ok(self) -> bool:
        return not self.invalid and self.error is None

    def problem(self, where: str) -> str | None:
        """The problem message (``where`` names the source and view), None when ok."""
        if self.error is not None:
            return (
                f"{where}: expression of feature '{self.feature}' fails on the source data: "
                f"{self.error}"
            )
        if not self.invalid:
            return None
        counts = ", ".join(f"{n:,} {why}" for why, n in self.broken.items())
        example = f"; e.g. {self.examples[0]}" if self.examples else ""
        if self.aggregation:
            return (
                f"{where}: aggregation '{self.feature}' has {self.invalid:,} of {self.rows:,} "
                f"input value(s) that break its rule ({counts}){example}; training sets and "
                "materializations that aggregate them fail"
            )
        return (
            f"{where}: feature '{self.feature}' has {self.invalid:,} of {self.rows:,} row(s) "
            f"breaking its rules ({counts}){example}; such values are INVALID in training "
            "sets and online"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "ok": self.ok,
            "rows": self.rows,
            "invalid": self.invalid,
            "nulls": self.nulls,
            "rule": self.rule,
            "broken": self.broken,
            "examples": [e.to_dict() for e in self.examples],
            "error": self.error,
            "aggregation": self.aggregation,
        }


@dataclass
class ViewValues:
    """The value check of one view: rows checked, per-feature findings and the problems."""

    rows: int
    features: list[FeatureCheck]
    problems: list[str]


def value_text(value: Any) -> str:
    """A value as shown in messages: strings quoted, NaN and times readable."""
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # nan, inf, -inf
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def _json_value(value: Any) -> Any:
    """NaN and infinities as text: JSON has no literal for them."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time | dt.timedelta):
        return str(value)
    return value


def feature_rule(feature: Feature) -> str:
    """The rules a feature's values must meet, as text."""
    parts = [dtype_name(feature.dtype)]
    if feature.ge is not None:
        parts.append(f"ge={feature.ge!r}")
    if feature.le is not None:
        parts.append(f"le={feature.le!r}")
    if feature.allowed is not None:
        parts.append(f"allowed={list(feature.allowed)!r}")
    if not feature.nullable and feature.default is None:
        parts.append("not null")
    if dtype_kind(feature.dtype) == "float":
        parts.append("finite")
    return ", ".join(parts)


def _reasons(feature: Feature) -> list[tuple[str, Callable[[pl.Expr, pl.Expr], pl.Expr]]]:
    """Each rule as (text, test of (raw, value) that is true when the row breaks it), in the
    order a row is attributed to them; together they cover resolve's INVALID rows."""
    dtype = feature.dtype
    reasons: list[tuple[str, Callable[[pl.Expr, pl.Expr], pl.Expr]]] = [
        ("null (nullable=False)", lambda raw, _v: raw.is_null()),
        (f"not castable to {dtype_name(dtype)}", lambda _r, value: value.is_null()),
    ]
    if dtype_kind(dtype) == "float":
        reasons.append(("NaN or infinite", lambda _r, value: ~value.is_finite()))
    if feature.ge is not None:
        ge = feature.ge
        reasons.append((f"below ge={ge!r}", lambda _r, value: value < pl.lit(ge)))
    if feature.le is not None:
        le = feature.le
        reasons.append((f"above le={le!r}", lambda _r, value: value > pl.lit(le)))
    if feature.allowed is not None:
        allowed = pl.lit(list(feature.allowed), dtype=pl.List(dtype)).first()
        reasons.append(
            (
                f"not in allowed={list(feature.allowed)!r}",
                lambda _r, value: ~value.is_in(allowed),
            )
        )
    return reasons


def _reason_expr(feature: Feature, raw: pl.Expr) -> pl.Expr:
    value = raw.cast(feature.dtype, strict=False)
    chain: Any = pl
    for text, breaks in _reasons(feature):
        chain = chain.when(breaks(raw, value).fill_null(False)).then(pl.lit(text))
    reason: pl.Expr = chain.otherwise(pl.lit("breaks a rule"))  # when/then types vary by depth
    return reason


class _Tally:
    """Counts and examples of one feature, accumulated batch by batch."""

    def __init__(self, ref: str, rule: str, keys: list[str], *, aggregation: bool = False) -> None:
        self.ref, self.rule, self.keys, self.aggregation = ref, rule, keys, aggregation
        self.invalid = self.nulls = 0
        self.broken: dict[str, int] = {}
        self.examples: dict[str, list[ValueExample]] = {}
        self.error: str | None = None

    def add(self, bad: pl.DataFrame, nulls: int) -> None:
        """``bad``: the batch's invalid rows (keys, event time, raw value, reason)."""
        self.invalid += bad.height
        self.nulls += nulls
        for why, n in bad[_REASON].value_counts().iter_rows():
            self.broken[why] = self.broken.get(why, 0) + n
        for row in (
            bad.group_by(_REASON, maintain_order=True).head(MAX_EXAMPLES).iter_rows(named=True)
        ):
            kept = self.examples.setdefault(row[_REASON], [])
            if len(kept) < MAX_EXAMPLES:
                kept.append(
                    ValueExample(
                        {k: row[k] for k in self.keys}, row[EVENT_TS], row[_RAW], row[_REASON]
                    )
                )

    def result(self, rows: int) -> FeatureCheck:
        # one example per broken rule first (most frequent rule first, ties by name), then
        # the rest; within a rule, in source order
        order = sorted(self.examples, key=lambda why: (-self.broken.get(why, 0), why))
        picked: list[ValueExample] = []
        for depth in range(MAX_EXAMPLES):
            for why in order:
                if depth < len(self.examples[why]) and len(picked) < MAX_EXAMPLES:
                    picked.append(self.examples[why][depth])
        broken = dict(sorted(self.broken.items(), key=lambda kv: (-kv[1], kv[0])))
        return FeatureCheck(
            self.ref,
            rows,
            self.invalid,
            self.nulls,
            self.rule,
            broken,
            picked,
            self.error,
            self.aggregation,
        )


def _target(agg: Aggregation) -> str:
    """The type an aggregation casts its input to (as :func:`input_sql` does), by name."""
    return "Float64" if agg.kind in ("mean", "stddev") else dtype_name(agg.dtype)


def _scan_sql(
    view: FeatureView,
    root: Path,
    schema: dict[str, pl.DataType],
    columns: list[str],
    aggregations: list[tuple[Aggregation, str]],
) -> str:
    src = view.source
    ts = timestamp_sql(src.timestamp_field, schema[src.timestamp_field])
    selected = [ident(c) for c in columns]
    selected.append(f"{ts} AS {EVENT_TS}")
    for i, (agg, cast_sql) in enumerate(aggregations):
        selected.append(
            f"({ident(agg.column or '')} IS NOT NULL AND TRY_{cast_sql} IS NULL) AS __fs_bad_{i}"
        )
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in [ts, *map(ident, view.join_keys)])
    return f"SELECT {', '.join(selected)} FROM {scan_sql(src, root)} WHERE {not_null}"


def check_values(
    con: duckdb.DuckDBPyConnection,
    view: FeatureView,
    root: Path,
    schema: dict[str, pl.DataType],
) -> ViewValues:
    """Count, per feature of ``view``, the source rows whose value breaks its declared rules
    (see the module docstring, which also states the cost: one full scan of the needed
    columns). ``schema`` is the source's, already checked with ``view_problems``: call this
    only when that found nothing. Raises :class:`SourceError` when the source cannot be read."""
    keys = list(view.join_keys)
    # Aggregations whose input the engines cast in SQL; CountDistinct compares raw values
    # and Count reads no column, so they have nothing to check.
    casts = [
        (agg, sql)
        for agg in view.aggregations
        if (sql := input_sql(agg)) is not None and sql.startswith("CAST(")
    ]
    inputs = [c for f in view.features for c in f.source_columns]
    inputs += [agg.column for agg, _ in casts if agg.column is not None]
    sql = _scan_sql(view, root, schema, list(dict.fromkeys([*keys, *inputs])), casts)
    feature_tallies = [
        (f, _Tally(f"{view.name}:{f.name}", feature_rule(f), keys)) for f in view.features
    ]
    agg_tallies = [
        (
            agg,
            _Tally(
                f"{view.name}:{agg.name}",
                f"input castable to {_target(agg)}",
                keys,
                aggregation=True,
            ),
        )
        for agg, _ in casts
    ]
    rows = 0
    with reading([view.source], root):
        for batch in con.sql(sql).to_arrow_reader(BATCH_ROWS):
            frame = cast(pl.DataFrame, pl.from_arrow(batch))
            if not frame.height:
                continue
            rows += frame.height
            for feature, tally in feature_tallies:
                if tally.error is None:
                    _check_feature(view, feature, frame, tally)
            for i, (agg, tally) in enumerate(agg_tallies):
                _check_cast(agg, f"__fs_bad_{i}", frame, tally)
    where = f"source {view.source.name!r} (view {view.name!r})"
    checks = [t.result(rows) for _, t in [*feature_tallies, *agg_tallies]]
    problems = [p for c in checks if (p := c.problem(where)) is not None]
    return ViewValues(rows, checks, problems)


def _check_cast(agg: Aggregation, flag: str, frame: pl.DataFrame, tally: _Tally) -> None:
    """Add one batch's rows whose input to ``agg`` cannot be cast (``flag`` set) to ``tally``."""
    bad = frame.filter(pl.col(flag)).select(
        *tally.keys,
        EVENT_TS,
        pl.col(agg.column or "").alias(_RAW),
        pl.lit(f"not castable to {_target(agg)}").alias(_REASON),
    )
    tally.add(bad, 0)


def _check_feature(view: FeatureView, feature: Feature, frame: pl.DataFrame, tally: _Tally) -> None:
    """Add one batch's invalid rows of ``feature`` to ``tally`` (or its error)."""
    raw = feature_expr(view, feature)
    _value, status = resolve(feature, raw, pl.lit(MATCH_FOUND), "__fs_value")
    try:
        flagged = frame.select(
            *tally.keys,
            EVENT_TS,
            raw.alias(_RAW),
            status.alias(_STATUS),
        ).filter(pl.col(_STATUS) == FeatureStatus.INVALID.value)
        bad = flagged.with_columns(_reason_expr(feature, pl.col(_RAW)).alias(_REASON))
    except pl.exceptions.PolarsError as exc:
        tally.error = f"{type(exc).__name__}: {str(exc).splitlines()[0]}"
        return
    tally.add(bad.drop(_STATUS), bad.filter(pl.col(_RAW).is_null()).height)
