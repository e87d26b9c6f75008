"""The verbs that publish online values: ``materialize`` (a snapshot, or the rows of a window)
and ``materialize-incremental`` (from each view's watermark), one view at a time so that a
guard's refusal stops the run with what was already published."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path

import click

from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._commands._options import (
    end_option,
    force_option,
    json_option,
    open_store,
    repo_option,
    views_option,
)
from featurestore.cli._commands._parsing import ISO_DATETIME, split_list
from featurestore.errors import MaterializationGuardError
from featurestore.online import GuardReport, MaterializationResult

__all__ = ["materialize", "materialize_incremental", "teardown"]

MaterializeOne = Callable[[str, Callable[[str], None]], list[MaterializationResult]]


def view_names(store: FeatureStore, views: Sequence[str]) -> list[str]:
    """The views named by --views (checked before anything is published), else the online ones."""
    names = list(dict.fromkeys(split_list(views)))
    if not names:
        return [v.name for v in store.repo.views.values() if v.online]
    for name in names:
        if name not in store.repo.views:
            store.repo.any_view(name)  # raises, listing the known views
            raise click.BadParameter(
                f"{name!r} is an on-demand view; it is computed at request time, not materialized",
                param_hint="--views",
            )
    return names


def run_materialization(
    ctx: click.Context, names: list[str], materialize_one: MaterializeOne, as_json: bool
) -> None:
    """Materialize view by view; at a guard refusal stop, show the report and what was already
    published, and exit 1."""
    results: list[MaterializationResult] = []
    refused: GuardReport | None = None
    with render.view_steps(render.console(stderr=True), names) as progress:
        for name in names:
            try:
                results += materialize_one(name, progress)
            except MaterializationGuardError as exc:
                progress.done(ok=False)
                refused = exc.report
                break
    if as_json:
        render.dump_json(render.materialization_json(results, refused))
    elif results or refused is None:
        render.materialization(render.console(), results)
    if refused is not None:
        render.guard_refusal(
            render.console(stderr=True),
            refused,
            published=[r.view for r in results],
            not_attempted=names[len(results) + 1 :],
        )
        ctx.exit(1)


@click.command()
@repo_option
@end_option
@click.option(
    "--start",
    type=ISO_DATETIME,
    default=None,
    help="Only upsert entities with rows between START and END (ISO; naive = UTC). "
    "Default: a full snapshot that replaces each view's online rows.",
)
@views_option
@force_option
@json_option
@click.pass_context
def materialize(
    ctx: click.Context,
    repo: Path | None,
    end: dt.datetime | None,
    start: dt.datetime | None,
    views: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Publish the online views' latest values as of END to the online store."""
    until = end or dt.datetime.now(dt.UTC)
    if start is not None and start > until:
        raise click.BadParameter(
            f"{start.isoformat()} is after the end {until.isoformat()}", param_hint="--start"
        )
    with open_store(repo) as store:

        def one(name: str, progress: Callable[[str], None]) -> list[MaterializationResult]:
            return store.materialize(until, start, [name], force=force, progress=progress)

        run_materialization(ctx, view_names(store, views), one, as_json)


@click.command("materialize-incremental")
@repo_option
@end_option
@views_option
@force_option
@json_option
@click.pass_context
def materialize_incremental(
    ctx: click.Context,
    repo: Path | None,
    end: dt.datetime | None,
    views: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Publish what changed since each view's last materialization (a full snapshot if none)."""
    until = end or dt.datetime.now(dt.UTC)
    with open_store(repo) as store:

        def one(name: str, progress: Callable[[str], None]) -> list[MaterializationResult]:
            return store.materialize_incremental(until, [name], force=force, progress=progress)

        run_materialization(ctx, view_names(store, views), one, as_json)


@click.command()
@repo_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def teardown(repo: Path | None, yes: bool) -> None:
    """Remove the project's online data (values, events and the state of publishes); the
    sources, the registry and the serving log stay, and materialize publishes again."""
    with open_store(repo) as store:
        where = store.repo.config.online_store.type
        if not yes:
            click.confirm(
                f"Remove every online value of project {store.project!r} from the {where} "
                "online store?",
                abort=True,
            )
        dropped = store.teardown()
    views = [d for d in dropped if not d.startswith("__fs") and "@" not in d]
    render.console().print(
        f"Removed the online values and events of {len(views)} view(s) and the state of their "
        "publishes; run 'featurestore materialize' to publish again."
    )
