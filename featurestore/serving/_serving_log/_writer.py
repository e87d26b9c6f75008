"""The serving log's background writer: :meth:`ServingLogWriter.log` queues a served response
without blocking; a thread encodes what is queued and writes it to Parquet in batches."""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from featurestore.serving._response import OnlineResponse
from featurestore.serving._serving_log._files import partition_of, write_part
from featurestore.serving._serving_log._records import Entry, encode, entry_of, row_count
from featurestore.serving._serving_log._schema import arrow_table, new_columns

if TYPE_CHECKING:
    from featurestore._repo import RepoContents

__all__ = ["ServingLogWriter", "open_serving_log"]

log = logging.getLogger(__name__)

_EXIT_TIMEOUT_SECONDS = 30.0  # at interpreter exit, how long pending records may take
_TICK_SECONDS = 0.005  # how often the writer thread takes the responses log() queued
_SLICE_SECONDS = 0.0005  # longest stretch of encoding before the writer pauses
_SEAL_RECORDS = 128  # encoded records turned into Arrow at once (about 0.3 ms)
_PAUSE_SECONDS = 0.0001  # a blocking sleep: a waiting request thread takes the lock meanwhile


class _Flush:
    """A marker: everything logged before it was registered is written when ``done`` is set."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


class _Day:
    """Pending records of one UTC date: Arrow tables, and the records encoded since the last
    table was sealed (as text and integers)."""

    __slots__ = ("cols", "tables")

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.cols = new_columns()

    @property
    def open_records(self) -> int:
        return len(self.cols["request_id"])


class ServingLogWriter:
    """Background writer: appends served records to Parquet under ``directory``.

    :meth:`log` packs the response into JSON bytes (one orjson call) and appends them to a
    list (``queue_size`` bounds the responses waiting, each holding one record per entity
    row); when the list is full the response is dropped and its records counted in
    ``dropped``. It never wakes the writer thread: waking a thread per request costs more than
    encoding the request's records. The thread takes what
    is waiting every few milliseconds, encodes it in short stretches (pausing between them so
    that request threads get the interpreter lock at once) into Arrow tables, and
    writes when ``batch_size`` records are pending (at most that many per file) or
    ``flush_interval_seconds`` after the oldest pending one was taken. A writer not closed
    explicitly is closed at interpreter exit, so a normal exit loses nothing.
    """

    def __init__(
        self,
        directory: Path,
        *,
        queue_size: int = 100_000,
        batch_size: int = 5_000,
        flush_interval_seconds: float = 1.0,
    ) -> None:
        if queue_size < 1 or batch_size < 1 or flush_interval_seconds <= 0:
            raise ValueError(
                "queue_size and batch_size must be at least 1 and flush_interval_seconds "
                f"positive; found {queue_size}, {batch_size}, {flush_interval_seconds}"
            )
        self.directory = Path(directory)
        self.queue_size = queue_size
        self.batch_size = batch_size
        self.flush_interval_seconds = flush_interval_seconds
        self._tick = min(_TICK_SECONDS, flush_interval_seconds)
        self._lock = threading.Lock()  # guards _entries, _flushes, _closed, _finished, _dropped
        self._entries: deque[Entry] = deque()
        self._flushes: list[_Flush] = []
        self._wake = threading.Event()  # set by flush() and close() only
        self._closed = False
        self._finished = False  # the thread has written everything and ended
        self._written = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="serving-log-writer", daemon=True)
        self._thread.start()
        atexit.register(self._close_at_exit)

    @property
    def written(self) -> int:
        """Records written to Parquet so far."""
        return self._written

    @property
    def dropped(self) -> int:
        """Records lost: queue full, logged after close, or a failed write."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called (later :meth:`log` calls drop)."""
        return self._closed

    def _drop(self, records: int) -> None:
        with self._lock:
            self._dropped += records

    def log(
        self,
        response: OnlineResponse,
        *,
        request_id: str,
        latency_us: int,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        feature_service: str | None = None,
    ) -> bool:
        """Queue a served response (one record per entity row); never blocks.

        Returns False when the records are dropped (queue full, writer closed, or a value
        that cannot be encoded). The response is packed at once: later changes to it or to
        the request data are not logged.
        """
        rows = row_count(response)
        try:
            entry = entry_of(response, request_id, latency_us, request_data, feature_service, rows)
        except Exception as exc:
            log.exception("serving log bad record request_id=%s error=%s", request_id, exc)
            self._drop(rows)
            return False
        with self._lock:
            if not self._closed and len(self._entries) < self.queue_size:
                self._entries.append(entry)
                return True
            self._dropped += entry.rows
        return False

    def flush(self, timeout: float | None = None) -> None:
        """Write everything queued so far; raises TimeoutError if not done within ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        marker = _Flush()
        with self._lock:
            if self._finished:
                return  # stopped by close(), which wrote everything queued
            self._flushes.append(marker)
        self._wake.set()
        while not marker.done.wait(0.05):
            if not self._thread.is_alive():
                return
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"serving log not flushed within {timeout} s")

    def close(self, timeout: float | None = None) -> None:
        """Write everything queued, then stop the thread; later :meth:`log` calls drop.

        Idempotent. If the thread does not finish within ``timeout``, logs a warning (a later
        close can be tried again).
        """
        with self._lock:
            self._closed = True
        self._wake.set()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning(
                "serving log close timed out directory=%s queued=%d",
                self.directory,
                len(self._entries),
            )
        else:
            atexit.unregister(self._close_at_exit)

    def _close_at_exit(self) -> None:
        self.close(timeout=_EXIT_TIMEOUT_SECONDS)

    def __enter__(self) -> ServingLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        try:  # pyarrow's first conversion imports modules for 0.2 s: now, not under load
            arrow_table(new_columns())
        except Exception:
            log.exception("serving log writer warm-up failed directory=%s", self.directory)
        pending: dict[dt.date, _Day] = {}
        refs_cache: dict[Any, Any] = {}  # refs lists and fingerprint JSON, shared by records
        records = 0
        deadline: float | None = None

        def write() -> None:
            nonlocal pending, records, deadline
            try:
                self._write(pending)
            except Exception:  # _write accounts for every record; this keeps the thread
                log.exception("serving log writer error directory=%s", self.directory)
            pending, records, deadline = {}, 0, None
            if len(refs_cache) > 1024:
                refs_cache.clear()

        while True:
            wait = self._tick
            if deadline is not None:
                wait = min(wait, max(0.0, deadline - time.monotonic()))
            self._wake.wait(wait)
            self._wake.clear()
            with self._lock:  # closed is read with the entries: none can follow the last take
                stopping = self._closed
                entries = list(self._entries)
                self._entries.clear()
                flushes, self._flushes = self._flushes, []
            taken = 0
            while taken < len(entries):  # never more than batch_size records pending
                added, taken = self._encode_all(
                    entries, taken, pending, refs_cache, self.batch_size - records
                )
                records += added
                if deadline is None and records:
                    deadline = time.monotonic() + self.flush_interval_seconds
                if records >= self.batch_size:
                    write()
            due = time.monotonic() >= (deadline or float("inf"))
            if pending and (due or flushes or stopping):
                write()
            for marker in flushes:
                marker.done.set()
            if stopping:
                break
        with self._lock:
            self._finished = True
            flushes, self._flushes = self._flushes, []
        for marker in flushes:  # flushes registered while the last records were written
            marker.done.set()

    def _encode_all(
        self,
        entries: list[Entry],
        start: int,
        pending: dict[dt.date, _Day],
        refs_cache: dict[Any, Any],
        room: int,
    ) -> tuple[int, int]:
        """Encode ``entries[start:]`` into ``pending`` until ``room`` records were added;
        returns the records added and the index of the first entry not taken.

        Works in stretches of at most about ``_SLICE_SECONDS`` (encoding, or turning
        ``_SEAL_RECORDS`` records into Arrow), each followed by a short sleep, so a burst
        never keeps request threads off the interpreter lock for long. A response that
        cannot be encoded is dropped alone.
        """
        added = 0
        began = time.perf_counter()
        index = start
        while index < len(entries) and added < room:
            entry = entries[index]
            index += 1
            try:
                pend = pending.get(entry.day) or pending.setdefault(entry.day, _Day())
                encode(entry, pend.cols, refs_cache)
            except Exception as exc:
                log.exception(
                    "serving log bad record request_id=%s records=%d error=%s",
                    entry.request_id,
                    entry.rows,
                    exc,
                )
                self._drop(entry.rows)
            else:
                added += entry.rows
                if pend.open_records >= _SEAL_RECORDS:
                    added -= self._seal(pend)
            if time.perf_counter() - began >= _SLICE_SECONDS:
                time.sleep(_PAUSE_SECONDS)
                began = time.perf_counter()
        return added, index

    def _seal(self, pend: _Day) -> int:
        """Turn the open records of ``pend`` into an Arrow table; returns how many were
        dropped because they could not be converted."""
        rows = pend.open_records
        if not rows:
            return 0
        cols, pend.cols = pend.cols, new_columns()
        try:
            pend.tables.append(arrow_table(cols))
        except Exception as exc:
            log.exception("serving log bad records records=%d error=%s", rows, exc)
            self._drop(rows)
            return rows
        return 0

    def _write(self, pending: dict[dt.date, _Day]) -> None:
        """Write encoded records, one or more files per UTC date; failures drop, never raise."""
        for day, pend in pending.items():
            self._seal(pend)
            if pend.tables:
                self._write_day(partition_of(self.directory, day), pend.tables)

    def _write_day(self, partition: Path, tables: list[pa.Table]) -> None:
        """Write one day's tables in files of at most ``batch_size`` records."""
        total = sum(t.num_rows for t in tables)
        accounted = 0  # records of this day written or counted as dropped
        try:
            table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
            for offset in range(0, table.num_rows, self.batch_size):
                chunk = table.slice(offset, self.batch_size)
                try:
                    write_part(partition, chunk)
                except Exception as exc:
                    log.exception(
                        "serving log write failed partition=%s records=%d error=%s",
                        partition,
                        chunk.num_rows,
                        exc,
                    )
                    self._drop(chunk.num_rows)
                else:
                    self._written += chunk.num_rows
                accounted += chunk.num_rows
        except Exception as exc:
            log.exception(
                "serving log write failed partition=%s records=%d error=%s",
                partition,
                total - accounted,
                exc,
            )
            self._drop(total - accounted)


def open_serving_log(repo: RepoContents) -> ServingLogWriter:
    """The serving log writer of ``repo``: under its serving log directory, with the queue,
    batch and flush settings of its ``serving_log`` config."""
    cfg = repo.config.serving_log
    return ServingLogWriter(
        repo.serving_log_dir,
        queue_size=cfg.queue_size,
        batch_size=cfg.batch_size,
        flush_interval_seconds=cfg.flush_interval_seconds,
    )
