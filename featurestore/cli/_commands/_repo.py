"""The verbs of a repo's definitions: ``init`` a starter repo, ``plan`` and ``apply`` the
definitions to the registry (``apply --check`` compares offline and online values first),
and ``list`` the applied features."""

from __future__ import annotations

from pathlib import Path

import click

from featurestore.cli import _render as render
from featurestore.cli import _scaffold as scaffold
from featurestore.cli._commands._listing import DEFINITION_KINDS, definition_rows
from featurestore.cli._commands._options import json_option, open_store, repo_option

__all__ = ["apply", "init", "list_features", "plan"]


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name (default: derived from DIRECTORY).")
def init(directory: Path, project: str | None) -> None:
    """Create a small working feature repo in DIRECTORY."""
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


def _show_diff(repo: Path | None, as_json: bool, applied: bool, verbose: bool = False) -> None:
    """Run apply (or plan) and print its diff as a table or JSON."""
    with open_store(repo) as store:
        diff = store.apply() if applied else store.plan()
        if as_json:
            data = diff.model_dump(mode="json")
            if verbose:  # the full records before and after, per changed feature
                for change, out in zip(diff.changed, data["changed"], strict=True):
                    out["old"] = change.old_record and change.old_record.model_dump(mode="json")
                    out["new"] = change.new_record and change.new_record.model_dump(mode="json")
            render.dump_json({"project": store.project, **data})
            return
        render.plan(render.console(), diff, store.project, applied=applied, verbose=verbose)


@click.command()
@repo_option
@json_option
@click.option(
    "-v", "--verbose", is_flag=True, help="Also show each changed feature's full definition diff."
)
def plan(repo: Path | None, as_json: bool, verbose: bool) -> None:
    """Show what apply would change, without writing anything: one line per changed feature
    naming each changed field with its old and new value."""
    _show_diff(repo, as_json, applied=False, verbose=verbose)


def _check_then_apply(
    repo: Path | None, as_json: bool, sample: int, seed: int, fail_on_flagged: bool
) -> bool:
    """Check parity, then apply unless a flagged feature refuses it; True if refused."""
    with open_store(repo) as store:
        report = store.check_parity(sample=sample, seed=seed)
        refused = fail_on_flagged and bool(report.flagged)
        diff = None if refused else store.apply()
        project = store.project
    data = report.to_dict()
    if as_json:
        changes = diff.model_dump(mode="json") if diff is not None else {}
        render.dump_json(
            {"project": project, "applied": diff is not None, **changes, "parity": data}
        )
    else:
        render.parity(render.console(), data)
        if diff is not None:
            render.plan(render.console(), diff, project, applied=True)
        else:
            render.parity_refusal(render.console(stderr=True), data)
    return refused


@click.command()
@repo_option
@json_option
@click.option(
    "--check",
    is_flag=True,
    help="First compute every feature of the code through the offline path and through the "
    "serving code on a sample of source rows, and report where they differ.",
)
@click.option(
    "--sample",
    type=click.IntRange(min=1),
    default=None,
    help="With --check: rows drawn per group of join keys. Default: 1000.",
)
@click.option(
    "--seed", type=int, default=None, help="With --check: seed of the sample. Default: 0."
)
@click.option(
    "--fail-on-flagged",
    is_flag=True,
    help="With --check: exit with code 3 and apply nothing when a feature is flagged.",
)
@click.pass_context
def apply(
    ctx: click.Context,
    repo: Path | None,
    as_json: bool,
    check: bool,
    sample: int | None,
    seed: int | None,
    fail_on_flagged: bool,
) -> None:
    """Validate the definitions against their sources and record them in the registry; with
    --check, first compare each feature's offline and online values on a sample."""
    if check:
        if _check_then_apply(repo, as_json, sample or 1000, seed or 0, fail_on_flagged):
            ctx.exit(3)
        return
    given = [o for o, v in (("--sample", sample), ("--seed", seed)) if v is not None]
    given += ["--fail-on-flagged"] if fail_on_flagged else []
    if given:
        raise click.UsageError(f"{' and '.join(given)} only apply with --check")
    _show_diff(repo, as_json, applied=True)


@click.command("list")
@click.argument(
    "kind", type=click.Choice(["features", *DEFINITION_KINDS]), default="features", required=False
)
@repo_option
@json_option
def list_features(kind: str, repo: Path | None, as_json: bool) -> None:
    """List the applied features (dtype, owner, fingerprint), or the repo's entities, sources,
    views or services."""
    with open_store(repo) as store:
        if kind != "features":
            rows = definition_rows(store.repo, kind)
            if as_json:
                render.dump_json(rows)
            else:
                render.definitions(render.console(), kind, rows)
            return
        records = store.list_features()
        if as_json:
            render.dump_json([r.model_dump(mode="json") for r in records])
            return
        render.features(render.console(), records)
