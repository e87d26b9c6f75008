"""What retrieval works out once per selection (features or service, and naming): for each
batch view, its keys, columns, windows and the digests of its applied definitions; for each
on-demand view, its input frame; the requested references' fingerprints, dtypes and names."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import polars as pl

from featurestore._registry import FeatureRecord, RegistryState
from featurestore._repo import RepoContents
from featurestore._selection import RetrievalPlan, build_plan
from featurestore._value_rules import FeatureStatus, has_rules
from featurestore.definitions import Aggregation, Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind
from featurestore.online._codec import converter
from featurestore.online._event_state import WindowLayout, events_definitions
from featurestore.online._published import values_definitions

__all__ = ["Column", "OnDemandRun", "Prepared", "ViewRead", "Window", "prepare"]

Fingerprints = Callable[[list[str]], dict[str, str]]


@dataclass(frozen=True)
class Column:
    """One batch feature as the read path needs it, worked out once per plan."""

    name: str
    ref: str
    default: Any
    convert: Callable[[Any], Any] | None
    missing: FeatureStatus  # status of a value whose row is absent

    @classmethod
    def of(cls, view: FeatureView, feature: Feature) -> Column:
        return cls(
            name=feature.name,
            ref=f"{view.name}:{feature.name}",
            default=feature.default,
            convert=converter(feature.dtype),
            missing=FeatureStatus.DEFAULTED
            if feature.default is not None
            else FeatureStatus.NOT_FOUND,
        )


@dataclass(frozen=True)
class Window:
    """One aggregation as the read path needs it."""

    agg: Aggregation
    ref: str
    is_float: bool
    definition: dict[str, Any]  # as the applied registry records it


@dataclass(frozen=True)
class ViewRead:
    """One batch view's part of a plan: its plain features and its aggregations."""

    view: FeatureView
    key_kinds: dict[str, str]
    columns: tuple[Column, ...]  # plain features: the latest row
    ttl_us: int | None
    digest: str  # of the applied definitions of the view's latest values
    windows: tuple[Window, ...] = ()  # aggregations: the recent events
    layout: WindowLayout | None = None
    events_digest: str | None = None  # of the applied definitions of the view's events


@dataclass(frozen=True)
class OnDemandRun:
    """An on-demand view's input frame layout and outputs, worked out once per plan."""

    view: OnDemandFeatureView
    ruled: bool  # some output has rules or a default: run resolve()
    schema: pl.Schema
    names: tuple[str, ...]  # the input frame's columns, in schema order
    inputs: tuple[tuple[bool, str], ...]  # (from request data, request column or feature ref)
    outputs: tuple[tuple[str, str, bool], ...]  # (name, ref, is a float)

    @classmethod
    def of(cls, odfv: OnDemandFeatureView, views: Mapping[str, FeatureView]) -> OnDemandRun:
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
class Prepared:
    """A selection worked out: what to read and run, and what the response reports."""

    plan: RetrievalPlan
    reads: tuple[ViewRead, ...]
    on_demand: tuple[OnDemandRun, ...]
    fingerprints: dict[str, str]  # the applied ones of the requested references
    read_fingerprints: dict[str, str]  # the applied ones of every reference read or requested
    dtypes: dict[str, pl.DataType]
    refs: dict[str, str]  # output column -> view:feature, in output order


def _view_read(
    view: FeatureView,
    wanted: Sequence[str],
    recorded_keys: Mapping[str, str],
    records: Mapping[str, FeatureRecord],
    fingerprints: Fingerprints,
) -> tuple[ViewRead, dict[str, str]]:
    """How to read ``wanted`` features of ``view``, and the applied fingerprints of all its
    features (its stored values and events are computed from all of them)."""
    name = view.name
    aggs = [a for f in wanted if (a := view.aggregation(f)) is not None]
    applied = fingerprints([f"{name}:{f}" for f in view.feature_names])
    digest = ""
    if view.features:
        plain = view.model_copy(update={"aggregations": []})
        recorded = {r: records[r].definition for r in applied}
        digest = values_definitions(plain, applied, recorded).digest
    events_digest = None
    if aggs:
        events = {
            f"{name}:{a.name}": records[f"{name}:{a.name}"].definition for a in view.aggregations
        }
        events_digest = events_definitions(view, applied, events).digest
    read = ViewRead(
        view=view,
        key_kinds={
            k: ("string" if recorded_keys.get(k) == "String" else "int") for k in view.join_keys
        },
        columns=tuple(
            Column.of(view, view.feature(f)) for f in wanted if view.aggregation(f) is None
        ),
        ttl_us=view.ttl // dt.timedelta(microseconds=1) if view.ttl else None,
        digest=digest,
        windows=tuple(
            Window(
                a,
                f"{name}:{a.name}",
                dtype_kind(a.dtype) == "float",
                records[f"{name}:{a.name}"].definition,
            )
            for a in aggs
        ),
        layout=WindowLayout.of(view) if aggs else None,
        events_digest=events_digest,
    )
    return read, applied


def prepare(
    repo: RepoContents,
    applied: RegistryState,
    key_dtypes: Mapping[str, Mapping[str, str]],
    fingerprints: Fingerprints,
    features: Sequence[str] | None,
    service: str | None,
    full_names: bool,
) -> Prepared:
    """Work out the selection once: the plan, each view's read and each on-demand run."""
    plan = build_plan(repo, list(features) if features is not None else None, service, full_names)
    requested = fingerprints([r.ref for r in plan.refs])
    read_fingerprints: dict[str, str] = {}
    reads = []
    for name, wanted in plan.views.items():
        read, view_fingerprints = _view_read(
            plan.batch_views[name], wanted, key_dtypes.get(name, {}), applied.features, fingerprints
        )
        read_fingerprints.update(view_fingerprints)
        reads.append(read)
    return Prepared(
        plan=plan,
        reads=tuple(reads),
        on_demand=tuple(OnDemandRun.of(o, repo.views) for o in plan.on_demand),
        fingerprints=requested,
        read_fingerprints={**read_fingerprints, **requested},
        dtypes={r.column: repo.any_view(r.view).feature(r.name).dtype for r in plan.refs},
        refs={r.column: r.ref for r in plan.refs},
    )
