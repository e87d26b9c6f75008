"""The serving log writer and reader: every column round-trips, one record per entity row,
UTC date partitions, time filtering, bounded-queue drops, lossless close, atomic files under
concurrent reads, surviving write errors, and a log() call that never waits for the writer."""

from __future__ import annotations

import datetime as dt
import io
import logging
import queue
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pyarrow as pa
import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.serving._response import OnlineResponse
from featurestore.serving._serving_log import (
    SERVING_LOG_SCHEMA,
    ServingLogWriter,
    _files,
    _writer,
    decode_json_column,
    read_serving_log,
)

UTC = dt.UTC
P = FeatureStatus.PRESENT
GUARD = 30.0  # seconds a wait may take before the test fails instead of hanging


def make_response(
    n: int = 1,
    *,
    at: dt.datetime = dt.datetime(2024, 5, 1, 12, tzinfo=UTC),
    key: str = "user_id",
    first: int = 0,
) -> OnlineResponse:
    """A response for ``n`` entities with one integer feature equal to the key times 10."""
    keys = list(range(first, first + n))
    return OnlineResponse(
        entities={key: keys},
        refs={"x": "v:x"},
        values={"x": [k * 10 for k in keys]},
        statuses={"x": [P] * n},
        dtypes={"x": pl.Int64()},
        fingerprints={"v:x": "fp-x"},
        request_time=at,
    )


@pytest.fixture
def writers() -> Iterator[Callable[..., ServingLogWriter]]:
    """A factory of writers that are all closed after the test."""
    made: list[ServingLogWriter] = []

    def make(directory: Path, **kwargs: Any) -> ServingLogWriter:
        writer = ServingLogWriter(directory, **kwargs)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        writer.close(timeout=5)


