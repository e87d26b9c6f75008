"""``featurestore monitor``: ``run`` summarizes the serving log and evaluates the alert rules
(``--fail-on-alert`` exits with 3 while an alert fires), ``history`` prints a feature's drift
over time, ``report`` every monitored feature's (with an HTML page charting each series),
``export`` writes Prometheus alert rules and a Grafana dashboard."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import click

from featurestore.cli import _render as render
from featurestore.cli._commands._options import (
    json_option,
    open_store,
    repo_option,
    report_options,
)
from featurestore.cli._commands._parsing import ISO_DATETIME, split_list
from featurestore.cli._commands._reports import show_report

__all__ = ["monitor"]

ALERT_EXIT = 3


@click.group()
def monitor() -> None:
    """Watch served features over time: hourly summaries of the serving log against the
    reference of ``monitoring`` in featurestore.yaml, drift per window, and alerts."""


@monitor.command("run")
@repo_option
@click.option(
    "--until",
    type=ISO_DATETIME,
    default=None,
    help="Evaluate the windows that ended by this time (ISO; naive = UTC). Default: now.",
)
@click.option(
    "--fail-on-alert",
    is_flag=True,
    help="Exit with code 3 when an alert is firing after the run (for cron or CI).",
)
@json_option
@click.pass_context
def run(
    ctx: click.Context,
    repo: Path | None,
    until: dt.datetime | None,
    fail_on_alert: bool,
    as_json: bool,
) -> None:
    """Summarize the serving log files not yet counted, evaluate every alert rule over the
    windows that ended since the last run, and send what changed (idempotent; safe to run
    from cron or several times at once)."""
    with open_store(repo) as store:
        result = store.monitor(until)
    if as_json:
        render.dump_json(result.to_json())
    else:
        render.monitor_run(render.console(), result)
    if fail_on_alert and result.firing:
        ctx.exit(ALERT_EXIT)


@monitor.command("history")
@repo_option
@click.option("--feature", "ref", required=True, help="The feature, as view:feature.")
@click.option(
    "--window",
    type=click.Choice(["1h", "1d", "7d"]),
    default="1h",
    show_default=True,
    help="The window of each point.",
)
@click.option("--start", type=ISO_DATETIME, default=None, help="First window end after this.")
@click.option("--end", type=ISO_DATETIME, default=None, help="Last window end at or before this.")
@json_option
def history(
    repo: Path | None,
    ref: str,
    window: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    as_json: bool,
) -> None:
    """Print a feature's drift statistics per window, with each threshold and verdict."""
    with open_store(repo) as store:
        points = store.monitor_history(ref, window, start, end)
    if as_json:
        rows = [
            {k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}
            for row in points.iter_rows(named=True)
        ]
        render.dump_json({"feature": ref, "window": window, "points": rows})
    else:
        render.monitor_history(render.console(), ref, window, points)


@monitor.command("report")
@repo_option
@click.option(
    "--window",
    type=click.Choice(["1h", "1d", "7d"]),
    default="1d",
    show_default=True,
    help="The window of each point.",
)
@click.option("--start", type=ISO_DATETIME, default=None, help="First window end after this.")
@click.option("--end", type=ISO_DATETIME, default=None, help="Last window end at or before this.")
@report_options
@click.pass_context
def report(
    ctx: click.Context,
    repo: Path | None,
    window: str,
    start: dt.datetime | None,
    end: dt.datetime | None,
    feature_refs: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Judge every monitored feature over a period: flagged when a window was past its
    calibrated threshold; --html draws each feature's statistic per window."""
    features = split_list(feature_refs) or None
    with open_store(repo) as store:
        result = store.monitor_report(window, start, end, features)
    show_report(ctx, result, as_json, html_path, fail_on_flagged)


@monitor.command("export")
@repo_option
@click.option(
    "--prometheus-rules",
    "rules_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write Prometheus alerting rules (YAML) for the configured alerts here.",
)
@click.option(
    "--grafana",
    "grafana_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write a Grafana dashboard (JSON) of the monitored features here.",
)
def export(repo: Path | None, rules_path: Path | None, grafana_path: Path | None) -> None:
    """Write alert rules and a dashboard that match the server's /metrics names."""
    from featurestore.monitoring import grafana_dashboard, prometheus_rules

    if rules_path is None and grafana_path is None:
        raise click.UsageError("give --prometheus-rules FILE, --grafana FILE or both")
    with open_store(repo) as store:
        config = store.repo.config.monitoring
    features = [] if config.features == "all" else list(config.features)
    out = render.console()
    if rules_path is not None:
        rules_path.write_text(prometheus_rules(config))
        render.note(out, f"Prometheus rules written to {rules_path}")
    if grafana_path is not None:
        grafana_path.write_text(json.dumps(grafana_dashboard(config, features), indent=2))
        render.note(out, f"Grafana dashboard written to {grafana_path}")
