"""Numbers and shares as short text, one form for the CLI, the reports and their HTML."""

from __future__ import annotations

import math

__all__ = ["exact", "number", "percent"]


def number(value: float | int | None) -> str:
    """A short human form of a number: 3,008 / 41.9 / 0.1965; None is "-", nan and inf
    print as themselves."""
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) >= 10_000:
        return f"{value:,.0f}"
    return f"{value:,.4g}"


def exact(value: float | int | None) -> str:
    """Every digit of a number, so two different values never print the same (example rows);
    None is "null"."""
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def percent(share: float | None) -> str:
    """A share as a percentage that never rounds a non-zero share to 0; None is "-"."""
    if share is None:
        return "-"
    if math.isnan(share):
        return "n/a"
    if 0 < share < 0.0005:
        return "<0.1%"
    return f"{share:.1%}"
