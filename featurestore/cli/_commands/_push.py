"""The ``push`` verb: new events of a source from a file (Parquet, CSV or JSON lines), to the
source's files and the online state of the aggregation views that read it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import click
import polars as pl

from featurestore.cli import _render as render
from featurestore.cli._commands._options import json_option, open_store, repo_option
from featurestore.errors import PushError

__all__ = ["push", "read_rows"]

_READERS = {
    ".parquet": pl.read_parquet,
    ".pq": pl.read_parquet,
    ".csv": lambda path: pl.read_csv(path, try_parse_dates=True),
    ".jsonl": pl.read_ndjson,
    ".ndjson": pl.read_ndjson,
    ".json": pl.read_ndjson,
}


def read_rows(path: Path) -> pl.DataFrame:
    """The events in ``path``, read by its extension (CSV times are parsed as dates)."""
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise PushError(
            f"cannot read events from {path.name!r}: give a .parquet, .csv or .jsonl file"
        )
    try:
        return reader(path)
    except (pl.exceptions.PolarsError, ValueError) as exc:
        raise PushError(f"{path} is not a readable {path.suffix[1:]} file: {exc}") from None


@click.command("push")
@click.argument("source")
@click.option(
    "--file",
    "path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="The events: a .parquet, .csv or .jsonl (JSON lines) file with the source's columns.",
)
@click.option(
    "--to",
    type=click.Choice(["online_and_offline", "online", "offline"]),
    default="online_and_offline",
    show_default=True,
    help="The source's files and the online state, or one of them.",
)
@repo_option
@json_option
def push(source: str, path: Path, to: str, repo: Path | None, as_json: bool) -> None:
    """Push new events of SOURCE: one Parquet part appended to its files (read by training
    sets and materializations) and the online state of the aggregation views reading it."""
    rows = read_rows(path)
    with open_store(repo) as store:
        result = store.push(source, rows, to=to)  # type: ignore[arg-type]
    if as_json:
        render.dump_json(dataclasses.asdict(result))
    else:
        render.push_result(render.console(), result)
