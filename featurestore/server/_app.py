"""The HTTP feature server: a thin FastAPI shell over the library's online retrieval.

Endpoints:

- ``POST /v1/online-features``: body ``{"features": ["view:feature", ...] | "feature_service":
  "name", "entities": {"<join key>": [...]}, "request_data": {"<column>": [...]},
  "full_feature_names": false}``; answers ``{"request_id", "request_time", "entities",
  "features": {"<column>": {"ref", "dtype", "fingerprint", "values", "statuses"}}}`` with the
  columns in request order; dates and datetimes are ISO 8601 text.
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
before FastAPI's own middleware and routing, the body is parsed with orjson and checked by
hand (no validation models), the response is encoded by orjson directly, nothing is logged
per request below WARNING, and metric label children are cached. The pydantic models below
only document the API in OpenAPI. Retrieval runs on the event loop: it is a few tens of
microseconds against SQLite; slow on-demand functions or a remote Redis call for more
worker processes (``featurestore serve --workers N``).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any, Literal

import orjson
import polars as pl
from anyio import CapacityLimiter, to_thread
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from featurestore._config import ServerConfig
from featurestore._times import as_naive_utc, as_utc
from featurestore._value_rules import FeatureStatus
from featurestore.definitions._dtypes import dtype_kind, dtype_name
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
from featurestore.server._auth import BearerAuth, configured_tokens
from featurestore.server._metrics import CONTENT_TYPE_LATEST, ServerMetrics
from featurestore.serving._response import OnlineResponse

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from featurestore._repo import RepoContents
    from featurestore._store import FeatureStore
    from featurestore.serving._serving_log import ServingLogWriter

__all__ = ["REQUEST_ID_KEY", "create_app"]

log = logging.getLogger(__name__)

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
BODY_FIELDS = ("features", "feature_service", "entities", "request_data", "full_feature_names")
JSON = "application/json"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


# --- OpenAPI documentation only: requests are never validated through these models ---------


_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$"
_MIN_KEY, _MAX_KEY = -(2**63), 2**64 - 1  # integer keys: 64-bit (orjson reads larger as floats)
_Key = Annotated[int, Field(ge=_MIN_KEY, le=_MAX_KEY)]
_ONLINE_EXAMPLES = [
    {"features": ["user_profile:age", "user_spending:spend_7d"], "entities": {"user_id": [7, 9]}},
    {
        "feature_service": "fraud_detection_v2",
        "entities": {"user_id": [7], "merchant_id": [1042]},
        "request_data": {"amount": [12.5], "channel": ["online"]},
    },
]


class OnlineFeaturesRequest(BaseModel):
    """Body of POST /v1/online-features: exactly one of ``features`` or ``feature_service``
    (a null one counts as absent); ``entities`` holds the join keys of the requested views and
    ``request_data`` the request columns of the requested on-demand views, one value per row,
    all of the same length. A null ``entities`` or ``request_data`` is the same as leaving it
    out."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            # exactly one of the two is given and not null; the server checks the same
            "oneOf": [
                {"required": ["features"], "properties": {"features": {"type": "array"}}},
                {
                    "required": ["feature_service"],
                    "properties": {"feature_service": {"type": "string"}},
                },
            ],
            "examples": _ONLINE_EXAMPLES,
        },
    )

    features: list[Annotated[str, Field(pattern=_REF_PATTERN)]] | None = Field(
        None,
        min_length=1,
        description="Feature references 'view:feature' (a malformed or unknown one answers "
        "404). Exactly one of features and feature_service.",
    )
    feature_service: str | None = Field(
        None,
        description="A feature service instead of features (an unknown one answers 404).",
    )
    entities: dict[str, list[_Key | str | None]] | None = Field(
        None,
        description="Join key -> one value per entity row: integers (64-bit) or strings as "
        "the views' keys are stored, null for a row without that key. Keys no requested view "
        "uses are ignored.",
    )
    request_data: dict[str, list[Any]] | None = Field(
        None,
        description="Request column of the requested on-demand views -> one value per row "
        "(dates and datetimes as ISO 8601 text). Columns they do not read are ignored.",
    )
    full_feature_names: bool = Field(False, description="Name columns 'view__feature'.")


