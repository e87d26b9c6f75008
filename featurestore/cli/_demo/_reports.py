"""The demo's reports: stall one view's materialization, serve and log payments, then show the
skew report (served vs a replay through the offline path) and the drift report (training set
vs what was served), each also written as HTML; and, last, the repo's status as an operator
checks it first."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import polars as pl
from rich.markup import escape

from featurestore._format import number
from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._demo import _compact as compact
from featurestore.cli._demo._context import DRIFTED, TIMESTAMP, DemoContext
from featurestore.errors import RepoError

__all__ = ["serve_and_log", "show_status", "skew_and_drift"]

STALLED_VIEW = "merchant_profile"  # its materialization "stalls" in this step
STALLED_DAYS = 8
REPORT_ROWS = 4_000  # payments served and logged for the reports (>= 3,000 for a verdict)
REPORT_BATCH = 50  # entity rows per logged request
REPORTS_DIR = Path("data") / "reports"
LOGGED_FOR = dt.timedelta(milliseconds=1)  # the reports' window: the payments logged at once


def serve_and_log(ctx: DemoContext, store: FeatureStore, at: dt.datetime) -> int:
    """Serve the latest payments as of ``at`` in small requests, each one logged; returns
    how many entity rows were logged."""
    spine, service = ctx.spine, ctx.service
    if spine is None or service is None:
        raise RepoError("the demo must build a training set before serving")
    rows = spine.filter(pl.col(TIMESTAMP) <= at).tail(REPORT_ROWS)
    for offset in range(0, rows.height, REPORT_BATCH):
        batch = rows.slice(offset, REPORT_BATCH)
        started = time.perf_counter_ns()
        request = {c: batch[c].to_list() for c in ctx.request_columns}
        resp = store.get_online_features(
            feature_service=service,
            entities={k: batch[k].to_list() for k in ctx.keys},
            request_data=request,
            request_time=at,
        )
        if store.repo.config.serving_log.enabled:
            continue  # get_online_features logged it
        store.serving_log.log(
            resp,
            request_id=f"demo-{offset // REPORT_BATCH}",
            latency_us=(time.perf_counter_ns() - started) // 1000,
            request_data=request,
            feature_service=service,
        )
    return rows.height


def _stall(ctx: DemoContext, store: FeatureStore, at: dt.datetime) -> None:
    """Publish the stalled view as of STALLED_DAYS before ``at``."""
    stalled_at = at - dt.timedelta(days=STALLED_DAYS)
    if ctx.verbose:
        ctx.out.print(
            f"injected skew: the materialization of [bold]{STALLED_VIEW}[/] stalled "
            f"{STALLED_DAYS} days ago, so its online values are as of "
            f"{render.timestamp(stalled_at)} UTC while its source has moved on"
        )
    else:
        ctx.out.print(
            f"injected skew: [bold]{STALLED_VIEW}[/]'s materialization stalled {STALLED_DAYS} "
            f"days ago, on {render.timestamp(stalled_at)} UTC"
        )
    store.materialize(stalled_at, views=[STALLED_VIEW], force=True)


def _blank_line(ctx: DemoContext) -> None:
    """A blank line between reports, with --verbose (their tables are long)."""
    if ctx.verbose:
        ctx.out.print()


def _show_report(ctx: DemoContext, data: dict[str, Any], html: Path) -> None:
    """A report in full with --verbose; otherwise its features that are not ok in full and a
    line for the others."""
    if ctx.verbose:
        render.report(ctx.out, data, Path(ctx.shown(html)))
    else:
        compact.report(ctx.out, data, Path(ctx.shown(html)))


def skew_and_drift(ctx: DemoContext) -> None:
    """Stall one view's materialization, serve and log payments, then show the skew report
    (served vs a replay through the offline path) and the drift report (training set vs
    what was served), and write both as HTML."""
    store, at, training_path = ctx.store, ctx.served_at, ctx.training_path
    if store is None or at is None or training_path is None:
        raise RepoError("the demo must serve online before it can report skew and drift")
    _stall(ctx, store, at)
    logged = serve_and_log(ctx, store, at)
    window = (at, at + LOGGED_FOR)
    ctx.out.print(f"served and logged {number(logged)} payments as of {render.timestamp(at)} UTC")
    _blank_line(ctx)
    reports = ctx.repo_dir / REPORTS_DIR
    skew = store.skew_report(*window)
    _show_report(ctx, skew.to_dict(), skew.write_html(reports / "skew.html"))
    ctx.out.print(f"expected: {STALLED_VIEW} features whose source changed since the stall")
    _blank_line(ctx)
    current = f"log:{window[0].isoformat()}..{window[1].isoformat()}"
    drift = store.drift_report(training_path, current)
    _show_report(ctx, drift.to_dict(), drift.write_html(reports / "drift.html"))
    ctx.out.print(f"expected: {', '.join(DRIFTED)} (injected)")
    store.materialize(at, views=[STALLED_VIEW], force=True)
    ctx.out.print(f"[dim]{STALLED_VIEW} re-published as of {render.timestamp(at)} UTC[/]")
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.hints += [
        f"featurestore skew --repo {shown} --start {window[0].isoformat()} --html skew.html",
        f"featurestore drift --repo {shown} --reference {escape(ctx.shown(training_path))} "
        f"--current {current} --fail-on-flagged",
    ]


def show_status(ctx: DemoContext) -> None:
    """What an operator checks first: per view, whether the code matches the registry, when it
    was materialized, how fresh its online values are now, and the serving log's size."""
    store = ctx.store
    if store is None or ctx.served_at is None:
        raise RepoError("the demo must serve online before it can show the status")
    if not ctx.verbose:
        compact.status(ctx.out, store.status())
    else:
        ctx.out.print(
            "ages are measured now, and the demo's data ends when it started; a month from "
            "now, views whose online values are older than their ttl would be flagged"
        )
        render.repo_status(ctx.out, store.status())
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.hints.append(f"featurestore status --repo {shown} --fail-on-flagged")
