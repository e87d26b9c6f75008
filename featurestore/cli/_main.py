"""The ``featurestore`` command: one verb per job, a thin shell over :class:`FeatureStore`.

Exit codes: 0 on success, 1 when featurestore reports an error or a check fails, 2 on a
usage error, 3 when ``skew``, ``drift``, ``status`` or ``apply --check`` is given
``--fail-on-flagged`` and flags something (``apply`` then writes nothing).
Tables and formatting live in _render.py.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import polars as pl

from featurestore import __version__
from featurestore._store import FeatureStore
from featurestore._times import as_utc, parse_duration
from featurestore.cli import _render as render
from featurestore.definitions._dtypes import dtype_kind, dtype_name, parse_dtype
from featurestore.errors import (
    FeatureStoreError,
    MaterializationGuardError,
    OnlineRequestError,
)
from featurestore.online._materialize import GuardReport, MaterializationResult

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


class IsoDatetime(click.ParamType):
    """An ISO 8601 date or datetime; a naive one is UTC, an aware one is converted to UTC."""

    name = "ISO datetime"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, dt.datetime):
            return as_utc(value)
        try:
            return as_utc(dt.datetime.fromisoformat(str(value).strip()))
        except ValueError:
            self.fail(
                f"{value!r} is not an ISO datetime such as 2025-03-01T12:00:00 "
                "(naive times are UTC; add +02:00 or Z for another zone)",
                param,
                ctx,
            )


ISO_DATETIME = IsoDatetime()


def split_list(values: Sequence[str]) -> list[str]:
    """Comma-separated items of one or several option values, stripped, empty ones dropped."""
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def features_option(fn: F) -> F:
    """``--features REFS`` (repeatable, comma-separated) or ``--service NAME``."""
    fn = click.option("--service", metavar="NAME", help="A feature service instead of --features.")(
        fn
    )
    return click.option(
        "--features",
        "feature_refs",
        multiple=True,
        metavar="REFS",
        help="Comma-separated 'view:feature' references (repeatable).",
    )(fn)


def feature_selection(feature_refs: Sequence[str], service: str | None) -> list[str]:
    """The references of ``--features``; a usage error unless exactly one option is given."""
    refs = split_list(feature_refs)
    if bool(refs) == bool(service):
        raise click.UsageError("pass exactly one of --features REFS or --service NAME")
    return refs


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
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="WARNING",
    show_default=True,
    help="Library log records at or above this level go to stderr as key=value lines.",
)
def main(log_level: str) -> None:
    """Declare features once in Python; build point-in-time correct training sets and serve
    the same values online."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--project", help="Project name (default: derived from DIRECTORY).")
def init(directory: Path, project: str | None) -> None:
    """Create a small working feature repo in DIRECTORY."""
    from featurestore.cli import _scaffold as scaffold

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
    if not check:
        given = [o for o, v in (("--sample", sample), ("--seed", seed)) if v is not None]
        given += ["--fail-on-flagged"] if fail_on_flagged else []
        if given:
            raise click.UsageError(f"{' and '.join(given)} only apply with --check")
        _show_diff(repo, as_json, applied=True)
        return
    with open_store(repo) as store:
        report = store.check_parity(sample=sample or 1000, seed=seed or 0)
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
    if refused:
        ctx.exit(3)


def _show_diff(repo: Path | None, as_json: bool, applied: bool) -> None:
    """Run apply (or plan) and print its diff as a table or JSON."""
    with open_store(repo) as store:
        diff = store.apply() if applied else store.plan()
        if as_json:
            render.dump_json({"project": store.project, **diff.model_dump(mode="json")})
            return
        render.plan(render.console(), diff, store.project, applied=applied)


@main.command()
@repo_option
@json_option
def plan(repo: Path | None, as_json: bool) -> None:
    """Show what apply would change, without writing anything."""
    _show_diff(repo, as_json, applied=False)


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
    """Check every source against its declarations: its schema, then the values of each
    feature (rows that would be INVALID, with examples); exit 1 if any has a problem."""
    with open_store(repo) as store:
        reports = store.validate()
    if as_json:
        render.dump_json([r.to_dict() for r in reports])
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
@features_option
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
    refs = feature_selection(feature_refs, service)
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


def views_option(fn: F) -> F:
    return click.option(
        "--views",
        multiple=True,
        metavar="NAMES",
        help="Comma-separated views to materialize (repeatable). Default: every online view.",
    )(fn)


def force_option(fn: F) -> F:
    return click.option(
        "--force", is_flag=True, help="Publish a batch even if the guard finds it broken."
    )(fn)


def end_option(fn: F) -> F:
    return click.option(
        "--end",
        type=ISO_DATETIME,
        default=None,
        help="Publish the latest values as of this time (ISO; naive = UTC). Default: now.",
    )(fn)


