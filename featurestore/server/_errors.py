"""Errors as the server answers them: the HTTP status of each library error, the error body
``{"error": {"type", "message"}, "request_id"}`` and its headers; 5xx are logged."""

from __future__ import annotations

import logging

import orjson
from fastapi.responses import Response

from featurestore.errors import (
    FeatureReferenceError,
    FeatureStoreError,
    OnlineRequestError,
    OnlineStoreError,
    OnlineStoreUnavailableError,
    PushError,
    RegistryError,
    SchemaMismatchError,
)
from featurestore.server._http import JSON

__all__ = [
    "Overloaded",
    "TooLarge",
    "error_body",
    "error_parts",
    "error_response",
    "public_type",
]

log = logging.getLogger(__name__)


class TooLarge(OnlineRequestError):
    """The body or the row count exceeds the server's limits (413)."""


class Overloaded(OnlineStoreUnavailableError):
    """Too many requests wait for the online store: shed (503 with Retry-After)."""


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, TooLarge):
        return 413
    if isinstance(exc, FeatureReferenceError):
        return 404
    if isinstance(exc, OnlineRequestError | SchemaMismatchError | PushError):
        return 400
    if isinstance(exc, OnlineStoreError | RegistryError):
        return 503
    return 500


def public_type(exc: BaseException) -> str:
    """The library error class a client can map back to (internal subclasses are hidden)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "featurestore.errors":
            return cls.__name__
    return "InternalError"


def error_body(kind: str, message: str, request_id: str) -> bytes:
    """The JSON body of an error response."""
    return orjson.dumps({"error": {"type": kind, "message": message}, "request_id": request_id})


def error_parts(
    exc: BaseException, request_id: str, what: str
) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
    """Status, JSON body and extra headers of the error response for ``exc``; 5xx are logged
    (unexpected ones with their traceback)."""
    status = _status_of(exc)
    if isinstance(exc, FeatureStoreError):
        message = str(exc)
    else:
        message = (
            f"internal error ({type(exc).__name__}); the server log has the traceback "
            f"under request_id {request_id}"
        )
    headers: list[tuple[bytes, bytes]] = []
    if status == 503:
        log.warning("%s unavailable request_id=%s error=%s", what, request_id, exc)
        headers.append((b"retry-after", b"1"))
    elif status >= 500:
        log.error("%s failed request_id=%s", what, request_id, exc_info=exc)
    return status, error_body(public_type(exc), message, request_id), headers


def error_response(exc: BaseException, request_id: str, what: str) -> Response:
    """The error response for ``exc`` as a Starlette response (for the FastAPI routes)."""
    status, body, headers = error_parts(exc, request_id, what)
    return Response(
        body,
        status_code=status,
        media_type=JSON,
        headers={k.decode(): v.decode() for k, v in headers},
    )
