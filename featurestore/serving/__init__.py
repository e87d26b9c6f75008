"""Online serving: retrieval from the online store, responses, the serving log and the served
registry version."""

from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.serving._serving_log import ServingLogWriter, read_serving_log
from featurestore.serving._versions import ReloadResult

__all__ = [
    "OnlineResponse",
    "OnlineRetriever",
    "ReloadResult",
    "ServingLogWriter",
    "read_serving_log",
]
