"""The FastAPI routes: the documented online-features route (answered by the same handler as
the fast path), push, the applied features, health, readiness, reload, metrics, and the
error shape of unknown paths and unexpected exceptions."""

from __future__ import annotations

import uuid
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from featurestore._config import ServerConfig
from featurestore.errors import RegistryError
from featurestore.server._errors import error_body, error_response, public_type
from featurestore.server._fast_path import OnlineFeaturesHandler
from featurestore.server._http import CLIENT_GONE, JSON, ONLINE_FEATURES, RELOAD, REQUEST_ID_KEY
from featurestore.server._metrics import CONTENT_TYPE_LATEST, ServerMetrics
from featurestore.server._openapi import (
    FEATURES_DOC,
    HEALTHZ_DOC,
    METRICS_DOC,
    ONLINE_FEATURES_DOC,
    PUSH_DOC,
    READYZ_DOC,
    RELOAD_DOC,
)
from featurestore.server._requests import ClientGone, parse_push, receive_body

if TYPE_CHECKING:
    from featurestore._store import FeatureStore

__all__ = ["add_error_handlers", "add_routes", "readiness"]


def _request_id(request: Request) -> str:
    return request.scope.get(REQUEST_ID_KEY) or uuid.uuid4().hex


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def readiness(store: FeatureStore) -> dict[str, Any]:
    """The registry version served; raises what keeps the server from serving: nothing
    applied, code on disk that does not match the applied registry, or an unreachable store."""
    store.retriever  # noqa: B018 - loads the applied registry, raising RegistryError if absent
    problem = store.serving_problem
    if problem is not None:
        raise RegistryError(problem)
    store.online.ping()
    served = store.served_registry
    assert served is not None
    return {"registry_version": served.version, "applied_at": served.applied_at}


def _add_serving_routes(
    app: FastAPI, store: FeatureStore, config: ServerConfig, online: OnlineFeaturesHandler
) -> None:
    """POST /v1/online-features (documented here, answered by the fast path) and /v1/push."""

    @app.post(ONLINE_FEATURES, response_class=Response, **ONLINE_FEATURES_DOC)
    async def online_features(request: Request) -> Response:
        answer = await online.respond(request.scope, request.receive, _request_id(request))
        if answer is None:
            return Response(status_code=CLIENT_GONE)
        status, body, headers = answer
        return Response(
            body,
            status_code=status,
            media_type=JSON,
            headers={k.decode(): v.decode() for k, v in headers},
        )

    @app.post("/v1/push", response_class=Response, **PUSH_DOC)
    async def push(request: Request) -> Response:
        request_id = _request_id(request)
        try:
            body = await receive_body(request.scope, request.receive, config.max_body_bytes)
            parsed = parse_push(body, config.max_entities)
            result = await run_in_threadpool(
                partial(store.push, parsed.source, parsed.rows, to=parsed.to)
            )
        except ClientGone:
            return Response(status_code=CLIENT_GONE)
        except Exception as exc:
            return error_response(exc, request_id, "push")
        return _json({"request_id": request_id, **result.to_json()})


def _add_registry_routes(app: FastAPI, store: FeatureStore) -> None:
    """GET /v1/features, /healthz and /readyz: the applied features and the version served."""

    @app.get("/v1/features", response_class=Response, **FEATURES_DOC)
    async def features(request: Request) -> Response:
        try:
            records = await run_in_threadpool(store.list_features)
        except Exception as exc:
            return error_response(exc, _request_id(request), "features")
        return _json(
            [
                {
                    "ref": r.ref,
                    "view": r.view,
                    "name": r.name,
                    "kind": r.kind,
                    "dtype": r.dtype,
                    "owner": r.owner,
                    "fingerprint": r.fingerprint,
                    "description": r.description,
                }
                for r in records
            ]
        )

    @app.get("/healthz", response_class=Response, **HEALTHZ_DOC)
    async def healthz() -> Response:
        served = store.served_registry
        if served is None:
            return _json({"status": "ok"})
        return _json(
            {"status": "ok", "registry_version": served.version, "applied_at": served.applied_at}
        )

    @app.get("/readyz", response_class=Response, **READYZ_DOC)
    async def readyz(request: Request) -> Response:
        try:
            served = await run_in_threadpool(readiness, store)
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            return _json(
                {
                    "error": {"type": public_type(exc), "message": message},
                    "request_id": _request_id(request),
                },
                503,
            )
        return _json({"status": "ready", **served})


def _add_admin_routes(app: FastAPI, store: FeatureStore, metrics: ServerMetrics) -> None:
    """POST /v1/admin/reload and GET /metrics."""

    @app.post(RELOAD, response_class=Response, **RELOAD_DOC)
    async def reload(request: Request) -> Response:
        try:
            result = await run_in_threadpool(store.reload)
        except Exception as exc:
            return error_response(exc, _request_id(request), "reload")
        return _json(
            {
                "registry_version": result.version,
                "applied_at": result.applied_at,
                "switched": result.switched,
                "code_matches": result.code_matches,
                "problem": result.problem,
            }
        )

    @app.get("/metrics", response_class=Response, **METRICS_DOC)
    async def prometheus_metrics() -> Response:
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE_LATEST)


def add_routes(
    app: FastAPI,
    store: FeatureStore,
    config: ServerConfig,
    metrics: ServerMetrics,
    online: OnlineFeaturesHandler,
) -> None:
    """Every route of the feature server, in the order the OpenAPI document lists them."""
    _add_serving_routes(app, store, config, online)
    _add_registry_routes(app, store)
    _add_admin_routes(app, store, metrics)


def add_error_handlers(app: FastAPI) -> None:
    """Unknown paths and methods, and unexpected exceptions, answer in the error shape."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        phrase = HTTPStatus(exc.status_code).phrase
        message = (
            f"no endpoint {request.method} {request.url.path}; see /docs"
            if exc.status_code == 404
            else f"{phrase}: {request.method} {request.url.path}"
        )
        return Response(
            error_body(phrase.replace(" ", ""), message, _request_id(request)),
            status_code=exc.status_code,
            media_type=JSON,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = _request_id(request)
        response = error_response(exc, request_id, request.url.path)
        response.headers["X-Request-ID"] = request_id
        return response
