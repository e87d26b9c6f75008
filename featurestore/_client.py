"""A client of the HTTP feature server that returns the library's own OnlineResponse.

    with Client("http://127.0.0.1:6566", token="...") as client:
        resp = client.get_online_features(features=["user_profile:age"], entities={"user_id": [7]})
        resp.to_polars(include_statuses=True)

Server errors come back as the library's exceptions (FeatureReferenceError,
OnlineRequestError, OnlineStoreUnavailableError, RegistryError, FeatureStoreError) with the
server's message; ``status_code`` and ``request_id`` are set on them. One connection is kept
open between calls. Needs httpx (in the ``server`` extra), imported on first use.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import orjson
import polars as pl

import featurestore.errors as errors
from featurestore._value_rules import FeatureStatus
from featurestore.definitions._dtypes import parse_dtype
from featurestore.online._push import PushMode, PushResult
from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval._request import as_columns
from featurestore.sources._appends import RowsLike
from featurestore.sources._frames import as_polars

if TYPE_CHECKING:
    import httpx

__all__ = ["Client"]

_STATUS = {s.value: s for s in FeatureStatus}
# error classes a server response may name, constructed from its message alone
_ERRORS: dict[str, type[errors.FeatureStoreError]] = {
    cls.__name__: cls
    for cls in (
        errors.FeatureStoreError,
        errors.DefinitionError,
        errors.RepoError,
        errors.ConfigError,
        errors.RegistryError,
        errors.FeatureReferenceError,
        errors.SourceError,
        errors.SourceNotFoundError,
        errors.SchemaMismatchError,
        errors.PushError,
        errors.SpineError,
        errors.TransformError,
        errors.OnlineRequestError,
        errors.OnlineStoreError,
        errors.OnlineStoreUnavailableError,
    )
}
# when the server names no library error (e.g. a proxy answered): by HTTP status
_BY_STATUS: dict[int, type[errors.FeatureStoreError]] = {
    400: errors.OnlineRequestError,
    404: errors.FeatureReferenceError,
    413: errors.OnlineRequestError,
    422: errors.OnlineRequestError,
    502: errors.OnlineStoreUnavailableError,
    503: errors.OnlineStoreUnavailableError,
    504: errors.OnlineStoreUnavailableError,
}
_DTYPES: dict[str, pl.DataType] = {"Datetime(UTC)": pl.Datetime("us", "UTC")}


def _dtype(name: str) -> pl.DataType:
    dtype = _DTYPES.get(name)
    if dtype is None:
        dtype = _DTYPES[name] = parse_dtype(name)
    return dtype


def _parser(dtype: pl.DataType) -> Callable[[str], Any] | None:
    """How to turn JSON text back into a temporal value (None when JSON already gives it)."""
    if isinstance(dtype, pl.Datetime):
        return dt.datetime.fromisoformat
    if isinstance(dtype, pl.Date):
        return dt.date.fromisoformat
    return None


def _json_default(value: Any) -> Any:
    if isinstance(value, pl.Series):
        return value.to_list()
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    if hasattr(value, "isoformat"):  # e.g. a pandas Timestamp
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _columns(name: str, given: object) -> dict[str, Any]:
    """Entity or request columns (a mapping, or any table the library takes) as JSON-ready
    lists (tuples, Series and other sequences become lists)."""
    columns = as_columns(name, given)
    return {
        k: v if isinstance(v, list | str | bytes) or not isinstance(v, Sequence) else list(v)
        for k, v in columns.items()
    }


def decode_response(payload: bytes) -> OnlineResponse:
    """The OnlineResponse of a ``POST /v1/online-features`` body."""
    data = orjson.loads(payload)
    refs: dict[str, str] = {}
    values: dict[str, list[Any]] = {}
    statuses: dict[str, list[FeatureStatus]] = {}
    dtypes: dict[str, pl.DataType] = {}
    fingerprints: dict[str, str] = {}
    applied: dict[str, str] = {}
    for column, feature in data["features"].items():
        ref = feature["ref"]
        dtype = _dtype(feature["dtype"])
        parse = _parser(dtype)
        column_values = feature["values"]
        if parse is not None:
            column_values = [None if v is None else parse(v) for v in column_values]
        refs[column] = ref
        values[column] = column_values
        statuses[column] = [_STATUS[s] for s in feature["statuses"]]
        dtypes[column] = dtype
        fingerprints[ref] = feature["fingerprint"]
        applied[ref] = feature.get("applied_fingerprint") or feature["fingerprint"]
    return OnlineResponse(
        entities=data["entities"],
        refs=refs,
        values=values,
        statuses=statuses,
        dtypes=dtypes,
        fingerprints=fingerprints,
        request_time=dt.datetime.fromisoformat(data["request_time"]),
        applied_fingerprints=applied,
    )


class Client:
    """Talks to one feature server over a kept-alive connection; not shared across processes.

    ``token`` is sent as ``Authorization: Bearer <token>``; ``timeout`` bounds each call in
    seconds. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, url: str, token: str | None = None, timeout: float = 5.0) -> None:
        try:
            import httpx
        except ImportError:
            raise errors.FeatureStoreError(
                "the feature server client needs httpx: pip install 'featurestore[server]'"
            ) from None
        self.url = url.rstrip("/")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http: httpx.Client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout)
        self._httpx = httpx

    def get_online_features(
        self,
        features: list[str] | None = None,
        feature_service: str | None = None,
        entities: RowsLike | None = None,
        request_data: RowsLike | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Latest values for each entity row, as :meth:`FeatureStore.get_online_features`
        (a datetime ``request_time`` is sent as ISO 8601 text; naive means UTC)."""
        body: dict[str, Any] = {"entities": _columns("entities", entities)}
        if features is not None:
            body["features"] = list(features)
        if feature_service is not None:
            body["feature_service"] = feature_service
        if request_data is not None:
            body["request_data"] = _columns("request_data", request_data)
        if full_feature_names:
            body["full_feature_names"] = True
        if request_time is not None:
            body["request_time"] = (
                request_time.isoformat() if isinstance(request_time, dt.datetime) else request_time
            )
        content = orjson.dumps(body, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
        response = self._request("POST", "/v1/online-features", content)
        return decode_response(response.content)

    def push(
        self,
        source: str,
        rows: RowsLike,
        *,
        to: PushMode = "online_and_offline",
    ) -> PushResult:
        """Send new events of ``source`` (any table or records) to ``POST /v1/push`` (``to``
        as in :meth:`FeatureStore.push`); the same :class:`PushResult` as the library's, but
        for the part file's name, which the server keeps to itself."""
        records = as_polars(rows, errors.PushError, "push rows").to_dicts()
        body = {"source": source, "rows": records, "to": to}
        content = orjson.dumps(body, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)
        answer = self._request("POST", "/v1/push", content)
        return PushResult.from_json(orjson.loads(answer.content))

    def list_features(self) -> list[dict[str, Any]]:
        """The server's applied features: ref, view, name, kind, dtype, owner, fingerprint."""
        features: list[dict[str, Any]] = orjson.loads(self._request("GET", "/v1/features").content)
        return features

    def ready(self) -> bool:
        """Whether the server is ready to serve (registry applied, online store reachable)."""
        try:
            self._request("GET", "/readyz")
        except errors.FeatureStoreError:
            return False
        return True

    def _request(self, method: str, path: str, content: bytes | None = None) -> httpx.Response:
        httpx = self._httpx
        try:
            response = self._http.request(method, path, content=content)
        except httpx.TimeoutException as exc:
            raise errors.OnlineStoreUnavailableError(
                f"the feature server at {self.url} did not answer {method} {path} in time: {exc}"
            ) from exc
        except httpx.TransportError as exc:
            raise errors.OnlineStoreUnavailableError(
                f"the feature server at {self.url} is unreachable ({method} {path}): {exc}"
            ) from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> errors.FeatureStoreError:
        """The library error a server error response stands for."""
        kind, message, request_id = None, None, None
        try:
            data = orjson.loads(response.content)
            kind = data["error"]["type"]
            message = data["error"]["message"]
            request_id = data.get("request_id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            pass
        status = response.status_code
        cls = _ERRORS.get(kind or "") or _BY_STATUS.get(status, errors.FeatureStoreError)
        if message is None:
            text = response.text.strip()[:500]
            message = f"feature server answered HTTP {status}" + (f": {text}" if text else "")
        exc = cls(message)
        exc.status_code = status  # type: ignore[attr-defined]
        exc.request_id = request_id or response.headers.get("x-request-id")  # type: ignore[attr-defined]
        return exc

    def close(self) -> None:
        """Close the connection."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
