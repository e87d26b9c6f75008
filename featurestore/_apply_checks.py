"""Apply-time checks: every definition against its source, on-demand views on their inputs,
services against the repo. Problems are collected, not raised one by one, so a failed apply
lists everything to fix at once (and writes nothing)."""

from __future__ import annotations

import polars as pl

from featurestore._registry import RegistryState, build_state
from featurestore._repo import RepoContents
from featurestore._selection import build_plan
from featurestore._transforms import run_on_demand
from featurestore.definitions import FeatureView
from featurestore.errors import ApplyError, FeatureReferenceError, SourceError
from featurestore.offline._engine import OfflineEngine
from featurestore.sources._schema import view_problems

__all__ = ["checked_state"]


def checked_state(repo: RepoContents, offline: OfflineEngine) -> RegistryState:
    """The registry state of ``repo``; raises ApplyError listing every problem found."""
    problems: list[str] = []
    key_dtypes: dict[str, dict[str, str]] = {}
    for view in repo.views.values():
        try:
            schema = offline.source_schema(view)
        except SourceError as exc:
            problems.append(str(exc))
            continue
        problems += view_problems(view, schema)
        key_dtypes[view.name] = {k: str(schema[k]) for k in view.join_keys if k in schema}
    problems += on_demand_problems(repo)
    problems += service_problems(repo)
    if problems:
        raise ApplyError(problems)
    return build_state(repo, key_dtypes)


def on_demand_problems(repo: RepoContents) -> list[str]:
    """Unresolvable source views, and functions that fail on an empty frame of their inputs."""
    problems = []
    for odfv in repo.on_demand_views.values():
        for src in odfv.sources:
            if not isinstance(src, FeatureView):
                continue
            known = repo.views.get(src.name)
            if known is None:
                problems.append(
                    f"on-demand view {odfv.name!r}: source view {src.name!r} is not defined "
                    "in the repo; define it at module level"
                )
            elif known != src:
                problems.append(
                    f"on-demand view {odfv.name!r}: source view {src.name!r} differs from "
                    "the repo's view of that name"
                )
        columns = dict(odfv.request_columns)
        try:
            refs = odfv.input_refs(repo.views)
        except FeatureReferenceError as exc:
            problems.append(str(exc))
            continue
        columns.update({name: repo.views[view].feature(name).dtype for view, name in refs})
        try:
            run_on_demand(odfv, pl.DataFrame(schema=columns))
        except Exception as exc:
            problems.append(f"{exc} (when run on an empty frame of its inputs)")
    return problems


def service_problems(repo: RepoContents) -> list[str]:
    """Services whose references do not resolve."""
    problems = []
    for svc in repo.services.values():
        try:
            build_plan(repo, feature_service=svc.name)
        except Exception as exc:
            problems.append(f"feature service {svc.name!r}: {exc}")
    return problems
