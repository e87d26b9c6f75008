"""What the skew report compares for each feature, and where its columns live in the replay
frame: the served and offline values, statuses, fingerprints and per-row flags."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from featurestore._profiles import feature_kind
from featurestore._selection import parse_ref
from featurestore.definitions import Feature, FeatureView, OnDemandFeatureView
from featurestore.definitions._dtypes import dtype_kind
from featurestore.definitions._monitoring import SkewConfig
from featurestore.online._event_state import events_store_name

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs

__all__ = ["DEFAULTS", "Spec", "build_specs", "view_col"]

DEFAULTS = SkewConfig()


@dataclass(frozen=True)
class Spec:
    """One compared feature and where its columns live in the replay frame."""

    index: int
    ref: str
    served: bool  # in the log window: compared
    feature: Feature
    on_demand: bool
    kind: str  # numeric, categorical, boolean or temporal
    config: SkewConfig
    owner: str | None
    fingerprint: str  # the registry's
    views: tuple[str, ...]  # batch views whose served rows or events decide the value
    parts: tuple[str, ...]  # their stored parts (a view, or its "<view>@events")
    inputs: tuple[int, ...]  # served features feeding this on-demand output
    keys: tuple[str, ...]
    request_columns: tuple[str, ...]

    @property
    def is_float(self) -> bool:
        return dtype_kind(self.feature.dtype) == "float"

    def col(self, what: str) -> str:
        """This feature's column ``what`` of the replay frame (``s`` served, ``o`` offline,
        ``st`` status, ``fp`` fingerprint, ``afp`` applied then, ``m`` requested, and the
        flags ``vm``, ``sn``, ``on`` and ``bad``)."""
        return f"__fs_{what}{self.index}"


def view_col(what: str, part: str) -> str:
    """A stored part's column ``what`` of the replay frame (``se`` served event time, ``oe``
    offline at the request time, ``oes`` offline at the served one)."""
    return f"__fs_{what}__{part}"


def build_specs(reads: ReportInputs, refs: list[str], served: set[str]) -> list[Spec]:
    """What to compare for each reference; fails if its code changed since the last apply."""
    applied = reads.registry.require()
    fingerprints = reads.applied_fingerprints(refs)
    specs: list[Spec] = []
    for i, ref in enumerate(refs):
        view_name, name = parse_ref(ref)
        view = reads.repo.any_view(view_name)
        feature = view.feature(name)
        if isinstance(view, OnDemandFeatureView):
            inputs = view.input_refs(reads.repo.views)
            batch = tuple(dict.fromkeys(v for v, _ in inputs))
            keys = tuple(dict.fromkeys(k for v in batch for k in reads.repo.views[v].join_keys))
            request = tuple(view.request_columns)
            parts = tuple(dict.fromkeys(_part(reads.repo.views[v], f) for v, f in inputs))
        else:
            batch, keys, request = (view.name,), tuple(view.join_keys), ()
            parts = (_part(view, name),)
        specs.append(
            Spec(
                index=i,
                ref=ref,
                served=ref in served,
                feature=feature,
                on_demand=isinstance(view, OnDemandFeatureView),
                kind=feature_kind(feature.dtype),
                config=feature.skew or DEFAULTS,
                owner=applied.features[ref].owner,
                fingerprint=fingerprints[ref],
                views=batch,
                parts=parts,
                inputs=(),
                keys=keys,
                request_columns=request,
            )
        )
    by_ref = {s.ref: s.index for s in specs if s.served}
    return [
        replace(s, inputs=tuple(by_ref[r] for r in _feeding(reads, s.ref) if r in by_ref))
        if s.on_demand
        else s
        for s in specs
    ]


def _part(view: FeatureView, name: str) -> str:
    """Where the served value of ``view:name`` came from: the view's latest rows, or for an
    aggregation its stored events."""
    return events_store_name(view.name) if view.aggregation(name) is not None else view.name


def _feeding(reads: ReportInputs, ref: str) -> list[str]:
    """The batch features an on-demand output is computed from."""
    odfv = reads.repo.on_demand_views[parse_ref(ref)[0]]
    return [f"{v}:{f}" for v, f in odfv.input_refs(reads.repo.views)]
