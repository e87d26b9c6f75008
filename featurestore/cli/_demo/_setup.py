"""The demo's first steps: where it runs (``--repo``, ./feature_definitions, or a copy of the
bundled example repo), and the data it runs on, written by the repo's own generator:
deterministic users, merchants and transactions ending when the demo starts (only their times
follow the clock), with drift injected into two merchant features from a set day on."""

from __future__ import annotations

import datetime as dt
import importlib.util
import inspect
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import polars as pl
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import featurestore
from featurestore._config import CONFIG_FILE
from featurestore._format import number
from featurestore._times import as_utc
from featurestore.cli._demo._context import DRIFTED, DemoContext
from featurestore.cli._render import timestamp
from featurestore.errors import RepoError

__all__ = [
    "NOT_COPIED",
    "NOW_ENV",
    "find_example",
    "generate_data",
    "load_generator",
    "locate_repo",
    "reference_time",
]

DEMO_DIR = "featurestore-demo"
LOCAL_EXAMPLE = "feature_definitions"
GENERATOR = "generate_data.py"
NOT_COPIED = ("data", ".featurestore", "__pycache__", "*.pyc")
DAYS = 60  # of generated data, ending when the demo starts
DRIFT_DAY = 45  # the generator injects drift from this day of the data on
NOW_ENV = "FEATURESTORE_DEMO_NOW"  # an ISO time to end the data at instead of now (for tests)


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


def _copy_of_the_example(ctx: DemoContext) -> Path:
    """./featurestore-demo, copied from the bundled example unless an earlier run did."""
    target = ctx.cwd / DEMO_DIR
    if (target / CONFIG_FILE).is_file():
        ctx.out.print(
            f"Using the existing copy [bold]{DEMO_DIR}[/] "
            "(delete it to start again from the bundled example)"
        )
        return target
    source = find_example()
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*NOT_COPIED), dirs_exist_ok=True)
    ctx.out.print(f"Copied the example repo to [bold]{DEMO_DIR}[/] (from {escape(str(source))})")
    return target


def locate_repo(ctx: DemoContext) -> None:
    """Use --repo or ./feature_definitions in place; otherwise copy the bundled example."""
    if ctx.repo is not None:
        ctx.repo = ctx.repo.resolve()
        ctx.out.print(f"Using the repo at [bold]{escape(ctx.shown(ctx.repo))}[/]")
    elif (ctx.cwd / LOCAL_EXAMPLE / CONFIG_FILE).is_file():
        ctx.repo = (ctx.cwd / LOCAL_EXAMPLE).resolve()
        ctx.out.print(f"Using the example repo at [bold]{LOCAL_EXAMPLE}[/]")
    else:
        ctx.repo = _copy_of_the_example(ctx).resolve()
    if not (ctx.repo / GENERATOR).is_file():
        raise RepoError(
            f"{ctx.repo} has no {GENERATOR}; the demo needs the example repo's data generator"
        )
    files = sorted(p.name for p in ctx.repo.glob("*.py") if p.name != GENERATOR)
    ctx.out.print(f"definitions: {', '.join(files)}; data generator: {GENERATOR}")


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


def reference_time() -> dt.datetime:
    """When the demo's data ends: now, to the second, unless NOW_ENV pins another time (tests
    pin it to check that only the times follow the clock)."""
    pinned = os.environ.get(NOW_ENV, "").strip()
    if not pinned:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        return as_utc(dt.datetime.fromisoformat(pinned))
    except ValueError as exc:
        raise RepoError(f"{NOW_ENV}={pinned!r} is not an ISO 8601 time") from exc


def data_files(out: Console, files: Mapping[str, Path], root: Path) -> None:
    """Generated files with their row counts and sizes."""
    table = Table(show_edge=False, box=None, padding=(0, 2, 0, 0))
    table.add_column("source", no_wrap=True)
    table.add_column("rows", justify="right")
    table.add_column("size", justify="right")
    table.add_column("path")
    for name, path in files.items():
        size = path.stat().st_size / 1e6
        shown = path.relative_to(root) if path.is_relative_to(root) else path
        table.add_row(escape(name), number(_rows(path)), f"{size:.1f} MB", escape(str(shown)))
    out.print(table)


def _rows(path: Path) -> int:
    """The number of rows of a Parquet file, from its metadata."""
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def _run_generator(ctx: DemoContext, generator: ModuleType) -> bool:
    """Write the data, ending at the reference time; False when the repo's generator cannot
    move its data in time (a copy made by an earlier version), which then keeps its dates."""
    end = reference_time()
    movable = "end" in inspect.signature(generator.generate).parameters
    if not movable:
        end = generator.DEFAULT_START + dt.timedelta(days=DAYS)
    ctx.data_end = end
    ctx.drift_at = end - dt.timedelta(days=DAYS - DRIFT_DAY)
    moved = {"end": end} if movable else {}
    ctx.files = generator.generate(
        ctx.repo_dir / "data",
        n_users=ctx.users,
        seed=ctx.seed,
        days=DAYS,
        drift_at=ctx.drift_at,
        **moved,
    )
    return movable


def _show_data(ctx: DemoContext, movable: bool, elapsed: float) -> None:
    """When the data ends, its rows per source (a table with --verbose) and the drift."""
    end = timestamp(ctx.data_end)
    head = f"{number(ctx.users)} users, seed {ctx.seed}, in {elapsed:.1f}s"
    if movable:
        ctx.out.print(f"{DAYS} days of payments up to now, {end} UTC: {head}")
    else:
        ctx.out.print(
            f"[yellow]this repo's {GENERATOR} cannot move its data in time (a copy from an "
            f"earlier version?): it ends on {end} UTC, so values served now are STALE[/]; {head}"
        )
    if ctx.verbose:
        ctx.out.print(
            "only the times follow the clock; the seed fixes the rest. Under "
            f"{escape(ctx.shown(ctx.repo_dir))}:"
        )
        data_files(ctx.out, ctx.files, ctx.repo_dir)
        why = (
            "(a new scoring model rates merchants about twice as risky)",
            "(a third of in-store merchants re-classified online-only)",
        )
    else:
        counts = " · ".join(f"{escape(n)} {number(_rows(p))}" for n, p in ctx.files.items())
        ctx.out.print(f"rows: {counts}")
        why = ("(twice as high)", "(a third of in-store merchants now online-only)")
    ctx.out.print(
        f"injected drift from {timestamp(ctx.drift_at)} UTC on: "
        f"[bold]{DRIFTED[0]}[/] {why[0]} and [bold]{DRIFTED[1]}[/] {why[1]}"
    )


def generate_data(ctx: DemoContext) -> None:
    """Write deterministic sample users, merchants and transactions under <repo>/data, ending
    now so that the values served online later in the demo are fresh."""
    ctx.generator = load_generator(ctx.repo_dir)
    started = time.perf_counter()
    movable = _run_generator(ctx, ctx.generator)
    _show_data(ctx, movable, time.perf_counter() - started)
