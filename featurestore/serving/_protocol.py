"""OnlineFeatures: the online retrieval both the in-process ``FeatureStore`` and the HTTP
``Client`` offer, with the same signature, so code can take either."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from featurestore.serving._response import OnlineResponse

__all__ = ["OnlineFeatures"]


@runtime_checkable
class OnlineFeatures(Protocol):
    """Latest feature values for entity rows, with a status per value (see
    ``FeatureStore.get_online_features``). ``push`` is not part of it: the facade returns a
    ``PushResult`` and the client the server's JSON answer."""

    def get_online_features(
        self,
        features: list[str] | None = None,
        feature_service: str | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Values and statuses for each entity row, as of ``request_time`` (default: now)."""
        ...
