"""Reading requests: the body within the size limit, an online-features body checked by hand
(orjson, no validation models: latency is the point), request columns whose JSON text must
become dates or datetimes, and the push body (validated by its pydantic model)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
from pydantic import ValidationError

from featurestore._repo import RepoContents
from featurestore._times import as_naive_utc, as_utc
from featurestore.definitions._dtypes import dtype_kind
from featurestore.errors import OnlineRequestError
from featurestore.server._errors import TooLarge
from featurestore.server._http import Receive, Scope
from featurestore.server._schemas import MIN_KEY, PushRequest
from featurestore.serving._serving_path import OnlineRequest

__all__ = [
    "BODY_FIELDS",
    "ClientGone",
    "parse_push",
    "parse_request",
    "receive_body",
    "request_parsers",
]

BODY_FIELDS = (
    "features",
    "feature_service",
    "entities",
    "request_data",
    "full_feature_names",
    "request_time",
)

Parser = Callable[[Any], Any]


class ClientGone(Exception):
    """The client disconnected before sending the whole body."""


async def receive_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, refused (413) beyond ``limit`` bytes whether announced or streamed."""
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise OnlineRequestError(f"Content-Length {declared!r} is not a number") from None
        if size > limit:
            raise TooLarge(
                f"the request body has {size} bytes; this server accepts at most {limit} "
                "(server.max_body_bytes in featurestore.yaml)"
            )
    chunks = []
    received = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        received += len(chunk)
        if received > limit:
            raise TooLarge(
                f"the request body exceeds {limit} bytes "
                "(server.max_body_bytes in featurestore.yaml)"
            )
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


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


def _iso_date(column: str) -> Parser:
    """ISO dates; an ISO datetime at midnight counts as its date (as in the library)."""

    def parse(value: Any) -> Any:
        if not isinstance(value, str):
            return value  # retrieval rejects it with the expected type
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
        try:
            t = dt.datetime.fromisoformat(value)
        except ValueError:
            t = None
        if t is None or t.time() != dt.time():
            raise OnlineRequestError(
                f"request_data[{column!r}] takes ISO dates such as 2024-03-01 (or a datetime "
                f"at midnight); found {value!r}"
            )
        return t.date()

    return parse


def _iso_datetime(column: str, aware: bool) -> Parser:
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


def request_parsers(repo: RepoContents) -> dict[str, Parser]:
    """Parsers of request columns whose JSON text must become dates or datetimes."""
    out: dict[str, Parser] = {}
    for odfv in repo.on_demand_views.values():
        for source in odfv.request_sources:
            for column, dtype in source.fields.items():
                kind = dtype_kind(dtype)
                if kind == "date":
                    out[column] = _iso_date(column)
                elif kind == "datetime":
                    out[column] = _iso_datetime(column, bool(getattr(dtype, "time_zone", None)))
    return out


def _json_object(body: bytes) -> dict[str, Any]:
    """The body as a JSON object of known fields."""
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
    return data


def _selection(data: dict[str, Any]) -> tuple[list[str] | None, str | None, bool]:
    """The features or the feature service asked for, and whether names are full."""
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
    return features, service, full_names


def _request_time(data: dict[str, Any]) -> str | None:
    """The ISO 8601 time to serve as of (retrieval parses it), or None for now."""
    value = data.get("request_time")
    if value is not None and not isinstance(value, str):
        raise OnlineRequestError(
            "'request_time' must be an ISO 8601 time such as 2025-03-01T12:00:00Z, found "
            f"{_json_type(value)}"
        )
    return value


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


def _entities(data: dict[str, Any]) -> dict[str, list[Any]]:
    """The entity columns, every key an integer or a string (what the schema says, for every
    key given); JSON Schema's integers include 7.0, which orjson reads as a float."""
    entities = _columns(data, "entities")
    for key, column in entities.items():
        for row, value in enumerate(column):
            if value is None or type(value) is int or type(value) is str:
                continue
            # (the bounds as floats: 2**64 - 1 is 2**64 once read as one)
            if type(value) is float and value.is_integer() and MIN_KEY <= value <= 2.0**64:
                column[row] = int(value)
                continue
            found = (
                "a number with a fraction or beyond 64-bit integers"
                if isinstance(value, float)
                else _json_type(value)
            )
            raise OnlineRequestError(
                f"entities[{key!r}] holds integer or string keys (null for a row without "
                f"one); found {found} in row {row}"
            )
    return entities


def parse_request(
    body: bytes, max_entities: int, parsers: dict[str, Parser] | None = None
) -> OnlineRequest:
    """Check the shape of an online-features body; OnlineRequestError names the problem."""
    data = _json_object(body)
    features, service, full_names = _selection(data)
    request_time = _request_time(data)
    entities = _entities(data)
    request_data = _columns(data, "request_data")
    rows = max((len(c) for c in (*entities.values(), *request_data.values())), default=0)
    if rows > max_entities:
        raise TooLarge(
            f"the request has {rows} entity rows; this server serves at most {max_entities} "
            "per request (server.max_entities in featurestore.yaml)"
        )
    if parsers:
        for column, values in request_data.items():
            parse = parsers.get(column)
            if parse is not None:
                request_data[column] = [parse(v) for v in values]
    return OnlineRequest(features, service, entities, request_data, full_names, request_time)


def parse_push(body: bytes, max_rows: int) -> PushRequest:
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
        raise TooLarge(
            f"the push has {len(parsed.rows)} rows; this server accepts at most {max_rows} "
            "per request (server.max_entities in featurestore.yaml)"
        )
    return parsed
