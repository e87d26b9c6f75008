"""The library's one rule for times: a naive datetime is UTC. Times that are compared in bulk
(windows, serving-log rows) travel as integer microseconds since the Unix epoch."""

from __future__ import annotations

import datetime as dt

__all__ = ["EPOCH", "as_naive_utc", "as_utc", "epoch_us", "from_epoch_us"]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def as_utc(t: dt.datetime) -> dt.datetime:
    """``t`` as an aware UTC datetime; a naive ``t`` is read as UTC."""
    return t.replace(tzinfo=dt.UTC) if t.tzinfo is None else t.astimezone(dt.UTC)


def as_naive_utc(t: dt.datetime) -> dt.datetime:
    """``t`` as a naive datetime in UTC, as DuckDB and naive Datetime columns hold it."""
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def epoch_us(t: dt.datetime) -> int:
    """Microseconds since the Unix epoch (naive ``t`` is UTC)."""
    return ((t if t.tzinfo is not None else t.replace(tzinfo=dt.UTC)) - EPOCH) // _US


def from_epoch_us(us: int) -> dt.datetime:
    """The aware UTC datetime ``us`` microseconds after the Unix epoch."""
    return EPOCH + dt.timedelta(microseconds=us)
