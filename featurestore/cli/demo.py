"""``featurestore demo``: the example fraud-detection repo end to end, as a sequence of steps.

Each step is a small function of a shared :class:`DemoContext`; later features of the
project add steps to :data:`STEPS` (reports, ...) without touching the others.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import polars as pl
from rich.console import Console
from rich.markup import escape

import featurestore
from featurestore.cli import render
from featurestore.config import CONFIG_FILE
from featurestore.errors import MaterializationGuardError, RepoError
from featurestore.offline.training_set import TrainingSet
from featurestore.online.materialize import MaterializationResult
from featurestore.serving.response import OnlineResponse
from featurestore.store import FeatureStore

__all__ = ["STEPS", "DemoContext", "find_example", "run"]

DEMO_DIR = "featurestore-demo"
LOCAL_EXAMPLE = "feature_definitions"
GENERATOR = "generate_data.py"
SERVICE = "fraud_detection_v1"
TRAINING_SET = Path("data") / "training_sets" / "fraud_v1.parquet"
ONLINE_ROWS = 5
TIMESTAMP = "event_timestamp"
NOT_COPIED = ("data", ".featurestore", "__pycache__", "*.pyc")


@dataclass
class DemoContext:
    """What the steps share: options, the repo in use and what earlier steps produced."""

    out: Console
    repo: Path | None = None
    users: int = 2_000
    seed: int = 7
    cwd: Path = field(default_factory=Path.cwd)
    generator: ModuleType | None = None
    files: dict[str, Path] = field(default_factory=dict)
    store: FeatureStore | None = None
    spine: pl.DataFrame | None = None
    service: str | None = None
    training_set: TrainingSet | None = None
    training_path: Path | None = None
    hints: list[str] = field(default_factory=list)

    def shown(self, path: Path) -> str:
        """``path`` relative to the working directory when it is inside it."""
        path = path.resolve()
        cwd = self.cwd.resolve()
        return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)

    @property
    def repo_dir(self) -> Path:
        if self.repo is None:
            raise RepoError("the demo has not located its repo yet")
        return self.repo


def bundled_examples() -> list[Path]:
    """Where the example repo ships: inside the wheel, or beside the package in a checkout."""
    package = Path(featurestore.__file__).resolve().parent
    return [package / "examples" / "fraud", package.parent / LOCAL_EXAMPLE]


def find_example() -> Path:
    """The bundled example repo, to copy into the working directory."""
    for candidate in bundled_examples():
        if (candidate / CONFIG_FILE).is_file() and (candidate / GENERATOR).is_file():
            return candidate
    raise RepoError(
        "cannot find the example feature repo in the installed package; "
        "pass --repo DIR pointing at a copy of it"
    )


def locate_repo(ctx: DemoContext) -> None:
    """Use --repo or ./feature_definitions in place; otherwise copy the bundled example."""
    out = ctx.out
    if ctx.repo is not None:
        ctx.repo = ctx.repo.resolve()
        out.print(f"Using the repo at [bold]{escape(ctx.shown(ctx.repo))}[/]")
    elif (ctx.cwd / LOCAL_EXAMPLE / CONFIG_FILE).is_file():
        ctx.repo = (ctx.cwd / LOCAL_EXAMPLE).resolve()
        out.print(f"Using the example repo at [bold]{LOCAL_EXAMPLE}[/]")
    else:
        target = ctx.cwd / DEMO_DIR
        if (target / CONFIG_FILE).is_file():
            out.print(
                f"Using the existing copy [bold]{DEMO_DIR}[/] "
                "(delete it to start again from the bundled example)"
            )
        else:
            source = find_example()
            shutil.copytree(
                source, target, ignore=shutil.ignore_patterns(*NOT_COPIED), dirs_exist_ok=True
            )
            out.print(
                f"Copied the example repo to [bold]{DEMO_DIR}[/] (from {escape(str(source))})"
            )
        ctx.repo = target.resolve()
    if not (ctx.repo / GENERATOR).is_file():
        raise RepoError(
            f"{ctx.repo} has no {GENERATOR}; the demo needs the example repo's data generator"
        )
    files = sorted(p.name for p in ctx.repo.glob("*.py") if p.name != GENERATOR)
    out.print(f"definitions: {', '.join(files)}; data generator: {GENERATOR}")


def load_generator(repo: Path) -> ModuleType:
    """Import the repo's generate_data.py by path, without touching sys.path."""
    path = repo / GENERATOR
    spec = importlib.util.spec_from_file_location(f"_featurestore_demo_{abs(hash(path))}", path)
    if spec is None or spec.loader is None:
        raise RepoError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise RepoError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def generate_data(ctx: DemoContext) -> None:
    """Write deterministic sample users, merchants and transactions under <repo>/data."""
    ctx.generator = load_generator(ctx.repo_dir)
    started = time.perf_counter()
    ctx.files = ctx.generator.generate(ctx.repo_dir / "data", n_users=ctx.users, seed=ctx.seed)
    elapsed = time.perf_counter() - started
    ctx.out.print(
        f"{ctx.users:,} users, seed {ctx.seed}, in {elapsed:.1f}s, "
        f"under {escape(ctx.shown(ctx.repo_dir))}:"
    )
    render.data_files(ctx.out, ctx.files, ctx.repo_dir)


