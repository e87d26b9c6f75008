"""What ``featurestore list KIND`` shows of the repo's definitions (entities, sources, views,
services), one row of short text per definition, as tables and JSON alike."""

from __future__ import annotations

from featurestore._apply_checks import source_location
from featurestore._repo import RepoContents
from featurestore._times import format_duration
from featurestore.definitions import (
    BatchSource,
    FeatureView,
    OnDemandFeatureView,
    PushSource,
    RequestSource,
    TableSource,
)

__all__ = ["DEFINITION_KINDS", "definition_rows"]

DEFINITION_KINDS = ("entities", "sources", "views", "services")

Row = dict[str, str]


def definition_rows(repo: RepoContents, kind: str) -> list[Row]:
    """The rows of ``kind`` (one of DEFINITION_KINDS), sorted by name."""
    rows = {"entities": _entities, "sources": _sources, "views": _views, "services": _services}
    return sorted(rows[kind](repo), key=lambda r: r["name"])


def _entities(repo: RepoContents) -> list[Row]:
    return [
        {"name": e.name, "join_keys": ", ".join(e.join_keys), "description": e.description}
        for e in repo.entities.values()
    ]


def _sources(repo: RepoContents) -> list[Row]:
    rows = []
    for s in repo.sources.values():
        if isinstance(s, RequestSource):
            rows.append({"name": s.name, "kind": "request", "reads": ", ".join(s.fields)})
            continue
        kind = "table" if isinstance(s, TableSource) else "file"
        kind = "push" if isinstance(s, PushSource) else kind
        files = s.batch_source if isinstance(s, PushSource) else s
        rows.append({"name": s.name, "kind": kind, "reads": _files(files)})
    return rows


def _files(source: BatchSource) -> str:
    """Where the source's rows are (a catalog table, and its files when given) and its times."""
    created = (
        f", created {source.created_timestamp_field}" if source.created_timestamp_field else ""
    )
    return f"{source_location(source)} (time {source.timestamp_field}{created})"


def _views(repo: RepoContents) -> list[Row]:
    batch = [_batch_view(v) for v in repo.views.values()]
    return batch + [_on_demand_view(v) for v in repo.on_demand_views.values()]


def _batch_view(v: FeatureView) -> Row:
    return {
        "name": v.name,
        "kind": "batch" if v.online else "batch, offline only",
        "entities": ", ".join(e.name for e in v.entities),
        "source": v.source.name,
        "ttl": format_duration(v.ttl.total_seconds()) if v.ttl else "",
        "owner": v.owner,
        "features": ", ".join(v.feature_names),
    }


def _on_demand_view(v: OnDemandFeatureView) -> Row:
    return {
        "name": v.name,
        "kind": "on-demand",
        "entities": "",
        "source": ", ".join(_names(list(v.sources))),
        "ttl": "",
        "owner": v.owner or "",
        "features": ", ".join(v.feature_names),
    }


def _names(items: list[object]) -> list[str]:
    return [i if isinstance(i, str) else str(getattr(i, "name", i)) for i in items]


def _services(repo: RepoContents) -> list[Row]:
    return [
        {"name": s.name, "owner": s.owner or "", "features": ", ".join(_names(list(s.features)))}
        for s in repo.services.values()
    ]