def view_names(store: FeatureStore, views: Sequence[str]) -> list[str]:
    """The views named by --views (checked before anything is published), else the online ones."""
    names = list(dict.fromkeys(split_list(views)))
    if not names:
        return [v.name for v in store.repo.views.values() if v.online]
    for name in names:
        if name not in store.repo.views:
            store.repo.any_view(name)  # raises, listing the known views
            raise click.BadParameter(
                f"{name!r} is an on-demand view; it is computed at request time, not materialized",
                param_hint="--views",
            )
    return names


MaterializeOne = Callable[[str, Callable[[str], None]], list[MaterializationResult]]


def run_materialization(
    ctx: click.Context, names: list[str], materialize_one: MaterializeOne, as_json: bool
) -> None:
    """Materialize view by view; at a guard refusal stop, show the report and what was already
    published, and exit 1."""
    results: list[MaterializationResult] = []
    refused: GuardReport | None = None
    with render.view_steps(render.console(stderr=True), names) as progress:
        for name in names:
            try:
                results += materialize_one(name, progress)
            except MaterializationGuardError as exc:
                progress.done(ok=False)
                refused = exc.report
                break
    if as_json:
        render.dump_json(render.materialization_json(results, refused))
    elif results or refused is None:
        render.materialization(render.console(), results)
    if refused is not None:
        render.guard_refusal(
            render.console(stderr=True),
            refused,
            published=[r.view for r in results],
            not_attempted=names[len(results) + 1 :],
        )
        ctx.exit(1)


@main.command()
@repo_option
@end_option
@click.option(
    "--start",
    type=ISO_DATETIME,
    default=None,
    help="Only upsert entities with rows between START and END (ISO; naive = UTC). "
    "Default: a full snapshot that replaces each view's online rows.",
)
@views_option
@force_option
@json_option
@click.pass_context
def materialize(
    ctx: click.Context,
    repo: Path | None,
    end: dt.datetime | None,
    start: dt.datetime | None,
    views: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Publish the online views' latest values as of END to the online store."""
    end = end or dt.datetime.now(dt.UTC)
    if start is not None and start > end:
        raise click.BadParameter(
            f"{start.isoformat()} is after the end {end.isoformat()}", param_hint="--start"
        )
    with open_store(repo) as store:

        def one(name: str, progress: Callable[[str], None]) -> list[MaterializationResult]:
            return store.materialize(end, start, [name], force=force, progress=progress)

        run_materialization(ctx, view_names(store, views), one, as_json)


@main.command("materialize-incremental")
@repo_option
@end_option
@views_option
@force_option
@json_option
@click.pass_context
def materialize_incremental(
    ctx: click.Context,
    repo: Path | None,
    end: dt.datetime | None,
    views: tuple[str, ...],
    force: bool,
    as_json: bool,
) -> None:
    """Publish what changed since each view's last materialization (a full snapshot if none)."""
    end = end or dt.datetime.now(dt.UTC)
    with open_store(repo) as store:

        def one(name: str, progress: Callable[[str], None]) -> list[MaterializationResult]:
            return store.materialize_incremental(end, [name], force=force, progress=progress)

        run_materialization(ctx, view_names(store, views), one, as_json)


TRUE = {"true", "t", "yes", "y", "1"}
FALSE = {"false", "f", "no", "n", "0"}


def parse_value(text: str, dtype: pl.DataType) -> Any:
    """One command-line value as the Python value of ``dtype``; ValueError if it is not one."""
    kind = dtype_kind(dtype)
    if kind == "int":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "bool":
        if text.lower() in TRUE | FALSE:
            return text.lower() in TRUE
        raise ValueError(text)
    if kind == "date":
        return dt.date.fromisoformat(text)
    if kind == "datetime":
        value = as_utc(dt.datetime.fromisoformat(text))
        return value if getattr(dtype, "time_zone", None) else value.replace(tzinfo=None)
    return text


def parse_assignments(
    args: Sequence[str], dtypes: dict[str, pl.DataType], option: str, what: str
) -> dict[str, list[Any]]:
    """``NAME=V1,V2`` options as {name: [values]}, each value parsed with the name's dtype."""
    out: dict[str, list[Any]] = {}
    for arg in args:
        name, sep, text = arg.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"{arg!r} is not NAME=VALUE[,VALUE...]", param_hint=option)
        if name not in dtypes:
            known = ", ".join(sorted(dtypes)) or "none"
            raise click.BadParameter(f"unknown {what} {name!r}; known: {known}", param_hint=option)
        if name in out:
            raise click.BadParameter(
                f"{what} {name!r} is given twice; list its values in one option: {name}=V1,V2",
                param_hint=option,
            )
        values = []
        for item in text.split(","):
            try:
                values.append(parse_value(item.strip(), dtypes[name]))
            except ValueError:
                raise click.BadParameter(
                    f"{what} {name!r} takes {dtype_name(dtypes[name])} values; "
                    f"{item.strip()!r} is not one",
                    param_hint=option,
                ) from None
        out[name] = values
    return out


