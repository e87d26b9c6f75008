"""The demo's online step: publish the online views as of the last payment, serve the latest
payments with the feature service, and check every served value against a training set."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter

import polars as pl
from rich.markup import escape

from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._demo import _compact as compact
from featurestore.cli._demo._compare import same, show_comparison
from featurestore.cli._demo._context import TIMESTAMP, DemoContext
from featurestore.cli._demo._http_output import http_table
from featurestore.errors import MaterializationGuardError, RepoError
from featurestore.online import MaterializationResult
from featurestore.serving import OnlineResponse

__all__ = ["materialize_and_serve", "materialize_views"]

ONLINE_ROWS = 5  # payments served in this step (and over HTTP in a later one)
FORCED_HINT = (
    "The demo publishes it anyway (force=True) to go on; a scheduled job would stop here and alert."
)


def _materialize_each(
    ctx: DemoContext,
    store: FeatureStore,
    end: dt.datetime,
    progress: render.ViewSteps | None,
) -> list[MaterializationResult]:
    """Publish every online view as of ``end``; a batch the guard refuses is shown, then
    published anyway."""
    results: list[MaterializationResult] = []
    for name in [v.name for v in store.repo.views.values() if v.online]:
        try:
            results += store.materialize(end, views=[name], progress=progress)
        except MaterializationGuardError as exc:
            if progress is not None:
                progress.done(ok=False)
            render.guard_refusal(ctx.out, exc.report, hint=FORCED_HINT)
            results += store.materialize(end, views=[name], force=True, progress=progress)
    return results


def materialize_views(ctx: DemoContext, store: FeatureStore, end: dt.datetime) -> None:
    """Publish every online view as of ``end``; a batch the guard refuses (e.g. the data was
    regenerated with other settings since the last run) is shown, then published anyway."""
    if not ctx.verbose:
        compact.materialized(ctx.out, _materialize_each(ctx, store, end, None))
        return
    ctx.out.print(f"online views as of the last transaction, {render.timestamp(end)} UTC:")
    names = [v.name for v in store.repo.views.values() if v.online]
    with render.view_steps(ctx.out, names) as progress:
        results = _materialize_each(ctx, store, end, progress)
    render.materialization(ctx.out, results)


def serving_sample(ctx: DemoContext, keys: list[str]) -> pl.DataFrame:
    """The latest transactions of distinct entity pairs; the last one's first key is replaced
    by an id the store has never seen, to show what serving does with an unknown entity."""
    spine = ctx.spine
    if spine is None:
        raise RepoError("the demo has no spine to sample")
    sample = spine.unique(subset=keys, keep="last", maintain_order=True).tail(ONLINE_ROWS)
    key = keys[0]
    if sample.height and sample.schema[key].is_integer():
        known = [int(spine.select(pl.col(key).max()).item())]
        source = ctx.files.get("users")
        if source is not None and key in pl.read_parquet_schema(source):
            top = pl.scan_parquet(source).select(pl.col(key).max()).collect().item()
            known += [] if top is None else [int(top)]
        unknown = max(known) + 1
        sample = sample.with_columns(
            pl.when(pl.int_range(pl.len()) == sample.height - 1)
            .then(pl.lit(unknown, sample.schema[key]))
            .otherwise(pl.col(key))
            .alias(key)
        )
    return sample


def compare_with_offline(
    ctx: DemoContext, store: FeatureStore, spine: pl.DataFrame, resp: OnlineResponse
) -> None:
    """Build a training set of the served rows at the request time; print whether every value
    equals the served one, or list those that differ."""
    offline = store.get_training_set(spine, feature_service=ctx.service).to_polars()
    compared, mismatches = 0, []
    for column, values in resp.values.items():
        for i, (a, b) in enumerate(zip(values, offline[column].to_list(), strict=True)):
            compared += 1
            if not same(a, b):
                mismatches.append(f"row {i + 1} {column}: online {a!r} vs offline {b!r}")
    detail = (
        f"{spine.height} rows x {len(resp.values)} features; training set as of "
        f"{render.timestamp(resp.request_time)} UTC"
    )
    show_comparison(ctx.out, "online {} offline", compared, mismatches, detail)


def _served_columns(store: FeatureStore, spine: pl.DataFrame) -> tuple[list[str], list[str]]:
    """The views' join keys and the on-demand views' request columns found in the spine."""
    repo = store.repo
    keys = list(
        dict.fromkeys(k for v in repo.views.values() for k in v.join_keys if k in spine.columns)
    )
    request_columns = list(
        dict.fromkeys(
            c
            for odfv in repo.on_demand_views.values()
            for src in odfv.request_sources
            for c in src.fields
            if c in spine.columns
        )
    )
    if not keys:
        raise RepoError("the spine has none of the views' join keys; nothing to serve online")
    return keys, request_columns


def _serve_sample(
    ctx: DemoContext, store: FeatureStore, sample: pl.DataFrame, service: str, end: dt.datetime
) -> OnlineResponse:
    """Serve the sample in-process as of ``end`` and print it with the time it took."""
    ctx.out.print(
        ("\n" if ctx.verbose else "")
        + f"feature service [bold]{escape(service)}[/] online for the latest {sample.height} "
        f"payments (the last row's {escape(ctx.keys[0])} is unknown):"
    )
    started = time.perf_counter()
    resp = store.get_online_features(
        feature_service=service,
        entities={k: sample[k].to_list() for k in ctx.keys},
        request_data={c: sample[c].to_list() for c in ctx.request_columns},
        request_time=end,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    if ctx.verbose:
        render.online(ctx.out, resp)
        ctx.out.print(f"[dim]served in {elapsed_ms:.1f} ms (first request, planning included)[/]")
        return resp
    ctx.out.print(http_table(resp, ctx.out.width))
    totals = Counter(s.value for column in resp.statuses.values() for s in column)
    took = f"served in {elapsed_ms:.1f} ms (the first request)"
    ctx.out.print(f"{render.status_totals(totals) or 'no values'}; [dim]{took}[/]")
    return resp


def _hints(ctx: DemoContext, sample: pl.DataFrame, service: str, end: dt.datetime) -> list[str]:
    """The same request from the command line, and the next materialization."""
    shown = escape(ctx.shown(ctx.repo_dir))
    first = sample.row(0, named=True)
    args = " ".join(
        [f"--entity {k}={first[k]}" for k in ctx.keys]
        + [f"--request {c}={first[c]}" for c in ctx.request_columns]
    )
    return [
        f"featurestore get-online --repo {shown} --service {escape(service)} "
        f"{escape(args)} --at {end.strftime('%Y-%m-%dT%H:%M:%S')}",
        f"featurestore materialize-incremental --repo {shown}",
    ]


def materialize_and_serve(ctx: DemoContext) -> None:
    """Publish the online views as of the last transaction, serve a few payments with the
    feature service, and check the served values against a training set at the same time."""
    store, spine, service = ctx.store, ctx.spine, ctx.service
    if store is None or spine is None or service is None or spine.height == 0:
        raise RepoError("the demo must build a training set before serving online")
    end = spine[TIMESTAMP].max()
    if not isinstance(end, dt.datetime):
        raise RepoError(f"the spine's {TIMESTAMP!r} column holds no datetimes")
    ctx.served_at = end
    materialize_views(ctx, store, end)
    ctx.keys, ctx.request_columns = _served_columns(store, spine)
    ctx.sample = sample = serving_sample(ctx, ctx.keys)
    resp = _serve_sample(ctx, store, sample, service, end)
    offline_spine = sample.select(*ctx.keys, *ctx.request_columns).with_columns(
        pl.lit(end, spine.schema[TIMESTAMP]).alias(TIMESTAMP)
    )
    compare_with_offline(ctx, store, offline_spine, resp)
    ctx.hints += _hints(ctx, sample, service, end)
