"""The serving log: every served entity row, appended to Parquet by a background thread.

A request for N entities gives N records. Files live under ``directory/date=YYYY-MM-DD/``
(the UTC date of the request time), named ``part-<UTC write time>-<uuid>.parquet``; each is
written under a hidden temporary name, fsynced and renamed, so a reader never sees half a file.
The columns are the contract that the skew report replays through the offline engine:

- ``request_id`` (String): the id the server gave the request.
- ``row`` (Int64): the record's position among the request's entity rows, from 0.
- ``request_time`` (Datetime us, UTC): the time the values were served as of.
- ``feature_service`` (String, nullable): the feature service asked for, if any.
- ``features`` (List[String]): the ``view:feature`` references served, in response order.
- ``entity_keys`` (String): JSON object of the row's join key values, e.g. ``{"user_id": 7}``.
- ``request_data`` (String): JSON object of the row's request values, ``{}`` if none.
- ``values`` (String): JSON object ``{ref: value}``; dates and datetimes as ISO 8601 text
  (naive datetimes stay naive, meaning UTC), missing values as ``null``.
- ``statuses`` (String): JSON object ``{ref: FeatureStatus}``.
- ``fingerprints`` (String): JSON object ``{ref: fingerprint}`` of the definitions the served
  values were computed with.
- ``applied_fingerprints`` (String, nullable): JSON object ``{ref: fingerprint}`` of the applied
  definitions of the references served with values of an earlier one (``{}`` when none; null
  in logs written before the column existed).
- ``event_times`` (String): JSON object ``{view: epoch microseconds}``, the event time of the
  row served from each batch view read, ``null`` where none was found.
- ``latency_us`` (Int64): the request's serving latency in microseconds.
"""

from __future__ import annotations

import atexit
import datetime as dt
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import orjson
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from featurestore._files import write_atomically
from featurestore._times import as_utc, epoch_us
from featurestore.definitions._dtypes import utc_text_datetime
from featurestore.serving._response import OnlineResponse

__all__ = [
    "SERVING_LOG_SCHEMA",
    "ServingLogWriter",
    "decode_json_column",
    "log_files",
    "read_serving_log",
    "write_part",
]

log = logging.getLogger(__name__)

SERVING_LOG_SCHEMA: dict[str, pl.DataType] = {
    "request_id": pl.String(),
    "row": pl.Int64(),
    "request_time": pl.Datetime("us", "UTC"),
    "feature_service": pl.String(),
    "features": pl.List(pl.String()),
    "entity_keys": pl.String(),
    "request_data": pl.String(),
    "values": pl.String(),
    "statuses": pl.String(),
    "fingerprints": pl.String(),
    "event_times": pl.String(),
    "latency_us": pl.Int64(),
    "applied_fingerprints": pl.String(),
}

