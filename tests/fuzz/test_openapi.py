"""Fuzzing the HTTP API against its own OpenAPI schema with schemathesis: valid and invalid
bodies for ``POST /v1/online-features`` and ``POST /v1/push``, and ``GET /v1/features``,
``/readyz`` and ``/healthz``, sent to the app in-process (its lifespan started, so the serving
log writer runs) over the fuzzing repo. Every check schemathesis has runs on each response
(no server error, status codes, content types, headers and bodies as the schema documents
them, invalid data refused, valid data accepted, ...); on top of them every 4xx body must carry
an error message. A bounded budget here; ``python benchmarks/fuzz.py --http`` runs longer.

Also: the schema's examples fit the example repo (feature_definitions), and the three contract
failures the demo server had (a body without features nor feature_service, null entities and
request data, the push example) stay fixed.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.python import asgi

from featurestore import FeatureStore
from featurestore.server._app import create_app

from .repo import build_repo, write_fuzz_repo

EXAMPLES = int(os.environ.get("FEATURESTORE_FUZZ_HTTP_EXAMPLES", "40"))  # per operation
PATHS = r"^/(v1/(online-features|push|features)|readyz|healthz)$"
EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "feature_definitions"


def _openapi_document() -> dict[str, Any]:
    """The server's OpenAPI document (it does not depend on the repo served: one written to a
    temporary folder, not even applied, will do). Loaded when the module is collected, since
    schemathesis makes one test per operation of it."""
    with tempfile.TemporaryDirectory(prefix="featurestore-openapi-") as tmp:
        store = FeatureStore(write_fuzz_repo(Path(tmp)))
        try:
            return create_app(store).openapi()
        finally:
            store.close()


schema = schemathesis.openapi.from_dict(_openapi_document()).include(path_regex=PATHS)
schema.config.generation.update(max_examples=EXAMPLES, database="none")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The feature server over the fuzzing repo (applied and materialized), in-process; its
    lifespan, started by the first request, is shut down afterwards (flushing the serving
    log)."""
    store = FeatureStore(build_repo(tmp_path_factory.mktemp("openapi") / "repo"))
    yield create_app(store)
    asgi.shutdown_lifespans()
    store.close()


