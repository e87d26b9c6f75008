"""Online retrieval: read the online store, apply staleness and defaults, run on-demand views
through the shared transform code. One store round trip per view, whatever the entity count.

Every stored value names the definitions it was computed with (its digest, see
:mod:`featurestore.online._published`). A value computed by an earlier definition than the
applied one is served, until the view is rebuilt, under the fingerprint it was computed with,
and the response says it differs from the applied one: an apply never turns into an outage of
defaults. Where no value of the applied or an earlier definition can be served (a feature added
since the last materialization; an aggregation whose stored events miss its input or its
window), the value is withheld as ``STALE``. An on-demand output computed from such inputs is
reported under the fingerprint its inputs give it."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore._registry import RegistryState
from featurestore._repo import RepoContents
from featurestore._selection import RetrievalPlan, build_plan, check_selection
from featurestore._times import epoch_us, from_epoch_us
from featurestore._transforms import run_on_demand
from featurestore._value_rules import MATCH_FOUND, FeatureStatus, has_rules, resolve
from featurestore.definitions import Aggregation, Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind, dtype_name, parse_dtype
from featurestore.definitions._fingerprint import fingerprint
from featurestore.errors import OnlineRequestError, OnlineStoreUnavailableError
from featurestore.online._codec import (
    DIGEST_FIELD,
    STATUS_FIELD,
    TS_FIELD,
    converter,
    decode_statuses,
    decode_value,
    encode_key,
)
from featurestore.online._event_state import (
    INCOMPLETE,
    MIXED_FIELD,
    WindowLayout,
    aggregate,
    aggregation_input,
    decode_state,
    events_definitions,
    events_store_name,
    window_value,
)
from featurestore.online._protocol import OnlineStore
from featurestore.online._published import (
    DefinitionsCache,
    PublishedDefinitions,
    rebuild_aggregation,
    values_definitions,
)
from featurestore.serving._response import OnlineResponse

__all__ = ["OnlineRetriever"]

log = logging.getLogger(__name__)

_PRESENT = FeatureStatus.PRESENT
_DEFAULTED = FeatureStatus.DEFAULTED
_NOT_FOUND = FeatureStatus.NOT_FOUND
_STALE = FeatureStatus.STALE
_INVALID = FeatureStatus.INVALID
_BY_NAME = {s.value: s for s in FeatureStatus}
_MAX_PLANS = 1024
# Python types a request value may have, by the declared dtype's kind (as the offline spine)
_REQUEST_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "string": (str,),
    "date": (dt.date,),
    "datetime": (dt.datetime,),
}


@dataclass(frozen=True)
class _Column:
    """One batch feature as the read path needs it, worked out once per plan."""

    name: str
    ref: str
    default: Any
    convert: Callable[[Any], Any] | None
    missing: FeatureStatus  # status of a value whose row is absent

    @classmethod
    def of(cls, view: FeatureView, feature: Feature) -> _Column:
        return cls(
            name=feature.name,
            ref=f"{view.name}:{feature.name}",
            default=feature.default,
            convert=converter(feature.dtype),
            missing=_DEFAULTED if feature.default is not None else _NOT_FOUND,
        )


def _columns(name: str, value: object) -> Mapping[str, Sequence[Any]]:
    """Entity or request columns as a mapping of column -> values: a mapping as given, a
    Polars or pandas frame column by column, None as no columns."""
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return value
    if isinstance(value, pl.DataFrame) or type(value).__module__.startswith("pandas"):
        frame = value if isinstance(value, pl.DataFrame) else pl.from_pandas(value)
        return {str(c): frame[c].to_list() for c in frame.columns}
    raise OnlineRequestError(
        f"{name} must be a mapping of column -> list of values, e.g. {{'user_id': [7, 9]}}, "
        f"or a Polars or pandas frame; found {type(value).__name__}"
    )


def _request_time(value: object) -> dt.datetime:
    """The time to serve as of: now when None, a datetime (naive is UTC), or ISO 8601 text."""
    if value is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            raise OnlineRequestError(
                f"request_time {value!r} is not an ISO 8601 time such as 2025-03-01T12:00:00Z"
            ) from None
    if not isinstance(value, dt.datetime):
        raise OnlineRequestError(
            f"request_time must be a datetime (naive means UTC) or ISO 8601 text, found "
            f"{value!r} ({type(value).__name__})"
        )
    return value


def _ttl_us(definitions: PublishedDefinitions) -> int | None:
    """The ttl the latest values of ``definitions`` were computed with (None: no limit)."""
    first = next(iter(definitions.definitions.values()), {})
    seconds = first.get("ttl_seconds")
    return None if seconds is None else round(seconds * 1_000_000)


@dataclass(frozen=True)
class _Window:
    """One aggregation as the read path needs it."""

    agg: Aggregation
    ref: str
    is_float: bool
    definition: dict[str, Any]  # as the applied registry records it


@dataclass(frozen=True)
class _ViewRead:
    view: FeatureView
    key_kinds: dict[str, str]
    columns: tuple[_Column, ...]  # plain features: the latest row
    ttl_us: int | None
    digest: str  # of the applied definitions of the view's latest values
    windows: tuple[_Window, ...] = ()  # aggregations: the recent events
    layout: WindowLayout | None = None
    events_digest: str | None = None  # of the applied definitions of the view's events


@dataclass(frozen=True)
class _OnDemandRun:
    """An on-demand view's input frame layout and outputs, worked out once per plan."""

    view: OnDemandFeatureView
    ruled: bool  # some output has rules or a default: run resolve()
    schema: pl.Schema
    names: tuple[str, ...]  # the input frame's columns, in schema order
    inputs: tuple[tuple[bool, str], ...]  # (from request data, request column or feature ref)
    outputs: tuple[tuple[str, str, bool], ...]  # (name, ref, is a float)

    @classmethod
    def of(cls, odfv: OnDemandFeatureView, views: Mapping[str, FeatureView]) -> _OnDemandRun:
        schema: dict[str, pl.DataType] = {}
        inputs: list[tuple[bool, str]] = []
        for col, dtype in odfv.request_columns.items():
            schema[col] = dtype
            inputs.append((True, col))
        for view, name in odfv.input_refs(views):
            schema[name] = views[view].feature(name).dtype
            inputs.append((False, f"{view}:{name}"))
        return cls(
            view=odfv,
            ruled=any(has_rules(f) for f in odfv.features),
            schema=pl.Schema(schema),
            names=tuple(schema),
            inputs=tuple(inputs),
            outputs=tuple(
                (f.name, f"{odfv.name}:{f.name}", dtype_kind(f.dtype) == "float")
                for f in odfv.features
            ),
        )