def join_key_dtypes(store: FeatureStore) -> dict[str, pl.DataType]:
    """Each join key's dtype as recorded by apply (found in the view's source)."""
    out: dict[str, pl.DataType] = {}
    for view in store.registry.require().views.values():
        for key, name in view.join_keys.items():
            try:
                out.setdefault(key, parse_dtype(name))
            except ValueError:
                out.setdefault(key, pl.String())
    return out


def request_dtypes(store: FeatureStore) -> dict[str, pl.DataType]:
    """Each request column's declared dtype, over every on-demand view's request sources."""
    return {
        column: dtype
        for odfv in store.repo.on_demand_views.values()
        for source in odfv.request_sources
        for column, dtype in source.fields.items()
    }


def broadcast(entities: dict[str, list[Any]], request: dict[str, list[Any]]) -> None:
    """Repeat single values to the row count of the longest list; other lengths must agree."""
    lengths = {f"--entity {k}": len(v) for k, v in entities.items()}
    lengths |= {f"--request {k}": len(v) for k, v in request.items()}
    n = max(lengths.values(), default=0)
    bad = [f"{k} has {m}" for k, m in lengths.items() if m not in (1, n)]
    if bad:
        raise click.UsageError(
            f"each --entity and --request needs {n} value(s), or 1 used for every row: "
            + ", ".join(bad)
        )
    for columns in (entities, request):
        for key, values in columns.items():
            if len(values) == 1:
                columns[key] = values * n


@main.command("get-online")
@repo_option
@features_option
@click.option(
    "--entity",
    "entity_args",
    multiple=True,
    metavar="KEY=V1,V2",
    help="A join key and its values, one entity row per value (one option per key).",
)
@click.option(
    "--request",
    "request_args",
    multiple=True,
    metavar="COLUMN=V1,V2",
    help="Request data for on-demand features, one value per entity row (or one for all).",
)
@click.option(
    "--at",
    type=ISO_DATETIME,
    default=None,
    help="Request time against which ttl is checked (ISO; naive = UTC). Default: now.",
)
@click.option(
    "--full-feature-names", is_flag=True, help="Name columns 'view__feature' instead of 'feature'."
)
@json_option
def get_online(
    repo: Path | None,
    feature_refs: tuple[str, ...],
    service: str | None,
    entity_args: tuple[str, ...],
    request_args: tuple[str, ...],
    at: dt.datetime | None,
    full_feature_names: bool,
    as_json: bool,
) -> None:
    """Serve the latest values of some features for a few entities, with a status per value."""
    refs = feature_selection(feature_refs, service)
    with open_store(repo) as store:
        entities = parse_assignments(entity_args, join_key_dtypes(store), "--entity", "join key")
        request = parse_assignments(
            request_args, request_dtypes(store), "--request", "request column"
        )
        broadcast(entities, request)
        try:
            resp = store.get_online_features(
                features=refs or None,
                feature_service=service,
                entities=entities,
                request_data=request,
                full_feature_names=full_feature_names,
                request_time=at,
            )
        except OnlineRequestError as exc:
            raise click.UsageError(
                f"{exc}. Pass join keys as --entity KEY=V1,V2 and request data as "
                "--request COLUMN=V1,V2."
            ) from None
    if as_json:
        render.dump_json(render.online_json(resp))
    else:
        render.online(render.console(), resp)


@main.command()
@repo_option
@click.option(
    "--at",
    type=ISO_DATETIME,
    default=None,
    help="Time at which ages are measured against ttls (ISO; naive = UTC). Default: now.",
)
@json_option
@click.option(
    "--fail-on-flagged",
    is_flag=True,
    help="Exit with code 3 when a problem is found (to gate a deploy or a scheduled job).",
)
@click.pass_context
def status(
    ctx: click.Context,
    repo: Path | None,
    at: dt.datetime | None,
    as_json: bool,
    fail_on_flagged: bool,
) -> None:
    """Show, per view, whether the code matches what was applied, whether its source is
    readable and recent, when it was last materialized, how fresh its online values are, and
    what to do when something is off."""
    with open_store(repo) as store:
        result = store.status(at)
    if as_json:
        render.dump_json(result.to_dict())
    else:
        render.repo_status(render.console(), result)
    if fail_on_flagged and result.flagged:
        ctx.exit(3)


