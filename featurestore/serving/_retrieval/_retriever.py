"""OnlineRetriever: one repo's features, as applied, served from one online store."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from featurestore._registry import RegistryState
from featurestore._repo import RepoContents
from featurestore._selection import check_selection
from featurestore._times import epoch_us
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import DefinitionsCache
from featurestore.serving._response import OnlineResponse
from featurestore.serving._retrieval._features import FeatureReader
from featurestore.serving._retrieval._on_demand import OnDemandFingerprints, run_on_demand_view
from featurestore.serving._retrieval._plan import Prepared, prepare
from featurestore.serving._retrieval._request import (
    RequestState,
    as_columns,
    as_dates,
    as_of,
    row_count,
)
from featurestore.serving._retrieval._windows import WindowReader
from featurestore.sources._appends import RowsLike

__all__ = ["OnlineRetriever"]

_MAX_PLANS = 1024


class OnlineRetriever:
    """Serves features of one repo, as applied in ``applied``, from one online store.

    ``fingerprints`` returns the applied fingerprints of some references and raises if the
    loaded definitions differ from what was applied.
    """

    def __init__(
        self,
        repo: RepoContents,
        store: OnlineStore,
        applied: RegistryState,
        fingerprints: Callable[[list[str]], dict[str, str]],
        fallback_to_defaults: bool = False,
        definitions: DefinitionsCache | None = None,
    ) -> None:
        self.repo = repo
        self.store = store
        self.applied = applied
        self.key_dtypes = {v.name: v.join_keys for v in applied.views.values()}
        self.fingerprints = fingerprints
        self.fallback_to_defaults = fallback_to_defaults
        self.definitions = definitions or DefinitionsCache(store)
        self._prepared: dict[tuple[Any, ...], Prepared] = {}
        self._features = FeatureReader(store, self.definitions, fallback_to_defaults)
        self._windows = WindowReader(store, self.definitions, fallback_to_defaults)
        self._on_demand = OnDemandFingerprints(applied)

    def _prepare(
        self, features: Sequence[str] | None, service: str | None, full_names: bool
    ) -> Prepared:
        """The selection worked out, from the cache when it was seen before."""
        check_selection(features, service, full_names)
        refs = tuple(dict.fromkeys(features)) if features is not None else None
        cache_key = (refs, service, full_names)
        prepared = self._prepared.get(cache_key)
        if prepared is None:
            if len(self._prepared) >= _MAX_PLANS:  # bounded: clients choose the feature lists
                self._prepared.clear()
            prepared = self._prepared[cache_key] = prepare(
                self.repo,
                self.applied,
                self.key_dtypes,
                self.fingerprints,
                features,
                service,
                full_names,
            )
        return prepared

    def get(
        self,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        entities: RowsLike | None = None,
        request_data: RowsLike | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Values and statuses for each entity row; see FeatureStore.get_online_features."""
        prepared = self._prepare(features, feature_service, full_feature_names)
        now = as_of(request_time)
        entities = as_columns("entities", entities)
        request_data = as_columns("request_data", request_data)
        n = row_count(prepared, entities, request_data)
        request_data = as_dates(prepared, request_data)
        state = RequestState(entities, n, epoch_us(now), prepared.read_fingerprints)
        for read in prepared.reads:
            if read.columns:
                self._features.read(read, state)
            if read.windows:
                self._windows.read(read, state)
        for run in prepared.on_demand:
            run_on_demand_view(run, request_data, state.values, state.statuses)
        return self._response(prepared, state, now)

    def _response(
        self, prepared: Prepared, state: RequestState, now: dt.datetime
    ) -> OnlineResponse:
        """The response of a filled request, under the fingerprints that computed it."""
        fingerprints, dtypes = prepared.fingerprints, prepared.dtypes
        if state.computed_with:
            fingerprints = self._on_demand.computed_with(prepared, state.computed_with)
            changed = {c: state.computed_dtypes.get(r) for c, r in prepared.refs.items()}
            dtypes = {c: changed[c] or d for c, d in dtypes.items()}
        refs = prepared.refs
        values, statuses = state.values, state.statuses
        return OnlineResponse(
            entities={k: list(state.entities[k]) for k in prepared.plan.join_keys},
            refs=dict(refs),
            values={column: values[ref] for column, ref in refs.items()},
            statuses={column: statuses[ref] for column, ref in refs.items()},
            dtypes=dtypes,
            fingerprints=fingerprints,
            applied_fingerprints=prepared.fingerprints,
            request_time=now,
            event_times=state.event_times,
        )
