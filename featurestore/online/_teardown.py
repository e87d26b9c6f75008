"""Removing a project's online data: every view's values and aggregation events, the state of
its publishes and the definitions behind its stored values. The sources, the registry and the
serving log are left alone; the next materialization publishes everything again."""

from __future__ import annotations

from featurestore._registry import RegistryState
from featurestore._repo import RepoContents
from featurestore.online._codec import EVENTS_SUFFIX
from featurestore.online._protocol import META_VIEW, OnlineStore
from featurestore.online._published import DEFINITIONS_VIEW

__all__ = ["teardown_online"]


def teardown_online(
    store: OnlineStore, repo: RepoContents, applied: RegistryState | None
) -> list[str]:
    """Drop the rows of every batch view defined in ``repo`` or ``applied`` (and their
    events), then the reserved views; returns what was dropped, in order. State goes last: a
    teardown cut short still shows the views that remain as materialized, so running it again
    finishes the job."""
    batch = [n for n, v in (applied.views if applied else {}).items() if v.kind == "batch"]
    dropped = []
    for view in dict.fromkeys([*repo.views, *batch]):
        for name in (view, f"{view}{EVENTS_SUFFIX}"):
            store.delete_view(name)
            dropped.append(name)
    for name in (DEFINITIONS_VIEW, META_VIEW):
        store.delete_view(name)
        dropped.append(name)
    return dropped
