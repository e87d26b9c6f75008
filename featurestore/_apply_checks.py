"""Checks of the definitions against the world: every view against its source (its schema at
apply and validate, its values at validate), on-demand views on their inputs, services against
the repo. Apply collects the problems rather than raising them one by one, so a failed apply
lists everything to fix at once (and writes nothing)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore._registry import RegistryState, build_state
from featurestore._repo import RepoContents
from featurestore._selection import build_plan
from featurestore._transforms import run_on_demand
from featurestore.definitions import FeatureView
from featurestore.errors import ApplyError, FeatureReferenceError, SourceError
from featurestore.offline._engine import OfflineEngine
from featurestore.offline._value_checks import FeatureCheck, check_values
from featurestore.sources._schema import read_schema, view_problems

__all__ = ["SourceReport", "checked_state", "source_reports"]


@dataclass
class SourceReport:
    """The result of checking one view's source against its declarations: its schema, then
    (when the schema fits) its values, feature by feature."""

    view: str
    source: str
    path: str
    problems: list[str]  # every problem, schema and values, in full
    features: list[FeatureCheck] = field(default_factory=list)  # empty: values not checked
    rows: int | None = None  # source rows whose values were checked; None: not checked

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "view": self.view,
            "source": self.source,
            "path": self.path,
            "ok": self.ok,
            "problems": self.problems,
            "rows": self.rows,
            "features": [f.to_dict() for f in self.features],
        }


def checked_state(repo: RepoContents, offline: OfflineEngine) -> RegistryState:
    """The registry state of ``repo``; raises ApplyError listing every problem found."""
    problems: list[str] = []
    key_dtypes: dict[str, dict[str, str]] = {}
    for view, report, schema in _checked_sources(repo, offline, values=False):
        problems += report.problems
        if schema is not None:
            key_dtypes[view.name] = {k: str(schema[k]) for k in view.join_keys if k in schema}
    problems += on_demand_problems(repo)
    problems += service_problems(repo)
    if problems:
        raise ApplyError(problems)
    return build_state(repo, key_dtypes)


def source_reports(repo: RepoContents, offline: OfflineEngine) -> list[SourceReport]:
    """Each view's source checked against its declarations: first its schema (columns and
    dtypes), then, when that fits, its values: per feature, the rows whose value would be
    INVALID in a training set or online, with examples (see
    :mod:`featurestore.offline._value_checks`, which also states the cost: one scan of each
    source's needed columns, in batches)."""
    return [report for _, report, _ in _checked_sources(repo, offline, values=True)]


def _checked_sources(
    repo: RepoContents, offline: OfflineEngine, *, values: bool
) -> Iterator[tuple[FeatureView, SourceReport, dict[str, pl.DataType] | None]]:
    """Per view: its report, and its source's schema (None when the source cannot be read).
    With ``values``, a source whose schema fits has its values checked too."""
    for view in repo.views.values():
        report = SourceReport(view.name, view.source.name, view.source.path, [])
        schema = None
        try:
            schema = read_schema(offline.con, view.source, repo.root)
            report.problems = view_problems(view, schema)
            if values and not report.problems:
                checked = check_values(offline.con, view, repo.root, schema)
                report.rows, report.features = checked.rows, checked.features
                report.problems += checked.problems
        except SourceError as exc:
            report.problems.append(str(exc))
        yield view, report, schema


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