def apply_definitions(ctx: DemoContext) -> None:
    """Validate the definitions against the data and record them in the registry."""
    ctx.store = FeatureStore(ctx.repo_dir)
    diff = ctx.store.apply()
    render.plan(ctx.out, diff, ctx.store.project, applied=True)
    ctx.out.print(f"registry: {escape(ctx.shown(ctx.store.registry.path))}")


def build_training_set(ctx: DemoContext) -> None:
    """Join point-in-time correct features onto every labelled transaction and save them."""
    store = ctx.store
    if store is None or ctx.generator is None:
        raise RepoError("the demo must generate data and apply before building a training set")
    services = list(store.repo.services)
    service = SERVICE if SERVICE in services else next(iter(services), None)
    if service is None:
        raise RepoError(f"{ctx.repo_dir} defines no feature service to build a training set for")
    ctx.service = service
    ctx.spine = ctx.generator.training_spine(ctx.repo_dir / "data")
    ctx.training_path = ctx.repo_dir / TRAINING_SET
    ctx.out.print(f"spine: {ctx.spine.height:,} transactions; feature service [bold]{service}[/]")
    with render.steps(ctx.out) as progress:
        ctx.training_set = store.get_training_set(
            ctx.spine, feature_service=service, progress=progress
        )
        progress(f"profiling and writing {ctx.shown(ctx.training_path)}")
        ctx.training_set.save(ctx.training_path)


def summarize(ctx: DemoContext) -> None:
    """Rows, spine time range, label rate and the per-feature table."""
    ts = ctx.training_set
    if ts is None:
        raise RepoError("the demo has no training set to summarize")
    frame = ts.to_polars()
    render.training_summary(ctx.out, ts, None)
    if "is_fraud" in frame.columns:
        frauds = int(frame["is_fraud"].sum())
        ctx.out.print(f"label is_fraud: {frauds:,} positives ({frauds / max(frame.height, 1):.2%})")
    if ctx.training_path is not None:
        ctx.out.print(f"written to [bold]{escape(ctx.shown(ctx.training_path))}[/]")


def materialize_views(ctx: DemoContext, store: FeatureStore, end: dt.datetime) -> None:
    """Publish every online view as of ``end``; a batch the guard refuses (e.g. the data was
    regenerated with other settings since the last run) is shown, then published anyway."""
    names = [v.name for v in store.repo.views.values() if v.online]
    results: list[MaterializationResult] = []
    with render.view_steps(ctx.out, names) as progress:
        for name in names:
            try:
                results += store.materialize(end, views=[name], progress=progress)
            except MaterializationGuardError as exc:
                progress.done(ok=False)
                render.guard_refusal(
                    ctx.out,
                    exc.report,
                    hint="The demo publishes it anyway (force=True) to go on; a scheduled "
                    "job would stop here and alert.",
                )
                results += store.materialize(end, views=[name], force=True, progress=progress)
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
        known = [spine[key].max()]
        source = ctx.files.get("users")
        if source is not None and key in pl.read_parquet_schema(source):
            known.append(pl.scan_parquet(source).select(pl.col(key).max()).collect().item())
        unknown = max(v for v in known if v is not None) + 1
        sample = sample.with_columns(
            pl.when(pl.int_range(pl.len()) == sample.height - 1)
            .then(pl.lit(unknown, sample.schema[key]))
            .otherwise(pl.col(key))
            .alias(key)
        )
    return sample


def _same(online: object, offline: object) -> bool:
    if isinstance(online, float) and isinstance(offline, float):
        return online == offline or (math.isnan(online) and math.isnan(offline))
    return online == offline


