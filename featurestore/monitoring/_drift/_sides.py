"""The two sides of a drift report and their text forms: a saved training set, a window of the
serving log, or a window of a view's source. Windows are half-open, ``[start, end)``, in UTC."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

from featurestore._times import as_utc, parse_duration
from featurestore.errors import ReportError
from featurestore.offline._training_set import TrainingSet

__all__ = [
    "ServingLogSide",
    "Side",
    "SourceSide",
    "TrainingSetSide",
    "parse_side",
    "to_side",
    "window_text",
]

_FORMS = (
    "a saved training set (path.parquet), a serving log window (log:7d or "
    "log:2025-03-01..2025-03-08) or a source window (source:VIEW:2025-03-01..2025-03-08)"
)


@dataclass(frozen=True)
class TrainingSetSide:
    """A training set saved with ``TrainingSet.save``, by path or as the object."""

    source: str | Path | TrainingSet

    @property
    def label(self) -> str:
        if isinstance(self.source, TrainingSet):
            return "training set (in memory)"
        return f"training set {Path(self.source).name}"


@dataclass(frozen=True)
class ServingLogSide:
    """Served values with request time in ``[start, end)``; None leaves that end open."""

    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @property
    def label(self) -> str:
        return f"serving log {window_text(self.start, self.end)}"


@dataclass(frozen=True)
class SourceSide:
    """The feature values of ``view`` for each source row with event time in ``[start, end)``."""

    view: str
    start: dt.datetime | None = None
    end: dt.datetime | None = None

    @property
    def label(self) -> str:
        return f"source of {self.view} {window_text(self.start, self.end)}"


Side = TrainingSetSide | ServingLogSide | SourceSide


def window_text(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A window as ``[start, end)`` in UTC, to the minute unless seconds matter; an open end is
    "..."."""

    def text(t: dt.datetime | None) -> str:
        if t is None:
            return ""
        t = as_utc(t)
        if t.microsecond:
            return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return t.strftime("%Y-%m-%dT%H:%M:%SZ" if t.second else "%Y-%m-%dT%H:%MZ")

    return f"[{text(start) or '...'}, {text(end) or '...'})"


def _time(text: str, spec: str) -> dt.datetime:
    """An ISO date (midnight UTC) or time; a naive time is taken as UTC."""
    try:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            return dt.datetime.combine(dt.date.fromisoformat(text), dt.time(), dt.UTC)
        return as_utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise ReportError(
            f"{spec!r}: {text!r} is not an ISO date or time such as 2025-03-01 or 2025-03-01T12:00Z"
        ) from None


def _window(spec: str, text: str, now: dt.datetime) -> tuple[dt.datetime | None, dt.datetime]:
    """``START..END`` (either may be empty) or a duration like ``7d`` ending at ``now``."""
    duration = parse_duration(spec)
    if duration is not None:
        return now - duration, now
    if ".." not in spec:
        raise ReportError(
            f"{text!r}: expected a window START..END (e.g. 2025-03-01..2025-03-08, either end "
            "may be left out) or a duration ending now (e.g. 7d, 12h, 30m)"
        )
    first, last = (part.strip() for part in spec.split("..", 1))
    start = _time(first, text) if first else None
    end = _time(last, text) if last else now
    if start is not None and start >= end:
        raise ReportError(f"{text!r}: the window starts at or after its end")
    return start, end


def parse_side(text: str, now: dt.datetime | None = None) -> Side:
    """A side from its command-line form.

    ``path.parquet`` is a saved training set; ``log:7d`` the serving log of the last 7 days up
    to ``now`` (units s, m, h, d, w); ``log:START..END`` a window of it, where a date alone
    means midnight UTC and the end is excluded (``2025-03-01..2025-03-08`` is seven days);
    ``source:VIEW:START..END`` (or ``source:VIEW:7d``) a window of a view's source.
    """
    spec = text.strip()
    moment = as_utc(now) if now is not None else dt.datetime.now(dt.UTC)
    if spec.startswith("log:"):
        return ServingLogSide(*_window(spec[len("log:") :], text, moment))
    if spec.startswith("source:"):
        view, sep, window = spec[len("source:") :].partition(":")
        if not sep or not view or not window:
            raise ReportError(
                f"{text!r}: a source window looks like source:VIEW:START..END or source:VIEW:7d"
            )
        return SourceSide(view, *_window(window, text, moment))
    path = Path(spec).expanduser()
    if path.suffix.lower() in (".parquet", ".pq") or path.is_file():
        return TrainingSetSide(path)
    raise ReportError(f"cannot read {text!r} as a drift side; expected {_FORMS}")


def to_side(value: Side | TrainingSet | str | Path) -> Side:
    """A side from a side object, a training set, a path or the text form of :func:`parse_side`."""
    if isinstance(value, TrainingSetSide | ServingLogSide | SourceSide):
        return value
    if isinstance(value, TrainingSet | Path):
        return TrainingSetSide(value)
    if isinstance(value, str):
        return parse_side(value)
    raise ReportError(f"a drift side must be {_FORMS}; found {type(value).__name__}")
