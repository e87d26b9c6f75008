"""Which definitions computed what is online.

Every value written online (a view's latest values at materialization, an aggregation view's
events at materialization or push) carries, in its ``__d`` field, the digest of the definitions
it was computed with: per feature its fingerprint and its definition as the registry records it,
and for events the stored layout. The definitions behind each digest are written to the online store
itself, under the reserved view ``__fs_definitions`` and before any value that names them, so
every serving process, wherever it runs, can tell a value computed by the applied definition
from one computed by an earlier one, and serve the latter under its own fingerprint until the
view is rebuilt. The digest of a view's last published events is also in its events state
(see :mod:`featurestore.online._state`), so a push can write its events in a form the
stored ones can be read with.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from featurestore.definitions import Aggregation, FeatureView
from featurestore.definitions._aggregation import AGGREGATIONS
from featurestore.definitions._dtypes import parse_dtype
from featurestore.online._codec import DIGEST_FIELD, events_store_name
from featurestore.online._protocol import META_VIEW, OnlineStore, events_state_key

__all__ = [
    "DEFINITIONS_VIEW",
    "DIGEST_FIELD",
    "DefinitionsCache",
    "PublishedDefinitions",
    "rebuild_aggregation",
]

DEFINITIONS_VIEW = "__fs_definitions"  # reserved: a view name never starts with "__fs"
_CACHE_LIMIT = 4096


class PublishedDefinitions(BaseModel):
    """The definitions one part of a view (its latest values, or its events) was computed with.

    ``fingerprints`` maps each feature or aggregation name to its fingerprint and
    ``definitions`` to its definition as the registry records it, so values of an earlier
    definition are served as that definition would (its default, its ttl) and an earlier
    aggregation can be evaluated over the events it was stored for; for events, ``inputs`` maps
    each stored field to the SQL it holds, and ``max_window_us`` is the longest window the
    stored events cover.
    """

    view: str
    fingerprints: dict[str, str]
    definitions: dict[str, dict[str, Any]] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    max_window_us: int | None = None

    @property
    def digest(self) -> str:
        """12 hex characters of SHA-256 over the canonical JSON of the definitions."""
        text = json.dumps(self.model_dump(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def key(self) -> str:
        return record_key(self.view, self.digest)

    def source_of_events(self) -> Any:
        """The source and keys the stored events were read with (same for every aggregation)."""
        first = next(iter(self.definitions.values()), {})
        return first.get("source"), first.get("join_keys")


def record_key(stored_view: str, digest: str) -> str:
    return f"{stored_view}:{digest}"


def rebuild_aggregation(name: str, definition: Mapping[str, Any]) -> Aggregation:
    """The aggregation a registry definition describes (kind, column, window, dtype)."""
    kind = AGGREGATIONS[definition["function"]]
    window = dt.timedelta(microseconds=definition["window_us"])
    dtype = parse_dtype(definition["dtype"])
    if definition["function"] == "count":
        return kind(window=window, name=name, dtype=dtype)
    return kind(column=definition["column"], window=window, name=name, dtype=dtype)


def write_definitions(store: OnlineStore, definitions: PublishedDefinitions) -> None:
    """Record the definitions behind a digest (idempotent); done before writing values."""
    store.publish(
        DEFINITIONS_VIEW,
        [definitions.key()],
        [definitions.model_dump_json().encode()],
        replace=False,
    )


class DefinitionsCache:
    """Published definitions by (stored view, digest), read from the store once per process
    (a digest's definitions never change). A digest without a record, as in values written
    before records existed, maps to None."""

    def __init__(self, store: OnlineStore) -> None:
        self.store = store
        self._found: dict[tuple[str, str | None], PublishedDefinitions | None] = {}

    def get(self, stored_view: str, digest: str | None) -> PublishedDefinitions | None:
        key = (stored_view, digest)
        if key in self._found:
            return self._found[key]
        found = None
        if digest is not None:
            [raw] = self.store.read(DEFINITIONS_VIEW, [record_key(stored_view, digest)])
            if raw is not None:
                try:
                    found = PublishedDefinitions.model_validate_json(raw)
                except ValidationError:
                    found = None
        if len(self._found) >= _CACHE_LIMIT:
            self._found.clear()
        self._found[key] = found
        return found

    def current(self, view: str) -> PublishedDefinitions | None:
        """The definitions of the events last published for ``view`` (read each time: a
        materialization moves them), from the view's events state in ``__fs_meta``."""
        [raw] = self.store.read(META_VIEW, [events_state_key(view)])
        if raw is None:
            return None
        digest = json.loads(raw).get("digest")
        return self.get(events_store_name(view), digest)


def values_definitions(
    view: FeatureView,
    fingerprints: Mapping[str, str],
    definitions: Mapping[str, Mapping[str, Any]],
) -> PublishedDefinitions:
    """What a view's latest values are computed with: the fingerprint and definition of each
    plain feature (``fingerprints`` and ``definitions`` by ``view:feature`` reference, as the
    applied registry has them)."""
    refs = {f.name: f"{view.name}:{f.name}" for f in view.features}
    return PublishedDefinitions(
        view=view.name,
        fingerprints={name: fingerprints[ref] for name, ref in refs.items()},
        definitions={name: dict(definitions[ref]) for name, ref in refs.items()},
    )
