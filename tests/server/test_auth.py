"""Bearer-token access control: off without tokens; with tokens from featurestore.yaml or the
environment, every endpoint but /healthz needs one; wrong or missing tokens get a 401."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest

from featurestore import FeatureStore
from featurestore._config import ServerConfig
from featurestore.server import create_app
from featurestore.server._auth import BearerAuth, configured_tokens

from .conftest import TOKEN_ENV, Server, TestClient, post

AGE = {"features": ["user_profile:age"], "entities": {"user_id": [1]}}
PROTECTED = ["/readyz", "/v1/features", "/metrics", "/openapi.json", "/docs"]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_tokens_come_from_the_config_and_the_environment() -> None:
    config = ServerConfig(auth_tokens=["a", " b "], auth_tokens_env="MY_TOKENS")
    assert configured_tokens(config, {"MY_TOKENS": "c, ,a,d"}) == ["a", "b", "c", "d"]
    assert configured_tokens(config, {}) == ["a", "b"]
    assert configured_tokens(ServerConfig(auth_tokens_env=None), {TOKEN_ENV: "x"}) == []
    assert configured_tokens(ServerConfig(), {TOKEN_ENV: "x,y"}) == ["x", "y"]


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        (None, "this server requires a bearer token: send 'Authorization: Bearer <token>'"),
        (b"Basic dXNlcjpwYXNz", "the Authorization header must be 'Bearer <token>'"),
        (b"Bearer", "the Authorization header must be 'Bearer <token>'"),
        (b"Bearer secret2", "the bearer token is not valid"),
        (b"Bearer secre", "the bearer token is not valid"),
        (b"Bearer secret", None),
        (b"bearer   other ", None),
    ],
)
def test_bearer_auth_checks_the_header(header: bytes | None, problem: str | None) -> None:
    assert BearerAuth(["secret", "other"]).problem(header) == problem
    assert BearerAuth([]).problem(header) is None


@pytest.fixture
def secured(
    make_store: Callable[..., FeatureStore], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """An in-process app whose token comes from featurestore.yaml."""
    monkeypatch.delenv(TOKEN_ENV, raising=False)
    store = make_store("server: {auth_tokens: [s3cret]}\n")
    with TestClient(create_app(store)) as client:
        yield client


def assert_refused(resp: httpx.Response, message: str) -> None:
    assert resp.status_code == 401, resp.text
    assert resp.headers["www-authenticate"] == 'Bearer realm="featurestore"'
    body = resp.json()
    assert body == {
        "error": {"type": "Unauthorized", "message": message},
        "request_id": resp.headers["x-request-id"],
    }


def test_config_tokens_protect_every_endpoint_but_healthz(secured: TestClient) -> None:
    assert secured.get("/healthz").status_code == 200
    for path in PROTECTED:
        assert_refused(
            secured.get(path),
            "this server requires a bearer token: send 'Authorization: Bearer <token>'",
        )
        assert secured.get(path, headers=bearer("s3cret")).status_code == 200, path
    assert_refused(
        post(secured, AGE),
        "this server requires a bearer token: send 'Authorization: Bearer <token>'",
    )
    assert_refused(post(secured, AGE, headers=bearer("wrong")), "the bearer token is not valid")
    assert post(secured, AGE, headers=bearer("s3cret")).status_code == 200


def test_refused_requests_are_counted(secured: TestClient) -> None:
    post(secured, AGE)
    metrics = secured.get("/metrics", headers=bearer("s3cret")).text
    assert 'featurestore_http_requests_total{endpoint="/v1/online-features",status="401"} 1.0' in (
        metrics
    )


def test_environment_tokens_protect_a_server_process(env_token_server: Server) -> None:
    with httpx.Client(base_url=env_token_server.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        assert_refused(
            post(client, AGE),
            "this server requires a bearer token: send 'Authorization: Bearer <token>'",
        )
        assert_refused(post(client, AGE, headers=bearer("tok-3")), "the bearer token is not valid")
        assert_refused(
            client.get("/metrics"),
            "this server requires a bearer token: send 'Authorization: Bearer <token>'",
        )
        for token in ("tok-1", "tok-2"):
            resp = post(client, AGE, headers=bearer(token))
            assert resp.status_code == 200
            assert resp.json()["features"]["age"]["values"] == [30]
            assert client.get("/readyz", headers=bearer(token)).status_code == 200
    assert "bearer token required" in env_token_server.log()
