"""The demo's week of monitoring: serve payments every hour for a simulated week from the day
after the demo's start, with their amounts 2.5 times larger from day 5 on, then ``monitor run``
over the week: the one alert it raises (the example repo's rule wants two days in a row past
the threshold), the drifted feature's daily history and an HTML report charting each monitored
feature's days."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import polars as pl
from rich.markup import escape

from featurestore._format import number
from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._demo._context import TIMESTAMP, DemoContext
from featurestore.errors import RepoError

__all__ = ["monitor_a_week"]

DAYS = 7
DRIFT_DAY = 5  # amounts are 2.5 times larger from the start of this day (1 = the first)
DRIFT_FACTOR = 2.5
PER_HOUR = 50  # payments served in each simulated hour, in one request
BATCH = 50
WATCHED = "txn_risk:amount_vs_ticket"
REPORT = Path("data") / "reports" / "monitoring.html"


def _serve_hour(
    ctx: DemoContext, store: FeatureStore, rows: pl.DataFrame, at: dt.datetime, factor: float
) -> None:
    """Serve ``rows`` as of ``at`` in requests of BATCH, each one logged."""
    for offset in range(0, rows.height, BATCH):
        batch = rows.slice(offset, BATCH)
        started = time.perf_counter_ns()
        request = {c: batch[c].to_list() for c in ctx.request_columns}
        request["amount"] = [a * factor if a is not None else None for a in request["amount"]]
        resp = store.get_online_features(
            feature_service=ctx.service,
            entities={k: batch[k].to_list() for k in ctx.keys},
            request_data=request,
            request_time=at,
        )
        if not store.repo.config.serving_log.enabled:  # else get_online_features logged it
            store.serving_log.log(
                resp,
                request_id=f"week-{at:%d%H}-{offset // BATCH}",
                latency_us=(time.perf_counter_ns() - started) // 1000,
                request_data=request,
                feature_service=ctx.service,
            )


def monitor_a_week(ctx: DemoContext) -> None:
    """Serve a simulated week with a drift from day 5, run the monitor, show what it found."""
    store, start, spine = ctx.store, ctx.served_at, ctx.spine
    if store is None or start is None or spine is None or ctx.service is None:
        raise RepoError("the demo must serve online before it can monitor a week of serving")
    payments = spine.sort(TIMESTAMP).tail(PER_HOUR * 24)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0) + dt.timedelta(days=1)
    for hour in range(DAYS * 24):
        rows = payments.slice((hour % 24) * PER_HOUR, PER_HOUR)
        factor = DRIFT_FACTOR if hour >= (DRIFT_DAY - 1) * 24 else 1.0
        _serve_hour(ctx, store, rows, start + dt.timedelta(hours=hour, minutes=30), factor)
    store.serving_log.flush()
    drift_at = start + dt.timedelta(days=DRIFT_DAY - 1)
    ctx.out.print(
        f"served {number(DAYS * 24 * PER_HOUR)} payments, {PER_HOUR} an hour from "
        f"{render.timestamp(start)} UTC for {DAYS} days; injected drift: amounts x{DRIFT_FACTOR} "
        f"from day {DRIFT_DAY} ({render.timestamp(drift_at)} UTC)"
    )
    result = store.monitor(until=start + dt.timedelta(days=DAYS))
    render.monitor_run(ctx.out, result)
    history = store.monitor_history(WATCHED, "1d")
    if ctx.verbose:
        render.monitor_history(ctx.out, WATCHED, "1d", history)
    else:
        days = " ".join(
            f"{start:%m-%d} {verdict}"
            for start, verdict in zip(history["start"], history["verdict"], strict=True)
        )
        ctx.out.print(f"{WATCHED} per day: ks_d {render.sparkline(history['ks_d'].to_list())}")
        ctx.out.print(f"  verdicts: {days}")
    report = store.monitor_report("1d", start, start + dt.timedelta(days=DAYS))
    page = report.write_html(ctx.repo_dir / REPORT)
    ctx.out.print(f"monitoring report with each feature's daily series: {ctx.shown(page)}")
    ctx.out.print(
        f"expected: one alert on {WATCHED}, raised after days {DRIFT_DAY} and {DRIFT_DAY + 1} "
        "were both past the threshold; nothing before (the day before the week holds the "
        "payments of the reports step, served while a view's materialization was stalled)"
    )
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.hints += [
        f"featurestore monitor history --repo {shown} --feature {WATCHED} --window 1d",
        f"featurestore monitor run --repo {shown} --fail-on-alert",
    ]
