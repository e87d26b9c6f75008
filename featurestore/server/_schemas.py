"""The server's request and response models: they document the API in OpenAPI (the online
features body is checked by hand, see ``_requests``); the push body is validated by its model."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue
from pydantic.config import JsonDict

from featurestore._value_rules import FeatureStatus

__all__ = [
    "MIN_KEY",
    "ErrorResponse",
    "FeatureInfo",
    "Health",
    "OnlineFeaturesRequest",
    "OnlineFeaturesResponse",
    "PushRequest",
    "PushResponse",
    "ReloadResponse",
]

_REF_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*$"
MIN_KEY, _MAX_KEY = -(2**63), 2**64 - 1  # integer keys: 64-bit (orjson reads larger as floats)
_Key = Annotated[int, Field(ge=MIN_KEY, le=_MAX_KEY)]
_ONLINE_EXAMPLES: list[JsonValue] = [
    {"features": ["user_profile:age", "user_spending:spend_7d"], "entities": {"user_id": [7, 9]}},
    {
        "feature_service": "fraud_detection_v2",
        "entities": {"user_id": [7], "merchant_id": [1042]},
        "request_data": {"amount": [12.5], "channel": ["online"]},
    },
]
_PUSH_EXAMPLE: JsonDict = {
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


class OnlineFeaturesRequest(BaseModel):
    """Body of POST /v1/online-features: exactly one of ``features`` or ``feature_service``
    (a null one counts as absent); ``entities`` holds the join keys of the requested views and
    ``request_data`` the request columns of the requested on-demand views, one value per row,
    all of the same length. A null ``entities``, ``request_data`` or ``request_time`` is the
    same as leaving it out."""

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
    request_time: dt.datetime | None = Field(
        None,
        description="The time to serve as of, ISO 8601 (naive means UTC); values older than "
        "their view's ttl at that time are STALE. Default: now.",
    )


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
