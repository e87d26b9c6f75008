"""Times in report titles and on the report page as a reader takes them in at a glance: ISO
strings and windows in titles, legends and cells become "2025-01-03 → 2025-03-28", with the
time of day only when the window (or the spacing of a chart's bins) is shorter than a couple of
days."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from itertools import pairwise

from featurestore._times import as_utc

__all__ = ["as_time", "instant", "keep_dates_whole", "readable", "readable_labels", "window"]

DATE = r"\d{4}-\d{2}-\d{2}"
CLOCK = r"\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?"
ZONE = r"(?:Z|[+-]\d{2}:?\d{2})"
# in free text, a time as isoformat() or str() of an aware datetime writes it; never one that
# instant() wrote, so that making text readable twice changes nothing
ISO = rf"{DATE}(?:T{CLOCK}{ZONE}?| {CLOCK}{ZONE})"
CELL = re.compile(rf"{DATE}[T ]{CLOCK}{ZONE}?")  # a whole value that is a time
OPEN = r"\.\.\."
WINDOW = re.compile(
    rf"\[(?P<a>{ISO}|{OPEN}), (?P<b>{ISO}|{OPEN})\)|(?P<c>{ISO}) to (?P<d>{ISO})(?![\d:.])"
)
LONE = re.compile(ISO)
SHOWN = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{2}:\d{2}(?::\d{2})?)?")  # as instant() writes it
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[+-]?\d+)?")
DATES_FROM = dt.timedelta(days=2)  # a window at least this long shows dates only
EPOCH_US = (1e15, 1e16)  # epoch microseconds of 2001-09-09 to 2286-11-20
ARROW = " → "


def as_time(value: object) -> dt.datetime | None:
    """``value`` as a datetime when it is one or an ISO string of a date and time, else None."""
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str) and CELL.fullmatch(value.strip()):
        return _parse(value.strip())
    return None


def _parse(text: str) -> dt.datetime | None:
    """An ISO time, its fraction cut to microseconds; None when it is no valid time."""
    fraction = re.search(r"\.(\d{7,9})", text)  # nanoseconds: fromisoformat takes six digits
    if fraction:
        text = text.replace(fraction.group(0), "." + fraction.group(1)[:6])
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        return None


def _zone(t: dt.datetime) -> str:
    """The zone shown after a time: " UTC", " +0200", or nothing for a naive time."""
    offset = t.utcoffset()
    if offset is None:
        return ""
    if not offset:
        return " UTC"
    return " " + t.strftime("%z")


def instant(t: dt.datetime, zone: bool = True, dates: bool = False) -> str:
    """One time: its date, then hours and minutes (seconds when not zero) unless ``dates``;
    the zone ("UTC", an offset or nothing for a naive time) when ``zone``."""
    if dates:
        return t.strftime("%Y-%m-%d")
    clock = "%H:%M:%S" if t.second or t.microsecond else "%H:%M"
    return t.strftime(f"%Y-%m-%d {clock}") + (_zone(t) if zone else "")


def window(start: dt.datetime | None, end: dt.datetime | None) -> str:
    """A window as "start → end": dates only when it spans at least two days, an open end as
    "…", the zone once at the end when times are shown."""
    span = _span(start, end)
    dates = span is not None and span >= DATES_FROM
    ends = [("…" if t is None else instant(t, zone=False, dates=dates)) for t in (start, end)]
    known = end or start
    zone = "" if dates or known is None else _zone(known)
    return ARROW.join(ends) + zone


def _span(start: dt.datetime | None, end: dt.datetime | None) -> dt.timedelta | None:
    """The window's length (a naive end read as UTC); an open window has none."""
    if start is None or end is None:
        return None
    return abs(as_utc(end) - as_utc(start))


def readable(text: str) -> str:
    """Free text (a title, a side's label, a setting) with every window and time in it made
    readable; text without ISO times comes back unchanged."""

    def one_window(match: re.Match[str]) -> str:
        texts = (match.group("a") or match.group("c"), match.group("b") or match.group("d"))
        start, end = (None if t == "..." else _parse(t) for t in texts)
        if (start is None and texts[0] != "...") or (end is None and texts[1] != "..."):
            return match.group(0)
        return window(start, end)

    def one_time(match: re.Match[str]) -> str:
        t = _parse(match.group(0))
        return match.group(0) if t is None else instant(t)

    return LONE.sub(one_time, WINDOW.sub(one_window, text))


def keep_dates_whole(html: str) -> str:
    """Escaped text with each shown date (and time) in a span that never breaks across lines:
    a browser may otherwise wrap a title after the hyphen of "2025-03-"."""
    return SHOWN.sub(lambda m: f'<span class="fs-date">{m.group(0)}</span>', html)


def readable_labels(labels: Sequence[str], epoch_us: bool = False) -> list[str]:
    """A chart's bin labels with their times as dates, or dates and times when two of them are
    less than a day apart. ``epoch_us`` (a temporal feature's bins) reads numbers of epoch
    microseconds as times, in UTC."""
    found = [_times_in(label, epoch_us) for label in labels]
    times = sorted({t for spans in found for _, _, t in spans})
    gaps = [b - a for a, b in pairwise(times)]
    midnights = all(t.time() == dt.time() for t in times)
    dates = min(gaps) >= dt.timedelta(days=1) if gaps else midnights
    out = []
    for label, spans in zip(labels, found, strict=True):
        for lo, hi, t in reversed(spans):
            label = label[:lo] + instant(t, zone=False, dates=dates) + label[hi:]
        out.append(label)
    return out


def _times_in(label: str, epoch_us: bool) -> list[tuple[int, int, dt.datetime]]:
    """Where ``label`` holds a time (an ISO string, or epoch microseconds), and the time."""
    spans = [(m.start(), m.end(), _parse(m.group(0))) for m in LONE.finditer(label)]
    if epoch_us and not spans:
        for m in NUMBER.finditer(label):
            value = float(m.group(0))
            if EPOCH_US[0] <= value < EPOCH_US[1]:
                t = dt.datetime.fromtimestamp(value / 1e6, dt.UTC)
                spans.append((m.start(), m.end(), t))
    return [(lo, hi, as_utc(t)) for lo, hi, t in spans if t is not None]
