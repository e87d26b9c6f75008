"""Checks of the definitions against the world: every view against its source (its schema at
apply and validate, its values at validate), on-demand views on their inputs, services against
the repo. Apply collects the problems rather than raising them one by one, so a failed apply
lists everything to fix at once (and writes nothing).

Sources are read by DuckDB, except a catalog table without files (a ``TableSource`` without
``path``), which only a Spark store can read: its schema is checked through the Spark engine
the facade passes in, and its values are not checked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from featurestore._registry import RegistryState, build_state
from featurestore._repo import RepoContents
from featurestore._selection import build_plan
from featurestore._transforms import run_on_demand
from featurestore.definitions import BatchSource, FeatureView, TableSource
from featurestore.errors import ApplyError, FeatureReferenceError, SourceError
from featurestore.offline._engine import OfflineEngine
from featurestore.offline._value_checks import FeatureCheck, check_values
from featurestore.sources._scans import needs_catalog
from featurestore.sources._schema import read_schema, view_problems

__all__ = ["CatalogReader", "SourceReport", "checked_state", "source_location", "source_reports"]


class CatalogReader(Protocol):
    """What reads a catalog table's schema: the Spark engine of a store that runs on Spark."""

    def source_schema(self, view: FeatureView) -> dict[str, pl.DataType]: ...


Catalog = Callable[[], CatalogReader | None]  # the store's Spark engine, made on first call


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
    unchecked: str | None = None  # why the values were not checked, when the schema fits

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
            "values_unchecked": self.unchecked,
            "features": [f.to_dict() for f in self.features],
        }


def checked_state(
    repo: RepoContents, offline: OfflineEngine, catalog: Catalog | None = None
) -> RegistryState:
    """The registry state of ``repo``; raises ApplyError listing every problem found.
    ``catalog`` gives the engine that reads catalog tables without files, if any."""
    problems: list[str] = []
    key_dtypes: dict[str, dict[str, str]] = {}
    for view, report, schema in _checked_sources(repo, offline, catalog, values=False):
        problems += report.problems
        if schema is not None:
            key_dtypes[view.name] = {k: str(schema[k]) for k in view.join_keys if k in schema}
    problems += on_demand_problems(repo)
    problems += service_problems(repo)
    if problems:
        raise ApplyError(problems)
    return build_state(repo, key_dtypes)


def source_reports(
    repo: RepoContents, offline: OfflineEngine, catalog: Catalog | None = None
) -> list[SourceReport]:
    """Each view's source checked against its declarations: first its schema (columns and
    dtypes), then, when that fits, its values: per feature, the rows whose value would be
    INVALID in a training set or online, with examples (see
    :mod:`featurestore.offline._value_checks`, which also states the cost: one scan of each
    source's needed columns, in batches). A catalog table without files is read by
    ``catalog``'s engine: its schema only."""
    return [report for _, report, _ in _checked_sources(repo, offline, catalog, values=True)]


def source_location(source: BatchSource) -> str:
    """Where a source's rows are, in a line: its path, or its table (and files, if given)."""
    if isinstance(source, TableSource):
        return f"table {source.table}" + (f", files {source.path}" if source.path else "")
    return source.path


def _checked_sources(
    repo: RepoContents, offline: OfflineEngine, catalog: Catalog | None, *, values: bool
) -> Iterator[tuple[FeatureView, SourceReport, dict[str, pl.DataType] | None]]:
    """Per view: its report, and its source's schema (None when the source cannot be read).
    With ``values``, a source whose schema fits has its values checked too."""
    for view in repo.views.values():
        report = SourceReport(view.name, view.source.name, source_location(view.source), [])
        reader = catalog() if catalog is not None and needs_catalog(view.source) else None
        if reader is not None:
            yield view, report, _checked_on_catalog(view, report, reader, values=values)
            continue
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


def _checked_on_catalog(
    view: FeatureView, report: SourceReport, reader: CatalogReader, *, values: bool
) -> dict[str, pl.DataType] | None:
    """The schema of the view's catalog table, read by ``reader`` and checked into
    ``report``; its values are left unchecked (they would be a scan of the whole table on
    Spark), as ``report`` says. None when the table cannot be read."""
    try:
        schema = reader.source_schema(view)
    except SourceError as exc:
        report.problems.append(str(exc))
        return None
    report.problems = view_problems(view, schema)
    if values and not report.problems:
        report.unchecked = (
            f"values of source {view.source.name!r} (view {view.name!r}) were not checked: "
            "a catalog table read on Spark has its schema checked only; give the TableSource "
            "path= its files to have DuckDB check its values too"
        )
    return schema


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
