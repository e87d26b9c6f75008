"""One online store read per view: the encoded entity keys of a request, and their stored
values, or none when the store is unreachable and the repo falls back to defaults."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from featurestore.definitions import FeatureView
from featurestore.errors import OnlineStoreUnavailableError
from featurestore.online._codec import encode_key
from featurestore.online._protocol import OnlineStore
from featurestore.serving._retrieval._request import RequestState

__all__ = ["entity_keys", "fetch"]

log = logging.getLogger(__name__)


def entity_keys(
    view: FeatureView, entities: Mapping[str, Sequence[Any]], n: int
) -> list[str | None]:
    """The stored key of each entity row of ``view``; None for a row missing one of its keys."""
    columns = [entities[k] for k in view.join_keys]
    return [
        None if any(c[i] is None for c in columns) else encode_key(tuple(c[i] for c in columns))
        for i in range(n)
    ]


def fetch(
    store: OnlineStore,
    name: str,
    keys: list[str | None],
    state: RequestState,
    fallback_to_defaults: bool,
) -> tuple[dict[str | None, bytes | None], bool]:
    """The stored values of ``keys`` in one read, and whether the store is unreachable
    (then nothing is read, and ``state`` remembers it for the next views; without the
    defaults fallback the error propagates)."""
    if not state.store_down:
        wanted = [k for k in keys if k is not None]
        try:
            return dict(zip(wanted, store.read(name, wanted), strict=True)), False
        except OnlineStoreUnavailableError:
            if not fallback_to_defaults:
                raise
    state.store_down = True
    log.warning("online store unavailable view=%s fallback=defaults rows=%d", name, len(keys))
    return {}, True
