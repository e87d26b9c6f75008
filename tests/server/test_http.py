"""The feature server as a real process: served values equal in-process retrieval, the
documented JSON shape, every client error with its message, the registry, readiness,
OpenAPI and Prometheus endpoints, and a 500 that leaves the server serving."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from featurestore import FeatureStatus, FeatureStore
from featurestore._client import decode_response

from .conftest import (
    ALL_FEATURES,
    FRESH_USERS,
    INVALID_USER,
    MISSING_USER,
    STALE_USER,
    USER_FEATURES,
    Server,
    post,
)

USERS = [*FRESH_USERS, INVALID_USER, STALE_USER, MISSING_USER]
MERCHANTS = ["m1", "m2", "m1", "m9", "m1"]  # m2 is older than its ttl, m9 unknown
AMOUNTS = [60.0, 90, 10.0, 5.0, 1.0]
DATES = ["2024-03-01", "2024-03-02", "2024-03-03", "2024-03-04", "2024-03-05"]


def full_request() -> dict[str, Any]:
    return {
        "features": ALL_FEATURES,
        "entities": {"user_id": USERS, "merchant_id": MERCHANTS},
        "request_data": {"amount": AMOUNTS, "txn_date": DATES},
    }


def in_process(local: FeatureStore, body: dict[str, Any]) -> Any:
    """The same request through FeatureStore.get_online_features."""
    request_data = dict(body.get("request_data", {}))
    if "txn_date" in request_data:
        request_data["txn_date"] = [dt.date.fromisoformat(d) for d in request_data["txn_date"]]
    return local.get_online_features(
        features=body.get("features"),
        feature_service=body.get("feature_service"),
        entities=body.get("entities"),
        request_data=request_data,
        full_feature_names=body.get("full_feature_names", False),
    )


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(full_request(), id="every-feature"),
        pytest.param(
            {
                "feature_service": "risk_model",
                "entities": {"user_id": USERS, "merchant_id": MERCHANTS},
                "request_data": {"amount": AMOUNTS, "txn_date": DATES},
            },
            id="service",
        ),
        pytest.param(
            {
                "features": ["merchant_stats:risk", "user_profile:age"],
                "entities": {"user_id": [1, None], "merchant_id": ["m1", "m1"]},
                "full_feature_names": True,
            },
            id="full-names-and-null-key",
        ),
    ],
)
def test_served_values_equal_in_process_retrieval(
    http: httpx.Client, local: FeatureStore, body: dict[str, Any]
) -> None:
    resp = post(http, body)
    assert resp.status_code == 200, resp.text
    served = decode_response(resp.content)
    expected = in_process(local, body)
    assert list(served.values) == list(expected.values)  # same columns, same order
    assert served.values == expected.values
    assert served.statuses == expected.statuses
    assert served.refs == expected.refs
    assert served.dtypes == expected.dtypes
    assert served.fingerprints == expected.fingerprints
    assert served.entities == expected.entities
    assert served.to_polars(include_statuses=True).equals(expected.to_polars(include_statuses=True))


def test_statuses_cover_every_case(http: httpx.Client) -> None:
    features = post(http, full_request()).json()["features"]
    assert features["age"]["statuses"] == ["PRESENT", "PRESENT", "INVALID", "STALE", "NOT_FOUND"]
    assert features["age"]["values"] == [30, 45, None, None, None]
    assert features["country"]["statuses"] == [
        "PRESENT",
        "DEFAULTED",  # a null value with a declared default
        "PRESENT",
        "STALE",
        "DEFAULTED",
    ]
    assert features["country"]["values"] == ["FR", "unknown", "US", "unknown", "unknown"]
    assert features["n_txn"]["statuses"] == ["PRESENT", "STALE", "PRESENT", "DEFAULTED", "PRESENT"]
    assert features["n_txn"]["values"] == [12, 0, 12, 0, 12]


def test_response_has_the_documented_shape(http: httpx.Client, local: FeatureStore) -> None:
    sent = dt.datetime.now(dt.UTC)
    resp = post(http, full_request())
    answered = dt.datetime.now(dt.UTC)
    data = resp.json()
    assert list(data) == ["request_id", "request_time", "entities", "features"]
    assert resp.headers["x-request-id"] == data["request_id"]
    assert resp.headers["content-type"] == "application/json"
    served_at = dt.datetime.fromisoformat(data["request_time"])
    assert served_at.utcoffset() == dt.timedelta(0)
    assert sent <= served_at <= answered  # served as of the time of the request
    assert data["entities"] == {"user_id": USERS, "merchant_id": MERCHANTS}
    assert list(data["features"]) == [ref.split(":")[1] for ref in ALL_FEATURES]
    fingerprints = {r.ref: r.fingerprint for r in local.list_features()}
    age = data["features"]["age"]
    assert list(age) == ["ref", "dtype", "fingerprint", "values", "statuses"]
    assert age["ref"] == "user_profile:age"
    assert age["dtype"] == "Int32"
    assert age["fingerprint"] == fingerprints["user_profile:age"]
    features = data["features"]
    assert features["signup_date"]["dtype"] == "Date"
    assert features["signup_date"]["values"][:2] == ["2020-01-01", "2021-06-15"]
    assert features["last_login"]["dtype"] == "Datetime"
    assert features["last_login"]["values"][0] == "2024-05-01T12:30:00"
    assert features["vip"]["values"][:2] == [True, False]
    assert features["days_since_signup"]["values"][:2] == [
        (dt.date(2024, 3, 1) - dt.date(2020, 1, 1)).days,
        (dt.date(2024, 3, 2) - dt.date(2021, 6, 15)).days,
    ]


def error_of(resp: httpx.Response, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.text
    data = resp.json()
    assert set(data) == {"error", "request_id"}
    assert data["request_id"] == resp.headers["x-request-id"]
    return data["error"]


ONE_USER = {"user_id": [1]}


@pytest.mark.parametrize(
    ("body", "status", "kind", "message"),
    [
        (b"", 400, "OnlineRequestError", "the request body is empty"),
        (b'{"features": [', 400, "OnlineRequestError", "the request body is not valid JSON"),
        (b"[1, 2]", 400, "OnlineRequestError", "must be a JSON object, found an array"),
        (
            {"features": ["user_profile:age"], "entities": ONE_USER, "limit": 3},
            400,
            "OnlineRequestError",
            "unknown field(s) ['limit']",
        ),
        (
            {"entities": ONE_USER},
            400,
            "OnlineRequestError",
            "pass exactly one of 'features' (a list of 'view:feature') or 'feature_service'",
        ),
        (
            {"features": ["user_profile:age"], "feature_service": "risk_model"},
            400,
            "OnlineRequestError",
            "pass exactly one of",
        ),
        (
            {"features": "user_profile:age", "entities": ONE_USER},
            400,
            "OnlineRequestError",
            "'features' must be a non-empty array of 'view:feature' strings",
        ),
        (
            {"features": [], "entities": ONE_USER},
            400,
            "OnlineRequestError",
            "'features' must be a non-empty array",
        ),
        (
            {"feature_service": 3, "entities": ONE_USER},
            400,
            "OnlineRequestError",
            "'feature_service' must be a string, found a number",
        ),
        (
            {"features": ["user_profile:age"], "entities": [1]},
            400,
            "OnlineRequestError",
            "'entities' must be an object of lists",
        ),
        (
            {"features": ["user_profile:age"], "entities": {"user_id": 1}},
            400,
            "OnlineRequestError",
            "entities['user_id'] must be an array with one value per entity row, found a number",
        ),
        (
            {"features": ["user_profile:age"], "entities": ONE_USER, "full_feature_names": 1},
            400,
            "OnlineRequestError",
            "'full_feature_names' must be true or false",
        ),
        (
            {"features": ["user_profile:age"], "entities": {"merchant_id": ["m1"]}},
            400,
            "OnlineRequestError",
            "entities lack join key 'user_id' needed by view 'user_profile'",
        ),
        (
            {"features": ["user_profile:age"], "entities": {"user_id": ["7"]}},
            400,
            "OnlineRequestError",
            "join key 'user_id' of view 'user_profile' must be an integer, found '7' (str)",
        ),
        (
            {
                "features": ["user_profile:age", "merchant_stats:risk"],
                "entities": {"user_id": [1, 2], "merchant_id": ["m1"]},
            },
            400,
            "OnlineRequestError",
            "entity and request columns must have equal lengths",
        ),
        (
            {"features": ["txn_risk:amount_per_age"], "entities": ONE_USER},
            400,
            "OnlineRequestError",
            "request_data lacks column 'amount' needed by on-demand view(s) ['txn_risk']",
        ),
        (
            {
                "features": ["txn_risk:days_since_signup"],
                "entities": ONE_USER,
                "request_data": {"amount": [1.0], "txn_date": ["March 1st"]},
            },
            400,
            "OnlineRequestError",
            "request_data['txn_date'] takes ISO dates such as 2024-03-01 (or a datetime at "
            "midnight); found 'March 1st'",
        ),
        (
            {
                "features": ["txn_risk:amount_per_age"],
                "entities": ONE_USER,
                "request_data": {"amount": ["1.0"], "txn_date": ["2024-03-01"]},
            },
            400,
            "OnlineRequestError",
            "request_data['amount'] must hold Float64 values",
        ),
        (
            {"features": ["user_profile:age"], "entities": ONE_USER, "request_time": 1.7e9},
            400,
            "OnlineRequestError",
            "'request_time' must be an ISO 8601 time such as 2025-03-01T12:00:00Z, found a number",
        ),
        (
            {"features": ["user_profile:age"], "entities": ONE_USER, "request_time": "noon"},
            400,
            "OnlineRequestError",
            "request_time 'noon' is not an ISO 8601 time",
        ),
        (
            {"features": ["user_profile:agee"], "entities": ONE_USER},
            404,
            "FeatureReferenceError",
            "Feature 'user_profile:agee' is not defined. Did you mean 'user_profile:age'?",
        ),
        (
            {"features": ["user_profiles:age"], "entities": ONE_USER},
            404,
            "FeatureReferenceError",
            "Feature view 'user_profiles' is not defined. Did you mean 'user_profile'?",
        ),
        (
            {"feature_service": "risk", "entities": ONE_USER},
            404,
            "FeatureReferenceError",
            "Feature service 'risk' is not defined. Known services: risk_model.",
        ),
    ],
)
def test_client_errors_name_the_problem(
    http: httpx.Client, body: Any, status: int, kind: str, message: str
) -> None:
    error = error_of(post(http, body), status)
    assert error["type"] == kind
    assert message in error["message"]


def test_more_entities_than_the_limit_is_refused(http: httpx.Client) -> None:
    body = {"features": ["user_profile:age"], "entities": {"user_id": list(range(1001))}}
    error = error_of(post(http, body), 413)
    assert "1001 entity rows" in error["message"]
    assert "at most 1000" in error["message"]
    assert "server.max_entities" in error["message"]


def test_a_body_over_the_limit_is_refused(http: httpx.Client) -> None:
    body = b'{"features": ["user_profile:age"], "entities": {"user_id": [' + b"1," * 600_000
    error = error_of(post(http, body + b"1]}}"), 413)
    assert "at most 1000000" in error["message"]
    assert post(http, {"features": ["user_profile:age"], "entities": ONE_USER}).status_code == 200


def test_a_failing_on_demand_function_gives_500_and_the_server_keeps_serving(
    http: httpx.Client, server: Server
) -> None:
    body = {
        "features": ["txn_risk:amount_per_age"],
        "entities": {"user_id": [1]},
        "request_data": {"amount": [-5.0], "txn_date": ["2024-03-01"]},
    }
    resp = post(http, body)
    error = error_of(resp, 500)
    assert error["type"] == "TransformError"
    assert "negative amounts are not supported" in error["message"]
    body["request_data"]["amount"] = [60.0]
    again = post(http, body)
    assert again.status_code == 200
    assert again.json()["features"]["amount_per_age"]["values"] == [2.0]
    assert resp.headers["x-request-id"] in server.log()  # logged with its traceback
    assert "Traceback" in server.log()


def test_unknown_paths_and_methods_answer_in_the_error_shape(http: httpx.Client) -> None:
    error = error_of(http.get("/v2/nothing"), 404)
    assert error == {"type": "NotFound", "message": "no endpoint GET /v2/nothing; see /docs"}
    resp = http.get("/v1/online-features")
    assert error_of(resp, 405)["type"] == "MethodNotAllowed"
    assert resp.headers["allow"] == "POST"


def test_startup_line_names_the_url(server: Server) -> None:
    assert f"serving project 'server_tests' at {server.url} (1 worker(s), no auth)" in (
        server.log()
    )


def test_health_and_readiness(http: httpx.Client, local: FeatureStore) -> None:
    applied = local.registry.require()
    served = {"registry_version": applied.version, "applied_at": applied.applied_at.isoformat()}
    health = http.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok", **served})
    assert len(health.headers["x-request-id"]) == 32
    ready = http.get("/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready", **served})


def test_features_lists_the_registry(http: httpx.Client, local: FeatureStore) -> None:
    resp = http.get("/v1/features")
    assert resp.status_code == 200
    listed = {f["ref"]: f for f in resp.json()}
    assert set(listed) == {r.ref for r in local.list_features()}
    assert listed["user_profile:age"] == {
        "ref": "user_profile:age",
        "view": "user_profile",
        "name": "age",
        "kind": "feature",
        "dtype": "Int32",
        "owner": "risk-team",
        "fingerprint": next(
            r.fingerprint for r in local.list_features() if r.ref == "user_profile:age"
        ),
        "description": "Profile of a user.",
    }
    assert listed["txn_risk:amount_per_age"]["dtype"] == "Float64"


def test_openapi_documents_every_endpoint(http: httpx.Client) -> None:
    schema = http.get("/openapi.json").json()
    assert set(schema["paths"]) == {
        "/v1/online-features",
        "/v1/admin/reload",
        "/v1/push",
        "/v1/features",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    operation = schema["paths"]["/v1/online-features"]["post"]
    request = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(request["properties"]) == {
        "features",
        "feature_service",
        "entities",
        "request_data",
        "full_feature_names",
        "request_time",
    }
    assert request["properties"]["request_time"]["anyOf"][0] == {
        "type": "string",
        "format": "date-time",
    }
    assert {"200", "400", "401", "404", "413", "500", "503"} <= set(operation["responses"])
    components = schema["components"]["schemas"]
    assert set(components["OnlineFeaturesResponse"]["properties"]) == {
        "request_id",
        "request_time",
        "entities",
        "features",
    }
    assert "ErrorResponse" in components
    assert http.get("/docs").status_code == 200


def samples(http: httpx.Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (name, sorted labels)."""
    resp = http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(resp.text)
        for s in family.samples
    }


