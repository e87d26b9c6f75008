"""What the server's fast path and its FastAPI routes share: the ASGI types, the endpoints,
the request id every response carries, and sending a whole JSON response."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

__all__ = [
    "CLIENT_GONE",
    "ENDPOINTS",
    "JSON",
    "ONLINE_FEATURES",
    "OPEN_PATHS",
    "RELOAD",
    "REQUEST_ID_KEY",
    "ASGIApp",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "send_json",
]

REQUEST_ID_KEY = "featurestore.request_id"  # the request id, in the ASGI scope
ONLINE_FEATURES = "/v1/online-features"
RELOAD = "/v1/admin/reload"
ENDPOINTS = frozenset(
    [
        ONLINE_FEATURES,
        RELOAD,
        "/v1/push",
        "/v1/features",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
    ]
)
OPEN_PATHS = frozenset(["/healthz"])  # reachable without a token
JSON = "application/json"
CLIENT_GONE = 499  # the status recorded in metrics when the client left mid-request

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_JSON_HEADER = (b"content-type", JSON.encode())


async def send_json(
    send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Send a whole JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})