@schema.parametrize()
@settings(
    deadline=None,
    derandomize=os.environ.get("CI") == "true",
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
def test_openapi_contract(app: Any, case: Any) -> None:
    """Every schemathesis check on every response, and a message in every 4xx body."""
    response = case.call_and_validate(app=app)
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert isinstance(error["message"], str) and error["message"], response.text


# --- the contract failures of the issue, and the examples --------------------------------------


@pytest.fixture(scope="module")
def client(app: Any) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def openapi(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def body_schema(openapi: dict[str, Any], path: str) -> dict[str, Any]:
    return openapi["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]


def test_online_features_needs_exactly_one_of_features_or_service(
    client: TestClient, openapi: dict[str, Any]
) -> None:
    """The schema says what the server does: ``{}``, both, or both null are refused."""
    from jsonschema_rs import validator_for

    validator = validator_for(body_schema(openapi, "/v1/online-features"))
    service = {
        "feature_service": "risk_model",
        "entities": {"user_id": [1], "merchant_id": ["m"]},
        "request_data": {"amount": [1.0], "txn_date": ["2024-06-01"], "channel": ["pos"]},
    }
    cases = [
        ({}, False),
        ({"features": None, "feature_service": None}, False),
        ({**service, "features": ["user_profile:age"]}, False),
        ({"features": [], "entities": {"user_id": [1]}}, False),
        (
            {
                "features": ["user_profile:age"],
                "feature_service": None,
                "entities": {"user_id": [1]},
            },
            True,
        ),
        ({**service, "features": None}, True),
    ]
    for body, valid in cases:
        assert validator.is_valid(body) is valid, body
        response = client.post("/v1/online-features", json=body)
        assert (response.status_code != 400) is valid, (body, response.text)


def test_null_entities_and_request_data_are_accepted(client: TestClient) -> None:
    """null means absent, for the server and the schema alike (a client that writes unset
    optional fields as null gets the same answer as one that leaves them out)."""
    body = {"features": ["user_profile:age"], "entities": {"user_id": [700001]}}
    absent = client.post("/v1/online-features", json=body)
    nulls = client.post("/v1/online-features", json={**body, "request_data": None})
    assert absent.status_code == nulls.status_code == 200, nulls.text
    assert absent.json()["features"] == nulls.json()["features"]
    no_entities = client.post(
        "/v1/online-features", json={"features": ["user_profile:age"], "entities": None}
    )
    assert no_entities.status_code == 400  # a null entities is no entities: the key is missing
    assert "lack join key 'user_id'" in no_entities.json()["error"]["message"]


def test_entity_keys_must_be_integers_or_strings(client: TestClient) -> None:
    """As the schema says, for every key given, used by the features or not."""
    for value in (1.5, True, [1], {"a": 1}):
        body = {"features": ["user_profile:age"], "entities": {"user_id": [1], "x": [value]}}
        response = client.post("/v1/online-features", json=body)
        assert response.status_code == 400, (value, response.text)
        assert "entities['x'] holds integer or string keys" in response.json()["error"]["message"]
    # JSON Schema's integers include 700001.0: the key 700001
    body = b'{"features": ["user_profile:country"], "entities": {"user_id": [700001.0]}}'
    response = client.post("/v1/online-features", content=body)
    assert response.status_code == 200, response.text
    assert response.json()["features"]["country"]["values"] == ["FR"]


def test_the_push_documents_to_and_its_errors(openapi: dict[str, Any]) -> None:
    to = body_schema(openapi, "/v1/push")["properties"]["to"]
    assert to["enum"] == ["online_and_offline", "online", "offline"]
    assert to["default"] == "online_and_offline"
    for mode in to["enum"]:
        assert f"'{mode}'" in to["description"]
    responses = openapi["paths"]["/v1/push"]["post"]["responses"]
    assert "server.max_entities" in responses["413"]["description"]
    assert "Retry-After" in responses["503"]["headers"]
    assert "Retry-After" not in openapi["paths"]["/readyz"]["get"]["responses"]["503"]["headers"]


@pytest.fixture(scope="module")
def example_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FeatureStore]:
    """A copy of the example repo with data for a few users, applied and materialized."""
    from featurestore.cli._demo import NOT_COPIED, load_generator

    root = tmp_path_factory.mktemp("example") / "repo"
    shutil.copytree(EXAMPLE_REPO, root, ignore=shutil.ignore_patterns(*NOT_COPIED))
    load_generator(root).generate(root / "data", n_users=40, seed=3)
    store = FeatureStore(root)
    store.apply()
    store.materialize(end=dt.datetime.now(dt.UTC), force=True)
    yield store
    store.close()


def test_the_schema_examples_fit_the_example_repo(example_repo: FeatureStore) -> None:
    """The documented examples are answered 200 by the example repo's server."""
    with TestClient(create_app(example_repo)) as client:
        openapi = client.get("/openapi.json").json()
        online = body_schema(openapi, "/v1/online-features")
        push = body_schema(openapi, "/v1/push")
        assert len(online["examples"]) == 2 and len(push["examples"]) == 1
        for body in online["examples"]:
            response = client.post("/v1/online-features", json=body)
            assert response.status_code == 200, (body, response.text)
        for body in push["examples"]:
            response = client.post("/v1/push", json=body)
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["events"] == len(body["rows"]) and answer["offline"] is True
            assert answer["entities"] == {"user_spending": 2}
            assert answer["online_error"] is None


def test_the_fuzzing_repo_serves_its_known_entities(client: TestClient) -> None:
    """A sanity check of the app under test: it serves the applied repo."""
    body = {"features": ["user_profile:country"], "entities": {"user_id": [700001]}}
    response = client.post("/v1/online-features", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["features"]["country"]["values"] == ["FR"]
