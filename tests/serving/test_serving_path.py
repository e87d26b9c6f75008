"""The one retrieval path: every answer of the facade goes through the store's serving path and
reaches each hook once, with its request id, latency, request data and service; a request
keeps the retriever it took even when the served version changes meanwhile; a hook replaces
one of the same name; the facade logs through its writer only with ``serving_log.enabled``."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from featurestore import FeatureStatus, FeatureStore
from featurestore.serving._response import OnlineResponse
from featurestore.serving._serving_log import read_serving_log
from featurestore.serving._serving_path import OnlineRequest, Served, ServingPath

AT = dt.datetime(2024, 2, 15)


class FakeRetriever:
    """Answers every request with one row named after itself; remembers the calls."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def get(self, *args: Any, **kwargs: Any) -> OnlineResponse:
        self.calls.append((args, kwargs))
        return OnlineResponse(
            entities={"user_id": [1]},
            refs={"x": "v:x"},
            values={"x": [self.name]},
            statuses={"x": [FeatureStatus.PRESENT]},
            dtypes={"x": pl.String()},
            fingerprints={"v:x": self.name},
            request_time=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        )


def test_a_request_keeps_the_retriever_it_took() -> None:
    """The server parses a body with the version it took, then retrieves with that version,
    even when a switch happens in between."""
    served = [FakeRetriever("v1")]
    path = ServingPath(lambda: served[0])  # type: ignore[arg-type,return-value]
    taken = path.retriever
    served[0] = FakeRetriever("v2")  # the switch
    request = OnlineRequest(["v:x"], entities={"user_id": [1]}, request_time="2024-01-01")
    assert path.get(request, retriever=taken).values == {"x": ["v1"]}
    assert path.get(request).values == {"x": ["v2"]}  # a new request takes the new version
    args, kwargs = taken.calls[0]  # type: ignore[attr-defined]
    assert args == (["v:x"], None, {"user_id": [1]}, None)
    assert kwargs == {"full_feature_names": False, "request_time": "2024-01-01"}


def test_request_data_given_as_a_table_reaches_retrieval_and_hooks_as_columns() -> None:
    """A frame of request data is turned into columns once: the hooks (the serving log) get
    the columns retrieval read, not a frame they cannot read."""
    import pandas as pd

    retriever = FakeRetriever("v1")
    path = ServingPath(lambda: retriever)  # type: ignore[arg-type,return-value]
    seen: list[Served] = []
    path.on_served("log", seen.append)
    for table in (pl.DataFrame({"amount": [1.5, 2.0]}), pd.DataFrame({"amount": [1.5, 2.0]})):
        path.get(OnlineRequest(["v:x"], entities={"user_id": [1, 2]}, request_data=table))
        assert dict(seen[-1].request_data or {}) == {"amount": [1.5, 2.0]}
        args, _ = retriever.calls[-1]
        assert dict(args[3]) == {"amount": [1.5, 2.0]}
    path.get(OnlineRequest(["v:x"], entities={"user_id": [1]}))
    assert seen[-1].request_data is None


def test_each_hook_gets_one_record_of_each_answer() -> None:
    path = ServingPath(lambda: FakeRetriever("v1"))  # type: ignore[arg-type,return-value]
    first: list[Served] = []
    second: list[Served] = []
    path.on_served("first", first.append)
    path.on_served("second", lambda s: second.append(s))
    path.on_served("second", second.append)  # replaces the hook of that name
    data = {"amount": [1.0]}
    started = time.perf_counter_ns() - 5_000_000  # the request began 5 ms ago
    request = OnlineRequest(feature_service="svc", entities={"user_id": [1]}, request_data=data)
    response = path.get(request, request_id="rid", started_ns=started)
    assert first == second
    [record] = first
    assert record.response is response
    assert (record.request_id, record.request_data, record.feature_service) == ("rid", data, "svc")
    assert record.latency_us >= 5_000  # timed from the request's start
    path.get(request)
    assert len(first[1].request_id) == 32  # a new id when none is given
    assert len(first) == len(second) == 2


def test_a_failing_hook_never_fails_the_answer_nor_the_other_hooks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    path = ServingPath(lambda: FakeRetriever("v1"))  # type: ignore[arg-type,return-value]
    seen: list[Served] = []

    def broken(served: Served) -> None:
        raise OSError("disk full")

    path.on_served("log", broken)
    path.on_served("metrics", seen.append)
    request = OnlineRequest(["v:x"], entities={"user_id": [1]})
    with caplog.at_level(logging.ERROR):
        response = path.get(request, request_id="rid")
    assert response.values == {"x": ["v1"]}
    assert [s.request_id for s in seen] == ["rid"]
    [record] = caplog.records
    assert record.getMessage() == "on_served hook failed hook=log"
    assert record.exc_info is not None and "disk full" in str(record.exc_info[1])


def test_the_facade_answers_through_its_serving_path(store: FeatureStore) -> None:
    store.materialize(end=AT)
    seen: list[Served] = []
    store.serving_path.on_served("probe", seen.append)
    request_data = {"amount": [62.0, 90.0]}
    response = store.get_online_features(
        feature_service="risk_model",
        entities={"user_id": [1, 2]},
        request_data=request_data,
        request_time=AT,
    )
    [record] = seen
    assert record.response is response
    assert record.request_data is request_data
    assert record.feature_service == "risk_model"
    assert response.values["age"] == [31, None]  # user 2 is older than the ttl


def test_the_facade_logs_only_when_the_serving_log_is_enabled(
    make_repo: Callable[..., Path],
) -> None:
    for enabled in (False, True):
        config = f"project: p\nserving_log: {{enabled: {enabled}}}\n"
        root = make_repo(f"repo-{enabled}", config=config)
        store = FeatureStore(root)
        try:
            store.apply()
            store.materialize(end=AT)
            store.get_online_features(["user_profile:age"], entities={"user_id": [1, 2]})
            logged = store.read_serving_log()
        finally:
            store.close()
        assert logged.height == (2 if enabled else 0), enabled
        assert read_serving_log(store.serving_log_dir).height == logged.height
