"""Reading a view's plain features: the latest stored row per entity, withheld when older
than the ttl (STALE), the default or NOT_FOUND when absent; rows computed by earlier
definitions are served under the fingerprint they were computed with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import polars as pl

from featurestore._times import from_epoch_us
from featurestore._value_rules import FeatureStatus
from featurestore.definitions._dtypes import parse_dtype
from featurestore.online._codec import (
    DIGEST_FIELD,
    STATUS_FIELD,
    TS_FIELD,
    converter,
    decode_statuses,
    decode_value,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import DefinitionsCache, PublishedDefinitions
from featurestore.serving._retrieval._fetch import entity_keys, fetch
from featurestore.serving._retrieval._plan import Column, ViewRead
from featurestore.serving._retrieval._request import RequestState

__all__ = ["FeatureReader"]

_PRESENT = FeatureStatus.PRESENT
_DEFAULTED = FeatureStatus.DEFAULTED
_NOT_FOUND = FeatureStatus.NOT_FOUND
_STALE = FeatureStatus.STALE
_BY_NAME = {s.value: s for s in FeatureStatus}

Row = dict[str, Any]
# per row: None (absent), False (stale) or the row's non-PRESENT statuses
RowState = dict[str, str] | bool | None


def _ttl_us(definitions: PublishedDefinitions) -> int | None:
    """The ttl the latest values of ``definitions`` were computed with (None: no limit)."""
    first = next(iter(definitions.definitions.values()), {})
    seconds = first.get("ttl_seconds")
    return None if seconds is None else round(seconds * 1_000_000)


class FeatureReader:
    """Fills the values, statuses and event times of views' plain features from ``store``;
    remembers the columns of earlier definitions it met."""

    def __init__(
        self, store: OnlineStore, definitions: DefinitionsCache, fallback_to_defaults: bool
    ) -> None:
        self.store = store
        self.definitions = definitions
        self.fallback_to_defaults = fallback_to_defaults
        self._earlier_columns: dict[tuple[str, str], tuple[pl.DataType, Column]] = {}

    def read(self, read: ViewRead, state: RequestState) -> None:
        """Fill the values, statuses and event times of one view's plain features."""
        view = read.view
        keys = entity_keys(view, state.entities, state.n)
        found, unavailable = fetch(self.store, view.name, keys, state, self.fallback_to_defaults)
        rows = [decode_value(raw) if (raw := found.get(k)) else None for k in keys]
        state.event_times[view.name] = [
            from_epoch_us(row[TS_FIELD]) if row is not None else None for row in rows
        ]
        cutoff = state.now_us - read.ttl_us if read.ttl_us is not None else None
        states: list[RowState] = [
            None
            if row is None
            else False
            if cutoff is not None and row[TS_FIELD] < cutoff
            else decode_statuses(row.get(STATUS_FIELD))
            for row in rows
        ]
        older = self._older_rows(read, rows, states, state.now_us)
        if not older and all(isinstance(s, dict) and not s for s in states):
            self._all_present(read, rows, state)  # the common case
            return
        for column in read.columns:
            convert = column.convert  # the applied definition's, for every row
            withheld: frozenset[int] = frozenset()
            if older:  # an earlier definition's default and status of absent rows
                withheld, column = self._older_values(column, older, state)
            missing = _DEFAULTED if unavailable else column.missing
            self._fill(column, convert, rows, states, withheld, missing, state)

    def _older_rows(
        self, read: ViewRead, rows: list[Row | None], states: list[RowState], now_us: int
    ) -> dict[int, PublishedDefinitions | None]:
        """Rows computed by other definitions than the applied ones, with their definitions;
        each row's state judged again by the ttl those definitions had."""
        older = {
            i: self.definitions.get(read.view.name, row.get(DIGEST_FIELD))
            for i, row in enumerate(rows)
            if row is not None and row.get(DIGEST_FIELD) != read.digest
        }
        for i, definitions in older.items():
            row = rows[i]
            assert row is not None  # older lists stored rows only
            ttl_us = _ttl_us(definitions) if definitions is not None else read.ttl_us
            fresh = ttl_us is None or row[TS_FIELD] >= now_us - ttl_us
            states[i] = decode_statuses(row.get(STATUS_FIELD)) if fresh else False
        return older

    @staticmethod
    def _all_present(read: ViewRead, rows: list[Row | None], state: RequestState) -> None:
        """Every row found, fresh and PRESENT: one comprehension a column."""
        for column in read.columns:
            name, convert = column.name, column.convert
            out = [row.get(name) for row in rows]  # type: ignore[union-attr]
            if convert:
                out = [None if v is None else convert(v) for v in out]
            state.values[column.ref] = out
            state.statuses[column.ref] = [_PRESENT] * state.n

    @staticmethod
    def _fill(
        column: Column,
        convert: Callable[[Any], Any] | None,
        rows: list[Row | None],
        states: list[RowState],
        withheld: frozenset[int],
        missing: FeatureStatus,
        state: RequestState,
    ) -> None:
        """One column's values and statuses, row by row."""
        name, default = column.name, column.default
        out_v: list[Any] = []
        out_s: list[FeatureStatus] = []
        for i, (row, row_state) in enumerate(zip(rows, states, strict=True)):
            if row_state is None:
                out_v.append(default)
                out_s.append(missing)
            elif row_state is False or i in withheld:
                out_v.append(default)
                out_s.append(_STALE)
            else:
                value = row.get(name)  # type: ignore[union-attr]
                out_v.append(convert(value) if convert and value is not None else value)
                status = row_state.get(name)  # type: ignore[union-attr]
                out_s.append(_BY_NAME[status] if status else _PRESENT)
        state.values[column.ref] = out_v
        state.statuses[column.ref] = out_s

    def _older_values(
        self,
        column: Column,
        older: dict[int, PublishedDefinitions | None],
        state: RequestState,
    ) -> tuple[frozenset[int], Column]:
        """For rows computed by earlier definitions (``older``): those whose value of
        ``column`` cannot be served, as no definition of the feature computed it (added since,
        or written before definitions were recorded); and the column as the definition that
        computed the others declared it (its default fills the column's absent and stale
        rows), remembered in ``state`` when it is not the applied one."""
        applied = state.applied[column.ref]
        withheld = []
        earlier: tuple[PublishedDefinitions, str] | None = None
        for i, definitions in older.items():
            computed = definitions.fingerprints.get(column.name) if definitions else None
            if computed is None:
                withheld.append(i)
            elif computed != applied and earlier is None:
                earlier = (definitions, computed)  # type: ignore[assignment]
        if earlier is None:
            return frozenset(withheld), column
        definitions, computed = earlier
        state.computed_with[column.ref] = computed
        dtype, earlier_column = self._earlier_column(column, definitions)
        state.computed_dtypes[column.ref] = dtype
        return frozenset(withheld), earlier_column

    def _earlier_column(
        self, column: Column, definitions: PublishedDefinitions
    ) -> tuple[pl.DataType, Column]:
        """The dtype the earlier ``definitions`` declared, and ``column`` with their default."""
        key = (definitions.digest, column.ref)
        found = self._earlier_columns.get(key)
        if found is None:
            recorded = definitions.definitions.get(column.name, {})
            dtype = parse_dtype(recorded.get("dtype", "String"))
            convert = converter(dtype)
            default = recorded.get("default")
            if default is not None and convert is not None and isinstance(default, str):
                default = convert(default)
            found = self._earlier_columns[key] = (
                dtype,
                Column(
                    name=column.name,
                    ref=column.ref,
                    default=default,
                    convert=convert,
                    missing=_DEFAULTED if default is not None else _NOT_FOUND,
                ),
            )
        return found