def test_metrics_count_requests_and_served_values(http: httpx.Client) -> None:
    body = {"features": ["user_profile:age"], "entities": {"user_id": [1, 2, 5]}}
    before = samples(http)
    for _ in range(3):
        assert post(http, body).status_code == 200
    assert post(http, {"features": ["user_profile:nope"], "entities": ONE_USER}).status_code == 404
    after = samples(http)

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    endpoint = "/v1/online-features"
    assert delta("featurestore_http_requests_total", endpoint=endpoint, status="200") == 3
    assert delta("featurestore_http_requests_total", endpoint=endpoint, status="404") == 1
    assert (
        delta("featurestore_http_request_duration_seconds_count", endpoint=endpoint, status="200")
        == 3
    )
    ref = "user_profile:age"
    assert delta("featurestore_served_values_total", ref=ref, status="PRESENT") == 6
    assert delta("featurestore_served_values_total", ref=ref, status="NOT_FOUND") == 3
    assert delta("featurestore_http_requests_total", endpoint="/metrics", status="200") == 1
    age = after[("featurestore_newest_value_age_seconds", (("view", "user_profile"),))]
    assert 0 < age < 2 * 86_400  # the newest user row is a day old
    assert ("featurestore_newest_value_age_seconds", (("view", "merchant_stats"),)) in after
    assert ("featurestore_serving_log_records_written_total", ()) in after
    assert after[("featurestore_serving_log_records_dropped_total", ())] == 0


