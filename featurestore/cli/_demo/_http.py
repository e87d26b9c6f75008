"""The demo's HTTP step: ``featurestore serve`` on a free loopback port, asked for the online
step's rows with featurestore.Client, checked against in-process serving, its metrics shown,
stopped with SIGTERM, and what it wrote to the serving log counted."""

from __future__ import annotations

import datetime as dt
import importlib.util
import signal
import statistics
import time
from collections import Counter
from typing import Any

from rich.markup import escape

from featurestore._client import Client
from featurestore._store import FeatureStore
from featurestore._value_rules import FeatureStatus
from featurestore.cli._demo._compare import same, show_comparison
from featurestore.cli._demo._context import DemoContext
from featurestore.cli._demo._http_output import (
    curl_command,
    http_table,
    metrics_lines,
    metrics_summary,
)
from featurestore.cli._demo._server import demo_server
from featurestore.cli._render import status_totals, timestamp
from featurestore.errors import FeatureStoreError, RepoError
from featurestore.server._auth import configured_tokens
from featurestore.server._launch import LOOPBACK, free_port
from featurestore.server._run import require_server_extra
from featurestore.serving import OnlineResponse

__all__ = ["serve_over_http"]

TIMED_REQUESTS = 20  # HTTP round trips timed after the first one
STALE_NOTE = (
    "[dim]STALE: at the server's time the sample data is older than its view's ttl, so those "
    "values are withheld (the in-process step asked as of the last transaction)[/]"
)


def _server_missing(ctx: DemoContext) -> bool:
    """True, after saying so, when the server extra or httpx is not installed."""
    try:
        require_server_extra()
        if importlib.util.find_spec("httpx") is None:
            raise FeatureStoreError("featurestore.Client needs httpx")
    except FeatureStoreError as exc:
        ctx.out.print(
            f"[yellow]skipped:[/] {escape(str(exc))} (pip install 'featurestore[server]')"
        )
        return True
    return False


def _ask(client: Client, request: dict[str, Any]) -> tuple[OnlineResponse, float, list[float]]:
    """The first response, its round trip and those of TIMED_REQUESTS more, in milliseconds."""
    began = time.perf_counter()
    resp = client.get_online_features(**request)
    first_ms = (time.perf_counter() - began) * 1000
    timings = []
    for _ in range(TIMED_REQUESTS):
        began = time.perf_counter()
        client.get_online_features(**request)
        timings.append((time.perf_counter() - began) * 1000)
    return resp, first_ms, timings


def compare_with_in_process(
    ctx: DemoContext, store: FeatureStore, resp: OnlineResponse, request: dict[str, Any]
) -> None:
    """Serve the same request in-process as of the server's request time (straight from the
    retriever, so nothing is added to the serving log); print whether every value and status
    equals the one that came over HTTP, or list those that differ."""
    local = store.retriever.get(**request, request_time=resp.request_time)
    compared, mismatches = 0, []
    for column, values in resp.values.items():
        pairs = zip(values, local.values[column], strict=True)
        statuses = zip(resp.statuses[column], local.statuses[column], strict=True)
        for i, ((a, b), (sa, sb)) in enumerate(zip(pairs, statuses, strict=True)):
            compared += 1
            if not same(a, b) or sa != sb:
                mismatches.append(f"row {i + 1} {column}: HTTP {a!r} {sa} vs in-process {b!r} {sb}")
    if list(resp.values) != list(local.values) or resp.fingerprints != local.fingerprints:
        mismatches.append("the columns or the fingerprints differ")
    detail = (
        f"values, statuses and fingerprints of {resp.row_count} rows x {len(resp.values)} features"
    )
    show_comparison(ctx.out, "HTTP {} in-process", compared, mismatches, detail)


def _show_served(ctx: DemoContext, url: str, service: str, resp: OnlineResponse) -> None:
    """The rows served over HTTP (their status totals unless --verbose), and a note when some
    are stale at the server's time."""
    at = timestamp(resp.request_time.astimezone(dt.UTC))
    if ctx.verbose:
        ctx.out.print(
            f"\nPOST {url}/v1/online-features, feature service [bold]{escape(service)}[/], "
            f"the same {resp.row_count} rows, served as of the server's clock, {at} UTC:"
        )
        ctx.out.print(http_table(resp, ctx.out.width))
    else:
        ctx.out.print(
            f"POST /v1/online-features, the same {resp.row_count} rows, as of the server's "
            f"clock ({at} UTC):"
        )
        totals = Counter(s.value for column in resp.statuses.values() for s in column)
        ctx.out.print(status_totals(totals) or "no values")
    if any(s is FeatureStatus.STALE for col in resp.statuses.values() for s in col):
        ctx.out.print(STALE_NOTE)


