"""Feature references -> a retrieval plan: which views, features and request columns to read.

Shared by the offline engine and online retrieval so both resolve references identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import polars as pl

from featurestore._repo import RepoContents
from featurestore.definitions import FeatureView, OnDemandFeatureView
from featurestore.definitions._base import split_ref
from featurestore.errors import FeatureReferenceError

__all__ = ["FeatureRef", "RetrievalPlan", "build_plan", "check_selection", "parse_ref"]


@dataclass(frozen=True)
class FeatureRef:
    """One requested feature and the column it becomes in the output."""

    view: str
    name: str
    column: str

    @property
    def ref(self) -> str:
        return f"{self.view}:{self.name}"


@dataclass
class RetrievalPlan:
    """Everything a retrieval needs, in a deterministic order."""

    refs: list[FeatureRef]
    views: dict[str, list[str]] = field(default_factory=dict)  # batch view -> features to compute
    on_demand: list[OnDemandFeatureView] = field(default_factory=list)
    request_columns: dict[str, pl.DataType] = field(default_factory=dict)
    batch_views: dict[str, FeatureView] = field(default_factory=dict)

    @property
    def join_keys(self) -> list[str]:
        keys: dict[str, None] = {}
        for view in self.batch_views.values():
            keys.update(dict.fromkeys(view.join_keys))
        return list(keys)


def parse_ref(ref: str) -> tuple[str, str]:
    """Split ``"view:feature"``; the error shows the expected form."""
    try:
        return split_ref(ref)
    except ValueError as exc:
        raise FeatureReferenceError(str(exc)) from None


def check_selection(features: object, feature_service: object, full_feature_names: object) -> None:
    """Raise FeatureReferenceError unless exactly one of ``features`` (a list of
    ``"view:feature"`` strings) and ``feature_service`` (a name) is given and
    ``full_feature_names`` is a bool."""
    if (features is None) == (feature_service is None):
        raise FeatureReferenceError("pass exactly one of features=[...] or feature_service=...")
    if features is not None and (
        isinstance(features, str | bytes)
        or not isinstance(features, Sequence)
        or not all(isinstance(f, str) for f in features)
    ):
        raise FeatureReferenceError(
            "features must be a list of 'view:feature' strings, e.g. ['user_profile:age'], "
            f"found {type(features).__name__}"
        )
    if feature_service is not None and not isinstance(feature_service, str):
        raise FeatureReferenceError(
            f"feature_service must be a service's name, found {type(feature_service).__name__}"
        )
    if not isinstance(full_feature_names, bool):
        raise FeatureReferenceError(
            f"full_feature_names must be True or False, found {type(full_feature_names).__name__}"
        )


def build_plan(
    repo: RepoContents,
    features: list[str] | None = None,
    feature_service: str | None = None,
    full_feature_names: bool = False,
) -> RetrievalPlan:
    """Resolve references (or a service) against the repo's definitions."""
    check_selection(features, feature_service, full_feature_names)
    refs = repo.service(feature_service).references() if feature_service else list(features or [])
    if not refs:
        raise FeatureReferenceError("no features requested; pass at least one 'view:feature'")
    plan = RetrievalPlan(refs=[])
    seen_columns: dict[str, str] = {}
    for ref in dict.fromkeys(refs):
        view_name, name = parse_ref(ref)
        view = repo.any_view(view_name)
        view.feature(name)
        column = f"{view_name}__{name}" if full_feature_names else name
        if column in seen_columns:
            raise FeatureReferenceError(
                f"features '{seen_columns[column]}' and '{ref}' would both be named {column!r}; "
                "pass full_feature_names=True to name columns 'view__feature'"
            )
        seen_columns[column] = ref
        plan.refs.append(FeatureRef(view_name, name, column))
        if isinstance(view, FeatureView):
            _need(plan, view, [name])
        elif view not in plan.on_demand:
            plan.on_demand.append(view)
    for odfv in plan.on_demand:
        for view_name, name in odfv.input_refs(repo.views):
            _need(plan, repo.views[view_name], [name])
        plan.request_columns.update(odfv.request_columns)
    return plan


def _need(plan: RetrievalPlan, view: FeatureView, names: list[str]) -> None:
    plan.batch_views.setdefault(view.name, view)
    wanted = plan.views.setdefault(view.name, [])
    wanted.extend(n for n in names if n not in wanted)