_ARROW_SCHEMA = pa.schema(
    [
        pa.field("request_id", pa.string(), nullable=False),
        pa.field("row", pa.int64(), nullable=False),
        pa.field("request_time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("feature_service", pa.string()),
        pa.field("features", pa.list_(pa.string()), nullable=False),
        pa.field("entity_keys", pa.string(), nullable=False),
        pa.field("request_data", pa.string(), nullable=False),
        pa.field("values", pa.string(), nullable=False),
        pa.field("statuses", pa.string(), nullable=False),
        pa.field("fingerprints", pa.string(), nullable=False),
        pa.field("event_times", pa.string(), nullable=False),
        pa.field("latency_us", pa.int64(), nullable=False),
        pa.field("applied_fingerprints", pa.string()),
    ]
)

_PARTITION_PREFIX = "date="
_EXIT_TIMEOUT_SECONDS = 30.0  # at interpreter exit, how long pending records may take
_TICK_SECONDS = 0.005  # how often the writer thread takes the responses log() queued
_SLICE_SECONDS = 0.0005  # longest stretch of encoding before the writer pauses
_SEAL_RECORDS = 128  # encoded records turned into Arrow at once (about 0.3 ms)
_PAUSE_SECONDS = 0.0001  # a blocking sleep: a waiting request thread takes the lock meanwhile


def _json_default(value: Any) -> Any:
    """Values orjson cannot encode natively are logged as their text."""
    return str(value)


def _dumps_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _dumps(obj: Mapping[str, Any]) -> str:
    return _dumps_bytes(obj).decode()


def _row_count(response: OnlineResponse) -> int:
    if response.values:
        return response.row_count
    return len(next(iter(response.entities.values()), []))


class _Entry(NamedTuple):
    """A served response, packed into JSON bytes by :func:`_pack` as soon as it is logged:
    a tuple of atomic values, which the garbage collector stops scanning at once. (Holding
    the response objects themselves until the writer takes them promoted them to older
    collector generations, and full collections of those cost more than the packing.)"""

    request_id: str
    day: dt.date  # the UTC date of the request time: the partition
    rows: int
    packed: bytes


def _pack(
    response: OnlineResponse,
    request_id: str,
    latency_us: int,
    request_data: Mapping[str, Sequence[Any]] | None,
    feature_service: str | None,
) -> bytes:
    """What :func:`_encode` needs of one response, as one JSON array. Values keep the text
    orjson gives them (dates and datetimes as ISO 8601), so unpacking and encoding them again
    writes the same JSON as encoding the response directly."""
    r = response
    columns = list(r.values)
    outdated = r.outdated if r.fingerprints is not r.applied_fingerprints else {}
    return _dumps_bytes(
        (
            request_id,
            epoch_us(r.request_time),
            latency_us,
            feature_service,
            [r.refs[c] for c in columns],
            [r.fingerprints.get(r.refs[c]) for c in columns],
            r.entities,
            request_data or {},
            [r.values[c] for c in columns],
            [r.statuses[c] for c in columns],
            {
                view: [None if t is None else epoch_us(t) for t in times]
                for view, times in r.event_times.items()
            },
            outdated,
        )
    )


class _Flush:
    """A marker: everything logged before it was registered is written when ``done`` is set."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


def write_part(partition: Path, table: pa.Table) -> Path:
    """Write ``table`` as a new Parquet file in ``partition``, atomically; returns its path.

    The file is written under a hidden temporary name, fsynced, then renamed into place.
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = partition / f"part-{stamp}-{uuid.uuid4().hex}.parquet"
    return write_atomically(final, lambda fh: pq.write_table(table, fh, compression="zstd"))


_Columns = dict[str, list[Any]]


def _new_columns() -> _Columns:
    return {name: [] for name in _ARROW_SCHEMA.names}


def _encode(e: _Entry, cols: _Columns, refs_cache: dict[Any, Any]) -> None:
    """Append one record per entity row of ``e`` to ``cols``, as text and integers."""
    (
        request_id,
        time_us,
        latency_us,
        feature_service,
        refs,
        printed,
        entities,
        request,
        values,
        statuses,
        event_times,
        outdated,
    ) = orjson.loads(e.packed)
    key = tuple(refs)
    refs = refs_cache.get(key) or refs_cache.setdefault(key, refs)  # one list per plan
    fingerprints = refs_cache.get((key, *printed))  # the same for every request of a plan
    if fingerprints is None:
        fingerprints = refs_cache[(key, *printed)] = _dumps(dict(zip(refs, printed, strict=True)))
    applied = _dumps(outdated) if outdated else "{}"
    entity_items = list(entities.items())
    request_items = list(request.items())
    view_items = list(event_times.items())
    encoded = []  # encode every row first, so a bad value drops the whole entry, not part
    for i in range(e.rows):
        encoded.append(
            (
                _dumps({k: v[i] if i < len(v) else None for k, v in entity_items}),
                _dumps({k: v[i] for k, v in request_items if i < len(v)}),
                _dumps(dict(zip(refs, [v[i] for v in values], strict=True))),
                _dumps(dict(zip(refs, [s[i] for s in statuses], strict=True))),
                _dumps({view: ts[i] for view, ts in view_items}),
            )
        )
    for i, (keys, req, row_values, row_statuses, row_times) in enumerate(encoded):
        cols["request_id"].append(request_id)
        cols["row"].append(i)
        cols["request_time"].append(time_us)
        cols["feature_service"].append(feature_service)
        cols["features"].append(refs)
        cols["entity_keys"].append(keys)
        cols["request_data"].append(req)
        cols["values"].append(row_values)
        cols["statuses"].append(row_statuses)
        cols["fingerprints"].append(fingerprints)
        cols["event_times"].append(row_times)
        cols["latency_us"].append(latency_us)
        cols["applied_fingerprints"].append(applied)


def _table(cols: _Columns) -> pa.Table:
    """The encoded records as an Arrow table of the log's schema."""
    arrays = [pa.array(cols[f.name], type=f.type) for f in _ARROW_SCHEMA]
    return pa.Table.from_arrays(arrays, schema=_ARROW_SCHEMA)


class _Day:
    """Pending records of one UTC date: Arrow tables, and the records encoded since the last
    table was sealed (as text and integers)."""

    __slots__ = ("cols", "tables")

    def __init__(self) -> None:
        self.tables: list[pa.Table] = []
        self.cols = _new_columns()

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
        self._entries: deque[_Entry] = deque()
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
        rows = _row_count(response)
        try:
            packed = _pack(response, request_id, latency_us, request_data, feature_service)
        except Exception as exc:
            log.exception("serving log bad record request_id=%s error=%s", request_id, exc)
            self._drop(rows)
            return False
        entry = _Entry(request_id, as_utc(response.request_time).date(), rows, packed)
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
            _table(_new_columns())
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
        entries: list[_Entry],
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
                _encode(entry, pend.cols, refs_cache)
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
        cols, pend.cols = pend.cols, _new_columns()
        try:
            pend.tables.append(_table(cols))
        except Exception as exc:
            log.exception("serving log bad records records=%d error=%s", rows, exc)
            self._drop(rows)
            return rows
        return 0

    def _write(self, pending: dict[dt.date, _Day]) -> None:
        """Write encoded records, one or more files per UTC date; failures drop, never raise."""
        for day, pend in pending.items():
            self._seal(pend)
            tables = pend.tables
            if not tables:
                continue
            partition = self.directory / f"{_PARTITION_PREFIX}{day.isoformat()}"
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


def _partition_dates(directory: Path) -> list[tuple[dt.date, Path]]:
    out = []
    if not directory.is_dir():
        return out
    for child in directory.iterdir():
        if not child.name.startswith(_PARTITION_PREFIX) or not child.is_dir():
            continue
        try:
            day = dt.date.fromisoformat(child.name[len(_PARTITION_PREFIX) :])
        except ValueError:
            continue
        out.append((day, child))
    return out


def log_files(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> list[Path]:
    """The finished Parquet files of the days that overlap ``[start, end)``, oldest day first
    (hidden and temporary files are left out)."""
    files: list[Path] = []
    for day, path in sorted(_partition_dates(Path(directory))):
        day_start = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        if start is not None and day_start + dt.timedelta(days=1) <= start:
            continue
        if end is not None and day_start >= end:
            continue
        files.extend(
            f
            for f in sorted(path.iterdir())
            if f.suffix == ".parquet" and not f.name.startswith((".", "_")) and f.is_file()
        )
    return files


def read_serving_log(
    directory: Path, start: dt.datetime | None = None, end: dt.datetime | None = None
) -> pl.DataFrame:
    """Logged records with ``start <= request_time < end``, sorted by request_time,
    request_id and row. Naive bounds are UTC; hidden and temporary files are ignored."""
    lo = as_utc(start) if start is not None else None
    hi = as_utc(end) if end is not None else None
    files = [str(f) for f in log_files(Path(directory), lo, hi)]
    if not files:
        return pl.DataFrame(schema=SERVING_LOG_SCHEMA)
    frame = pl.scan_parquet(
        files,
        hive_partitioning=False,
        glob=False,
        schema=SERVING_LOG_SCHEMA,
        missing_columns="insert",  # files written before a column existed
    )
    if lo is not None:
        frame = frame.filter(pl.col("request_time") >= lo)
    if hi is not None:
        frame = frame.filter(pl.col("request_time") < hi)
    return frame.sort("request_time", "request_id", "row").collect()


def decode_json_column(
    log: pl.DataFrame, column: str, dtypes: Mapping[str, pl.DataType]
) -> pl.DataFrame:
    """One typed column per key of the JSON-text ``column`` of a serving log frame.

    Keys a record lacks are null. Dates and datetimes are logged as ISO 8601 text and parsed
    back (naive or UTC datetimes, both read as UTC); ``event_times`` values are epoch
    microseconds.
    """
    if column not in ("entity_keys", "request_data", "values", "statuses", "event_times"):
        raise ValueError(f"{column!r} is not a JSON column of the serving log")
    if not dtypes:
        return pl.DataFrame(height=log.height)
    wire: dict[str, pl.DataType] = {}
    for key, dtype in dtypes.items():
        if column == "event_times":
            wire[key] = pl.Int64()
        elif isinstance(dtype, pl.Datetime | pl.Date | pl.Time | pl.Duration):
            wire[key] = pl.String()
        else:
            wire[key] = dtype
    struct = log[column].str.json_decode(pl.Struct(wire)).struct.unnest()
    casts = []
    for key, dtype in dtypes.items():
        col = pl.col(key)
        if column == "event_times":
            casts.append(col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC"))
        elif isinstance(dtype, pl.Datetime):
            naive = utc_text_datetime(col)
            if dtype.time_zone is None:
                casts.append(naive)
            else:
                utc = naive.dt.replace_time_zone("UTC")
                casts.append(utc.dt.convert_time_zone(dtype.time_zone))
        elif isinstance(dtype, pl.Date):
            casts.append(col.str.to_date())
        else:
            casts.append(col)
    return struct.select(casts)