@pytest.fixture
def blocked_writes(
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Make every file write wait until ``release`` is set; ``entered`` is set on the first."""
    entered, release = threading.Event(), threading.Event()
    real = _writer.write_part

    def slow(partition: Path, table: pa.Table) -> Path:
        entered.set()
        assert release.wait(GUARD), "test never released the writer"
        return real(partition, table)

    monkeypatch.setattr(_writer, "write_part", slow)
    yield entered, release
    release.set()


def test_every_column_and_value_type_round_trips(tmp_path: Path, writers: Any) -> None:
    at = dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=UTC)
    day = dt.date(2024, 4, 30)
    naive = dt.datetime(2024, 4, 30, 8, 0, 0, 5)
    aware = dt.datetime(2024, 4, 30, 9, 15, tzinfo=UTC)
    response = OnlineResponse(
        entities={"user_id": [7, 8], "merchant": ["m1", None]},
        refs={
            "i": "v:i",
            "f": "v:f",
            "s": "v:s",
            "b": "v:b",
            "d": "v:d",
            "t": "v:t",
            "v__tz": "w:tz",
        },
        values={
            "i": [-(2**62), None],
            "f": [0.1, None],
            "s": ['héllo "quoted"', None],
            "b": [True, False],
            "d": [day, None],
            "t": [naive, None],
            "v__tz": [aware, None],
        },
        statuses={
            "i": [P, FeatureStatus.NOT_FOUND],
            "f": [P, FeatureStatus.STALE],
            "s": [P, FeatureStatus.DEFAULTED],
            "b": [P, P],
            "d": [P, FeatureStatus.INVALID],
            "t": [P, FeatureStatus.NOT_FOUND],
            "v__tz": [P, FeatureStatus.NOT_FOUND],
        },
        dtypes={},
        fingerprints={f"v:{c}": f"fp-{c}" for c in "ifsbdt"} | {"w:tz": "fp-tz"},
        request_time=at,
    )
    writer = writers(tmp_path)
    assert writer.log(
        response,
        request_id="req-1",
        latency_us=1234,
        request_data={"amount": [1.5, None], "when": [day, naive]},
        feature_service="risk",
    )
    writer.flush(timeout=5)
    out = read_serving_log(tmp_path)
    assert out.schema == pl.Schema(SERVING_LOG_SCHEMA)
    assert out.height == 2
    refs = ["v:i", "v:f", "v:s", "v:b", "v:d", "v:t", "w:tz"]
    first, second = out.to_dicts()
    assert first["request_id"] == second["request_id"] == "req-1"
    assert [first["row"], second["row"]] == [0, 1]
    assert first["request_time"] == second["request_time"] == at
    assert first["feature_service"] == "risk"
    assert first["features"] == second["features"] == refs
    assert first["latency_us"] == 1234
    assert orjson.loads(first["entity_keys"]) == {"user_id": 7, "merchant": "m1"}
    assert orjson.loads(second["entity_keys"]) == {"user_id": 8, "merchant": None}
    assert orjson.loads(first["request_data"]) == {"amount": 1.5, "when": "2024-04-30"}
    assert orjson.loads(second["request_data"]) == {
        "amount": None,
        "when": "2024-04-30T08:00:00.000005",
    }
    values = orjson.loads(first["values"])
    assert list(values) == refs  # response order is kept
    assert values == {
        "v:i": -(2**62),
        "v:f": 0.1,
        "v:s": 'héllo "quoted"',
        "v:b": True,
        "v:d": "2024-04-30",
        "v:t": "2024-04-30T08:00:00.000005",
        "w:tz": "2024-04-30T09:15:00+00:00",
    }
    assert dt.date.fromisoformat(values["v:d"]) == day
    assert dt.datetime.fromisoformat(values["v:t"]) == naive
    assert dt.datetime.fromisoformat(values["w:tz"]) == aware
    assert orjson.loads(second["values"]) == dict.fromkeys(refs[:3], None) | {
        "v:b": False,
        "v:d": None,
        "v:t": None,
        "w:tz": None,
    }
    assert orjson.loads(first["statuses"]) == dict.fromkeys(refs, "PRESENT")
    assert orjson.loads(second["statuses"]) == {
        "v:i": "NOT_FOUND",
        "v:f": "STALE",
        "v:s": "DEFAULTED",
        "v:b": "PRESENT",
        "v:d": "INVALID",
        "v:t": "NOT_FOUND",
        "w:tz": "NOT_FOUND",
    }
    assert orjson.loads(first["fingerprints"]) == {
        "v:i": "fp-i",
        "v:f": "fp-f",
        "v:s": "fp-s",
        "v:b": "fp-b",
        "v:d": "fp-d",
        "v:t": "fp-t",
        "w:tz": "fp-tz",
    }


def test_missing_request_data_and_service_are_logged_as_empty(tmp_path: Path, writers: Any) -> None:
    writer = writers(tmp_path)
    writer.log(make_response(2), request_id="r", latency_us=5)
    writer.flush(timeout=5)
    out = read_serving_log(tmp_path)
    assert out["request_data"].to_list() == ["{}", "{}"]
    assert out["feature_service"].to_list() == [None, None]


def test_one_record_per_entity_row_from_a_feature_store(
    store: FeatureStore, tmp_path: Path, writers: Any
) -> None:
    store.materialize(end=dt.datetime(2024, 2, 15))
    request_data = {"amount": [62.0, 90.0, 10.0]}
    response = store.get_online_features(
        feature_service="risk_model",
        entities={"user_id": [1, 2, 4]},
        request_data=request_data,
        request_time=dt.datetime(2024, 2, 15),
    )
    writer = writers(tmp_path / "logs")
    assert writer.log(
        response,
        request_id="abc",
        latency_us=99,
        request_data=request_data,
        feature_service="risk_model",
    )
    writer.close(timeout=5)
    assert (writer.written, writer.dropped) == (3, 0)
    out = read_serving_log(tmp_path / "logs")
    assert out["row"].to_list() == [0, 1, 2]
    assert out["request_time"].to_list() == [dt.datetime(2024, 2, 15, tzinfo=UTC)] * 3
    refs = [response.refs[c] for c in response.values]
    assert out["features"].to_list() == [refs] * 3
    applied = {f.ref: f.fingerprint for f in store.list_features()}
    for i, record in enumerate(out.iter_rows(named=True)):
        assert orjson.loads(record["entity_keys"]) == {"user_id": [1, 2, 4][i]}
        assert orjson.loads(record["request_data"]) == {"amount": request_data["amount"][i]}
        logged = orjson.loads(record["values"])
        statuses = orjson.loads(record["statuses"])
        for column, ref in response.refs.items():
            assert logged[ref] == response.values[column][i]
            assert statuses[ref] == response.statuses[column][i].value
        assert orjson.loads(record["fingerprints"]) == {r: applied[r] for r in refs}
    # user 4 has no row: the log keeps what was actually served
    assert orjson.loads(out["statuses"][2])["user_profile:age"] == "NOT_FOUND"
    assert orjson.loads(out["values"][0])["user_profile:country"] == "FR"
    # event times of the rows served, per view; decoded back to the response's times
    times = decode_json_column(out, "event_times", {"user_profile": pl.Datetime("us", "UTC")})
    assert times["user_profile"].to_list() == response.event_times["user_profile"]
    assert response.event_times["user_profile"][2] is None
    assert response.event_times["user_profile"][0] is not None
    dtypes = {response.refs[c]: response.dtypes[c] for c in response.values}
    decoded = decode_json_column(out, "values", dtypes)
    for column, ref in response.refs.items():
        assert decoded[ref].to_list() == response.values[column], ref
    keys = decode_json_column(out, "entity_keys", {"user_id": pl.Int64(), "absent": pl.Int64()})
    assert keys.to_dict(as_series=False) == {"user_id": [1, 2, 4], "absent": [None] * 3}


def test_records_are_partitioned_by_utc_date_across_midnight(tmp_path: Path, writers: Any) -> None:
    plus2 = dt.timezone(dt.timedelta(hours=2))
    times = {
        "before": dt.datetime(2024, 5, 1, 23, 59, 59, 999999, tzinfo=UTC),
        "midnight": dt.datetime(2024, 5, 2, 0, 0, tzinfo=UTC),
        "local": dt.datetime(2024, 5, 2, 1, 30, tzinfo=plus2),  # 2024-05-01 23:30 UTC
        "naive": dt.datetime(2024, 5, 2, 0, 0, 1),  # naive means UTC
    }
    writer = writers(tmp_path)
    for rid, at in times.items():
        writer.log(make_response(2, at=at), request_id=rid, latency_us=1)
    writer.close(timeout=5)
    dirs = sorted(p.name for p in tmp_path.iterdir())
    assert dirs == ["date=2024-05-01", "date=2024-05-02"]
    for name, expected in [
        ("date=2024-05-01", {"before", "local"}),
        ("date=2024-05-02", {"midnight", "naive"}),
    ]:
        files = list((tmp_path / name).iterdir())
        assert files and all(f.name.startswith("part-") and f.suffix == ".parquet" for f in files)
        ids = set(pl.read_parquet(files)["request_id"].to_list())
        assert ids == expected
    out = read_serving_log(tmp_path)
    assert out["request_id"].to_list() == [
        "local",
        "local",
        "before",
        "before",
        "midnight",
        "midnight",
        "naive",
        "naive",
    ]
    assert out["request_time"].to_list()[::2] == [
        dt.datetime(2024, 5, 1, 23, 30, tzinfo=UTC),
        times["before"],
        times["midnight"],
        dt.datetime(2024, 5, 2, 0, 0, 1, tzinfo=UTC),
    ]


def test_start_end_filter_is_half_open_and_prunes_partitions(
    tmp_path: Path, writers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = dt.datetime(2024, 5, 1, tzinfo=UTC)
    writer = writers(tmp_path)
    for h in range(0, 72, 6):  # every 6 hours over three days
        writer.log(
            make_response(1, at=base + dt.timedelta(hours=h)), request_id=f"h{h}", latency_us=1
        )
    writer.close(timeout=5)

    def hours(start: dt.datetime | None, end: dt.datetime | None) -> list[int]:
        out = read_serving_log(tmp_path, start, end)
        return [int(r[1:]) for r in out["request_id"].to_list()]

    assert hours(None, None) == list(range(0, 72, 6))
    assert hours(base + dt.timedelta(hours=12), base + dt.timedelta(hours=30)) == [12, 18, 24]
    assert hours(base + dt.timedelta(hours=13), None) == list(range(18, 72, 6))
    assert hours(None, base + dt.timedelta(hours=24)) == [0, 6, 12, 18]  # end excluded
    assert hours(dt.datetime(2024, 5, 2, 6), dt.datetime(2024, 5, 2, 7)) == [30]  # naive = UTC
    plus2 = dt.timezone(dt.timedelta(hours=2))
    assert hours(dt.datetime(2024, 5, 2, 2, tzinfo=plus2), None)[0] == 24
    assert hours(base + dt.timedelta(days=9), None) == []
    assert read_serving_log(tmp_path, base, base).height == 0

    # a partition wholly outside the range is never opened
    (tmp_path / "date=2024-05-03" / "part-broken.parquet").write_bytes(b"not parquet")
    assert hours(base, base + dt.timedelta(days=2)) == list(range(0, 48, 6))
    with pytest.raises(pl.exceptions.ComputeError):  # unless the range includes it
        read_serving_log(tmp_path)


def test_no_logs_give_an_empty_frame_with_the_schema(tmp_path: Path) -> None:
    for directory in (tmp_path / "absent", tmp_path):
        out = read_serving_log(directory)
        assert out.height == 0
        assert out.schema == pl.Schema(SERVING_LOG_SCHEMA)


def test_full_queue_drops_and_counts_records(
    tmp_path: Path, writers: Any, blocked_writes: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = blocked_writes
    writer = writers(tmp_path, queue_size=2, batch_size=1, flush_interval_seconds=0.01)
    assert writer.log(make_response(3, first=0), request_id="a", latency_us=1)
    assert entered.wait(5)  # the writer holds "a" and waits inside the file write
    assert writer.log(make_response(3, first=10), request_id="b", latency_us=1)
    assert writer.log(make_response(3, first=20), request_id="c", latency_us=1)
    assert not writer.log(make_response(3, first=30), request_id="d", latency_us=1)
    assert not writer.log(make_response(2, first=40), request_id="e", latency_us=1)
    assert writer.dropped == 5  # records, not responses
    release.set()
    writer.close(timeout=5)
    assert (writer.written, writer.dropped) == (9, 5)
    out = read_serving_log(tmp_path)
    assert sorted(set(out["request_id"].to_list())) == ["a", "b", "c"]


def test_close_writes_everything_and_later_logs_drop(tmp_path: Path, writers: Any) -> None:
    writer = writers(tmp_path, batch_size=1_000_000, flush_interval_seconds=3600)
    n = 0
    for i in range(500):
        rows = 1 + i % 4
        assert writer.log(make_response(rows, first=i * 10), request_id=f"r{i:04d}", latency_us=i)
        n += rows
    assert writer.written == 0  # nothing due yet: neither the batch size nor the interval
    writer.close(timeout=10)
    assert (writer.written, writer.dropped) == (n, 0)
    out = read_serving_log(tmp_path)
    assert out.height == n
    assert out["request_id"].n_unique() == 500
    assert not writer.log(make_response(2), request_id="late", latency_us=1)
    assert writer.dropped == 2
    writer.close(timeout=5)  # idempotent
    writer.flush(timeout=1)  # a no-op once closed
    assert read_serving_log(tmp_path).height == n


def test_flush_interval_and_batch_size_trigger_writes(tmp_path: Path, writers: Any) -> None:
    timed = writers(tmp_path / "timed", batch_size=1_000, flush_interval_seconds=0.05)
    timed.log(make_response(2), request_id="t", latency_us=1)
    deadline = time.monotonic() + GUARD
    while timed.written < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert timed.written == 2
    assert read_serving_log(tmp_path / "timed").height == 2

    sized = writers(tmp_path / "sized", batch_size=10, flush_interval_seconds=3600)
    sized.log(make_response(25), request_id="big", latency_us=1)  # one response, 3 files
    deadline = time.monotonic() + GUARD
    while sized.written < 25 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sized.written == 25
    files = list((tmp_path / "sized" / "date=2024-05-01").glob("*.parquet"))
    assert sorted(pl.read_parquet(f).height for f in files) == [5, 10, 10]
    assert read_serving_log(tmp_path / "sized")["row"].to_list() == list(range(25))


def test_flush_writes_what_was_queued_without_stopping(tmp_path: Path, writers: Any) -> None:
    writer = writers(tmp_path, flush_interval_seconds=3600)
    writer.log(make_response(4), request_id="a", latency_us=1)
    writer.flush(timeout=5)
    assert read_serving_log(tmp_path).height == 4
    assert writer.log(make_response(1), request_id="b", latency_us=1)
    writer.flush(timeout=5)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["a"] * 4 + ["b"]


def test_flush_times_out_when_the_writer_is_stuck(
    tmp_path: Path, writers: Any, blocked_writes: tuple[threading.Event, threading.Event]
) -> None:
    entered, release = blocked_writes
    writer = writers(tmp_path, flush_interval_seconds=3600)
    writer.log(make_response(1), request_id="a", latency_us=1)
    with pytest.raises(TimeoutError):
        writer.flush(timeout=0.2)
    assert entered.is_set()
    release.set()
    writer.flush(timeout=5)
    assert writer.written == 1


def test_concurrent_reader_never_sees_a_partial_file(
    tmp_path: Path, writers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file is written in two halves, and the reader reads the log between them."""
    real_write_table = _files.pq.write_table
    halfway: queue.Queue[None] = queue.Queue()  # a file is half written
    resume: queue.Queue[None] = queue.Queue()  # the reader has read meanwhile

    def write_in_halves(table: pa.Table, where: Any, **kwargs: Any) -> None:
        buffer = io.BytesIO()
        real_write_table(table, buffer, **kwargs)
        data = buffer.getvalue()
        where.write(data[: len(data) // 2])
        where.flush()
        halfway.put(None)
        resume.get(timeout=GUARD)
        where.write(data[len(data) // 2 :])

    monkeypatch.setattr(_files.pq, "write_table", write_in_halves)
    # leftovers of an interrupted write: hidden names that a reader must skip
    partition = tmp_path / "date=2024-05-01"
    partition.mkdir()
    (partition / ".part-x.parquet.tmp").write_bytes(b"PAR1 half written")
    (partition / ".part-y.parquet").write_bytes(b"PAR1 half written")
    writer = writers(tmp_path, batch_size=10, flush_interval_seconds=0.001)
    stop = threading.Event()
    errors: list[BaseException] = []
    heights: list[int] = []

    def read_at_each_half() -> None:
        while not (stop.is_set() and halfway.empty()):
            try:
                halfway.get(timeout=0.01)
            except queue.Empty:
                continue
            try:
                heights.append(read_serving_log(tmp_path).height)
            except BaseException as exc:
                errors.append(exc)
            finally:
                resume.put(None)

    reader = threading.Thread(target=read_at_each_half)
    reader.start()
    total = 0
    try:
        for i in range(100):
            writer.log(make_response(3, first=i * 3), request_id=f"r{i:03d}", latency_us=1)
            total += 3
        writer.close(timeout=GUARD)
    finally:
        stop.set()
        reader.join(GUARD)
    assert errors == []
    assert len(heights) >= total // 10  # a read in the middle of every file
    assert heights == sorted(heights)  # files only ever appear whole, never vanish
    assert heights[-1] < total  # the last read came before the last file was whole
    assert read_serving_log(tmp_path).height == total
    assert writer.written == total
    hidden = sorted(p.name for p in partition.iterdir() if p.name.startswith("."))
    assert hidden == [".part-x.parquet.tmp", ".part-y.parquet"]  # no temporary file left


def test_a_failing_write_does_not_stop_the_writer(
    tmp_path: Path,
    writers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = _writer.write_part
    calls = {"n": 0}

    def flaky(partition: Path, table: pa.Table) -> Path:
        calls["n"] += 1
        if calls["n"] == 1:
            raise OSError("disk full")
        return real(partition, table)

    monkeypatch.setattr(_writer, "write_part", flaky)
    writer = writers(tmp_path, flush_interval_seconds=3600)
    with caplog.at_level(logging.ERROR, logger=_writer.__name__):
        writer.log(make_response(3), request_id="lost", latency_us=1)
        writer.flush(timeout=5)
    assert (writer.written, writer.dropped) == (0, 3)
    assert any(
        "write failed" in r.getMessage()
        and "records=3" in r.getMessage()
        and "disk full" in r.getMessage()
        for r in caplog.records
    )
    writer.log(make_response(2), request_id="kept", latency_us=1)
    writer.close(timeout=5)
    assert (writer.written, writer.dropped) == (2, 3)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["kept", "kept"]


def test_a_real_write_error_leaves_no_temporary_file(
    tmp_path: Path, writers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "date=2024-05-01"
    blocker.write_text("a file where the partition directory should be")
    writer = writers(tmp_path, flush_interval_seconds=3600)
    with caplog.at_level(logging.ERROR, logger=_writer.__name__):
        writer.log(make_response(2), request_id="a", latency_us=1)
        writer.flush(timeout=5)
    assert writer.dropped == 2
    blocker.unlink()
    writer.log(make_response(1), request_id="b", latency_us=1)
    writer.close(timeout=5)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["b"]
    assert [p.name.startswith("part-") for p in blocker.iterdir()] == [True]


def test_an_unencodable_response_is_dropped_alone(
    tmp_path: Path, writers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make_response(2)
    bad.values["x"] = [2**70, 1]  # beyond 64 bits: JSON encoding fails
    writer = writers(tmp_path, flush_interval_seconds=3600)
    with caplog.at_level(logging.ERROR, logger=_writer.__name__):
        writer.log(make_response(1), request_id="good1", latency_us=1)
        writer.log(bad, request_id="bad", latency_us=1)
        writer.log(make_response(1), request_id="good2", latency_us=1)
        writer.close(timeout=5)
    assert (writer.written, writer.dropped) == (2, 2)
    assert set(read_serving_log(tmp_path)["request_id"].to_list()) == {"good1", "good2"}
    assert any("request_id=bad" in r.getMessage() for r in caplog.records)


def test_a_request_time_without_a_utc_date_is_dropped_alone(
    tmp_path: Path, writers: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A request time whose UTC date is before year 1 has no partition: dropped and counted,
    never raised into the request that served it."""
    writer = writers(tmp_path, flush_interval_seconds=3600)
    early = dt.datetime(1, 1, 1, tzinfo=dt.timezone(dt.timedelta(hours=5)))
    with caplog.at_level(logging.ERROR, logger=_writer.__name__):
        assert not writer.log(make_response(2, at=early), request_id="early", latency_us=1)
        assert writer.log(make_response(1), request_id="good", latency_us=1)
        writer.close(timeout=GUARD)
    assert (writer.written, writer.dropped) == (1, 2)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["good"]
    assert any("request_id=early" in r.getMessage() for r in caplog.records)


def test_a_response_is_logged_as_it_was_when_logged(tmp_path: Path, writers: Any) -> None:
    response = make_response(2)
    request = {"amount": [1.5, 2.5]}
    writer = writers(tmp_path, flush_interval_seconds=3600)
    assert writer.log(response, request_id="r", latency_us=1, request_data=request)
    response.values["x"][0] = -1  # a caller reusing its objects changes nothing logged
    response.statuses["x"][1] = FeatureStatus.STALE
    request["amount"][0] = 99.0
    writer.close(timeout=5)
    out = read_serving_log(tmp_path)
    assert [orjson.loads(v) for v in out["values"]] == [{"v:x": 0}, {"v:x": 10}]
    assert [orjson.loads(v) for v in out["statuses"]] == [{"v:x": "PRESENT"}] * 2
    assert [orjson.loads(v) for v in out["request_data"]] == [{"amount": 1.5}, {"amount": 2.5}]


def test_log_returns_at_once_while_the_writer_is_slow(
    tmp_path: Path, writers: Any, blocked_writes: tuple[threading.Event, threading.Event]
) -> None:
    """2000 log() calls all return while the writer thread is held inside a file write."""
    entered, release = blocked_writes
    writer = writers(tmp_path, queue_size=10_000, flush_interval_seconds=0.001)
    writer.log(make_response(1), request_id="first", latency_us=1)
    assert entered.wait(GUARD)
    timer = threading.Timer(GUARD, release.set)  # a blocking log() would wait for this
    timer.start()
    try:
        response = make_response(10)
        accepted = [writer.log(response, request_id=f"r{i}", latency_us=1) for i in range(2_000)]
        still_held = not release.is_set()
    finally:
        timer.cancel()
        release.set()
    assert all(accepted)
    assert still_held  # every call returned before the writer was let go
    writer.close(timeout=GUARD)
    assert writer.written == 1 + 2_000 * 10


def test_close_while_threads_log_loses_no_accepted_record(tmp_path: Path, writers: Any) -> None:
    """Four threads log before, during and after close(): each has logged before close starts
    and keeps logging until close has returned."""
    writer = writers(tmp_path, queue_size=500, batch_size=50, flush_interval_seconds=0.01)
    accepted = [0] * 4
    attempted = [0] * 4
    logging_ = threading.Barrier(5)  # every thread has logged some records
    closed = threading.Event()

    def produce(k: int) -> None:
        i = 0
        while not closed.is_set():
            rows = 1 + i % 3
            attempted[k] += rows
            if writer.log(make_response(rows), request_id=f"t{k}-{i}", latency_us=1):
                accepted[k] += rows
            i += 1
            if i == 50:
                logging_.wait(GUARD)
            if i > 50:
                time.sleep(0.0005)  # keep logging through close, without flooding the writer
        writer.log(make_response(1), request_id=f"t{k}-after", latency_us=1)  # dropped
        attempted[k] += 1

    threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    logging_.wait(GUARD)
    writer.close(timeout=GUARD)
    closed.set()
    for t in threads:
        t.join(GUARD)
    assert all(a >= 50 for a in accepted)
    assert writer.written == sum(accepted)
    assert writer.written + writer.dropped == sum(attempted)
    assert writer.dropped >= 4  # at least the logs after close
    assert read_serving_log(tmp_path).height == sum(accepted)


def test_close_can_be_retried_after_timing_out(
    tmp_path: Path,
    writers: Any,
    blocked_writes: tuple[threading.Event, threading.Event],
    caplog: pytest.LogCaptureFixture,
) -> None:
    entered, release = blocked_writes
    writer = writers(tmp_path, queue_size=1, batch_size=1, flush_interval_seconds=0.001)
    writer.log(make_response(2), request_id="a", latency_us=1)
    assert entered.wait(5)
    assert writer.log(make_response(2), request_id="b", latency_us=1)  # fills the queue
    with caplog.at_level(logging.WARNING, logger=_writer.__name__):
        writer.close(timeout=0.2)  # no room even for the stop marker
    assert any("close timed out" in r.getMessage() for r in caplog.records)
    assert not writer.log(make_response(1), request_id="late", latency_us=1)
    release.set()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger=_writer.__name__):
        writer.close(timeout=5)
    assert caplog.records == []  # the stop marker was sent this time and the thread ended
    assert (writer.written, writer.dropped) == (4, 1)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["a", "a", "b", "b"]


def test_a_writer_left_open_is_flushed_at_interpreter_exit(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import datetime as dt, sys
        from pathlib import Path
        import polars as pl
        from featurestore import FeatureStatus
        from featurestore.serving._response import OnlineResponse
        from featurestore.serving._serving_log import ServingLogWriter

        writer = ServingLogWriter(Path(sys.argv[1]), flush_interval_seconds=3600)
        for i in range(50):
            response = OnlineResponse(
                entities={"user_id": [i, i + 1000]},
                refs={"x": "v:x"},
                values={"x": [1.0, None]},
                statuses={"x": [FeatureStatus.PRESENT, FeatureStatus.NOT_FOUND]},
                dtypes={"x": pl.Float64()},
                fingerprints={"v:x": "fp"},
                request_time=dt.datetime(2024, 5, 1, tzinfo=dt.UTC),
            )
            assert writer.log(response, request_id=str(i), latency_us=1)
        assert writer.written == 0
        """
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True, timeout=60)
    out = read_serving_log(tmp_path)
    assert out.height == 100
    assert out["request_id"].n_unique() == 50


def test_bursts_are_encoded_in_short_sealed_stretches_and_lose_nothing(
    tmp_path: Path, writers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_writer, "_SEAL_RECORDS", 7)  # many Arrow tables per file
    monkeypatch.setattr(_writer, "_SLICE_SECONDS", 0.0)  # a pause after every response
    writer = writers(tmp_path, batch_size=40, flush_interval_seconds=3600)
    days = [dt.datetime(2024, 5, 1, 23, 59, tzinfo=UTC), dt.datetime(2024, 5, 2, 0, 1, tzinfo=UTC)]
    expected = []  # (request_id, row, user_id) of every record, the oracle
    for i in range(120):
        rows = 1 + i % 4
        first = i * 10
        at = days[i % 2]
        assert writer.log(
            make_response(rows, at=at, first=first), request_id=f"r{i:03d}", latency_us=i
        )
        expected += [(f"r{i:03d}", k, first + k) for k in range(rows)]
    writer.flush(timeout=10)
    out = read_serving_log(tmp_path)
    got = [
        (rid, row, orjson.loads(keys)["user_id"])
        for rid, row, keys in out.select("request_id", "row", "entity_keys").iter_rows()
    ]
    assert sorted(got) == sorted(expected)
    assert (writer.written, writer.dropped) == (len(expected), 0)
    values = [orjson.loads(v)["v:x"] for v in out["values"]]
    assert values == [orjson.loads(k)["user_id"] * 10 for k in out["entity_keys"]]
    for day in ("2024-05-01", "2024-05-02"):
        files = list((tmp_path / f"date={day}").glob("*.parquet"))
        assert files and all(pl.read_parquet(f).height <= 40 for f in files)


def test_records_that_cannot_become_arrow_are_dropped_and_counted(
    tmp_path: Path,
    writers: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = _writer.arrow_table
    calls = {"n": 0}

    def failing_once(cols: dict[str, list[Any]]) -> pa.Table:
        if cols["request_id"]:
            calls["n"] += 1
            if calls["n"] == 1:
                raise pa.ArrowInvalid("cannot convert")
        return real(cols)

    monkeypatch.setattr(_writer, "arrow_table", failing_once)
    writer = writers(tmp_path, flush_interval_seconds=3600)
    with caplog.at_level(logging.ERROR, logger=_writer.__name__):
        writer.log(make_response(3), request_id="lost", latency_us=1)
        writer.flush(timeout=5)
        writer.log(make_response(2), request_id="kept", latency_us=1)
        writer.close(timeout=5)
    assert (writer.written, writer.dropped) == (2, 3)
    assert read_serving_log(tmp_path)["request_id"].to_list() == ["kept", "kept"]
    assert any("records=3" in r.getMessage() for r in caplog.records)


def test_log_never_wakes_the_writer_thread(
    tmp_path: Path, writers: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = writers(tmp_path, flush_interval_seconds=0.01)
    wakes = []
    real_set = writer._wake.set
    monkeypatch.setattr(writer._wake, "set", lambda: (wakes.append(1), real_set()))
    for i in range(200):
        assert writer.log(make_response(1, first=i), request_id=f"r{i}", latency_us=1)
    assert wakes == []  # a request never pays for a thread switch
    deadline = time.monotonic() + GUARD  # the writer takes them on its own timer
    while writer.written < 200 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert writer.written == 200
    assert wakes == []
    writer.flush(timeout=5)  # flush and close do wake it
    assert wakes == [1]