@dataclass(frozen=True)
class _Prepared:
    plan: RetrievalPlan
    reads: tuple[_ViewRead, ...]
    on_demand: tuple[_OnDemandRun, ...]
    fingerprints: dict[str, str]  # the applied ones of the requested references
    read_fingerprints: dict[str, str]  # the applied ones of every reference read or requested
    dtypes: dict[str, pl.DataType]
    refs: dict[str, str]  # output column -> view:feature, in output order


@dataclass(slots=True)
class _Served:
    """One request as the read steps fill it: its entity rows and time, and per reference the
    values and statuses so far (per view, the served rows' event times)."""

    entities: Mapping[str, Sequence[Any]]
    n: int
    now_us: int
    applied: dict[str, str]  # the applied fingerprints of the requested references
    store_down: bool = False  # after one timeout, the other views fall back without waiting
    values: dict[str, list[Any]] = field(default_factory=dict)
    statuses: dict[str, list[FeatureStatus]] = field(default_factory=dict)
    event_times: dict[str, list[dt.datetime | None]] = field(default_factory=dict)
    computed_with: dict[str, str] = field(default_factory=dict)  # refs served by older ones
    computed_dtypes: dict[str, pl.DataType] = field(default_factory=dict)  # their dtypes


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
        self._prepared: dict[tuple[Any, ...], _Prepared] = {}
        self._old_aggregations: dict[tuple[str, str], Aggregation] = {}
        self._earlier_columns: dict[tuple[str, str], tuple[pl.DataType, _Column]] = {}
        self._on_demand_fps: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def _prepare(
        self, features: Sequence[str] | None, service: str | None, full_names: bool
    ) -> _Prepared:
        check_selection(features, service, full_names)
        refs = tuple(dict.fromkeys(features)) if features is not None else None
        cache_key = (refs, service, full_names)
        prepared = self._prepared.get(cache_key)
        if prepared is not None:
            return prepared
        if len(self._prepared) >= _MAX_PLANS:  # bounded: clients choose the feature lists
            self._prepared.clear()
        plan = build_plan(
            self.repo, list(features) if features is not None else None, service, full_names
        )
        fingerprints = self.fingerprints([r.ref for r in plan.refs])
        read_fingerprints: dict[str, str] = {}
        reads = []
        for name, wanted in plan.views.items():
            view = plan.batch_views[name]
            recorded = self.key_dtypes.get(name, {})
            kinds = {
                k: ("string" if recorded.get(k) == "String" else "int") for k in view.join_keys
            }
            aggs = [a for f in wanted if (a := view.aggregation(f)) is not None]
            applied = self.fingerprints([f"{name}:{f}" for f in view.feature_names])
            read_fingerprints.update(applied)
            records = self.applied.features
            plain = view.model_copy(update={"aggregations": []})
            reads.append(
                _ViewRead(
                    view=view,
                    key_kinds=kinds,
                    columns=tuple(
                        _Column.of(view, view.feature(f))
                        for f in wanted
                        if view.aggregation(f) is None
                    ),
                    ttl_us=view.ttl // dt.timedelta(microseconds=1) if view.ttl else None,
                    digest=values_definitions(
                        plain, applied, {r: records[r].definition for r in applied}
                    ).digest
                    if view.features
                    else "",
                    windows=tuple(
                        _Window(
                            a,
                            f"{view.name}:{a.name}",
                            dtype_kind(a.dtype) == "float",
                            records[f"{view.name}:{a.name}"].definition,
                        )
                        for a in aggs
                    ),
                    layout=WindowLayout.of(view) if aggs else None,
                    events_digest=events_definitions(
                        view,
                        applied,
                        {
                            f"{name}:{a.name}": records[f"{name}:{a.name}"].definition
                            for a in view.aggregations
                        },
                    ).digest
                    if aggs
                    else None,
                )
            )
        odfvs = tuple(_OnDemandRun.of(o, self.repo.views) for o in plan.on_demand)
        dtypes = {r.column: self.repo.any_view(r.view).feature(r.name).dtype for r in plan.refs}
        prepared = _Prepared(
            plan=plan,
            reads=tuple(reads),
            on_demand=odfvs,
            fingerprints=fingerprints,
            read_fingerprints={**read_fingerprints, **fingerprints},
            dtypes=dtypes,
            refs={r.column: r.ref for r in plan.refs},
        )
        self._prepared[cache_key] = prepared
        return prepared

    def get(
        self,
        features: Sequence[str] | None = None,
        feature_service: str | None = None,
        entities: Mapping[str, Sequence[Any]] | None = None,
        request_data: Mapping[str, Sequence[Any]] | None = None,
        *,
        full_feature_names: bool = False,
        request_time: dt.datetime | str | None = None,
    ) -> OnlineResponse:
        """Values and statuses for each entity row; see FeatureStore.get_online_features."""
        prepared = self._prepare(features, feature_service, full_feature_names)
        now = _request_time(request_time)
        entities = _columns("entities", entities)
        request_data = _columns("request_data", request_data)
        n = self._row_count(prepared, entities, request_data)
        served = _Served(entities, n, epoch_us(now), prepared.read_fingerprints)
        for read in prepared.reads:
            if read.columns:
                self._read_view(read, served)
            if read.windows:
                self._read_windows(read, served)
        values, statuses = served.values, served.statuses
        for run in prepared.on_demand:
            self._run_on_demand(run, request_data, values, statuses)
        fingerprints, dtypes = prepared.fingerprints, prepared.dtypes
        if served.computed_with:
            fingerprints = self._computed_with(prepared, served.computed_with)
            changed = {c: served.computed_dtypes.get(r) for c, r in prepared.refs.items()}
            dtypes = {c: changed[c] or d for c, d in dtypes.items()}
        refs = prepared.refs
        return OnlineResponse(
            entities={k: list(entities[k]) for k in prepared.plan.join_keys},
            refs=dict(refs),
            values={column: values[ref] for column, ref in refs.items()},
            statuses={column: statuses[ref] for column, ref in refs.items()},
            dtypes=dtypes,
            fingerprints=fingerprints,
            applied_fingerprints=prepared.fingerprints,
            request_time=now,
            event_times=served.event_times,
        )

    def _computed_with(self, prepared: _Prepared, older: dict[str, str]) -> dict[str, str]:
        """The fingerprints the values were computed with, when some came from earlier
        definitions (``older``): those, and for each on-demand output fed by them, the
        fingerprint its definition has with those inputs."""
        out = dict(prepared.fingerprints)
        out.update({r: fp for r, fp in older.items() if r in out})
        for run in prepared.on_demand:
            fed = tuple(sorted((k, older[k]) for req, k in run.inputs if not req and k in older))
            if not fed:
                continue
            for _, ref, _ in run.outputs:
                key = (ref, fed)
                if key not in self._on_demand_fps:
                    definition = self.applied.features[ref].definition
                    inputs = {**definition["inputs"], **dict(fed)}
                    self._on_demand_fps[key] = fingerprint({**definition, "inputs": inputs})
                if ref in out:
                    out[ref] = self._on_demand_fps[key]
        return out

    def _row_count(
        self,
        prepared: _Prepared,
        entities: Mapping[str, Sequence[Any]],
        request_data: Mapping[str, Sequence[Any]],
    ) -> int:
        for what, given in (("entities", entities), ("request_data", request_data)):
            odd = [k for k in given if not isinstance(k, str)]
            if odd:
                raise OnlineRequestError(
                    f"{what} must map column names (strings) to lists of values; found the "
                    f"key {odd[0]!r} ({type(odd[0]).__name__})"
                )
        lengths: dict[str, int] = {}
        for read in prepared.reads:
            for key, kind in read.key_kinds.items():
                if key not in entities:
                    raise OnlineRequestError(
                        f"entities lack join key {key!r} needed by view {read.view.name!r}; "
                        f"found keys: {sorted(entities) or 'none'}"
                    )
                column = entities[key]
                if isinstance(column, str | bytes) or not isinstance(column, Sequence):
                    raise OnlineRequestError(
                        f"entities[{key!r}] must be a list of values, found {type(column).__name__}"
                    )
                lengths[f"entities[{key!r}]"] = len(column)
                for value in column:
                    ok = (
                        isinstance(value, str)
                        if kind == "string"
                        else isinstance(value, int) and not isinstance(value, bool)
                    )
                    if not ok and value is not None:
                        want = "a string" if kind == "string" else "an integer"
                        raise OnlineRequestError(
                            f"join key {key!r} of view {read.view.name!r} must be {want}, "
                            f"found {value!r} ({type(value).__name__})"
                        )
        for col, dtype in prepared.plan.request_columns.items():
            users = [r.view.name for r in prepared.on_demand]
            if col not in request_data:
                raise OnlineRequestError(
                    f"request_data lacks column {col!r} needed by on-demand view(s) {users}; "
                    f"found: {sorted(request_data) or 'none'}"
                )
            column = request_data[col]
            if isinstance(column, str | bytes) or not isinstance(column, Sequence):
                raise OnlineRequestError(
                    f"request_data[{col!r}] must be a list of values, found {type(column).__name__}"
                )
            accepted = _REQUEST_TYPES[dtype_kind(dtype)]
            for value in column:
                if value is not None and (
                    not isinstance(value, accepted)
                    or (isinstance(value, bool) and bool not in accepted)
                    or (dtype_kind(dtype) == "date" and isinstance(value, dt.datetime))
                ):
                    raise OnlineRequestError(
                        f"request_data[{col!r}] must hold {dtype_name(dtype)} values for "
                        f"on-demand view(s) {users}; found {value!r} ({type(value).__name__})"
                    )
            lengths[f"request_data[{col!r}]"] = len(column)
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k} has {v}" for k, v in lengths.items())
            raise OnlineRequestError(f"entity and request columns must have equal lengths: {shown}")
        return next(iter(lengths.values()), 0)

    def _read_view(self, read: _ViewRead, served: _Served) -> None:
        """Fill the values, statuses and event times of one view's plain features."""
        view, n, values, statuses = read.view, served.n, served.values, served.statuses
        keys = self._keys(view, served.entities, n)
        found, unavailable = self._fetch(view.name, keys, served)
        rows = [decode_value(found[k]) if k is not None and found.get(k) else None for k in keys]
        served.event_times[view.name] = [
            from_epoch_us(row[TS_FIELD]) if row is not None else None for row in rows
        ]
        cutoff = served.now_us - read.ttl_us if read.ttl_us is not None else None
        # per row: None (absent), False (stale) or the row's non-PRESENT statuses
        states: list[dict[str, str] | bool | None] = [
            None
            if row is None
            else False
            if cutoff is not None and row[TS_FIELD] < cutoff
            else decode_statuses(row.get(STATUS_FIELD))
            for row in rows
        ]
        digest = read.digest
        # rows computed by other definitions than the applied ones: their definitions
        older = {
            i: self.definitions.get(view.name, row.get(DIGEST_FIELD))
            for i, row in enumerate(rows)
            if row is not None and row.get(DIGEST_FIELD) != digest
        }
        for i, definitions in older.items():  # stale or not by the ttl they were computed with
            ttl_us = _ttl_us(definitions) if definitions is not None else read.ttl_us
            fresh = ttl_us is None or rows[i][TS_FIELD] >= served.now_us - ttl_us  # type: ignore[index]
            states[i] = decode_statuses(rows[i].get(STATUS_FIELD)) if fresh else False  # type: ignore[union-attr]
        if not older and all(isinstance(state, dict) and not state for state in states):
            # every row found, fresh and PRESENT (the common case): one comprehension a column
            for column in read.columns:
                name, convert = column.name, column.convert
                out = [row.get(name) for row in rows]  # type: ignore[union-attr]
                if convert:
                    out = [None if v is None else convert(v) for v in out]
                values[column.ref] = out
                statuses[column.ref] = [_PRESENT] * n
            return
        for column in read.columns:
            name, convert = column.name, column.convert
            withheld: frozenset[int] = frozenset()
            if older:
                withheld, column = self._older_values(column, older, served)
            default = column.default
            missing = _DEFAULTED if unavailable else column.missing
            out_v: list[Any] = []
            out_s: list[FeatureStatus] = []
            for i, (row, state) in enumerate(zip(rows, states, strict=True)):
                if state is None:
                    out_v.append(default)
                    out_s.append(missing)
                elif state is False or i in withheld:
                    out_v.append(default)
                    out_s.append(_STALE)
                else:
                    value = row.get(name)  # type: ignore[union-attr]
                    out_v.append(convert(value) if convert and value is not None else value)
                    status = state.get(name)  # type: ignore[union-attr]
                    out_s.append(_BY_NAME[status] if status else _PRESENT)
            values[column.ref] = out_v
            statuses[column.ref] = out_s

    def _older_values(
        self,
        column: _Column,
        older: dict[int, PublishedDefinitions | None],
        served: _Served,
    ) -> tuple[frozenset[int], _Column]:
        """For rows computed by earlier definitions (``older``): those whose value of
        ``column`` cannot be served, as no definition of the feature computed it (added since,
        or written before definitions were recorded); and the column as the definition that
        computed the others declared it (its default fills the column's absent and stale
        rows), remembered in ``served`` when it is not the applied one."""
        applied = served.applied[column.ref]
        withheld = []
        earlier: tuple[PublishedDefinitions, str] | None = None
        for i, definitions in older.items():
            computed = definitions.fingerprints.get(column.name) if definitions else None
            if computed is None:
                withheld.append(i)
            elif computed != applied and earlier is None:
                earlier = (definitions, computed)  # type: ignore[assignment]
        if earlier is None:
            return frozenset(withheld), column
        definitions, computed = earlier
        served.computed_with[column.ref] = computed
        dtype, earlier_column = self._earlier_column(column, definitions)
        served.computed_dtypes[column.ref] = dtype
        return frozenset(withheld), earlier_column

    def _earlier_column(
        self, column: _Column, definitions: PublishedDefinitions
    ) -> tuple[pl.DataType, _Column]:
        """The dtype the earlier ``definitions`` declared, and ``column`` with their default."""
        key = (definitions.digest, column.ref)
        found = self._earlier_columns.get(key)
        if found is None:
            recorded = definitions.definitions.get(column.name, {})
            dtype = parse_dtype(recorded.get("dtype", "String"))
            convert = converter(dtype)
            default = recorded.get("default")
            if default is not None and convert is not None and isinstance(default, str):
                default = convert(default)
            found = self._earlier_columns[key] = (
                dtype,
                _Column(
                    name=column.name,
                    ref=column.ref,
                    default=default,
                    convert=convert,
                    missing=_DEFAULTED if default is not None else _NOT_FOUND,
                ),
            )
        return found

    def _keys(
        self, view: FeatureView, entities: Mapping[str, Sequence[Any]], n: int
    ) -> list[str | None]:
        columns = [entities[k] for k in view.join_keys]
        return [
            None if any(c[i] is None for c in columns) else encode_key(tuple(c[i] for c in columns))
            for i in range(n)
        ]

    def _fetch(
        self, name: str, keys: list[str | None], served: _Served
    ) -> tuple[dict[str | None, bytes | None], bool]:
        """The stored values of ``keys`` in one read, and whether the store is unreachable
        (then nothing is read, and ``served`` remembers it for the next views; without the
        defaults fallback the error propagates)."""
        if not served.store_down:
            wanted = [k for k in keys if k is not None]
            try:
                return dict(zip(wanted, self.store.read(name, wanted), strict=True)), False
            except OnlineStoreUnavailableError:
                if not self.fallback_to_defaults:
                    raise
        served.store_down = True
        log.warning("online store unavailable view=%s fallback=defaults rows=%d", name, len(keys))
        return {}, True

    def _read_windows(self, read: _ViewRead, served: _Served) -> None:
        """Evaluate a view's aggregations at the request time over each entity's stored
        events."""
        view, layout, n = read.view, read.layout, served.n
        assert layout is not None
        name = events_store_name(view.name)
        keys = self._keys(view, served.entities, n)
        found, unavailable = self._fetch(name, keys, served)
        values, statuses = served.values, served.statuses
        if unavailable:
            for w in read.windows:
                values[w.ref] = [None] * n
                statuses[w.ref] = [_DEFAULTED] * n
            served.event_times[name] = [None] * n
            return
        states = [decode_state(found.get(k)) if k is not None else None for k in keys]
        served.event_times[name] = [
            None if st is None else from_epoch_us(st[TS_FIELD]) for st in states
        ]
        digest = read.events_digest
        older = [
            i
            for i, st in enumerate(states)
            if st is not None and (st.get(DIGEST_FIELD) != digest or MIXED_FIELD in st)
        ]
        for w in read.windows:
            out_v = [aggregate(w.agg, st, layout, served.now_us) for st in states]
            out_s = [_PRESENT if v is not None else _NOT_FOUND for v in out_v]
            for i in older:
                state = states[i]
                assert state is not None  # older lists stored states only
                out_v[i], out_s[i] = self._older_window(w, read, state, served)
            if w.is_float:
                for i, v in enumerate(out_v):
                    if v is not None and not math.isfinite(v):
                        out_v[i], out_s[i] = None, _INVALID
            values[w.ref] = out_v
            statuses[w.ref] = out_s

    def _older_window(
        self, w: _Window, read: _ViewRead, state: dict[str, Any], served: _Served
    ) -> tuple[Any, FeatureStatus]:
        """The value of an aggregation over events written by other definitions than the
        applied ones (or a mix): the applied aggregation when the stored events cover it (same
        source and keys, its input held by every event in the window, its window within the
        one the events were stored for); else the aggregation as the events' definitions
        declared it, under its own fingerprint; else withheld (STALE)."""
        name = events_store_name(read.view.name)
        stored = self.definitions.get(name, state.get(DIGEST_FIELD))
        if stored is None:
            return None, _STALE
        created = read.layout.created if read.layout else False
        agg = w.agg
        same_source = stored.source_of_events() == (
            w.definition["source"],
            w.definition["join_keys"],
        )
        if same_source and agg.window_us <= (stored.max_window_us or 0):
            field, temporal = aggregation_input(agg)
            value = window_value(agg, state, field, temporal, created, served.now_us)
            if value is not INCOMPLETE:
                return value, _PRESENT if value is not None else _NOT_FOUND
        earlier = stored.definitions.get(agg.name)
        computed = stored.fingerprints.get(agg.name)
        if earlier is None or computed is None:
            return None, _STALE
        key = (stored.digest, agg.name)
        old = self._old_aggregations.get(key)
        if old is None:
            old = self._old_aggregations[key] = rebuild_aggregation(agg.name, earlier)
        field, temporal = aggregation_input(old)
        value = window_value(old, state, field, temporal, created, served.now_us)
        if value is INCOMPLETE:
            return None, _STALE
        served.computed_with[w.ref] = computed
        return value, _PRESENT if value is not None else _NOT_FOUND

    def _run_on_demand(
        self,
        run: _OnDemandRun,
        request_data: Mapping[str, Sequence[Any]],
        values: dict[str, list[Any]],
        statuses: dict[str, list[FeatureStatus]],
    ) -> None:
        columns = [request_data[key] if req else values[key] for req, key in run.inputs]
        # one dict per row builds a small typed frame faster than rows or one Series per column
        # (same row builder, without a dtype check per column); request values were
        # type-checked in _row_count, view values come typed from the store
        names = run.names
        rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
        inputs = pl.from_dicts(rows, schema=run.schema)
        out = run_on_demand(run.view, inputs)
        if run.ruled:
            exprs = []
            for f in run.view.features:
                exprs.extend(resolve(f, pl.col(f.name), pl.lit(MATCH_FOUND), f.name))
            out = out.select(exprs)
            for name, ref, _ in run.outputs:
                values[ref] = out[name].to_list()
                statuses[ref] = [_BY_NAME[s] for s in out[f"{name}__status"].to_list()]
            return
        for name, ref, is_float in run.outputs:  # no rules: resolve() is the non-finite check
            column = out[name].to_list()
            if is_float:
                bad = [v is not None and not math.isfinite(v) for v in column]
                values[ref] = [None if b else v for v, b in zip(column, bad, strict=True)]
                statuses[ref] = [_INVALID if b else _PRESENT for b in bad]
            else:
                values[ref] = column
                statuses[ref] = [_PRESENT] * len(column)
