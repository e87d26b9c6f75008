"""The demo's offline steps: apply the definitions, build a training set of every labelled
payment before the injected drift, and summarize it."""

from __future__ import annotations

import time
from pathlib import Path

import polars as pl
from rich.markup import escape

from featurestore._format import number, percent
from featurestore._store import FeatureStore
from featurestore.cli import _render as render
from featurestore.cli._demo import _compact as compact
from featurestore.cli._demo._context import TIMESTAMP, DemoContext
from featurestore.errors import RepoError

__all__ = ["apply_definitions", "build_training_set", "summarize"]

SERVICE = "fraud_detection_v1"  # the example's feature service; else the repo's first one
TRAINING_SET = Path("data") / "training_sets" / "fraud_v1.parquet"
LABEL = "is_fraud"


def apply_definitions(ctx: DemoContext) -> None:
    """Validate the definitions against the data and record them in the registry."""
    ctx.store = FeatureStore(ctx.repo_dir)
    diff = ctx.store.apply()
    registry = ctx.shown(ctx.store.registry.path)
    if not ctx.verbose:
        compact.applied(ctx.out, diff, ctx.store.project, registry)
        return
    render.plan(ctx.out, diff, ctx.store.project, applied=True)
    ctx.out.print(f"registry: {escape(registry)}")


def _service(store: FeatureStore, repo: Path) -> str:
    services = list(store.repo.services)
    service = SERVICE if SERVICE in services else next(iter(services), None)
    if service is None:
        raise RepoError(f"{repo} defines no feature service to build a training set for")
    return service


def build_training_set(ctx: DemoContext) -> None:
    """Join point-in-time correct features onto every labelled transaction and save them."""
    store = ctx.store
    if store is None or ctx.generator is None:
        raise RepoError("the demo must generate data and apply before building a training set")
    ctx.service = service = _service(store, ctx.repo_dir)
    ctx.spine = train = ctx.generator.training_spine(ctx.repo_dir / "data")
    ctx.training_path = path = ctx.repo_dir / TRAINING_SET
    if ctx.drift_at is not None:  # the model is trained before the injected drift
        train = train.filter(pl.col(TIMESTAMP) < ctx.drift_at)
    before = f" before {render.timestamp(ctx.drift_at)} UTC" if ctx.drift_at is not None else ""
    ctx.out.print(
        f"spine: {number(train.height)} transactions{before}; feature service [bold]{service}[/]"
    )
    if not ctx.verbose:
        started = time.perf_counter()
        ctx.training_set = store.get_training_set(train, feature_service=service)
        ctx.training_set.save(path)
        ctx.out.print(
            f"built, profiled and written to [bold]{escape(ctx.shown(path))}[/] in "
            f"{time.perf_counter() - started:.1f}s"
        )
        return
    with render.steps(ctx.out) as progress:
        ctx.training_set = store.get_training_set(train, feature_service=service, progress=progress)
        progress(f"profiling and writing {ctx.shown(path)}")
        ctx.training_set.save(path)


def summarize(ctx: DemoContext) -> None:
    """Rows, spine time range, label rate and the per-feature table (only the features with
    statuses other than PRESENT unless --verbose)."""
    ts = ctx.training_set
    if ts is None:
        raise RepoError("the demo has no training set to summarize")
    frame = ts.to_polars()
    if ctx.verbose:
        render.training_summary(ctx.out, ts, None)
    else:
        compact.training_set(ctx.out, ts)
    if LABEL in frame.columns:
        positives = int(frame[LABEL].sum())
        share = percent(positives / max(frame.height, 1))
        ctx.out.print(f"label {LABEL}: {number(positives)} positives ({share})")
    if ctx.training_path is not None and ctx.verbose:
        ctx.out.print(f"written to [bold]{escape(ctx.shown(ctx.training_path))}[/]")
