"""Which features the parity check compares on which spine: each feature's needs (join keys,
batch views, on-demand inputs, request columns), the features that can be served, and the
groups of features sharing their join keys (or the one group of a given spine)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from featurestore._repo import RepoContents
from featurestore._selection import parse_ref
from featurestore.definitions import FeatureView
from featurestore.errors import ReportError

__all__ = ["Group", "Needs", "by_keys", "default_refs", "needs_of", "spine_group"]


@dataclass
class Group:
    """Features compared on one spine: those needing exactly ``keys``."""

    label: str
    keys: tuple[str, ...]
    refs: list[str] = field(default_factory=list)  # compared here
    inputs: list[str] = field(default_factory=list)  # on-demand inputs, for the examples
    views: dict[str, FeatureView] = field(default_factory=dict)  # batch views read
    request_columns: dict[str, pl.DataType] = field(default_factory=dict)

    @property
    def requested(self) -> list[str]:
        return list(dict.fromkeys([*self.refs, *self.inputs]))

    def add(self, ref: str, needs: Needs) -> None:
        """Compare ``ref`` here too."""
        self.refs.append(ref)
        self.inputs += [r for r in needs.inputs if r not in self.inputs]
        self.views.update(needs.views)
        self.request_columns.update(needs.request_columns)


@dataclass(frozen=True)
class Needs:
    """What computing one reference reads."""

    keys: tuple[str, ...]
    views: dict[str, FeatureView]
    inputs: list[str]
    request_columns: dict[str, pl.DataType]


def needs_of(repo: RepoContents, ref: str) -> Needs:
    """The join keys, batch views, on-demand inputs and request columns a reference needs."""
    view_name, name = parse_ref(ref)
    view = repo.any_view(view_name)
    view.feature(name)  # raises with the known features
    if isinstance(view, FeatureView):
        return Needs(tuple(view.join_keys), {view.name: view}, [], {})
    inputs = view.input_refs(repo.views)
    views = {v: repo.views[v] for v, _ in inputs}
    keys = tuple(dict.fromkeys(k for v in views.values() for k in v.join_keys))
    return Needs(keys, views, [f"{v}:{f}" for v, f in inputs], dict(view.request_columns))


def default_refs(repo: RepoContents) -> tuple[list[str], dict[str, str]]:
    """Every feature that can be served: those of online views, and on-demand outputs whose
    input views are all online; and the views left out, with why."""
    refs: list[str] = []
    skipped: dict[str, str] = {}
    for view in repo.views.values():
        if view.online:
            refs += [f"{view.name}:{f}" for f in view.feature_names]
        else:
            skipped[view.name] = "an offline-only view (online=False): never served"
    for odfv in repo.on_demand_views.values():
        offline = sorted({v for v, _ in odfv.input_refs(repo.views) if not repo.views[v].online})
        if offline:
            skipped[odfv.name] = f"reads offline-only view(s) {', '.join(offline)}"
        else:
            refs += [f"{odfv.name}:{f}" for f in odfv.feature_names]
    return refs, skipped


def by_keys(needs: Mapping[str, Needs]) -> list[Group]:
    """The references grouped by the set of join keys they need, labelled by those keys."""
    groups: dict[frozenset[str], Group] = {}
    for ref, need in needs.items():
        key = frozenset(need.keys)
        if key not in groups:
            label = "+".join(need.keys) if need.keys else "request data only"
            groups[key] = Group(label, need.keys)
        groups[key].add(ref, need)
    return list(groups.values())


def spine_group(
    needs: Mapping[str, Needs], columns: Sequence[str], *, named: bool
) -> tuple[Group, dict[str, str]]:
    """The one group of a given spine: every reference whose join keys and request columns it
    holds (all of them when they were ``named``), and the others with why they are left out."""
    fits: dict[str, Needs] = {}
    left_out: dict[str, str] = {}
    for ref, need in needs.items():
        missing = [c for c in (*need.keys, *need.request_columns) if c not in columns]
        if missing and not named:
            left_out[ref] = f"the spine lacks {', '.join(missing)}"
        else:
            fits[ref] = need
    groups = by_keys(fits)
    merged = Group("spine", tuple(dict.fromkeys(k for g in groups for k in g.keys)))
    for g in groups:
        merged.refs += g.refs
        merged.inputs += [r for r in g.inputs if r not in merged.inputs]
        merged.views.update(g.views)
        merged.request_columns.update(g.request_columns)
    if not merged.refs:
        raise ReportError(
            "the spine holds the join keys and request columns of none of the features; "
            f"found columns: {', '.join(columns)}"
        )
    return merged, left_out