def test_served_requests_reach_the_serving_log(http: httpx.Client, server: Server) -> None:
    from featurestore.serving._serving_log import read_serving_log

    resp = post(
        http,
        {
            "feature_service": "risk_model",
            "entities": {"user_id": [1, 5], "merchant_id": ["m1", "m9"]},
            "request_data": {"amount": [60.0, 1.0], "txn_date": ["2024-03-01", "2024-03-01"]},
        },
    )
    request_id = resp.headers["x-request-id"]
    deadline = time.monotonic() + 60  # a guard: the writer flushes every second
    logged = read_serving_log(server.repo / ".featurestore" / "logs")
    while request_id not in logged["request_id"].to_list() and time.monotonic() < deadline:
        time.sleep(0.1)
        logged = read_serving_log(server.repo / ".featurestore" / "logs")
    rows = logged.filter(request_id=request_id).sort("row")
    assert rows["row"].to_list() == [0, 1]
    assert rows["feature_service"].to_list() == ["risk_model", "risk_model"]
    assert rows["entity_keys"].to_list() == [
        '{"user_id":1,"merchant_id":"m1"}',
        '{"user_id":5,"merchant_id":"m9"}',
    ]
    assert '"txn_risk:amount_per_age":2.0' in rows["values"][0]
    assert '"user_profile:age":"NOT_FOUND"' in rows["statuses"][1]


def test_user_features_only_need_the_user_key(http: httpx.Client) -> None:
    resp = post(http, {"features": USER_FEATURES, "entities": {"user_id": [1]}})
    assert resp.status_code == 200
    assert resp.json()["entities"] == {"user_id": [1]}
    assert decode_response(resp.content).statuses["age"] == [FeatureStatus.PRESENT]
