"""Options several verbs share (--repo, --json, --features or --service, the materialize and
report options) and the store a verb opens for its one call."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from featurestore._store import FeatureStore
from featurestore.cli._commands._parsing import ISO_DATETIME, split_list

__all__ = [
    "JSON_ERRORS",
    "end_option",
    "feature_selection",
    "features_option",
    "force_option",
    "json_option",
    "open_store",
    "repo_option",
    "report_options",
    "views_option",
]

F = TypeVar("F", bound=Callable[..., Any])

REPO_HELP = (
    "Feature repo directory. Default: the current directory if it has featurestore.yaml, "
    "else ./feature_definitions, else the nearest parent directory with featurestore.yaml."
)


@contextmanager
def open_store(repo: Path | None) -> Iterator[FeatureStore]:
    """The repo's :class:`FeatureStore`, closed when the block ends."""
    store = FeatureStore(repo)
    try:
        yield store
    finally:
        store.close()


def repo_option(fn: F) -> F:
    """``--repo DIR``."""
    return click.option("--repo", type=click.Path(path_type=Path), default=None, help=REPO_HELP)(fn)


JSON_ERRORS = "json_errors"  # set in the root context's meta when --json is given


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    if value:  # errors are then JSON on stderr too (see _main._Group)
        ctx.find_root().meta[JSON_ERRORS] = True
    return value


def json_option(fn: F) -> F:
    """``--json``: print JSON instead of tables, and errors as JSON on stderr."""
    return click.option(
        "--json",
        "as_json",
        is_flag=True,
        callback=_remember_json,
        help="Print JSON instead of tables; errors as JSON on stderr.",
    )(fn)


def features_option(fn: F) -> F:
    """``--features REFS`` (repeatable, comma-separated) or ``--service NAME``."""
    fn = click.option("--service", metavar="NAME", help="A feature service instead of --features.")(
        fn
    )
    return click.option(
        "--features",
        "feature_refs",
        multiple=True,
        metavar="REFS",
        help="Comma-separated 'view:feature' references (repeatable).",
    )(fn)


def feature_selection(feature_refs: Sequence[str], service: str | None) -> list[str]:
    """The references of ``--features``; a usage error unless exactly one option is given."""
    refs = split_list(feature_refs)
    if bool(refs) == bool(service):
        raise click.UsageError("pass exactly one of --features REFS or --service NAME")
    return refs


def views_option(fn: F) -> F:
    """``--views NAMES``: the views to materialize."""
    return click.option(
        "--views",
        multiple=True,
        metavar="NAMES",
        help="Comma-separated views to materialize (repeatable). Default: every online view.",
    )(fn)


def force_option(fn: F) -> F:
    """``--force``: publish what the guard refuses."""
    return click.option(
        "--force", is_flag=True, help="Publish a batch even if the guard finds it broken."
    )(fn)


def end_option(fn: F) -> F:
    """``--end TIME``: the time materialized values are as of."""
    return click.option(
        "--end",
        type=ISO_DATETIME,
        default=None,
        help="Publish the latest values as of this time (ISO; naive = UTC). Default: now.",
    )(fn)


def report_options(fn: F) -> F:
    """``--features``, ``--json``, ``--html FILE`` and ``--fail-on-flagged`` of the reports."""
    fn = click.option(
        "--fail-on-flagged",
        is_flag=True,
        help="Exit with code 3 when any feature is flagged (to gate a deploy or a retrain).",
    )(fn)
    fn = click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Also write a self-contained HTML report to this file.",
    )(fn)
    fn = json_option(fn)
    return click.option(
        "--features",
        "feature_refs",
        multiple=True,
        metavar="REFS",
        help="Comma-separated 'view:feature' references (repeatable; default: all).",
    )(fn)
