"""Values as the report page shows them: statistics in the CLI's short number form, example
values cut to a few significant digits (yet never two different values alike in one row),
times as dates, lists and maps in words, and long values cut with the whole kept for a tooltip.
No cell ever shows a Python repr such as ``[]``, ``None`` or ``nan``."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore._format import exact, number
from featurestore.monitoring._time_text import as_time, instant, readable

__all__ = ["DIGITS", "Cell", "clip", "example_cells", "plain", "significant", "significant_all"]

DIGITS = 7  # significant digits of an example value
MAX_DIGITS = 17  # enough for any two different floats to print differently
MAX_EXAMPLE = 40  # characters shown of an example value
MAX_STAT = 160  # characters shown of a statistic or setting


@dataclass(frozen=True)
class Cell:
    """A value's shown text, its whole form when that differs (for a tooltip), and whether it
    is a number (right-aligned)."""

    text: str
    full: str | None = None
    numeric: bool = False


def significant(value: float, digits: int = DIGITS) -> str:
    """``value`` rounded to at most ``digits`` significant digits, and never to more than its
    shortest exact form has (3123.2400000000002 is 3123.24, 3123.24 never 3123.2399999999998);
    nan is "n/a", infinities "inf" and "-inf"."""
    if math.isnan(value):
        return "n/a"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    exact_digits = len(repr(float(value)).split("e")[0].lstrip("-").replace(".", "").lstrip("0"))
    return f"{value:.{max(1, min(digits, exact_digits))}g}"


def significant_all(values: Sequence[float], digits: int = DIGITS) -> list[str]:
    """Each of ``values`` to ``digits`` significant digits, and to more (up to every digit) only
    where two different values would print alike, so that a mismatch never looks like a match."""
    keys = [repr(float(v)) for v in values]
    wanted = dict.fromkeys(keys, digits)
    while True:
        texts = {k: significant(float(k), d) for k, d in wanted.items()}
        seen: dict[str, list[str]] = {}
        for k, text in texts.items():
            seen.setdefault(text, []).append(k)
        alike = [k for ks in seen.values() if len(ks) > 1 for k in ks if wanted[k] < MAX_DIGITS]
        if not alike:
            return [texts[k] for k in keys]
        for k in alike:
            wanted[k] += 1


def clip(text: str, limit: int) -> Cell:
    """``text`` cut to ``limit`` characters with an ellipsis, the whole kept when cut."""
    if len(text) <= limit:
        return Cell(text)
    return Cell(text[: limit - 1] + "…", full=text)


def plain(value: Any) -> str:
    """A statistic, summary or setting value as short text (not yet escaped): numbers in the
    CLI's form, None as "-", empty lists and maps as "none", times and windows as dates."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isnan(value):
        return "n/a"
    if value is None or isinstance(value, int | float):
        return number(value)
    time = as_time(value)
    if time is not None:
        return instant(time)
    if isinstance(value, Mapping):
        return ", ".join(f"{readable(str(k))}: {plain(v)}" for k, v in value.items()) or "none"
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(plain(v) for v in value) or "none"
    return readable(str(value))


def example_cells(values: Sequence[Any]) -> list[Cell]:
    """One example row's cells: floats to a few digits yet told apart, None as "null", times
    to the second, long values cut; the exact value goes with any cell that shows less."""
    floats = [v for v in values if isinstance(v, float)]
    shown = iter(significant_all(floats))
    return [_example(v, next(shown) if isinstance(v, float) else None) for v in values]


def _example(value: Any, float_text: str | None) -> Cell:
    """One example value's cell; ``float_text`` is a float's text chosen for its row."""
    if float_text is not None:
        full = exact(value)
        return Cell(float_text, None if float_text == full else full, numeric=True)
    if isinstance(value, bool):
        return Cell("true" if value else "false")
    if value is None or isinstance(value, int):
        return Cell(exact(value), numeric=value is not None)
    time = as_time(value)
    if time is not None:
        whole = value if isinstance(value, str) else value.isoformat()
        return Cell(instant(time, zone=False), full=whole)
    if isinstance(value, list | tuple | dict):
        if not value:
            return Cell("(empty)", full=json.dumps(value))
        return clip(json.dumps(value, default=str), MAX_EXAMPLE)
    return clip(str(value), MAX_EXAMPLE)