class FeatureColumn(BaseModel):
    """One served feature: a value and a status per entity row."""

    ref: str = Field(description="'view:feature'")
    dtype: str = Field(description="Declared dtype, e.g. Int64, Float64, Date, Datetime(UTC).")
    fingerprint: str = Field(description="Of the definition the values were computed with.")
    applied_fingerprint: str | None = Field(
        None,
        description="Present only when it differs from 'fingerprint': the online store still "
        "holds values of an earlier definition than the applied one (materialize the view).",
    )
    values: list[Any]
    statuses: list[FeatureStatus]


class OnlineFeaturesResponse(BaseModel):
    """Response of POST /v1/online-features; ``features`` keeps the requested column order."""

    request_id: str
    request_time: dt.datetime
    entities: dict[str, list[Any]]
    features: dict[str, FeatureColumn]


class ErrorDetail(BaseModel):
    type: str = Field(description="The featurestore error class, e.g. OnlineRequestError.")
    message: str


class ErrorResponse(BaseModel):
    """Body of every error response."""

    error: ErrorDetail
    request_id: str


class FeatureInfo(BaseModel):
    """One applied feature."""

    ref: str
    view: str
    name: str
    kind: str
    dtype: str
    owner: str | None
    fingerprint: str
    description: str


class Health(BaseModel):
    status: Literal["ok", "ready"]
    registry_version: int | None = Field(None, description="The registry version served.")
    applied_at: dt.datetime | None = Field(None, description="When it was applied.")


class ReloadResponse(BaseModel):
    """Response of POST /v1/admin/reload: the version served after the check."""

    registry_version: int
    applied_at: dt.datetime
    switched: bool = Field(description="The check moved to a newly applied registry.")
    code_matches: bool = Field(description="The code on disk matches the applied registry.")
    problem: str | None = Field(None, description="Why the applied registry is not served.")


_PUSH_EXAMPLE = {
    "source": "transactions",
    "rows": [
        {
            "user_id": 7,
            "merchant_id": 1042,
            "event_time": "2025-03-01T12:00:00Z",
            "amount": 12.5,
        },
        {
            "user_id": 9,
            "merchant_id": 1007,
            "event_time": "2025-03-01T13:30:00+01:00",
            "amount": 80.0,
        },
    ],
}


class PushRequest(BaseModel):
    """Body of POST /v1/push (validated): events of one source, as records. Every row must
    carry the columns the views reading the source need (their join keys, the source's
    timestamp field, and the columns their features and aggregations read); a batch that
    does not fit writes nothing (400)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_PUSH_EXAMPLE]})

    source: str = Field(
        description="The source the events belong to, by name; 404 when no feature view reads it."
    )
    rows: list[dict[str, Any]] = Field(
        description="One object per event with the source's columns; times as ISO 8601 text, "
        "naive (meaning UTC) or with an offset. At most server.max_entities rows (413 beyond)."
    )
    to: Literal["online_and_offline", "online", "offline"] = Field(
        "online_and_offline",
        description="Where the events go. 'online_and_offline' (the default): a new Parquet "
        "part in the source's files (which training sets and materializations read) and the "
        "online state of the aggregation views reading the source. 'offline': the source's "
        "files only; the online store has the events after the next materialization. "
        "'online': the online aggregation state only, nothing written to the files; 404 "
        "when no online view with aggregations reads the source. Pushing to the files needs a "
        "source that is a directory or glob of Parquet files (400 otherwise).",
    )


class PushResponse(BaseModel):
    """Response of POST /v1/push: whether the events were written to the source's files; per
    aggregation view, entities updated, late events dropped and entities whose appended events
    were folded into one state; and why the online store was not updated, if it was not (the
    events are durable in the source's files, and the next materialization brings them
    online)."""

    request_id: str
    source: str
    events: int = Field(description="Events received.")
    offline: bool = Field(description="A Parquet part was written to the source's files.")
    entities: dict[str, int] = Field(description="Per aggregation view, entities updated.")
    late: dict[str, int] = Field(
        description="Per aggregation view, events too old for any window, dropped online."
    )
    compacted: dict[str, int] = Field(
        description="Per aggregation view, entities whose appended events were folded."
    )
    online_error: str | None = Field(
        None, description="Why the online store was not updated, when it was not."
    )


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


# --- errors -----------------------------------------------------------------------------------


class _TooLarge(OnlineRequestError):
    """The body or the row count exceeds the server's limits (413)."""


