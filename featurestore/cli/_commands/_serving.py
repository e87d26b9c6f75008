"""The verbs that serve online values: ``get-online`` for a few entities at the command line,
and ``serve`` over HTTP."""

from __future__ import annotations

import contextlib
import datetime as dt
from pathlib import Path

import click
import polars as pl

from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._commands._options import (
    feature_selection,
    features_option,
    json_option,
    open_store,
    repo_option,
)
from featurestore.cli._commands._parsing import ISO_DATETIME, broadcast, parse_assignments
from featurestore.definitions._dtypes import parse_dtype
from featurestore.errors import OnlineRequestError

__all__ = ["get_online", "serve"]

ARGUMENTS_HINT = "Pass join keys as --entity KEY=V1,V2 and request data as --request COLUMN=V1,V2."


def join_key_dtypes(store: FeatureStore) -> dict[str, pl.DataType]:
    """Each join key's dtype as recorded by apply (found in the view's source)."""
    out: dict[str, pl.DataType] = {}
    for view in store.registry.require().views.values():
        for key, name in view.join_keys.items():
            try:
                out.setdefault(key, parse_dtype(name))
            except ValueError:
                out.setdefault(key, pl.String())
    return out


def request_dtypes(store: FeatureStore) -> dict[str, pl.DataType]:
    """Each request column's declared dtype, over every on-demand view's request sources."""
    return {
        column: dtype
        for odfv in store.repo.on_demand_views.values()
        for source in odfv.request_sources
        for column, dtype in source.fields.items()
    }


@click.command("get-online")
@repo_option
@features_option
@click.option(
    "--entity",
    "entity_args",
    multiple=True,
    metavar="KEY=V1,V2",
    help="A join key and its values, one entity row per value (one option per key).",
)
@click.option(
    "--request",
    "request_args",
    multiple=True,
    metavar="COLUMN=V1,V2",
    help="Request data for on-demand features, one value per entity row (or one for all).",
)
@click.option(
    "--at",
    type=ISO_DATETIME,
    default=None,
    help="Request time against which ttl is checked (ISO; naive = UTC). Default: now.",
)
@click.option(
    "--full-feature-names", is_flag=True, help="Name columns 'view__feature' instead of 'feature'."
)
@json_option
def get_online(
    repo: Path | None,
    feature_refs: tuple[str, ...],
    service: str | None,
    entity_args: tuple[str, ...],
    request_args: tuple[str, ...],
    at: dt.datetime | None,
    full_feature_names: bool,
    as_json: bool,
) -> None:
    """Serve the latest values of some features for a few entities, with a status per value."""
    refs = feature_selection(feature_refs, service)
    with open_store(repo) as store:
        entities = parse_assignments(entity_args, join_key_dtypes(store), "--entity", "join key")
        request = parse_assignments(
            request_args, request_dtypes(store), "--request", "request column"
        )
        for note in broadcast(entities, request):
            render.note(render.console(stderr=True), note)
        try:
            resp = store.get_online_features(
                features=refs or None,
                feature_service=service,
                entities=entities,
                request_data=request,
                full_feature_names=full_feature_names,
                request_time=at,
            )
        except OnlineRequestError as exc:
            raise click.UsageError(f"{exc}. {ARGUMENTS_HINT}") from None
    if as_json:
        render.dump_json(render.online_json(resp))
    else:
        render.online(render.console(), resp)


@click.command()
@repo_option
@click.option(
    "--host",
    default=None,
    help="Interface to bind. Default: server.host in featurestore.yaml, else 127.0.0.1 "
    "(this machine only; use 0.0.0.0 to accept other hosts, ideally with auth tokens).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port. Default: server.port in featurestore.yaml, else 6566.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes. Default: server.workers in featurestore.yaml, else 1.",
)
def serve(repo: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve online features over HTTP (POST /v1/online-features) until Ctrl-C or SIGTERM."""
    from featurestore.server import serve as run_server

    err = render.console(stderr=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutting down
        run_server(
            repo,
            host=host,
            port=port,
            workers=workers,
            announce=lambda line: err.print(line, markup=False, highlight=False),
        )
