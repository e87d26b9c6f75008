"""The library's one rule for times: a naive datetime is UTC. Times that are compared in bulk
(windows, serving-log rows) travel as integer microseconds since the Unix epoch. Durations
are written as a number and a unit (``90s``, ``30m``, ``12h``, ``1d``, ``2w``)."""

from __future__ import annotations

import datetime as dt
import re

__all__ = [
    "EPOCH",
    "as_naive_utc",
    "as_utc",
    "epoch_us",
    "format_duration",
    "from_epoch_us",
    "parse_duration",
]

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")


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


def parse_duration(text: str) -> dt.timedelta | None:
    """``90s``, ``30m``, ``12h``, ``1d`` or ``2w`` as a positive timedelta; None for any other
    text (callers word the error for their context)."""
    match = _DURATION.match(text.strip().lower())
    if match is None or float(match[1]) <= 0:
        return None
    return dt.timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def format_duration(seconds: float) -> str:
    """A duration in its two largest units, for people: ``45s``, ``12m 5s``, ``3d 4h``."""
    if seconds < 0:
        return f"-{format_duration(-seconds)}"
    if seconds < 1:
        return f"{seconds:.1g}s" if seconds else "0s"
    left = int(seconds)
    parts: list[str] = []
    for unit, size in _UNITS.items():
        if left >= size and len(parts) < 2:
            parts.append(f"{left // size}{unit}")
            left %= size
        elif parts:
            break
    return " ".join(parts)
