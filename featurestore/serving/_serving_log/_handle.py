"""A store's serving log: its background writer, opened on first use (and again once closed),
and its files, read after what the writer still holds is flushed."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable

import polars as pl

from featurestore._repo import RepoContents
from featurestore.serving._serving_log._reader import read_serving_log
from featurestore.serving._serving_log._writer import ServingLogWriter, open_serving_log

__all__ = ["ServingLog"]


class ServingLog:
    """The serving log of the repo ``repo()`` returns (the store's current one)."""

    def __init__(self, repo: Callable[[], RepoContents]) -> None:
        self._repo = repo
        self._lock = threading.Lock()
        self._writer: ServingLogWriter | None = None

    @property
    def writer(self) -> ServingLogWriter:
        writer = self._writer
        if writer is None or writer.closed:
            with self._lock:
                if self._writer is None or self._writer.closed:
                    self._writer = open_serving_log(self._repo())
                writer = self._writer
        return writer

    def read(self, start: dt.datetime | None, end: dt.datetime | None) -> pl.DataFrame:
        """Served records with request time in ``[start, end)``, one row per entity row."""
        if self._writer is not None:
            self._writer.flush()
        return read_serving_log(self._repo().serving_log_dir, start, end)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