class _Overloaded(OnlineStoreUnavailableError):
    """Too many requests wait for the online store: shed (503 with Retry-After)."""


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, _TooLarge):
        return 413
    if isinstance(exc, FeatureReferenceError):
        return 404
    if isinstance(exc, OnlineRequestError | SchemaMismatchError | PushError):
        return 400
    if isinstance(exc, OnlineStoreError | RegistryError):
        return 503
    return 500


def _public_type(exc: BaseException) -> str:
    """The library error class a client can map back to (internal subclasses are hidden)."""
    for cls in type(exc).__mro__:
        if cls.__module__ == "featurestore.errors":
            return cls.__name__
    return "InternalError"


def _error_body(kind: str, message: str, request_id: str) -> bytes:
    return orjson.dumps({"error": {"type": kind, "message": message}, "request_id": request_id})


def _error_parts(
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
    return status, _error_body(_public_type(exc), message, request_id), headers


def _error_response(exc: BaseException, request_id: str, what: str) -> Response:
    status, body, headers = _error_parts(exc, request_id, what)
    return Response(
        body,
        status_code=status,
        media_type=JSON,
        headers={k.decode(): v.decode() for k, v in headers},
    )


# --- request parsing ------------------------------------------------------------------------


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return "null"


def _columns(data: dict[str, Any], name: str) -> dict[str, list[Any]]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise OnlineRequestError(
            f"'{name}' must be an object of lists such as {{\"user_id\": [7, 9]}}, "
            f"found {_json_type(value)}"
        )
    for key, column in value.items():
        if not isinstance(column, list):
            raise OnlineRequestError(
                f"{name}[{key!r}] must be an array with one value per entity row, "
                f"found {_json_type(column)}"
            )
    return value


def _iso_date(column: str) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # retrieval rejects it with the expected type
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise OnlineRequestError(
                f"request_data[{column!r}] takes ISO dates such as 2024-03-01; found {value!r}"
            ) from None

    return parse


def _iso_datetime(column: str, aware: bool) -> Callable[[Any], Any]:
    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            raise OnlineRequestError(
                f"request_data[{column!r}] takes ISO datetimes such as 2024-03-01T12:00:00 "
                f"(naive = UTC); found {value!r}"
            ) from None
        return as_utc(t) if aware else as_naive_utc(t)

    return parse


def _request_parsers(repo: RepoContents) -> dict[str, Callable[[Any], Any]]:
    """Parsers of request columns whose JSON text must become dates or datetimes."""
    out: dict[str, Callable[[Any], Any]] = {}
    for odfv in repo.on_demand_views.values():
        for source in odfv.request_sources:
            for column, dtype in source.fields.items():
                kind = dtype_kind(dtype)
                if kind == "date":
                    out[column] = _iso_date(column)
                elif kind == "datetime":
                    out[column] = _iso_datetime(column, bool(getattr(dtype, "time_zone", None)))
    return out


@dataclass
class _OnlineRequest:
    features: list[str] | None
    feature_service: str | None
    entities: dict[str, list[Any]]
    request_data: dict[str, list[Any]]
    full_feature_names: bool


def parse_request(
    body: bytes,
    max_entities: int,
    parsers: dict[str, Callable[[Any], Any]] | None = None,
) -> _OnlineRequest:
    """Check the shape of an online-features body; OnlineRequestError names the problem."""
    if not body.strip():
        raise OnlineRequestError(
            'the request body is empty; send a JSON object such as {"features": '
            '["view:feature"], "entities": {"user_id": [7]}}'
        )
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise OnlineRequestError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise OnlineRequestError(
            f"the request body must be a JSON object, found {_json_type(data)}"
        )
    unknown = [k for k in data if k not in BODY_FIELDS]
    if unknown:
        raise OnlineRequestError(
            f"unknown field(s) {unknown} in the request body; allowed: {', '.join(BODY_FIELDS)}"
        )
    features = data.get("features")
    service = data.get("feature_service")
    if (features is None) == (service is None):
        raise OnlineRequestError(
            "pass exactly one of 'features' (a list of 'view:feature') or 'feature_service'"
        )
    if features is not None and (
        not isinstance(features, list)
        or not features
        or not all(isinstance(f, str) for f in features)
    ):
        raise OnlineRequestError("'features' must be a non-empty array of 'view:feature' strings")
    if service is not None and not isinstance(service, str):
        raise OnlineRequestError(f"'feature_service' must be a string, found {_json_type(service)}")
    full_names = data.get("full_feature_names", False)
    if not isinstance(full_names, bool):
        raise OnlineRequestError(
            f"'full_feature_names' must be true or false, found {_json_type(full_names)}"
        )
    entities = _columns(data, "entities")
    for key, column in entities.items():
        for row, value in enumerate(column):
            # keys are integers or strings (what the schema says, for every key given); JSON
            # Schema's integers include 7.0, which orjson reads as a float
            if value is None or type(value) is int or type(value) is str:
                continue
            # (the bounds as floats: 2**64 - 1 is 2**64 once read as one)
            if type(value) is float and value.is_integer() and _MIN_KEY <= value <= 2.0**64:
                column[row] = int(value)
            else:
                found = (
                    "a number with a fraction or beyond 64-bit integers"
                    if isinstance(value, float)
                    else _json_type(value)
                )
                raise OnlineRequestError(
                    f"entities[{key!r}] holds integer or string keys (null for a row without "
                    f"one); found {found} in row {row}"
                )
    request_data = _columns(data, "request_data")
    rows = max(
        (len(c) for c in (*entities.values(), *request_data.values())),
        default=0,
    )
    if rows > max_entities:
        raise _TooLarge(
            f"the request has {rows} entity rows; this server serves at most {max_entities} "
            "per request (server.max_entities in featurestore.yaml)"
        )
    if parsers:
        for column, values in request_data.items():
            parse = parsers.get(column)
            if parse is not None:
                request_data[column] = [parse(v) for v in values]
    return _OnlineRequest(features, service, entities, request_data, full_names)


class _ClientGone(Exception):
    """The client disconnected before sending the whole body."""


async def _receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused (413) beyond ``limit`` bytes whether announced or streamed."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise OnlineRequestError(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise _TooLarge(
                f"the request body has {size} bytes; this server accepts at most {limit} "
                "(server.max_body_bytes in featurestore.yaml)"
            )
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise _TooLarge(
                f"the request body exceeds {limit} bytes "
                "(server.max_body_bytes in featurestore.yaml)"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_push(body: bytes, max_rows: int) -> PushRequest:
    """The push body as a :class:`PushRequest`; 400 when malformed, 413 beyond ``max_rows``."""
    try:
        parsed = PushRequest.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in exc.errors()
        )
        raise OnlineRequestError(
            f'malformed push body ({problems}); expected {{"source": "name", '
            f'"rows": [{{"column": value, ...}}, ...]}}'
        ) from None
    if len(parsed.rows) > max_rows:
        raise _TooLarge(
            f"the push has {len(parsed.rows)} rows; this server accepts at most {max_rows} "
            "per request (server.max_entities in featurestore.yaml)"
        )
    return parsed


