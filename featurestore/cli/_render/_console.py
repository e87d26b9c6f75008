"""Where the CLI's output goes and its plainest forms: consoles, JSON, errors and times."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

__all__ = ["console", "dump_json", "error", "timestamp"]

FALLBACK_WIDTH = 120


def console(stderr: bool = False) -> Console:
    """A console; when output is not a terminal, tables get a readable width, not 80."""
    out = Console(stderr=stderr, highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out.width = FALLBACK_WIDTH
    return out


def dump_json(value: Any) -> None:
    """Machine-readable output on stdout: plain JSON, no colours or wrapping."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")
    sys.stdout.flush()


def error(out: Console, message: str) -> None:
    """One red paragraph; long lines wrap in the terminal, not in the text."""
    text = Text("Error: ", style="bold red")
    text.append(message, style="red")
    out.print(text, soft_wrap=True)


def timestamp(value: dt.datetime | None) -> str:
    """A time to the second, without its zone (the CLI prints UTC and says so); None is "-"."""
    return "-" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def note(out: Console, message: str) -> None:
    """One dim line of information on what the command did for the user (never an error)."""
    out.print(Text(f"note: {message}", style="dim"), soft_wrap=True)