def compare_with_offline(
    ctx: DemoContext, store: FeatureStore, spine: pl.DataFrame, resp: OnlineResponse
) -> None:
    """Build a training set of the served rows at the request time; print whether every value
    equals the served one, or list those that differ."""
    service = ctx.service
    offline = store.get_training_set(spine, feature_service=service).to_polars()
    compared, mismatches = 0, []
    for column, values in resp.values.items():
        for i, (a, b) in enumerate(zip(values, offline[column].to_list(), strict=True)):
            compared += 1
            if not _same(a, b):
                mismatches.append(f"row {i + 1} {column}: online {a!r} vs offline {b!r}")
    if mismatches:
        ctx.out.print(f"[red]online != offline for {len(mismatches)} of {compared} values:[/]")
        for line in mismatches:
            ctx.out.print(f"  [red]✗[/] {escape(line)}")
        return
    ctx.out.print(
        f"[green]online == offline for {compared} values[/] ({spine.height} rows x "
        f"{len(resp.values)} features, training set with spine time "
        f"{render.timestamp(resp.request_time)} UTC)"
    )


def materialize_and_serve(ctx: DemoContext) -> None:
    """Publish the online views as of the last transaction, serve a few payments with the
    feature service, and check the served values against a training set at the same time."""
    store, spine, service = ctx.store, ctx.spine, ctx.service
    if store is None or spine is None or service is None or spine.height == 0:
        raise RepoError("the demo must build a training set before serving online")
    end = spine[TIMESTAMP].max()
    if not isinstance(end, dt.datetime):
        raise RepoError(f"the spine's {TIMESTAMP!r} column holds no datetimes")
    ctx.out.print(f"online views as of the last transaction, {render.timestamp(end)} UTC:")
    materialize_views(ctx, store, end)

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
    sample = serving_sample(ctx, keys)
    ctx.out.print(
        f"\nfeature service [bold]{escape(service)}[/] online for the latest {sample.height} "
        f"payments (the last row's {escape(keys[0])} is unknown to the store):"
    )
    started = time.perf_counter()
    resp = store.get_online_features(
        feature_service=service,
        entities={k: sample[k].to_list() for k in keys},
        request_data={c: sample[c].to_list() for c in request_columns},
        request_time=end,
    )
    elapsed_ms = (time.perf_counter() - started) * 1000
    render.online(ctx.out, resp)
    ctx.out.print(f"[dim]served in {elapsed_ms:.1f} ms (first request, planning included)[/]")
    offline_spine = sample.select(*keys, *request_columns).with_columns(
        pl.lit(end, spine.schema[TIMESTAMP]).alias(TIMESTAMP)
    )
    compare_with_offline(ctx, store, offline_spine, resp)

    shown = escape(ctx.shown(ctx.repo_dir))
    first = sample.row(0, named=True)
    args = " ".join(
        [f"--entity {k}={first[k]}" for k in keys]
        + [f"--request {c}={first[c]}" for c in request_columns]
    )
    ctx.hints += [
        f"featurestore get-online --repo {shown} --service {escape(service)} {escape(args)} "
        f"--at {end.strftime('%Y-%m-%dT%H:%M:%S')}",
        f"featurestore materialize-incremental --repo {shown}",
    ]


STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("Locate the example repo", locate_repo),
    ("Generate sample data", generate_data),
    ("Apply the feature definitions", apply_definitions),
    ("Build a training set", build_training_set),
    ("Summarize the training set", summarize),
    ("Materialize and serve online", materialize_and_serve),
]


def run(
    ctx: DemoContext, steps: list[tuple[str, Callable[[DemoContext], None]]] | None = None
) -> None:
    """Run the demo steps in order, then suggest what to try next."""
    steps = STEPS if steps is None else steps
    started = time.perf_counter()
    try:
        for i, (title, step) in enumerate(steps, 1):
            ctx.out.rule(f"[bold]{i}/{len(steps)}  {title}", align="left")
            step(ctx)
    finally:
        if ctx.store is not None:
            ctx.store.close()
    repo = escape(ctx.shown(ctx.repo_dir))
    ctx.out.rule(f"[bold green]Done in {time.perf_counter() - started:.1f}s", align="left")
    ctx.out.print(
        "Try next:\n"
        f"  featurestore list --repo {repo}\n"
        f"  featurestore validate --repo {repo}\n"
        f"  featurestore plan --repo {repo}        [dim]# after editing {repo}/features.py[/]",
        soft_wrap=True,
    )
    for hint in ctx.hints:
        ctx.out.print(f"  {hint}", soft_wrap=True)
