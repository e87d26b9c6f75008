"""The verbs that judge a repo: ``status`` of each view, ``skew`` between what was served and
the offline path, and ``drift`` between two sides. ``--fail-on-flagged`` exits with 3."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from featurestore.cli import _render as render
from featurestore.cli._commands._options import json_option, open_store, repo_option, report_options
from featurestore.cli._commands._parsing import ISO_DATETIME, Duration, split_list
from featurestore.monitoring import DriftReport, MonitorReport, SkewReport

__all__ = ["drift", "skew", "status"]

FLAGGED_EXIT = 3


@click.command()
@repo_option
@click.option(
    "--at",
    type=ISO_DATETIME,
    default=None,
    help="Time at which ages are measured against ttls (ISO; naive = UTC). Default: now.",
)
@json_option
@click.option(
    "--fail-on-flagged",
    is_flag=True,
    help="Exit with code 3 when a problem is found (to gate a deploy or a scheduled job).",
)
@click.pass_context
def status(
    ctx: click.Context,
    repo: Path | None,
    at: dt.datetime | None,
    as_json: bool,
    fail_on_flagged: bool,
) -> None:
    """Show, per view, whether the code matches what was applied, whether its source is
    readable and recent, when it was last materialized, how fresh its online values are, and
    what to do when something is off."""
    with open_store(repo) as store:
        result = store.status(at)
    if as_json:
        render.dump_json(result.to_dict())
    else:
        render.repo_status(render.console(), result)
    if fail_on_flagged and result.flagged:
        ctx.exit(FLAGGED_EXIT)


def show_report(
    ctx: click.Context,
    report: DriftReport | SkewReport | MonitorReport,
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Print a drift, skew or monitoring report, write its HTML, and set the exit code."""
    if html_path is not None:
        report.write_html(html_path)
    data = report.to_dict()
    if as_json:
        render.dump_json(data)
    else:
        render.report(render.console(), data, html_path)
    if fail_on_flagged and report.flagged:
        ctx.exit(FLAGGED_EXIT)


@click.command()
@repo_option
@click.option(
    "--since",
    type=Duration(),
    default=None,
    help="Window ending now (or at --end): e.g. 1h, 1d, 7d. Default: the whole log.",
)
@click.option("--start", type=ISO_DATETIME, default=None, help="Window start (inclusive).")
@click.option("--end", type=ISO_DATETIME, default=None, help="Window end (exclusive).")
@click.option(
    "--sample", type=click.IntRange(min=1), default=None, help="Replay a random sample of N rows."
)
@click.option("--seed", default=0, show_default=True, help="Seed of --sample.")
@report_options
@click.pass_context
def skew(
    ctx: click.Context,
    repo: Path | None,
    since: dt.timedelta | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    sample: int | None,
    seed: int,
    feature_refs: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Replay served requests through the offline path and report, per feature, where
    serving and training disagree."""
    if since is not None:
        if start is not None:
            raise click.UsageError("pass --since or --start, not both")
        start = (end or dt.datetime.now(dt.UTC)) - since
    with open_store(repo) as store:
        report = store.skew_report(start, end, split_list(feature_refs) or None, sample, seed=seed)
    show_report(ctx, report, as_json, html_path, fail_on_flagged)


@click.command()
@repo_option
@click.option(
    "--reference",
    required=True,
    metavar="SIDE",
    help="A saved training set (file.parquet), a serving log window (log:7d, "
    "log:START..END) or a source window (source:VIEW:START..END).",
)
@click.option("--current", required=True, metavar="SIDE", help="Same forms as --reference.")
@report_options
@click.pass_context
def drift(
    ctx: click.Context,
    repo: Path | None,
    reference: str,
    current: str,
    feature_refs: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Report, per feature, how far the current data has moved from the reference."""
    with open_store(repo) as store:
        report = store.drift_report(reference, current, split_list(feature_refs) or None)
    show_report(ctx, report, as_json, html_path, fail_on_flagged)