# --- response encoding ----------------------------------------------------------------------

# dtype text by the dtype object's id (hashing a Polars dtype runs Python code); the object is
# kept with its text, so its id cannot be reused while cached
_DTYPE_NAMES: dict[int, tuple[pl.DataType, str]] = {}
_MAX_DTYPE_NAMES = 4096


def _dtype_text(dtype: pl.DataType) -> str:
    hit = _DTYPE_NAMES.get(id(dtype))
    if hit is not None and hit[0] is dtype:
        return hit[1]
    if len(_DTYPE_NAMES) >= _MAX_DTYPE_NAMES:
        _DTYPE_NAMES.clear()
    text = dtype_name(dtype)
    _DTYPE_NAMES[id(dtype)] = (dtype, text)
    return text


def encode_response(response: OnlineResponse, request_id: str) -> bytes:
    """The JSON body of a served response (see the module docstring)."""
    refs, fingerprints, statuses, dtypes = (
        response.refs,
        response.fingerprints,
        response.statuses,
        response.dtypes,
    )
    features = {}
    outdated = response.outdated if fingerprints is not response.applied_fingerprints else {}
    for column, values in response.values.items():
        ref = refs[column]
        features[column] = {
            "ref": ref,
            "dtype": _dtype_text(dtypes[column]),
            "fingerprint": fingerprints[ref],
            "values": values,
            "statuses": statuses[column],
        }
        if ref in outdated:
            features[column]["applied_fingerprint"] = outdated[ref]
    return orjson.dumps(
        {
            "request_id": request_id,
            "request_time": response.request_time,
            "entities": response.entities,
            "features": features,
        }
    )


