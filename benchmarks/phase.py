"""One measured side of a benchmark (ours, the reference): its warm-up, timed runs, CPU time and
peak memory, summarised for the JSON results and shown as the printed table; and the loop every
benchmark times its sides with (a warm-up each, then runs that alternate between the sides)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rich.table import Table

# one run of a side: its result, wall seconds, and a third figure (CPU seconds or peak MiB)
Measure = Callable[[Callable[[], Any]], tuple[Any, float, float]]


@dataclass
class Phase:
    """Wall times (and, when a benchmark takes them, CPU times and peak memory above the level
    at start) of one side; ``fresh_s`` is its time in a fresh process."""

    name: str
    what: str
    times_s: list[float] = field(default_factory=list)
    cpu_s: list[float] = field(default_factory=list)
    peak_mb: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    fresh_s: float | None = None

    @property
    def best_s(self) -> float:
        return min(self.times_s)

    @property
    def best_cpu_s(self) -> float:
        return min(self.cpu_s)

    @property
    def max_peak_mb(self) -> float:
        return max(self.peak_mb)

    def to_dict(self) -> dict[str, Any]:
        """What was measured, rounded; CPU, memory and fresh-process figures when taken."""
        out: dict[str, Any] = {
            "name": self.name,
            "what": self.what,
            "warmup_s": round(self.warmup_s or 0.0, 4),
            "times_s": [round(t, 4) for t in self.times_s],
            "best_s": round(self.best_s, 4),
        }
        if self.cpu_s:
            out["cpu_s"] = [round(t, 4) for t in self.cpu_s]
            out["best_cpu_s"] = round(self.best_cpu_s, 4)
        if self.peak_mb:
            out["peak_rss_mb"] = round(self.max_peak_mb, 1)
        if self.fresh_s is not None:
            out["fresh_process_s"] = round(self.fresh_s, 4)
        return out


def phases_table(phases: Iterable[Mapping[str, Any]]) -> Table:
    """The sides of a run (:meth:`Phase.to_dict` output) as a table: warm-up, runs, then the
    CPU, fresh-process and memory columns the benchmark took."""
    phases = list(phases)
    columns: list[tuple[str, Callable[[Mapping[str, Any]], str]]] = [
        ("warm-up s", lambda p: f"{p['warmup_s']:.3f}"),
        ("runs s", lambda p: " ".join(f"{t:.3f}" for t in p["times_s"])),
    ]
    if all("cpu_s" in p for p in phases):
        columns.append(("CPU s per run", lambda p: " ".join(f"{t:.2f}" for t in p["cpu_s"])))
    columns.append(("best s", lambda p: f"{p['best_s']:.3f}"))
    if all("fresh_process_s" in p for p in phases):
        columns.append(("fresh process s", lambda p: f"{p['fresh_process_s']:.3f}"))
    if all("peak_rss_mb" in p for p in phases):
        columns.append(("peak RSS MiB", lambda p: f"{p['peak_rss_mb']:.0f}"))
    table = Table()
    table.add_column("measured")
    for title, _ in columns:
        table.add_column(title, justify="right")
    for p in phases:
        table.add_row(f"{p['name']}: {p['what']}", *(cell(p) for _, cell in columns))
    return table


def warm_up(
    phases: Mapping[str, Phase], sides: Mapping[str, Callable[[], Any]], measure: Measure
) -> dict[str, Any]:
    """Run each side once (its time is the warm-up); returns the results, for checking."""
    results = {}
    for key, fn in sides.items():
        results[key], phases[key].warmup_s, _ = measure(fn)
    return results


def alternate(
    phases: Mapping[str, Phase],
    sides: Mapping[str, Callable[[], Any]],
    repeats: int,
    measure: Measure,
    third: Literal["cpu_s", "peak_mb"] | None = None,
) -> None:
    """Timed runs, alternating sides so that load on a shared machine hits all alike; the
    third figure of ``measure`` is kept in the phase's ``third`` list."""
    for _ in range(repeats):
        for key, fn in sides.items():
            result, elapsed, figure = measure(fn)
            del result
            phases[key].times_s.append(elapsed)
            if third is not None:
                getattr(phases[key], third).append(figure)
