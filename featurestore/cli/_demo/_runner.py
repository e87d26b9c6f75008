"""``featurestore demo``: the demo's steps in order, each run under a numbered rule, then what
to try next."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import click
from rich.markup import escape

from featurestore.cli._demo._context import DemoContext
from featurestore.cli._demo._definition_change import change_a_definition
from featurestore.cli._demo._http import serve_over_http
from featurestore.cli._demo._monitoring import monitor_a_week
from featurestore.cli._demo._online import materialize_and_serve
from featurestore.cli._demo._reports import show_status, skew_and_drift
from featurestore.cli._demo._setup import generate_data, locate_repo
from featurestore.cli._demo._training import apply_definitions, build_training_set, summarize
from featurestore.cli._demo._windows import windows_and_push
from featurestore.cli._render import console

__all__ = ["STEPS", "Step", "demo", "run"]

Step = tuple[str, Callable[[DemoContext], None]]

STEPS: list[Step] = [
    ("Locate the example repo", locate_repo),
    ("Generate sample data", generate_data),
    ("Apply the feature definitions", apply_definitions),
    ("Build a training set", build_training_set),
    ("Summarize the training set", summarize),
    ("Materialize and serve online", materialize_and_serve),
    ("Windowed aggregations and pushes", windows_and_push),
    ("Serve over HTTP", serve_over_http),
    ("Report training/serving skew and drift", skew_and_drift),
    ("Monitor a week of serving", monitor_a_week),
    ("Change a definition", change_a_definition),
    ("Check the repo's status", show_status),
]


def _try_next(ctx: DemoContext) -> None:
    """Commands to run on the repo the demo left behind."""
    repo = escape(ctx.shown(ctx.repo_dir))
    ctx.out.print(
        "Try next:\n"
        f"  featurestore list --repo {repo}\n"
        f"  featurestore validate --repo {repo}\n"
        f"  featurestore plan --repo {repo}        [dim]# after editing {repo}/features.py[/]",
        soft_wrap=True,
    )
    for hint in ctx.hints:
        ctx.out.print(f"  {hint}", soft_wrap=True)


def run(ctx: DemoContext, steps: list[Step] | None = None) -> None:
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
    ctx.out.rule(f"[bold green]Done in {time.perf_counter() - started:.1f}s", align="left")
    _try_next(ctx)


@click.command()
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Example repo to run in (default: ./feature_definitions, else a copy of the "
    "bundled example in ./featurestore-demo).",
)
@click.option("--users", default=2_000, show_default=True, help="Number of users to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the generated data.")
@click.option(
    "--verbose",
    is_flag=True,
    help="Print every table in full and each step's progress (by default, tables show what is "
    "not ok and sum up the rest).",
)
def demo(repo: Path | None, users: int, seed: int, verbose: bool) -> None:
    """Generate sample data, apply the example repo, build a training set and serve online."""
    if users < 1:
        raise click.BadParameter("must be at least 1", param_hint="--users")
    run(DemoContext(out=console(), repo=repo, users=users, seed=seed, verbose=verbose))