# --- the online-features handler -----------------------------------------------------------


@dataclass
class _OnlineFeatures:
    """POST /v1/online-features: read and check the body, retrieve, encode, log, count.

    With a network store (``offload``), retrieval runs in a worker thread (at most
    ``threads`` at once) so a store that hangs holds a thread, never the event loop; beyond
    ``max_pending`` requests waiting for the store, a request is shed at once with 503 and
    ``Retry-After``. The embedded SQLite store is read inline: a read takes microseconds and, in
    WAL mode, never waits for a writer.
    """

    store: FeatureStore
    metrics: ServerMetrics
    max_body: int
    max_entities: int
    offload: bool = False
    max_pending: int = 256
    threads: int = 32
    writer: ServingLogWriter | None = None
    pending: int = field(default=0, init=False)
    _limiter: CapacityLimiter | None = field(default=None, init=False, repr=False)
    _parsers: tuple[RepoContents | None, dict[str, Callable[[Any], Any]]] = field(
        default=(None, {}), init=False, repr=False
    )

    async def _offloaded(self, call: Callable[[], OnlineResponse]) -> OnlineResponse:
        """``call()`` in a worker thread, or 503 at once when too many requests wait."""
        if self.pending >= self.max_pending:
            raise _Overloaded(
                f"{self.pending} requests are waiting for the online store (server."
                "max_pending_requests in featurestore.yaml); retry in a second"
            )
        if self._limiter is None:
            self._limiter = CapacityLimiter(self.threads)
        self.pending += 1
        try:
            return await to_thread.run_sync(call, limiter=self._limiter)
        finally:
            self.pending -= 1

    def parsers(self, repo: RepoContents) -> dict[str, Callable[[Any], Any]]:
        """The request column parsers of the served version's definitions."""
        known, parsers = self._parsers
        if known is not repo:
            parsers = _request_parsers(repo)
            self._parsers = (repo, parsers)
        return parsers

    async def respond(
        self, scope: Scope, receive: Receive, request_id: str
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """Status, body and extra headers of the answer; None if the client went away."""
        started = time.perf_counter_ns()
        try:
            body = await _receive_body(scope, receive, self.max_body)
            retriever = self.store.retriever  # one version for the whole request
            req = parse_request(body, self.max_entities, self.parsers(retriever.repo))
            call = partial(
                retriever.get,
                req.features,
                req.feature_service,
                req.entities,
                req.request_data,
                full_feature_names=req.full_feature_names,
            )
            response = await self._offloaded(call) if self.offload else call()
            payload = encode_response(response, request_id)
        except _ClientGone:
            return None
        except Exception as exc:
            return _error_parts(exc, request_id, "online-features")
        writer = self.writer
        if writer is not None:
            writer.log(
                response,
                request_id=request_id,
                latency_us=(time.perf_counter_ns() - started) // 1000,
                request_data=req.request_data,
                feature_service=req.feature_service,
            )
        self.metrics.count_values(response)
        return 200, payload, []


# --- the middleware: request id, auth, request metrics, the fast path -------------------------

_JSON_HEADER = (b"content-type", JSON.encode())
_CLIENT_GONE = 499  # the status recorded in metrics when the client left mid-request


class _ServerMiddleware:
    """Gives each request an id (``X-Request-ID``), enforces bearer auth, records metrics, and
    answers ``POST /v1/online-features`` itself.

    A plain ASGI middleware (cheaper per request than Starlette's BaseHTTPMiddleware). Serving
    online features here rather than through FastAPI's routing saves about 0.1 ms per
    request; the route declared on the app documents the endpoint and answers identically.
    """

    def __init__(
        self, app: ASGIApp, *, auth: BearerAuth, metrics: ServerMetrics, online: _OnlineFeatures
    ) -> None:
        self.app = app
        self.auth = auth
        self.metrics = metrics
        self.online = online

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        scope[REQUEST_ID_KEY] = request_id
        path = scope["path"]
        endpoint = path if path in ENDPOINTS else "other"
        id_header = (b"x-request-id", request_id.encode())
        if self.auth.enabled and path not in OPEN_PATHS:
            header = next((v for k, v in scope["headers"] if k == b"authorization"), None)
            problem = self.auth.problem(header)
            if problem is not None:
                body = _error_body("Unauthorized", problem, request_id)
                extra = [(b"www-authenticate", b'Bearer realm="featurestore"'), id_header]
                await _send(send, 401, body, extra)
                self.metrics.observe_request(endpoint, 401, time.perf_counter() - started)
                return
        if path == ONLINE_FEATURES and scope["method"] == "POST":
            answer = await self.online.respond(scope, receive, request_id)
            if answer is None:
                status = _CLIENT_GONE
            else:
                status, body, extra = answer
                extra.append(id_header)
                await _send(send, status, body, extra)
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)
            return
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.observe_request(endpoint, status, time.perf_counter() - started)


