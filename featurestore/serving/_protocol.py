"""OnlineFeatures: the online retrieval both the in-process ``FeatureStore`` and the HTTP
``Client`` offer, with the same signature, so code can take either."""

from __future__ import annotations

import datetime as dt
from typing import Protocol, runtime_checkable

from featurestore.online._push import PushMode, PushResult
from featurestore.serving._response import OnlineResponse
from featurestore.sources._appends import RowsLike

__all__ = ["OnlineFeatures"]


@runtime_checkable
class OnlineFeatures(Protocol):
    """Latest feature values for entity rows, with a status per value (see
    ``FeatureStore.get_online_features``), and new events pushed to a source (see
    ``FeatureStore.push``)."""

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
        """Values and statuses for each entity row, as of ``request_time`` (default: now)."""
        ...

    def push(
        self, source: str, rows: RowsLike, *, to: PushMode = "online_and_offline"
    ) -> PushResult:
        """Append events of ``source`` to its files and to the online aggregation state."""
        ...
