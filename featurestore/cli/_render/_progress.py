"""Progress of long jobs: each step printed with its duration once done; in a terminal, a
spinner for the step under way and, for jobs done view by view, a bar counting the views."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, TypeVar

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)

__all__ = ["Steps", "ViewSteps", "steps", "view_steps"]

S = TypeVar("S", bound="Steps")


class Steps:
    """A progress callback: each message starts a step and ends the previous one.

    Finished steps print as lines with their duration; in a terminal a spinner shows the
    step under way.
    """

    def __init__(self, out: Console, status: Any = None) -> None:
        self.out = out
        self.status = status
        self.current: str | None = None
        self.started = 0.0

    def __call__(self, message: str) -> None:
        self.done()
        self.current = message
        self.started = time.perf_counter()
        if self.status is not None:
            self.status.update(f"[bold]{escape(message)}…")

    def done(self, ok: bool = True) -> None:
        """End the step under way, if any."""
        if self.current is None:
            return
        elapsed = time.perf_counter() - self.started
        mark = "[green]✓[/]" if ok else "[red]✗[/]"
        self.out.print(f"  {mark} {escape(self.current)} [dim]{elapsed:.2f}s[/]")
        self.current = None

    def finish(self) -> None:
        """End the last step: the job is done."""
        self.done()


class ViewSteps(Steps):
    """:class:`Steps` of a job done view by view, with a bar counting the views (in a terminal).

    A message counts toward the view it names; the bar shows the views finished so far.
    """

    def __init__(self, out: Console, views: Sequence[str], bar: Progress | None = None) -> None:
        super().__init__(out)
        self.views = list(views)
        self.bar = bar
        self.task = bar.add_task("starting", total=len(self.views)) if bar is not None else None
        self.seen: list[str] = []

    def __call__(self, message: str) -> None:
        named = [w for w in re.findall(r"\w+", message) if w in self.views]
        if named and named[0] not in self.seen:
            self.seen.append(named[0])
        if self.bar is not None and self.task is not None:
            self.bar.update(
                self.task, completed=max(len(self.seen) - 1, 0), description=escape(message)
            )
        super().__call__(message)

    def finish(self) -> None:
        """End the last step and fill the bar."""
        self.done()
        if self.bar is not None and self.task is not None:
            self.bar.update(self.task, completed=len(self.views), description="done")


def _tracked(tracker: S, display: AbstractContextManager[Any]) -> Iterator[S]:
    """Yield ``tracker`` inside ``display``; a failure marks the step under way as failed."""
    with display:
        try:
            yield tracker
        except BaseException:
            tracker.done(ok=False)
            raise
        tracker.finish()


@contextmanager
def steps(out: Console) -> Iterator[Steps]:
    """A :class:`Steps` callback for the duration of the block."""
    status = out.status("working…") if out.is_terminal else None
    tracker = Steps(out, status)
    yield from _tracked(tracker, status if status is not None else nullcontext())


@contextmanager
def view_steps(out: Console, views: Sequence[str]) -> Iterator[ViewSteps]:
    """A :class:`ViewSteps` callback for the duration of the block."""
    bar = None
    if out.is_terminal:
        bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("views"),
            TimeElapsedColumn(),
            console=out,
            transient=True,
        )
    tracker = ViewSteps(out, views, bar)
    yield from _tracked(tracker, bar if bar is not None else nullcontext())
