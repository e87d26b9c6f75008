"""The demo's definition change: an argument inside an expression is edited; plan names it,
the running server switches to the new registry version after apply and serves the values it
holds under the fingerprint that computed them until materialize-incremental rebuilds the
view; then the definition is put back."""

from __future__ import annotations

import datetime as dt
import importlib.util
from pathlib import Path
from typing import Any

from featurestore._client import Client
from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._demo import _compact as compact
from featurestore.cli._demo._context import DemoContext
from featurestore.cli._demo._server import demo_server
from featurestore.errors import RepoError
from featurestore.server._launch import LOOPBACK, free_port
from featurestore.serving import OnlineResponse

__all__ = ["change_a_definition"]

EDITED_FILE = "features.py"
EDITED_REF = "user_merchant:pair_chargeback_rate"
EDIT = (
    '(pl.col("chargeback_count") / pl.col("txn_count")).round(3)',
    '(pl.col("chargeback_count") / pl.col("txn_count")).round(2)',
)
EDIT_SHOWN = (".round(3)", ".round(2)")


def _show_fingerprints(ctx: DemoContext, resp: OnlineResponse, when: str) -> None:
    """Whether the served values were computed by the applied definition or an earlier one."""
    computed, applied = resp.fingerprints[EDITED_REF], resp.applied_fingerprints[EDITED_REF]
    if computed == applied and not ctx.verbose:
        ctx.out.print(
            f"{when}: served under {computed}, the applied fingerprint: every value is the new "
            "definition's"
        )
    elif computed == applied:
        ctx.out.print(
            f"{when}: {EDITED_REF} served under fingerprint {computed}, the applied one: "
            "every value was computed by the new definition"
        )
    else:
        what = f"{EDITED_REF} served" if ctx.verbose else "served"
        ctx.out.print(
            f"{when}: {what} under fingerprint {computed}, with applied_fingerprint {applied}: "
            "the online store still holds values the earlier definition computed, and says so"
            + (" instead of passing them off as the new one's" if ctx.verbose else "")
        )


def _edit_and_apply(ctx: DemoContext, store: FeatureStore, path: Path, original: str) -> None:
    """Write the edit, then show the plan and apply it."""
    path.write_text(original.replace(EDIT[0], EDIT[1]))
    why = (
        " (Polars prints both expressions alike; the fingerprint hashes the serialized plan)"
        if ctx.verbose
        else ""
    )
    ctx.out.print(
        ("\n" if ctx.verbose else "")
        + f"edited {EDITED_REF} in {EDITED_FILE}: [bold]{EDIT_SHOWN[0]}[/] -> "
        f"[bold]{EDIT_SHOWN[1]}[/]{why}"
    )
    if ctx.verbose:
        render.plan(ctx.out, store.plan(), store.project, applied=False)
    render.plan(ctx.out, store.apply(), store.project, applied=True)


def _reload(ctx: DemoContext, store: FeatureStore, url: str) -> None:
    """Ask the server to switch to the registry version just applied."""
    import httpx  # the server extra, checked before the step starts a server

    reload = httpx.post(f"{url}/v1/admin/reload", timeout=30, trust_env=False).json()
    ctx.out.print(
        f"POST /v1/admin/reload: switched={reload['switched']}, now serving registry "
        f"version {reload['registry_version']} (servers also look every "
        f"{store.repo.config.serving.reload_interval_seconds:g} s)"
    )


def _serve_through_the_change(
    ctx: DemoContext,
    store: FeatureStore,
    request: dict[str, Any],
    at: dt.datetime,
    path: Path,
    original: str,
) -> None:
    """Against a running server: the fingerprint served, the edit applied and reloaded, then
    the fingerprints before and after the view is rebuilt as of ``at``."""
    view = EDITED_REF.partition(":")[0]
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    with demo_server(ctx.repo_dir, port), Client(url) as client:
        first = client.get_online_features(**request)
        where = f"the server at {url}" if ctx.verbose else "a new server"
        ctx.out.print(
            f"{where} serves {EDITED_REF} under fingerprint {first.fingerprints[EDITED_REF]}"
        )
        _edit_and_apply(ctx, store, path, original)
        _reload(ctx, store, url)
        _show_fingerprints(ctx, client.get_online_features(**request), "before the rebuild")
        rebuilt = store.materialize_incremental(at, views=[view])
        if ctx.verbose:
            render.materialization(ctx.out, rebuilt)
        else:
            compact.materialized(ctx.out, rebuilt)
        _show_fingerprints(ctx, client.get_online_features(**request), "after the rebuild")


def change_a_definition(ctx: DemoContext) -> None:
    """Edit an argument inside an expression: plan names it, the running server switches to
    the new registry version after apply and serves the values it holds under the fingerprint
    that computed them until the view is rebuilt, which materialize-incremental does; then put
    the definition back."""
    store, sample, at = ctx.store, ctx.sample, ctx.served_at
    if store is None or sample is None or at is None:
        raise RepoError("the demo must serve online before it can change a definition")
    path = ctx.repo_dir / EDITED_FILE
    original = path.read_text() if path.is_file() else ""
    if EDIT[0] not in original or importlib.util.find_spec("httpx") is None:
        ctx.out.print(f"[dim]this repo has no {EDITED_REF} as in the example; nothing to show[/]")
        return
    view = EDITED_REF.partition(":")[0]
    request = {
        "features": [EDITED_REF],
        "entities": {k: sample[k].to_list() for k in store.repo.views[view].join_keys},
    }
    try:
        _serve_through_the_change(ctx, store, request, at, path, original)
    finally:
        path.write_text(original)
        store.apply()
        store.materialize(at, views=[view])
    ctx.out.print(f"[dim]{EDITED_FILE} restored, applied and {view} re-published[/]")
