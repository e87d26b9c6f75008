"""``featurestore demo``: the example fraud-detection repo end to end, as a sequence of steps.

Each step is a small function of a shared :class:`DemoContext`; later features of the
project add steps to :data:`STEPS` (materialize, serve, reports) without touching the others.
"""

from __future__ import annotations

import importlib.util
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
from featurestore.errors import RepoError
from featurestore.offline.training_set import TrainingSet
from featurestore.store import FeatureStore

__all__ = ["STEPS", "DemoContext", "find_example", "run"]

DEMO_DIR = "featurestore-demo"
LOCAL_EXAMPLE = "feature_definitions"
GENERATOR = "generate_data.py"
SERVICE = "fraud_detection_v1"
TRAINING_SET = Path("data") / "training_sets" / "fraud_v1.parquet"
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
    training_set: TrainingSet | None = None
    training_path: Path | None = None

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


STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("Locate the example repo", locate_repo),
    ("Generate sample data", generate_data),
    ("Apply the feature definitions", apply_definitions),
    ("Build a training set", build_training_set),
    ("Summarize the training set", summarize),
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
        f"  featurestore plan --repo {repo}        [dim]# after editing {repo}/features.py[/]"
    )
