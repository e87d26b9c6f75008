"""The HTTP feature server: a thin FastAPI shell over the facade's serving path.

Endpoints:

- ``POST /v1/online-features``: body ``{"features": ["view:feature", ...] | "feature_service":
  "name", "entities": {"<join key>": [...]}, "request_data": {"<column>": [...]},
  "full_feature_names": false, "request_time": "<ISO 8601, default now>"}``; answers
  ``{"request_id", "request_time", "entities", "features": {"<column>": {"ref", "dtype",
  "fingerprint", "values", "statuses"}}}`` with the columns in request order; dates and
  datetimes are ISO 8601 text.
- ``POST /v1/push``: new events of a source (see ``_schemas.PushRequest``).
- ``GET /v1/features``: the applied features; ``GET /healthz``: 200 while the process runs;
  ``GET /readyz``: 200 when the registry is applied, the code on disk matches it and the
  online store answers, else 503 with the reason; both name the registry version served;
  ``POST /v1/admin/reload``: look for a newly applied registry now (the server also looks every
  ``serving.reload_interval_seconds``) and switch to it when the code on disk matches it;
  ``GET /metrics``: Prometheus text; ``GET /openapi.json`` and ``GET /docs``: the API schema.

A response's ``fingerprint`` per feature is the one its values were computed with; when the
online store still holds values of an earlier definition (an apply not yet followed by a
materialization) the feature also carries ``applied_fingerprint``, the registry's.

Every response carries an ``X-Request-ID`` header. Errors answer
``{"error": {"type": "<library error class>", "message": "..."}, "request_id": "..."}``:
400 a malformed request, 401 a missing or wrong bearer token, 404 an unknown feature, view or
service, 413 a body over ``max_body_bytes`` or more than ``max_entities`` rows, 503 an
unreachable online store or nothing applied, 500 anything else (logged with its traceback).

The online-features path is kept lean (latency is the point of the server): the app answers it
before FastAPI's own middleware and routing (``_fast_path``), the body is parsed with orjson
and checked by hand (``_requests``), the response is encoded by orjson directly
(``_encoding``), nothing is logged per request below WARNING, and metric label children are
cached. Every answer goes through the store's serving path, whose hooks log it to the serving
log (always, whatever ``serving_log.enabled`` says) and count its values in the metrics.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from featurestore._config import ServerConfig
from featurestore.server._auth import BearerAuth, configured_tokens
from featurestore.server._docs import add_docs
from featurestore.server._fast_path import OnlineFeaturesHandler, ServerMiddleware
from featurestore.server._http import ONLINE_FEATURES, REQUEST_ID_KEY, ASGIApp, Receive, Scope, Send
from featurestore.server._metrics import ServerMetrics
from featurestore.server._routes import add_error_handlers, add_routes, readiness

if TYPE_CHECKING:
    from featurestore._store import FeatureStore

__all__ = ["REQUEST_ID_KEY", "create_app"]

log = logging.getLogger(__name__)


class _FeatureServerApp(FastAPI):
    """FastAPI, except that ``POST /v1/online-features`` goes straight to ``front`` (request id,
    auth, metrics and the handler), ahead of the middleware stack FastAPI wraps every request
    in (its error and exception middleware, about 10 microseconds per request)."""

    front: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        front = self.front
        if (
            front is not None
            and scope["type"] == "http"
            and scope["path"] == ONLINE_FEATURES
            and scope["method"] == "POST"
        ):
            await front(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _lifespan(
    store: FeatureStore, metrics: ServerMetrics
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Starting: the store's serving log writer, watched by the metrics, and a first readiness
    check (logged, not fatal). Stopping: the writer is closed, writing every queued record."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = store.serving_log
        metrics.watch_writer(writer)
        if metrics.multiprocess:
            metrics.start_syncing()
        try:
            await run_in_threadpool(readiness, store)
        except Exception as exc:
            log.warning("feature server not ready yet project=%s reason=%s", store.project, exc)
        try:
            yield
        finally:
            writer.close()
            metrics.stop_syncing()
            log.info("serving log closed written=%d dropped=%d", writer.written, writer.dropped)

    return lifespan


def create_app(store: FeatureStore, config: ServerConfig | None = None) -> FastAPI:
    """The feature server over ``store`` (settings default to the repo's ``server`` block).

    The store's serving path gets two hooks: the serving log (the store's writer, started with
    the app and closed, flushing every queued record, when it shuts down) and the metrics. The
    caller keeps ownership of ``store``.
    """
    from featurestore import __version__

    config = config or store.repo.config.server
    metrics = ServerMetrics(store)
    path = store.serving_path
    path.log_to(lambda: store.serving_log)
    path.on_served("metrics", lambda served: metrics.count_values(served.response))
    online = OnlineFeaturesHandler(
        path,
        config.max_body_bytes,
        config.max_entities,
        offload=store.repo.config.online_store.type == "redis",
        max_pending=config.max_pending_requests,
        threads=config.store_threads,
    )
    app = _FeatureServerApp(
        title="featurestore feature server",
        version=__version__,
        description="Online feature values with a status per value and the fingerprints of "
        "their definitions. Errors answer {error: {type, message}, request_id}.",
        lifespan=_lifespan(store, metrics),
        docs_url=None,  # served from the package by add_docs, not from a CDN
        redoc_url=None,
    )
    app.state.metrics = metrics
    app.state.online = online
    auth = BearerAuth(configured_tokens(config))
    app.add_middleware(ServerMiddleware, auth=auth, metrics=metrics, online=online)
    app.front = ServerMiddleware(
        partial(FastAPI.__call__, app), auth=auth, metrics=metrics, online=online
    )
    add_routes(app, store, config, metrics, online)
    add_docs(app)
    add_error_handlers(app)
    return app
