"""Online serving: retrieval from the online store, the one path every answer takes (the served
version, timed, reported to hooks), responses, the OnlineFeatures protocol the facade and the
HTTP client share, the serving log and the served registry version."""

from featurestore.serving._protocol import OnlineFeatures
from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._serving_log import ServingLogWriter, read_serving_log
from featurestore.serving._versions import ReloadResult

__all__ = [
    "OnlineFeatures",
    "OnlineResponse",
    "OnlineRetriever",
    "ReloadResult",
    "ServingLogWriter",
    "read_serving_log",
]
