"""The ``featurestore`` command: one verb per job, a thin shell over :class:`FeatureStore`.

Exit codes: 0 on success, 1 when featurestore reports an error or a check fails, 2 on a
usage error. Tables and formatting live in render.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click

from featurestore import __version__
from featurestore.cli import render
from featurestore.errors import FeatureStoreError
from featurestore.store import FeatureStore

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])

REPO_HELP = (
    "Feature repo directory. Default: the current directory if it has featurestore.yaml, "
    "else ./feature_definitions."
)


class _Group(click.Group):
    """Shows a FeatureStoreError (or an OS error) as one red paragraph and exits with 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except FeatureStoreError as exc:
            render.error(render.console(stderr=True), str(exc))
        except OSError as exc:  # e.g. an output path that cannot be written
            where = f": {exc.filename}" if exc.filename else ""
            render.error(render.console(stderr=True), f"{exc.strerror or exc}{where}")
        ctx.exit(1)


def repo_option(fn: F) -> F:
    return click.option(
        "--repo",
        type=click.Path(path_type=Path),
        default=None,
        help=REPO_HELP,
    )(fn)


def json_option(fn: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")(fn)


@contextmanager
def open_store(repo: Path | None) -> Iterator[FeatureStore]:
    store = FeatureStore(repo)
    try:
        yield store
    finally:
        store.close()


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="featurestore")
def main() -> None:
    """Declare features once in Python; build point-in-time correct training sets."""


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name (default: derived from DIRECTORY).")
def init(directory: Path, project: str | None) -> None:
    """Create a small working feature repo in DIRECTORY."""
    from featurestore.cli import scaffold

    project = project or scaffold.project_name(directory)
    created = scaffold.create_repo(directory, project)
    out = render.console()
    out.print(f"Created feature repo [bold]{directory}[/] for project [bold]{project}[/]:")
    for path in created:
        out.print(f"  {path}")
    out.print(
        "Next:\n"
        f"  cd {directory}\n"
        "  featurestore apply\n"
        f"  featurestore training-set --spine {scaffold.SAMPLE_SPINE} "
        f"--service {scaffold.SAMPLE_SERVICE} -o training.parquet"
    )


@main.command()
@repo_option
@json_option
def apply(repo: Path | None, as_json: bool) -> None:
    """Validate the definitions against their sources and record them in the registry."""
    with open_store(repo) as store:
        diff = store.apply()
        if as_json:
            render.dump_json({"project": store.project, **diff.model_dump(mode="json")})
            return
        render.plan(render.console(), diff, store.project, applied=True)


@main.command()
@repo_option
@json_option
def plan(repo: Path | None, as_json: bool) -> None:
    """Show what apply would change, without writing anything."""
    with open_store(repo) as store:
        diff = store.plan()
        if as_json:
            render.dump_json({"project": store.project, **diff.model_dump(mode="json")})
            return
        render.plan(render.console(), diff, store.project, applied=False)


@main.command("list")
@repo_option
@json_option
def list_features(repo: Path | None, as_json: bool) -> None:
    """List the applied features with dtype, owner and fingerprint."""
    with open_store(repo) as store:
        records = store.list_features()
        if as_json:
            render.dump_json([r.model_dump(mode="json") for r in records])
            return
        render.features(render.console(), records)


@main.command()
@repo_option
@json_option
@click.pass_context
def validate(ctx: click.Context, repo: Path | None, as_json: bool) -> None:
    """Check every source against its declarations; exit 1 if any has a problem."""
    with open_store(repo) as store:
        reports = store.validate()
    if as_json:
        render.dump_json(
            [
                {"view": r.view, "source": r.source, "path": r.path, "ok": r.ok}
                | {"problems": r.problems}
                for r in reports
            ]
        )
    else:
        render.validation(render.console(), reports)
    if not all(r.ok for r in reports):
        ctx.exit(1)


@main.command("training-set")
@repo_option
@click.option(
    "--spine",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet or CSV file of entity keys, timestamps and request columns.",
)
@click.option(
    "--features",
    "feature_refs",
    multiple=True,
    metavar="REFS",
    help="Comma-separated 'view:feature' references (repeatable).",
)
@click.option("--service", metavar="NAME", help="A feature service instead of --features.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Parquet file to write.",
)
@click.option(
    "--full-feature-names", is_flag=True, help="Name columns 'view__feature' instead of 'feature'."
)
@click.option(
    "--timestamp-column",
    default="event_timestamp",
    show_default=True,
    help="The spine's timestamp column.",
)
@json_option
def training_set(
    repo: Path | None,
    spine: Path,
    feature_refs: tuple[str, ...],
    service: str | None,
    output: Path,
    full_feature_names: bool,
    timestamp_column: str,
    as_json: bool,
) -> None:
    """Join point-in-time correct features onto a spine and write them to Parquet."""
    refs = [ref.strip() for item in feature_refs for ref in item.split(",") if ref.strip()]
    if bool(refs) == bool(service):
        raise click.UsageError("pass exactly one of --features REFS or --service NAME")
    with open_store(repo) as store, render.steps(render.console(stderr=True)) as progress:
        ts = store.get_training_set(
            spine,
            features=refs or None,
            feature_service=service,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
            progress=progress,
        )
        progress(f"writing {output}")
        path = ts.save(output)
    if as_json:
        render.dump_json(render.training_json(ts, path))
    else:
        render.training_summary(render.console(), ts, path)


@main.command()
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Example repo to run in (default: ./feature_definitions, else a copy of the "
    "bundled example in ./featurestore-demo).",
)
@click.option("--users", default=2_000, show_default=True, help="Number of users to generate.")
@click.option("--seed", default=7, show_default=True, help="Random seed of the generated data.")
def demo(repo: Path | None, users: int, seed: int) -> None:
    """Generate sample data, apply the example repo and build a training set."""
    from featurestore.cli import demo as demo_steps

    if users < 1:
        raise click.BadParameter("must be at least 1", param_hint="--users")
    demo_steps.run(demo_steps.DemoContext(out=render.console(), repo=repo, users=users, seed=seed))


if __name__ == "__main__":
    main(prog_name="featurestore")
