"""Atomic file writes: a reader sees the old file or the whole new one, never half of one.

Every file featurestore writes for others to read (the registry, the materialization state,
serving log parts, saved training sets, pushed parts of a source) goes through
:func:`write_atomically`: written under a hidden temporary name in the target's directory,
flushed and fsynced, renamed over the target, and the directory fsynced so the rename itself
survives a crash. A failure part-way removes the temporary file and leaves the target as it was.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["write_atomically", "write_text_atomically"]


def write_atomically(target: Path, write: Callable[[BinaryIO], object]) -> Path:
    """Create or replace ``target`` with what ``write`` writes to the file it is given."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable
        dir_fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return target


def write_text_atomically(target: Path, text: str) -> Path:
    """Create or replace ``target`` with ``text`` (UTF-8)."""
    return write_atomically(target, lambda fh: fh.write(text.encode()))