async def _send(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Send a whole JSON response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [_JSON_HEADER, (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- the app ----------------------------------------------------------------------------------


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


def _request_id(request: Request) -> str:
    return request.scope.get(REQUEST_ID_KEY) or uuid.uuid4().hex


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _open_writer(store: FeatureStore) -> ServingLogWriter:
    from featurestore.serving._serving_log import ServingLogWriter

    cfg = store.repo.config.serving_log
    return ServingLogWriter(
        store.repo.data_dir / cfg.path,
        queue_size=cfg.queue_size,
        batch_size=cfg.batch_size,
        flush_interval_seconds=cfg.flush_interval_seconds,
    )


def _readiness(store: FeatureStore) -> dict[str, Any]:
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


def create_app(store: FeatureStore, config: ServerConfig | None = None) -> FastAPI:
    """The feature server over ``store`` (settings default to the repo's ``server`` block).

    The serving log writer is opened when the app starts and closed (flushing every queued
    record) when it shuts down; the caller keeps ownership of ``store``.
    """
    from featurestore import __version__

    config = config or store.repo.config.server
    metrics = ServerMetrics(store)
    online = _OnlineFeatures(
        store,
        metrics,
        config.max_body_bytes,
        config.max_entities,
        offload=store.repo.config.online_store.type != "sqlite",
        max_pending=config.max_pending_requests,
        threads=config.store_threads,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        writer = online.writer = _open_writer(store)
        metrics.watch_writer(writer)
        if metrics.multiprocess:
            metrics.start_syncing()
        try:
            await run_in_threadpool(_readiness, store)
        except Exception as exc:
            log.warning("feature server not ready yet project=%s reason=%s", store.project, exc)
        try:
            yield
        finally:
            online.writer = None
            writer.close()
            metrics.stop_syncing()
            log.info("serving log closed written=%d dropped=%d", writer.written, writer.dropped)

    app = _FeatureServerApp(
        title="featurestore feature server",
        version=__version__,
        description="Online feature values with a status per value and the fingerprints of "
        "their definitions. Errors answer {error: {type, message}, request_id}.",
        lifespan=lifespan,
    )
    app.state.metrics = metrics
    app.state.online = online
    auth = BearerAuth(configured_tokens(config))
    app.add_middleware(_ServerMiddleware, auth=auth, metrics=metrics, online=online)
    app.front = _ServerMiddleware(
        partial(FastAPI.__call__, app), auth=auth, metrics=metrics, online=online
    )

    @app.post(
        ONLINE_FEATURES,
        summary="Latest feature values for entity rows",
        response_class=Response,
        responses={
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
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": OnlineFeaturesRequest.model_json_schema()}},
            }
        },
    )
    async def online_features(request: Request) -> Response:
        answer = await online.respond(request.scope, request.receive, _request_id(request))
        if answer is None:
            return Response(status_code=_CLIENT_GONE)
        status, body, headers = answer
        return Response(
            body,
            status_code=status,
            media_type=JSON,
            headers={k.decode(): v.decode() for k, v in headers},
        )

    @app.post(
        "/v1/push",
        summary="New events of a source, appended to its files and the online aggregation state",
        response_class=Response,
        responses={
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
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {JSON: {"schema": PushRequest.model_json_schema()}},
            }
        },
    )
    async def push(request: Request) -> Response:
        request_id = _request_id(request)
        try:
            body = await _receive_body(request.scope, request.receive, config.max_body_bytes)
            parsed = _parse_push(body, config.max_entities)
            result = await run_in_threadpool(
                partial(store.push, parsed.source, parsed.rows, to=parsed.to)
            )
        except _ClientGone:
            return Response(status_code=_CLIENT_GONE)
        except Exception as exc:
            return _error_response(exc, request_id, "push")
        return _json(
            {
                "request_id": request_id,
                "source": result.source,
                "events": result.events,
                "offline": result.offline_file is not None,
                "entities": result.entities,
                "late": result.late,
                "compacted": result.compacted,
                "online_error": result.online_error,
            }
        )

    @app.get(
        "/v1/features",
        summary="The applied features",
        response_class=Response,
        responses={
            200: _ok(list[FeatureInfo], "The applied features"),
            **_errors(
                401,
                500,
                503,
                text={503: "Nothing applied yet, or the registry is unreadable."},
            ),
        },
    )
    async def features(request: Request) -> Response:
        try:
            records = await run_in_threadpool(store.list_features)
        except Exception as exc:
            return _error_response(exc, _request_id(request), "features")
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

    @app.get(
        "/healthz",
        summary="Liveness: 200 while the process runs",
        response_class=Response,
        responses={200: _ok(Health, "The process runs")},
    )
    async def healthz() -> Response:
        served = store.served_registry
        if served is None:
            return _json({"status": "ok"})
        return _json(
            {"status": "ok", "registry_version": served.version, "applied_at": served.applied_at}
        )

    @app.get(
        "/readyz",
        summary="Readiness: the registry is applied and the online store answers",
        response_class=Response,
        responses={
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
    )
    async def readyz(request: Request) -> Response:
        try:
            served = await run_in_threadpool(_readiness, store)
        except Exception as exc:
            message = str(exc) or type(exc).__name__
            return _json(
                {
                    "error": {"type": _public_type(exc), "message": message},
                    "request_id": _request_id(request),
                },
                503,
            )
        return _json({"status": "ready", **served})

    @app.post(
        RELOAD,
        summary="Look for a newly applied registry now and serve it if the code matches",
        response_class=Response,
        responses={
            200: _ok(ReloadResponse, "The version served after the check"),
            **_errors(401, 500, 503),
        },
    )
    async def reload(request: Request) -> Response:
        try:
            result = await run_in_threadpool(store.reload)
        except Exception as exc:
            return _error_response(exc, _request_id(request), "reload")
        return _json(
            {
                "registry_version": result.version,
                "applied_at": result.applied_at,
                "switched": result.switched,
                "code_matches": result.code_matches,
                "problem": result.problem,
            }
        )

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}, **_errors(401)},
    )
    async def prometheus_metrics() -> Response:
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        phrase = HTTPStatus(exc.status_code).phrase
        message = (
            f"no endpoint {request.method} {request.url.path}; see /docs"
            if exc.status_code == 404
            else f"{phrase}: {request.method} {request.url.path}"
        )
        return Response(
            _error_body(phrase.replace(" ", ""), message, _request_id(request)),
            status_code=exc.status_code,
            media_type=JSON,
            headers=exc.headers,
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        request_id = _request_id(request)
        response = _error_response(exc, request_id, request.url.path)
        response.headers["X-Request-ID"] = request_id
        return response

    return app
