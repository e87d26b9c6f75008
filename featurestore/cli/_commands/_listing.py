"""What ``featurestore list KIND`` shows of the repo's definitions (entities, sources, views,
services), one row of short text per definition, as tables and JSON alike."""

from __future__ import annotations

from featurestore._repo import RepoContents
from featurestore._times import format_duration
from featurestore.definitions import FeatureView, FileSource, PushSource, RequestSource

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
        kind = "push" if isinstance(s, PushSource) else "file"
        files = s.batch_source if isinstance(s, PushSource) else s
        rows.append({"name": s.name, "kind": kind, "reads": _files(files)})
    return rows


def _files(source: FileSource) -> str:
    created = (
        f", created {source.created_timestamp_field}" if source.created_timestamp_field else ""
    )
    return f"{source.path} (time {source.timestamp_field}{created})"


def _views(repo: RepoContents) -> list[Row]:
    rows = []
    for v in [*repo.views.values(), *repo.on_demand_views.values()]:
        batch = isinstance(v, FeatureView)
        rows.append(
            {
                "name": v.name,
                "kind": ("batch" if v.online else "batch, offline only") if batch else "on-demand",
                "entities": ", ".join(e.name for e in v.entities) if batch else "",
                "source": v.source.name if batch else ", ".join(_names(v.sources)),
                "ttl": format_duration(v.ttl.total_seconds()) if batch and v.ttl else "",
                "owner": v.owner or "",
                "features": ", ".join(v.feature_names),
            }
        )
    return rows


def _names(items: list[object]) -> list[str]:
    return [i if isinstance(i, str) else str(getattr(i, "name", i)) for i in items]


def _services(repo: RepoContents) -> list[Row]:
    return [
        {"name": s.name, "owner": s.owner or "", "features": ", ".join(_names(list(s.features)))}
        for s in repo.services.values()
    ]
