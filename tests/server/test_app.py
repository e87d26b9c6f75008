"""create_app in process (FastAPI's TestClient): size limits, a registry not applied, an
unreachable online store, unexpected exceptions, request data parsing, the serving log written
through the store's writer and flushed at shutdown, the fast path and the value metrics."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from featurestore import FeatureStore
from featurestore._config import ServerConfig
from featurestore.errors import OnlineStoreUnavailableError
from featurestore.server import create_app
from featurestore.server._requests import parse_request
from featurestore.serving._serving_log import read_serving_log

from .conftest import TOKEN_ENV, TestClient, post

AGE = {"features": ["user_profile:age"], "entities": {"user_id": [1]}}


@pytest.fixture(autouse=True)
def no_tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)


@pytest.fixture
def client_for(make_store: Callable[..., FeatureStore]) -> Iterator[Callable[..., TestClient]]:
    """A factory: a started TestClient over create_app(store, config) (stopped afterwards)."""
    clients: list[TestClient] = []

    def make(store: FeatureStore | None = None, **config: Any) -> TestClient:
        store = store or make_store()
        app = create_app(store, ServerConfig(**config) if config else None)
        client = TestClient(app).__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def error_of(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    assert resp.json()["request_id"] == resp.headers["x-request-id"]
    return resp.json()["error"]


def test_body_limit_applies_to_the_announced_and_the_streamed_size(
    client_for: Callable[..., TestClient],
) -> None:
    client = client_for(max_body_bytes=200)
    big = b'{"features": ["user_profile:age"], "entities": {"user_id": [' + b"1," * 100 + b"1]}}"
    error = error_of(post(client, big), 413)
    assert error["type"] == "OnlineRequestError"
    assert (
        f"the request body has {len(big)} bytes; this server accepts at most 200"
        in (error["message"])
    )

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(big), 50):
            yield big[i : i + 50]

    error = error_of(post(client, chunks()), 413)
    assert "the request body exceeds 200 bytes" in error["message"]
    assert post(client, AGE).status_code == 200


def test_a_streamed_body_within_the_limit_is_served(client_for: Callable[..., TestClient]) -> None:
    client = client_for()
    body = b'{"features": ["user_profile:age"], "entities": {"user_id": [1, 2]}}'
    resp = post(client, iter([body[:10], body[10:30], body[30:]]))
    assert resp.status_code == 200
    assert resp.json()["features"]["age"]["values"] == [30, 45]


def test_row_limit_counts_entity_and_request_rows(client_for: Callable[..., TestClient]) -> None:
    client = client_for(max_entities=2)
    assert post(client, {**AGE, "entities": {"user_id": [1, 2]}}).status_code == 200
    error = error_of(post(client, {**AGE, "entities": {"user_id": [1, 2, 3]}}), 413)
    assert error["message"] == (
        "the request has 3 entity rows; this server serves at most 2 per request "
        "(server.max_entities in featurestore.yaml)"
    )
    body = {
        "features": ["txn_risk:amount_per_age"],
        "entities": {"user_id": [1]},
        "request_data": {"amount": [1.0, 2.0, 3.0], "txn_date": ["2024-01-01"]},
    }
    assert "3 entity rows" in error_of(post(client, body), 413)["message"]


def test_nothing_applied_makes_the_server_unready_not_dead(
    make_store: Callable[..., FeatureStore], client_for: Callable[..., TestClient]
) -> None:
    store = make_store(materialized=False)
    client = client_for(store)
    assert client.get("/healthz").status_code == 200
    for resp in (client.get("/readyz"), post(client, AGE), client.get("/v1/features")):
        error = error_of(resp, 503)
        assert error["type"] == "RegistryError"
        assert "nothing has been applied yet" in error["message"]
    store.apply()
    assert client.get("/readyz").status_code == 200  # ready once applied, without a restart
    assert post(client, AGE).json()["features"]["age"]["statuses"] == ["NOT_FOUND"]


def test_an_unreachable_online_store_gives_503(
    make_store: Callable[..., FeatureStore],
    client_for: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = make_store()
    client = client_for(store)
    assert client.get("/readyz").status_code == 200

    def down(*args: Any, **kwargs: Any) -> Any:
        raise OnlineStoreUnavailableError("online store at sqlite did not answer within 0.5 s")

    monkeypatch.setattr(store.online, "read", down)
    monkeypatch.setattr(store.online, "ping", down)
    resp = post(client, AGE)
    error = error_of(resp, 503)
    assert error == {
        "type": "OnlineStoreUnavailableError",
        "message": "online store at sqlite did not answer within 0.5 s",
    }
    assert resp.headers["retry-after"] == "1"
    assert error_of(client.get("/readyz"), 503)["type"] == "OnlineStoreUnavailableError"
    assert client.get("/healthz").status_code == 200


def test_an_unexpected_exception_is_a_500_with_the_traceback_logged(
    make_store: Callable[..., FeatureStore],
    client_for: Callable[..., TestClient],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = make_store()
    client = client_for(store)
    real_get = store.retriever.get

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if kwargs.get("full_feature_names"):
            raise RuntimeError("boom")
        return real_get(*args, **kwargs)

    monkeypatch.setattr(store.retriever, "get", flaky)
    with caplog.at_level(logging.ERROR, logger="featurestore.server._errors"):
        resp = post(client, {**AGE, "full_feature_names": True})
    error = error_of(resp, 500)
    request_id = resp.headers["x-request-id"]
    assert error == {
        "type": "InternalError",
        "message": "internal error (RuntimeError); the server log has the traceback under "
        f"request_id {request_id}",
    }
    [record] = [r for r in caplog.records if request_id in r.getMessage()]
    assert record.exc_info is not None and "boom" in str(record.exc_info[1])
    assert post(client, AGE).status_code == 200


def test_request_datetimes_are_parsed_by_the_declared_dtype() -> None:
    from featurestore.server._requests import _iso_datetime

    naive = _iso_datetime("at", aware=False)
    aware = _iso_datetime("at", aware=True)
    assert naive("2024-03-01T12:00:00+02:00") == dt.datetime(2024, 3, 1, 10)
    assert naive("2024-03-01T12:00:00") == dt.datetime(2024, 3, 1, 12)
    assert aware("2024-03-01T12:00:00") == dt.datetime(2024, 3, 1, 12, tzinfo=dt.UTC)
    assert naive(None) is None
    with pytest.raises(ValueError, match="takes ISO datetimes"):
        naive("noon")


def test_parse_request_keeps_the_documented_defaults() -> None:
    req = parse_request(b'{"feature_service": "risk_model"}', 10)
    assert (req.features, req.feature_service, req.entities, req.request_data) == (
        None,
        "risk_model",
        {},
        {},
    )
    assert req.full_feature_names is False
    with pytest.raises(ValueError, match="the request body is empty"):
        parse_request(b"  ", 10)


def test_shutdown_flushes_the_serving_log(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store("serving_log: {flush_interval_seconds: 60}\n")
    ids = []
    with TestClient(create_app(store)) as client:
        for user in (1, 2, 5):
            resp = post(client, {**AGE, "entities": {"user_id": [user, user]}})
            ids.append(resp.headers["x-request-id"])
        assert read_serving_log(store.serving_log_dir).height == 0  # still queued
    logged = read_serving_log(store.serving_log_dir)
    assert sorted(logged["request_id"].unique().to_list()) == sorted(ids)
    assert logged.height == 6
    assert (logged["latency_us"] > 0).all()
    assert logged["features"].to_list()[0] == ["user_profile:age"]


def test_the_app_logs_through_the_stores_writer_once_however_many_apps(
    make_store: Callable[..., FeatureStore],
) -> None:
    """The server logs every answer (serving_log.enabled is off here) through the store's own
    writer, which its metrics watch; an app built earlier over the same store adds nothing."""
    store = make_store("serving_log: {flush_interval_seconds: 60}\n")
    assert not store.repo.config.serving_log.enabled
    create_app(store)  # replaced by the next app's hooks, not added to them
    with TestClient(create_app(store)) as client:
        resp = post(client, {**AGE, "entities": {"user_id": [1, 2]}})
        assert resp.status_code == 200, resp.text
        writer = store.serving_log
        writer.flush(timeout=10)
        metrics = client.get("/metrics").text
        assert "featurestore_serving_log_records_written_total 2.0" in metrics
    assert writer.closed  # the app's shutdown closed the store's writer
    logged = read_serving_log(store.serving_log_dir)
    assert logged["request_id"].to_list() == [resp.headers["x-request-id"]] * 2
    assert logged["row"].to_list() == [0, 1]


def test_online_features_skip_fastapis_middleware_stack_and_keep_every_guarantee(
    client_for: Callable[..., TestClient],
) -> None:
    client = client_for()
    assert client.get("/healthz").status_code == 200  # FastAPI builds its stack lazily
    app = client.app
    stack = app.middleware_stack
    entered: list[str] = []

    async def counting(scope: Any, receive: Any, send: Any) -> None:
        entered.append(f"{scope['method']} {scope['path']}")
        await stack(scope, receive, send)

    app.middleware_stack = counting
    resp = post(client, {**AGE, "entities": {"user_id": [1, 2]}})
    assert resp.status_code == 200, resp.text
    assert len(resp.headers["x-request-id"]) == 32
    assert resp.json()["request_id"] == resp.headers["x-request-id"]
    assert resp.json()["features"]["age"]["values"] == [30, 45]
    assert error_of(post(client, {"features": ["nope:x"]}), 404)["type"]
    assert entered == []  # neither the answer nor the error went through FastAPI's stack
    wrong_method = client.get("/v1/online-features")
    assert error_of(wrong_method, 405)["message"] == "Method Not Allowed: GET /v1/online-features"
    assert client.get("/healthz").status_code == 200
    assert entered == ["GET /v1/online-features", "GET /healthz"]


def metric_samples(text: str, name: str) -> dict[tuple[str, str], float]:
    """The samples of one metric from Prometheus text, by (ref, status) label values."""
    from prometheus_client.parser import text_string_to_metric_families

    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[(sample.labels["ref"], sample.labels["status"])] = sample.value
    return out


def test_served_values_are_counted_per_ref_and_status_at_every_scrape(
    client_for: Callable[..., TestClient],
) -> None:
    client = client_for()
    name = "featurestore_served_values_total"
    assert metric_samples(client.get("/metrics").text, name) == {}
    expected: dict[tuple[str, str], int] = {}
    bodies = [
        {"features": ["user_profile:age", "user_profile:country"], "entities": {"user_id": ids}}
        for ids in ([1], [1, 2, 999], [999], [2, 2, 1, 999, 999])
    ]
    for round_ in range(2):
        for body in bodies:
            features = post(client, body).json()["features"]
            for column in features.values():  # the oracle: statuses as the client saw them
                for status in column["statuses"]:
                    key = (column["ref"], status)
                    expected[key] = expected.get(key, 0) + 1
        scraped = metric_samples(client.get("/metrics").text, name)
        assert scraped == {k: float(v) for k, v in expected.items()}, f"round {round_}"
    assert len({status for _, status in expected}) > 1  # several statuses per feature
    assert metric_samples(client.get("/metrics").text, name) == scraped  # no double counting


def test_docs_work_without_internet(client_for: Callable[..., TestClient]) -> None:
    """/docs loads Swagger UI from the app itself: every URL the page names is local, each
    answers, and the UI is one that reads the OpenAPI 3.1 schema the app serves."""
    import re

    client = client_for()
    page = client.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']|url:\s*'([^']+)'""", page.text)
    named = sorted({a or b for a, b in urls})
    assert named == [
        "/docs/assets/favicon-32x32.png",
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/assets/swagger-ui.css",
        "/openapi.json",
    ]
    assert "http://" not in page.text and "https://" not in page.text
    for url in named:
        assert client.get(url).status_code == 200, url
    bundle = client.get("/docs/assets/swagger-ui-bundle.js").text
    assert re.search(r'"5\.\d+\.\d+"', bundle)  # Swagger UI 5 reads OpenAPI 3.1
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert client.get("/redoc").status_code == 404