@main.command()
@repo_option
@click.option(
    "--host",
    default=None,
    help="Interface to bind. Default: server.host in featurestore.yaml, else 127.0.0.1 "
    "(this machine only; use 0.0.0.0 to accept other hosts, ideally with auth tokens).",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port. Default: server.port in featurestore.yaml, else 6566.",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes. Default: server.workers in featurestore.yaml, else 1.",
)
def serve(repo: Path | None, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve online features over HTTP (POST /v1/online-features) until Ctrl-C or SIGTERM."""
    import contextlib

    from featurestore.server._run import serve as run_server

    err = render.console(stderr=True)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises SIGINT after shutting down
        run_server(
            repo,
            host=host,
            port=port,
            workers=workers,
            announce=lambda line: err.print(line, markup=False, highlight=False),
        )


def report_options(fn: F) -> F:
    """``--features``, ``--json``, ``--html FILE`` and ``--fail-on-flagged`` of the reports."""
    fn = click.option(
        "--fail-on-flagged",
        is_flag=True,
        help="Exit with code 3 when any feature is flagged (to gate a deploy or a retrain).",
    )(fn)
    fn = click.option(
        "--html",
        "html_path",
        type=click.Path(dir_okay=False, path_type=Path),
        default=None,
        help="Also write a self-contained HTML report to this file.",
    )(fn)
    fn = json_option(fn)
    return click.option(
        "--features",
        "feature_refs",
        multiple=True,
        metavar="REFS",
        help="Comma-separated 'view:feature' references (repeatable; default: all).",
    )(fn)


def show_report(
    ctx: click.Context,
    report: Any,
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Print a drift or skew report, write its HTML, and set the exit code."""
    if html_path is not None:
        report.write_html(html_path)
    data = report.to_dict()
    if as_json:
        render.dump_json(data)
    else:
        render.report(render.console(), data, html_path)
    if fail_on_flagged and report.flagged:
        ctx.exit(3)


class Duration(click.ParamType):
    """A duration such as 90s, 30m, 12h, 1d or 2w."""

    name = "duration"

    def convert(self, value: Any, param: Any, ctx: Any) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        duration = parse_duration(str(value))
        if duration is None:
            self.fail(f"{value!r} is not a duration such as 30m, 12h, 1d or 2w", param, ctx)
        return duration


@main.command()
@repo_option
@click.option(
    "--since",
    type=Duration(),
    default=None,
    help="Window ending now (or at --end): e.g. 1h, 1d, 7d. Default: the whole log.",
)
@click.option("--start", type=ISO_DATETIME, default=None, help="Window start (inclusive).")
@click.option("--end", type=ISO_DATETIME, default=None, help="Window end (exclusive).")
@click.option(
    "--sample", type=click.IntRange(min=1), default=None, help="Replay a random sample of N rows."
)
@click.option("--seed", default=0, show_default=True, help="Seed of --sample.")
@report_options
@click.pass_context
def skew(
    ctx: click.Context,
    repo: Path | None,
    since: dt.timedelta | None,
    start: dt.datetime | None,
    end: dt.datetime | None,
    sample: int | None,
    seed: int,
    feature_refs: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Replay served requests through the offline path and report, per feature, where
    serving and training disagree."""
    if since is not None:
        if start is not None:
            raise click.UsageError("pass --since or --start, not both")
        start = (end or dt.datetime.now(dt.UTC)) - since
    with open_store(repo) as store:
        report = store.skew_report(start, end, split_list(feature_refs) or None, sample, seed=seed)
    show_report(ctx, report, as_json, html_path, fail_on_flagged)


@main.command()
@repo_option
@click.option(
    "--reference",
    required=True,
    metavar="SIDE",
    help="A saved training set (file.parquet), a serving log window (log:7d, "
    "log:START..END) or a source window (source:VIEW:START..END).",
)
@click.option("--current", required=True, metavar="SIDE", help="Same forms as --reference.")
@report_options
@click.pass_context
def drift(
    ctx: click.Context,
    repo: Path | None,
    reference: str,
    current: str,
    feature_refs: tuple[str, ...],
    as_json: bool,
    html_path: Path | None,
    fail_on_flagged: bool,
) -> None:
    """Report, per feature, how far the current data has moved from the reference."""
    with open_store(repo) as store:
        report = store.drift_report(reference, current, split_list(feature_refs) or None)
    show_report(ctx, report, as_json, html_path, fail_on_flagged)


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
    """Generate sample data, apply the example repo, build a training set and serve online."""
    from featurestore.cli import _demo as demo_steps

    if users < 1:
        raise click.BadParameter("must be at least 1", param_hint="--users")
    demo_steps.run(demo_steps.DemoContext(out=render.console(), repo=repo, users=users, seed=seed))
