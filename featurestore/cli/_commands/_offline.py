"""The offline verbs: ``validate`` the sources against their declarations and build a
``training-set`` of point-in-time correct features."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from featurestore.cli import _render as render
from featurestore.cli._commands._options import (
    feature_selection,
    features_option,
    json_option,
    open_store,
    repo_option,
)
from featurestore.cli._commands._parsing import ISO_DATETIME

__all__ = ["training_set", "validate"]


@click.command()
@repo_option
@json_option
@click.pass_context
def validate(ctx: click.Context, repo: Path | None, as_json: bool) -> None:
    """Check every source against its declarations: its schema, then the values of each
    feature (rows that would be INVALID, with examples); exit 1 if any has a problem."""
    with open_store(repo) as store:
        reports = store.validate()
    if as_json:
        render.dump_json([r.to_dict() for r in reports])
    else:
        render.validation(render.console(), reports)
    if not all(r.ok for r in reports):
        ctx.exit(1)


@click.command("training-set")
@repo_option
@click.option(
    "--spine",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Parquet or CSV file of entity keys, timestamps and request columns. Without it, "
    "give --start/--end (every source event in the range) or --latest.",
)
@click.option(
    "--start",
    type=ISO_DATETIME,
    default=None,
    help="Without --spine: one row per entity per source event from this time (ISO; naive = UTC).",
)
@click.option(
    "--end", type=ISO_DATETIME, default=None, help="Without --spine: events up to this time."
)
@click.option(
    "--latest",
    is_flag=True,
    help="Without --spine: one row per entity (seen in --start..--end), as of --end "
    "(default: now).",
)
@features_option
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="File to write, in the format of its extension: .parquet (with the metadata and "
    "profiles), .csv or .json (JSON lines).",
)
@click.option("--force", is_flag=True, help="Replace the output file if it exists.")
@click.option(
    "--full-feature-names", is_flag=True, help="Name columns 'view__feature' instead of 'feature'."
)
@click.option(
    "--timestamp-column",
    default="event_timestamp",
    show_default=True,
    help="The spine's timestamp column.",
)
@json_option
def training_set(
    repo: Path | None,
    spine: Path | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    latest: bool,
    feature_refs: tuple[str, ...],
    service: str | None,
    output: Path,
    full_feature_names: bool,
    timestamp_column: str,
    as_json: bool,
    force: bool,
) -> None:
    """Join point-in-time correct features onto a spine (a file, or the sources' events in
    a time range) and write them to a file."""
    if (spine is None) == (start is None and end is None and not latest):
        raise click.UsageError(
            "give --spine FILE, or --start/--end (every source event in the range), or "
            "--latest (each entity once, as of --end), not both"
        )
    if output.exists() and not force:
        raise click.UsageError(f"{output} exists; pass --force to replace it")
    refs = feature_selection(feature_refs, service)
    with open_store(repo) as store, render.steps(render.console(stderr=True)) as progress:
        ts = store.get_training_set(
            spine,
            features=refs or None,
            feature_service=service,
            start=start,
            end=end,
            latest=latest,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            progress=progress,
        )
        progress(f"writing {output}")
        path = ts.save(output)
    if as_json:
        render.dump_json(render.training_json(ts, path))
    else:
        render.training_summary(render.console(), ts, path)
