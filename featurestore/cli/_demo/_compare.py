"""Two ways of computing the same values compared, value by value, and the verdict printed:
equal, or each value that differs."""

from __future__ import annotations

import math

from rich.console import Console
from rich.markup import escape

__all__ = ["same", "show_comparison"]


def same(a: object, b: object) -> bool:
    """Equal values; floats may differ in the last bits, as sums in another order do (the
    skew report's default tolerance)."""
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return abs(a - b) <= 1e-9 + 1e-6 * abs(b)
    return a == b


def show_comparison(
    out: Console, sides: str, compared: int, mismatches: list[str], detail: str
) -> None:
    """'A == B for N values (detail)' in green, or 'A != B for n of N values:' and each
    mismatch in red; ``sides`` is 'A {} B'."""
    if mismatches:
        out.print(f"[red]{sides.format('!=')} for {len(mismatches)} of {compared} values:[/]")
        for line in mismatches:
            out.print(f"  [red]✗[/] {escape(line)}")
        return
    out.print(f"[green]{sides.format('==')} for {compared} values[/] ({detail})")
