"""The one retrieval path of a serving process: the facade's ``get_online_features`` and the
server's online-features endpoint both answer through a :class:`ServingPath`.

A request takes the served version's retriever once (the server parses the body with that
version's request columns and retrieves with the same version), is retrieved, timed, and then
reported to the ``on_served`` hooks: the serving log (the facade's writer) and the server's
metrics. Hooks are configured once, when the facade and the app are built."""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._retrieval._request import as_columns
from featurestore.sources._appends import RowsLike

if TYPE_CHECKING:
    from featurestore.serving._serving_log import ServingLogWriter

__all__ = ["SERVING_LOG_HOOK", "OnlineRequest", "Served", "ServedHook", "ServingPath", "log_to"]

log = logging.getLogger(__name__)

SERVING_LOG_HOOK = "serving_log"  # the name of the hook that logs what is served


@dataclass(slots=True)
class OnlineRequest:
    """What one ``get_online_features`` call asks for (see FeatureStore.get_online_features)."""

    features: Sequence[str] | None = None
    feature_service: str | None = None
    entities: RowsLike | None = None
    request_data: RowsLike | None = None
    full_feature_names: bool = False
    request_time: dt.datetime | str | None = None


class Served(NamedTuple):
    """One answered request, as the hooks see it."""

    response: OnlineResponse
    request_id: str
    latency_us: int  # from the request's start to the end of retrieval
    request_data: Mapping[str, Sequence[Any]] | None
    feature_service: str | None


ServedHook = Callable[[Served], None]


class ServingPath:
    """Retrieval over the served version, timed and reported to the ``on_served`` hooks.

    ``current`` returns the retriever of the version served now (it raises, e.g. a
    RegistryError, when nothing can be served).
    """

    def __init__(self, current: Callable[[], OnlineRetriever]) -> None:
        self._current = current
        self._hooks: dict[str, ServedHook] = {}

    @property
    def retriever(self) -> OnlineRetriever:
        """The served version's retriever; take it once per request."""
        return self._current()

    def on_served(self, name: str, hook: ServedHook) -> None:
        """Call ``hook`` with every request answered from now on; it replaces a hook of the
        same ``name``, so an app built twice over one store logs and counts once."""
        self._hooks = {**self._hooks, name: hook}  # a new dict: requests iterate the old one

    def log_to(self, writer: Callable[[], ServingLogWriter]) -> None:
        """Queue every request answered from now on in the serving log ``writer()`` returns."""
        self.on_served(SERVING_LOG_HOOK, log_to(writer))

    def get(
        self,
        request: OnlineRequest,
        *,
        retriever: OnlineRetriever | None = None,
        request_id: str | None = None,
        started_ns: int | None = None,
    ) -> OnlineResponse:
        """Answer ``request`` with ``retriever`` (default: the served version's) and report it
        to the hooks under ``request_id`` (default: a new one), timed from ``started_ns`` (a
        ``time.perf_counter_ns()``; default: now)."""
        started = time.perf_counter_ns() if started_ns is None else started_ns
        # as columns once, so the hooks (the serving log) see what retrieval saw
        data = request.request_data
        request_data = None if data is None else as_columns("request_data", data)
        response = (retriever or self._current()).get(
            request.features,
            request.feature_service,
            request.entities,
            request_data,
            full_feature_names=request.full_feature_names,
            request_time=request.request_time,
        )
        hooks = self._hooks
        if hooks:
            served = Served(
                response,
                request_id or uuid.uuid4().hex,
                (time.perf_counter_ns() - started) // 1000,
                request_data,
                request.feature_service,
            )
            for name, hook in hooks.items():
                try:
                    hook(served)
                except Exception:  # a hook (log, metrics) never fails the answer it reports
                    log.exception("on_served hook failed hook=%s", name)
        return response


def log_to(writer: Callable[[], ServingLogWriter]) -> ServedHook:
    """A hook that queues each answered request in the serving log ``writer()`` returns (asked
    per request, so a writer closed and replaced is followed)."""

    def log(served: Served) -> None:
        writer().log(
            served.response,
            request_id=served.request_id,
            latency_us=served.latency_us,
            request_data=served.request_data,
            feature_service=served.feature_service,
        )

    return log