def _show_metrics(ctx: DemoContext, url: str, token: str | None) -> None:
    """GET /metrics: the online endpoint's request counters and values served by status."""
    import httpx  # the server extra, checked by _server_missing

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=10, trust_env=False)
    metrics.raise_for_status()
    if not ctx.verbose:
        ctx.out.print(f"GET /metrics: {escape(metrics_summary(metrics.text))}")
        return
    ctx.out.print(f"GET {url}/metrics:")
    for line in metrics_lines(metrics.text):
        ctx.out.print(f"  {escape(line)}", soft_wrap=True)


def _show_stopped(ctx: DemoContext, store: FeatureStore, code: int, since: dt.datetime) -> None:
    """How the server stopped, and the serving-log records it wrote since ``since``."""
    graceful = code in (0, -signal.SIGTERM)
    ctx.out.print(
        "stopped the server with SIGTERM: "
        + ("graceful shutdown, serving log flushed" if graceful else f"exit code {code}")
    )
    # bounded by now: a later step logs a simulated week ahead, which a second run would count
    logged = store.read_serving_log(start=since, end=dt.datetime.now(dt.UTC))
    requests = logged["request_id"].n_unique() if logged.height else 0
    where = f" under {escape(ctx.shown(store.serving_log_dir))}" if ctx.verbose else ""
    ctx.out.print(
        f"serving log: {logged.height} record(s) from this server ({requests} request(s), "
        f"one record per entity row){where}"
    )


def _show_curl(
    ctx: DemoContext, store: FeatureStore, request: dict[str, Any], token: str | None
) -> None:
    """The request's first row as a curl command against ``featurestore serve``'s default
    port, to try from a shell."""
    body = {
        "feature_service": request["feature_service"],
        "entities": {k: v[:1] for k, v in request["entities"].items()},
        "request_data": {c: v[:1] for c, v in request["request_data"].items()},
    }
    default_url = f"http://{LOOPBACK}:{store.repo.config.server.port}"
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.out.print(
        f"the first row from a shell, with [bold]featurestore serve --repo {shown}[/] running:"
    )
    ctx.out.print(f"  {escape(curl_command(default_url, body, token))}", soft_wrap=True)
    ctx.hints.append(f"featurestore serve --repo {shown}")


def serve_over_http(ctx: DemoContext) -> None:
    """Start ``featurestore serve`` on a free loopback port, ask it for the online step's rows
    with featurestore.Client, check them against in-process serving, show its metrics, stop it
    (SIGTERM) and count what it wrote to the serving log."""
    store, sample, service = ctx.store, ctx.sample, ctx.service
    if store is None or sample is None or service is None:
        raise RepoError("the demo must serve online in-process before serving over HTTP")
    if _server_missing(ctx):
        return
    request: dict[str, Any] = {
        "feature_service": service,
        "entities": {k: sample[k].to_list() for k in ctx.keys},
        "request_data": {c: sample[c].to_list() for c in ctx.request_columns},
    }
    tokens = configured_tokens(store.repo.config.server)
    token = tokens[0] if tokens else None
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    started_at = dt.datetime.now(dt.UTC)
    launched = time.perf_counter()
    with demo_server(ctx.repo_dir, port) as process:
        repo = f" --repo {escape(ctx.shown(ctx.repo_dir))}" if ctx.verbose else ""
        ctx.out.print(
            f"featurestore serve{repo} --port {port}: ready at {url} in "
            f"{time.perf_counter() - launched:.1f}s (pid {process.pid})"
        )
        with Client(url, token=token) as client:
            resp, first_ms, timings = _ask(client, request)
        _show_served(ctx, url, service, resp)
        compare_with_in_process(ctx, store, resp, request)
        ctx.out.print(
            f"round trips: the first {first_ms:.1f} ms, then a median of "
            f"{statistics.median(timings):.1f} ms over {TIMED_REQUESTS} more (one kept-alive "
            "connection)"
        )
        _show_metrics(ctx, url, token)
    _show_stopped(ctx, store, process.returncode, started_at)
    _show_curl(ctx, store, request, token)
