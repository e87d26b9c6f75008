"""The windows monitoring evaluates: ``1h`` and ``1d`` windows follow each other (each UTC hour,
each UTC day); ``7d`` windows end at each UTC midnight, so a week is judged every day."""

from __future__ import annotations

import datetime as dt

from featurestore._times import as_utc
from featurestore.errors import ReportError

__all__ = ["WINDOWS", "Window", "whole_days", "window_size", "windows_ending"]

WINDOWS = ("1h", "1d", "7d")
_SIZES = {"1h": dt.timedelta(hours=1), "1d": dt.timedelta(days=1), "7d": dt.timedelta(days=7)}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

Window = tuple[dt.datetime, dt.datetime]  # [start, end), UTC


def window_size(window: str) -> dt.timedelta:
    """The length of ``window``; a ReportError names the known ones."""
    try:
        return _SIZES[window]
    except KeyError:
        raise ReportError(
            f"unknown window {window!r}; monitoring summarizes {', '.join(WINDOWS)}"
        ) from None


def _step(window: str) -> dt.timedelta:
    return min(window_size(window), dt.timedelta(days=1))


def _floor(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    return _EPOCH + ((as_utc(t) - _EPOCH) // step) * step


def windows_ending(window: str, after: dt.datetime, until: dt.datetime) -> list[Window]:
    """Every window whose end is in ``(after, until]``, oldest first."""
    size, step = window_size(window), _step(window)
    end = _floor(after, step) + step
    last = _floor(until, step)
    out: list[Window] = []
    while end <= last:
        out.append((end - size, end))
        end += step
    return out


def whole_days(window: str) -> bool:
    """Whether every window of this size starts and ends at midnight (read day totals)."""
    return window_size(window) >= dt.timedelta(days=1)
