"""The online store: latest feature values per entity, and each entity's recent events for
windowed aggregations, for low-latency retrieval; materialization and push write them.
A backend implements :class:`OnlineStore`; :func:`open_online_store` picks one from the config
(importing a backend's client library only when it is used)."""

from featurestore.online._backends import open_online_store
from featurestore.online._guard import GuardCheck, GuardReport
from featurestore.online._protocol import OnlineStore
from featurestore.online._publish import MaterializationResult
from featurestore.online._push import PushMode, PushResult
from featurestore.online._state import MaterializationState

__all__ = [
    "GuardCheck",
    "GuardReport",
    "MaterializationResult",
    "MaterializationState",
    "OnlineStore",
    "PushMode",
    "PushResult",
    "open_online_store",
]
