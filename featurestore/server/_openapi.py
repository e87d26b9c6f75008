"""What the OpenAPI document says of each route beyond its models: the request id header on
every response, what each error status means and the headers sent with it."""

from __future__ import annotations

from typing import Any

from featurestore.server._http import JSON
from featurestore.server._schemas import (
    ErrorResponse,
    FeatureInfo,
    Health,
    OnlineFeaturesRequest,
    OnlineFeaturesResponse,
    PushRequest,
    PushResponse,
    ReloadResponse,
)

__all__ = [
    "FEATURES_DOC",
    "HEALTHZ_DOC",
    "METRICS_DOC",
    "ONLINE_FEATURES_DOC",
    "PUSH_DOC",
    "READYZ_DOC",
    "RELOAD_DOC",
]

_REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The request's id, also in error bodies and the server log.",
        "required": True,
        "schema": {"type": "string"},
    }
}
_ERROR_TEXT = {
    400: "A malformed request: the message names the field, what was expected and what was found.",
    401: "A missing or wrong bearer token (only when the server has tokens).",
    404: "An unknown or malformed feature reference, view or feature service.",
    413: "The body is larger than server.max_body_bytes, or it has more than "
    "server.max_entities rows (featurestore.yaml).",
    500: "An unexpected failure; the server log has the traceback under the request id.",
    503: "Not serving for now: nothing applied, code on disk that does not match the applied "
    "registry, an unreachable online store, or more than server.max_pending_requests "
    "requests waiting for it. Retry after Retry-After seconds.",
}


def _errors(
    *codes: int, text: dict[int, str] | None = None, retry_after: bool = True
) -> dict[int | str, dict[str, Any]]:
    """OpenAPI responses of the error ``codes``: the error body, what each status means
    (``text`` overrides the general wording) and the headers sent with it."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        headers: dict[str, Any] = dict(_REQUEST_ID_HEADER)
        if code == 401:
            headers["WWW-Authenticate"] = {
                "description": 'Bearer realm="featurestore"',
                "required": True,
                "schema": {"type": "string"},
            }
        if code == 503 and retry_after:
            headers["Retry-After"] = {
                "description": "Seconds to wait before retrying.",
                "required": True,
                "schema": {"type": "integer"},
            }
        out[code] = {
            "model": ErrorResponse,
            "description": (text or {}).get(code, _ERROR_TEXT[code]),
            "headers": headers,
        }
    return out


def _ok(model: Any, description: str) -> dict[str, Any]:
    """The OpenAPI 200 response of ``model``, with the request id header."""
    return {"model": model, "description": description, "headers": dict(_REQUEST_ID_HEADER)}


def _body(model: Any) -> dict[str, Any]:
    """A JSON request body documented by ``model`` (not validated through it by FastAPI)."""
    return {
        "requestBody": {"required": True, "content": {JSON: {"schema": model.model_json_schema()}}}
    }


ONLINE_FEATURES_DOC: dict[str, Any] = {
    "summary": "Latest feature values for entity rows",
    "responses": {
        200: _ok(OnlineFeaturesResponse, "Served values, a status per value"),
        **_errors(
            400,
            401,
            404,
            413,
            500,
            503,
            text={
                400: "A malformed body, or entities and request_data that do not fit the "
                "requested features: a missing join key or request column, a value of the "
                "wrong type, columns of unequal lengths.",
            },
        ),
    },
    "openapi_extra": _body(OnlineFeaturesRequest),
}

PUSH_DOC: dict[str, Any] = {
    "summary": "New events of a source, appended to its files and the online aggregation state",
    "responses": {
        200: _ok(PushResponse, "The events were written where 'to' says"),
        **_errors(
            400,
            401,
            404,
            413,
            500,
            503,
            text={
                400: "A malformed body, rows that do not fit the source (a missing or "
                "mistyped column, a time that is not ISO 8601), or a source whose files "
                "cannot take pushed parts (a single file, CSV); nothing was written.",
                404: "No feature view reads the source, or to='online' and no online view "
                "with aggregations reads it.",
                503: "Nothing applied, code on disk that does not match the applied "
                "registry, or, with to='online', an unreachable online store (with the "
                "default 'online_and_offline' the push then answers 200 with online_error "
                "set). Retry after Retry-After seconds.",
            },
        ),
    },
    "openapi_extra": _body(PushRequest),
}

FEATURES_DOC: dict[str, Any] = {
    "summary": "The applied features",
    "responses": {
        200: _ok(list[FeatureInfo], "The applied features"),
        **_errors(401, 500, 503, text={503: "Nothing applied yet, or the registry is unreadable."}),
    },
}

HEALTHZ_DOC: dict[str, Any] = {
    "summary": "Liveness: 200 while the process runs",
    "responses": {200: _ok(Health, "The process runs")},
}

READYZ_DOC: dict[str, Any] = {
    "summary": "Readiness: the registry is applied and the online store answers",
    "responses": {
        200: _ok(Health, "Ready to serve"),
        **_errors(
            401,
            503,
            text={
                503: "Not ready: nothing applied, code on disk that does not match the "
                "applied registry, or an unreachable online store; the message says which."
            },
            retry_after=False,
        ),
    },
}

RELOAD_DOC: dict[str, Any] = {
    "summary": "Look for a newly applied registry now and serve it if the code matches",
    "responses": {
        200: _ok(ReloadResponse, "The version served after the check"),
        **_errors(401, 500, 503),
    },
}

METRICS_DOC: dict[str, Any] = {
    "summary": "Prometheus metrics",
    "responses": {200: {"content": {"text/plain": {}}}, **_errors(401)},
}
