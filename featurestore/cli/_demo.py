"""``featurestore demo``: the example fraud-detection repo end to end, as a sequence of steps.

Each step is a small function of a shared :class:`DemoContext`; later features of the
project add steps to :data:`STEPS` (reports, ...) without touching the others.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import math
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import polars as pl
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

import featurestore
from featurestore._config import CONFIG_FILE
from featurestore._store import FeatureStore
from featurestore._value_rules import FeatureStatus
from featurestore.cli import _render as render
from featurestore.errors import FeatureStoreError, MaterializationGuardError, RepoError
from featurestore.offline._training_set import TrainingSet
from featurestore.online._materialize import MaterializationResult
from featurestore.server._launch import LOOPBACK, free_port, wait_until_healthy
from featurestore.serving._response import OnlineResponse

__all__ = ["STEPS", "DemoContext", "find_example", "run"]

DEMO_DIR = "featurestore-demo"
LOCAL_EXAMPLE = "feature_definitions"
GENERATOR = "generate_data.py"
SERVICE = "fraud_detection_v1"
TRAINING_SET = Path("data") / "training_sets" / "fraud_v1.parquet"
ONLINE_ROWS = 5
DRIFT_DAY = 45  # the generator injects drift from this day of the data on
DRIFTED = ("merchant_profile:risk_score", "merchant_profile:online_only")
STALLED_VIEW = "merchant_profile"  # its materialization "stalls" in the reports step
STALLED_DAYS = 8
REPORT_ROWS = 4_000  # payments served and logged for the reports (>= 3,000 for a verdict)
REPORT_BATCH = 50  # entity rows per logged request
REPORTS_DIR = Path("data") / "reports"
WINDOW_VIEW = "user_spending"  # the example's windowed aggregations over transactions
# the definition edit of the "change a definition" step: an argument inside an expression
EDITED_FILE = "features.py"
EDITED_REF = "user_merchant:pair_chargeback_rate"
EDIT = (
    '(pl.col("chargeback_count") / pl.col("txn_count")).round(3)',
    '(pl.col("chargeback_count") / pl.col("txn_count")).round(2)',
)
EDIT_SHOWN = (".round(3)", ".round(2)")
PUSHED = ((1, 480.0), (2, 515.5), (3, 530.0))  # (minutes after the end, amount) of a burst
TIMESTAMP = "event_timestamp"
NOT_COPIED = ("data", ".featurestore", "__pycache__", "*.pyc")
SERVER_START_SECONDS = 60.0  # bound on the wait for the demo server's /healthz
SERVER_STOP_SECONDS = 30.0  # bound on its graceful shutdown before it is killed
TIMED_REQUESTS = 20  # HTTP round trips timed after the first one
TABLE_FEATURES = 4  # features shown in the HTTP step's table (the first of each view)


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
    drift_at: dt.datetime | None = None
    served_at: dt.datetime | None = None
    sample: pl.DataFrame | None = None
    keys: list[str] = field(default_factory=list)
    request_columns: list[str] = field(default_factory=list)
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
    ctx.drift_at = ctx.generator.DEFAULT_START + dt.timedelta(days=DRIFT_DAY)
    ctx.files = ctx.generator.generate(
        ctx.repo_dir / "data", n_users=ctx.users, seed=ctx.seed, drift_at=ctx.drift_at
    )
    elapsed = time.perf_counter() - started
    ctx.out.print(
        f"{ctx.users:,} users, seed {ctx.seed}, in {elapsed:.1f}s, "
        f"under {escape(ctx.shown(ctx.repo_dir))}:"
    )
    render.data_files(ctx.out, ctx.files, ctx.repo_dir)
    ctx.out.print(
        f"injected drift from {render.timestamp(ctx.drift_at)} UTC on: "
        f"[bold]{DRIFTED[0]}[/] (a new scoring model rates merchants about twice as risky) "
        f"and [bold]{DRIFTED[1]}[/] (a third of in-store merchants re-classified online-only)"
    )


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
    train = ctx.spine
    if ctx.drift_at is not None:  # the model is trained before the injected drift
        train = train.filter(pl.col(TIMESTAMP) < ctx.drift_at)
    ctx.out.print(
        f"spine: {train.height:,} transactions before {render.timestamp(ctx.drift_at)} UTC; "
        f"feature service [bold]{service}[/]"
        if ctx.drift_at is not None
        else f"spine: {train.height:,} transactions; feature service [bold]{service}[/]"
    )
    with render.steps(ctx.out) as progress:
        ctx.training_set = store.get_training_set(train, feature_service=service, progress=progress)
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
    """Equal values; floats may differ in the last bits, as sums in another order do (the
    skew report's default tolerance)."""
    if isinstance(online, float) and isinstance(offline, float):
        if math.isnan(online) or math.isnan(offline):
            return math.isnan(online) and math.isnan(offline)
        return abs(online - offline) <= 1e-9 + 1e-6 * abs(offline)
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
    ctx.served_at = end
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
    ctx.sample, ctx.keys, ctx.request_columns = sample, keys, request_columns
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


def _output_tail(output: IO[bytes], lines: int = 20) -> str:
    output.seek(0)
    text = output.read().decode(errors="replace")
    return "\n".join(text.splitlines()[-lines:])


@contextmanager
def demo_server(repo: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``featurestore serve`` on ``port`` of the loopback interface, ready once /healthz answers
    (bounded wait); stopped with SIGTERM on exit, killed if it does not stop in time."""
    with tempfile.TemporaryFile() as output:
        command = [sys.executable, "-m", "featurestore.cli", "serve", "--repo", str(repo)]
        process = subprocess.Popen(
            [*command, "--host", LOOPBACK, "--port", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            wait_until_healthy(
                process, port, SERVER_START_SECONDS, output=lambda: _output_tail(output)
            )
            yield process
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=SERVER_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _cell(value: Any, status: FeatureStatus) -> Text:
    text = "null" if value is None else str(value).lower() if isinstance(value, bool) else None
    if text is None:
        text = render.number(value) if isinstance(value, int | float) else str(value)
    cell = Text(text, style="dim" if value is None else "")
    cell.append(f" {status.value}", style=render.STATUS_STYLES[status])
    return cell


def http_table(resp: OnlineResponse) -> Table:
    """One line per entity row: its keys, the first feature of each view (value and status)
    and the tally of every feature's status."""
    firsts: dict[str, str] = {}
    for column, ref in resp.refs.items():
        firsts.setdefault(ref.partition(":")[0], column)
    columns = list(firsts.values())[:TABLE_FEATURES]
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for key in resp.entities:
        table.add_column(key, no_wrap=True)
    for column in columns:
        table.add_column(column, no_wrap=True)
    table.add_column(f"statuses of the {len(resp.values)} features", no_wrap=True)
    for i in range(resp.row_count):
        tally = Counter(resp.statuses[c][i] for c in resp.values)
        table.add_row(
            *("null" if v[i] is None else str(v[i]) for v in resp.entities.values()),
            *(_cell(resp.values[c][i], resp.statuses[c][i]) for c in columns),
            render.status_counts({s.value: n for s, n in tally.items()}),
        )
    return table


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
            if not _same(a, b) or sa != sb:
                mismatches.append(f"row {i + 1} {column}: HTTP {a!r} {sa} vs in-process {b!r} {sb}")
    if list(resp.values) != list(local.values) or resp.fingerprints != local.fingerprints:
        mismatches.append("the columns or the fingerprints differ")
    if mismatches:
        ctx.out.print(f"[red]HTTP != in-process for {len(mismatches)} of {compared} values:[/]")
        for line in mismatches:
            ctx.out.print(f"  [red]✗[/] {escape(line)}")
        return
    ctx.out.print(
        f"[green]HTTP == in-process for {compared} values[/] ({resp.row_count} rows x "
        f"{len(resp.values)} features, values, statuses and fingerprints, both as of "
        f"{render.timestamp(resp.request_time.astimezone(dt.UTC))} UTC)"
    )


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def metrics_lines(text: str) -> list[str]:
    """The request counter lines of the online endpoint, and served values summed by status."""
    from prometheus_client.parser import text_string_to_metric_families

    lines = [
        line
        for line in text.splitlines()
        if line.startswith("featurestore_http_requests_total{")
        and 'endpoint="/v1/online-features"' in line
    ]
    by_status: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "featurestore_served_values_total":
                by_status[sample.labels["status"]] += int(sample.value)
    served = " · ".join(f"{s} {n:,}" for s, n in by_status.most_common())
    return [*lines, f"featurestore_served_values_total summed by status: {served or 'none'}"]


def serve_over_http(ctx: DemoContext) -> None:
    """Start ``featurestore serve`` on a free loopback port, ask it for the online step's rows
    with featurestore.Client, check them against in-process serving, show its metrics, stop it
    (SIGTERM) and count what it wrote to the serving log."""
    store, sample, service = ctx.store, ctx.sample, ctx.service
    if store is None or sample is None or service is None:
        raise RepoError("the demo must serve online in-process before serving over HTTP")
    from featurestore.server._run import require_server_extra

    try:
        require_server_extra()
        if importlib.util.find_spec("httpx") is None:
            raise FeatureStoreError("featurestore.Client needs httpx")
    except FeatureStoreError as exc:
        ctx.out.print(
            f"[yellow]skipped:[/] {escape(str(exc))} (pip install 'featurestore[server]')"
        )
        return
    import httpx

    from featurestore._client import Client
    from featurestore.server._auth import configured_tokens

    request: dict[str, Any] = {
        "feature_service": service,
        "entities": {k: sample[k].to_list() for k in ctx.keys},
        "request_data": {c: sample[c].to_list() for c in ctx.request_columns},
    }
    tokens = configured_tokens(store.repo.config.server)
    token = tokens[0] if tokens else None
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    started_at = dt.datetime.now(dt.UTC)
    launched = time.perf_counter()
    with demo_server(ctx.repo_dir, port) as process:
        ctx.out.print(
            f"featurestore serve --repo {escape(ctx.shown(ctx.repo_dir))} --port {port}: "
            f"ready at {url} in {time.perf_counter() - launched:.1f}s (pid {process.pid})"
        )
        with Client(url, token=token) as client:
            began = time.perf_counter()
            resp = client.get_online_features(**request)
            first_ms = (time.perf_counter() - began) * 1000
            timings = []
            for _ in range(TIMED_REQUESTS):
                began = time.perf_counter()
                client.get_online_features(**request)
                timings.append((time.perf_counter() - began) * 1000)
        ctx.out.print(
            f"\nPOST {url}/v1/online-features, feature service [bold]{escape(service)}[/], "
            f"the same {resp.row_count} rows, served as of the server's clock, "
            f"{render.timestamp(resp.request_time.astimezone(dt.UTC))} UTC:"
        )
        ctx.out.print(http_table(resp))
        if any(s is FeatureStatus.STALE for col in resp.statuses.values() for s in col):
            ctx.out.print(
                "[dim]STALE: at the server's time the sample data is older than its view's "
                "ttl, so those values are withheld (the in-process step asked as of the last "
                "transaction)[/]"
            )
        compare_with_in_process(ctx, store, resp, request)
        ctx.out.print(
            f"round trip: first request {first_ms:.1f} ms, then {TIMED_REQUESTS} more with a "
            f"median of {statistics.median(timings):.1f} ms (one kept-alive connection)"
        )
        metrics = httpx.get(f"{url}/metrics", headers=headers, timeout=10, trust_env=False)
        metrics.raise_for_status()
        ctx.out.print(f"GET {url}/metrics:")
        for line in metrics_lines(metrics.text):
            ctx.out.print(f"  {escape(line)}", soft_wrap=True)
    code = process.returncode
    ctx.out.print(
        "stopped the server with SIGTERM: "
        + (
            "graceful shutdown, serving log flushed"
            if code in (0, -signal.SIGTERM)
            else f"exit code {code}"
        )
    )
    logged = store.read_serving_log(start=started_at)
    requests = logged["request_id"].n_unique() if logged.height else 0
    ctx.out.print(
        f"serving log: {logged.height} record(s) from this server ({requests} request(s), "
        f"one record per entity row) under {escape(ctx.shown(store.serving_log_dir))}"
    )

    first = sample.row(0, named=True)
    body = {
        "feature_service": service,
        "entities": {k: [first[k]] for k in ctx.keys},
        "request_data": {c: [first[c]] for c in ctx.request_columns},
    }
    default_url = f"http://{LOOPBACK}:{store.repo.config.server.port}"
    auth = " -H 'Authorization: Bearer <token>'" if token else ""
    curl = (
        f"curl -s {default_url}/v1/online-features -H 'Content-Type: application/json'{auth} "
        f"-d {shlex.quote(json.dumps(body, default=_json_value))}"
    )
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.out.print(
        f"the first row from a shell, with [bold]featurestore serve --repo {shown}[/] running:"
    )
    ctx.out.print(f"  {escape(curl)}", soft_wrap=True)
    ctx.hints.append(f"featurestore serve --repo {shown}")


def _window_row(store: FeatureStore, user: int, at: dt.datetime, label: str) -> list[str]:
    """One table row: the window features of ``user`` served as of ``at``."""
    view = store.repo.views[WINDOW_VIEW]
    resp = store.get_online_features(
        features=[f"{WINDOW_VIEW}:{a.name}" for a in view.aggregations],
        entities={"user_id": [user]},
        request_time=at,
    )
    cells = [label, render.timestamp(at)]
    for column, values in resp.values.items():
        value = values[0]
        cells.append(resp.statuses[column][0].value if value is None else render.number(value))
    return cells


def windows_and_push(ctx: DemoContext) -> None:
    """Windowed aggregations served fresh at request time: the same values offline, a burst of
    pushed payments moving them at once, and old events leaving the windows as time passes,
    all without re-materializing."""
    store, spine, at = ctx.store, ctx.spine, ctx.served_at
    if store is None or spine is None or at is None:
        raise RepoError("the demo must materialize before it can show windowed aggregations")
    if WINDOW_VIEW not in store.repo.views or "user_id" not in spine.columns:
        ctx.out.print(f"[dim]this repo has no view {WINDOW_VIEW!r}; nothing to show[/]")
        return
    view = store.repo.views[WINDOW_VIEW]
    refs = [f"{WINDOW_VIEW}:{a.name}" for a in view.aggregations]
    user = int(spine["user_id"][-1])
    online = store.get_online_features(features=refs, entities={"user_id": [user]}, request_time=at)
    offline = store.get_training_set(
        pl.DataFrame({"user_id": [user], TIMESTAMP: [at]}), features=refs
    ).to_polars()
    same = all(_same(online.values[c][0], offline[c][0]) for c in online.values)
    verdict = "[green]equal the training set's[/]" if same else "[red]differ from offline[/]"
    ctx.out.print(
        f"user {user}, last payment at {render.timestamp(at)} UTC: online window values "
        f"{verdict} at the same time"
    )
    table = Table(box=box.SIMPLE_HEAD)
    for column in ["", "as of (UTC)", *online.values]:
        table.add_column(column, justify="right" if column else "left")
    table.add_row(*_window_row(store, user, at, "materialized"))
    burst = [
        {
            "user_id": user,
            "event_time": at + dt.timedelta(minutes=m),
            "amount": amount,
            "merchant_id": int(spine["merchant_id"][-1]),
        }
        for m, amount in PUSHED
    ]
    result = store.push(view.source.name, burst)
    after = at + dt.timedelta(minutes=PUSHED[-1][0] + 1)
    table.add_row(*_window_row(store, user, after, f"+{result.events} pushed"))
    pushed_online = store.get_online_features(
        features=refs, entities={"user_id": [user]}, request_time=after
    )
    pushed_offline = store.get_training_set(
        pl.DataFrame({"user_id": [user], TIMESTAMP: [after]}), features=refs
    ).to_polars()
    landed = all(
        _same(pushed_online.values[c][0], pushed_offline[c][0]) for c in pushed_online.values
    )
    table.add_row(*_window_row(store, user, after + dt.timedelta(hours=1), "1 hour later"))
    table.add_row(*_window_row(store, user, after + dt.timedelta(days=1), "1 day later"))
    ctx.out.print(table)
    ctx.out.print(
        f"pushed a burst of {result.events} payments through store.push('"
        f"{view.source.name}', rows) (POST /v1/push on the server); the windows cover "
        "(t - window, t) at each request time t, so values rise with the burst and fall as "
        "payments age out, with no materialization in between"
    )
    where = Path(result.offline_file).name if result.offline_file else "nowhere"
    verdict = "[green]holds the same values[/]" if landed else "[red]differs[/]"
    ctx.out.print(
        f"the push also landed in the source's files (data/transactions/{where}): a training "
        f"set at {render.timestamp(after)} UTC {verdict}, so the next materialization keeps "
        "the pushed payments"
    )
    store.materialize(at, views=[WINDOW_VIEW])  # as of the earlier time, for the later steps


def serve_and_log(ctx: DemoContext, store: FeatureStore, at: dt.datetime) -> int:
    """Serve the latest payments as of ``at`` in small requests, each one logged; returns
    how many entity rows were logged."""
    spine, service = ctx.spine, ctx.service
    if spine is None or service is None:
        raise RepoError("the demo must build a training set before serving")
    rows = spine.filter(pl.col(TIMESTAMP) <= at).tail(REPORT_ROWS)
    for offset in range(0, rows.height, REPORT_BATCH):
        batch = rows.slice(offset, REPORT_BATCH)
        started = time.perf_counter_ns()
        request = {c: batch[c].to_list() for c in ctx.request_columns}
        resp = store.get_online_features(
            feature_service=service,
            entities={k: batch[k].to_list() for k in ctx.keys},
            request_data=request,
            request_time=at,
        )
        if store.repo.config.serving_log.enabled:
            continue  # get_online_features logged it
        store.serving_log.log(
            resp,
            request_id=f"demo-{offset // REPORT_BATCH}",
            latency_us=(time.perf_counter_ns() - started) // 1000,
            request_data=request,
            feature_service=service,
        )
    return rows.height


def skew_and_drift(ctx: DemoContext) -> None:
    """Stall one view's materialization, serve and log payments, then show the skew report
    (served vs a replay through the offline path) and the drift report (training set vs
    what was served), and write both as HTML."""
    store, at = ctx.store, ctx.served_at
    if store is None or at is None or ctx.training_path is None:
        raise RepoError("the demo must serve online before it can report skew and drift")
    stalled_at = at - dt.timedelta(days=STALLED_DAYS)
    ctx.out.print(
        f"injected skew: the materialization of [bold]{STALLED_VIEW}[/] stalled "
        f"{STALLED_DAYS} days ago, so its online values are as of {render.timestamp(stalled_at)} "
        "UTC while its source has moved on"
    )
    store.materialize(stalled_at, views=[STALLED_VIEW], force=True)
    # an earlier demo run logged the same payments at the same time: they would count twice
    shutil.rmtree(store.serving_log_dir / f"date={at.date().isoformat()}", ignore_errors=True)
    logged = serve_and_log(ctx, store, at)
    window = (at, at + dt.timedelta(seconds=1))
    ctx.out.print(f"served and logged {logged:,} payments as of {render.timestamp(at)} UTC\n")
    reports = ctx.repo_dir / REPORTS_DIR
    skew = store.skew_report(*window)
    skew_html = skew.write_html(reports / "skew.html")
    render.report(ctx.out, skew.to_dict(), Path(ctx.shown(skew_html)))
    ctx.out.print(f"expected: {STALLED_VIEW} features whose source changed since the stall\n")
    current = f"log:{window[0].isoformat()}..{window[1].isoformat()}"
    drift = store.drift_report(ctx.training_path, current)
    drift_html = drift.write_html(reports / "drift.html")
    render.report(ctx.out, drift.to_dict(), Path(ctx.shown(drift_html)))
    ctx.out.print(f"expected: {', '.join(DRIFTED)} (injected)")
    store.materialize(at, views=[STALLED_VIEW], force=True)
    ctx.out.print(f"[dim]{STALLED_VIEW} re-published as of {render.timestamp(at)} UTC[/]")
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.hints += [
        f"featurestore skew --repo {shown} --start {window[0].isoformat()} --html skew.html",
        f"featurestore drift --repo {shown} --reference {escape(ctx.shown(ctx.training_path))} "
        f"--current {current} --fail-on-flagged",
    ]


def change_a_definition(ctx: DemoContext) -> None:
    """Edit an argument inside an expression: plan names it, the running server switches to
    the new registry version after apply and serves the values it holds under the fingerprint
    that computed them until the view is rebuilt, which materialize-incremental does; then put
    the definition back."""
    store, sample, at = ctx.store, ctx.sample, ctx.served_at
    if store is None or sample is None or at is None:
        raise RepoError("the demo must serve online before it can change a definition")
    path = ctx.repo_dir / EDITED_FILE
    original = path.read_text() if path.is_file() else ""
    if EDIT[0] not in original or importlib.util.find_spec("httpx") is None:
        ctx.out.print(f"[dim]this repo has no {EDITED_REF} as in the example; nothing to show[/]")
        return
    import httpx

    from featurestore._client import Client

    view = EDITED_REF.partition(":")[0]
    request = {
        "features": [EDITED_REF],
        "entities": {k: sample[k].to_list() for k in store.repo.views[view].join_keys},
    }
    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    try:
        with demo_server(ctx.repo_dir, port), Client(url) as client:
            first = client.get_online_features(**request)
            ctx.out.print(
                f"the server at {url} serves {EDITED_REF} under fingerprint "
                f"{first.fingerprints[EDITED_REF]}"
            )
            path.write_text(original.replace(EDIT[0], EDIT[1]))
            ctx.out.print(
                f"\nedited {EDITED_REF} in {EDITED_FILE}: [bold]{EDIT_SHOWN[0]}[/] -> "
                f"[bold]{EDIT_SHOWN[1]}[/] (Polars prints both expressions alike; the "
                "fingerprint hashes the serialized plan)"
            )
            render.plan(ctx.out, store.plan(), store.project, applied=False)
            render.plan(ctx.out, store.apply(), store.project, applied=True)
            reload = httpx.post(f"{url}/v1/admin/reload", timeout=30, trust_env=False).json()
            ctx.out.print(
                f"POST /v1/admin/reload: switched={reload['switched']}, now serving registry "
                f"version {reload['registry_version']} (servers also look every "
                f"{store.repo.config.serving.reload_interval_seconds:g} s on their own)"
            )
            _show_fingerprints(ctx, client.get_online_features(**request), "before the rebuild")
            render.materialization(ctx.out, store.materialize_incremental(at, views=[view]))
            _show_fingerprints(ctx, client.get_online_features(**request), "after the rebuild")
    finally:
        path.write_text(original)
        store.apply()
        store.materialize(at, views=[view])
    ctx.out.print(f"[dim]{EDITED_FILE} restored, applied and {view} re-published[/]")


def _show_fingerprints(ctx: DemoContext, resp: OnlineResponse, when: str) -> None:
    computed, applied = resp.fingerprints[EDITED_REF], resp.applied_fingerprints[EDITED_REF]
    if computed == applied:
        ctx.out.print(
            f"{when}: {EDITED_REF} served under fingerprint {computed}, the applied one: "
            "every value was computed by the new definition"
        )
        return
    ctx.out.print(
        f"{when}: {EDITED_REF} served under fingerprint {computed}, with "
        f"applied_fingerprint {applied}: the online store still holds values the earlier "
        "definition computed, and says so instead of passing them off as the new one's"
    )


def show_status(ctx: DemoContext) -> None:
    """What an operator checks first: per view, whether the code matches the registry, when it
    was materialized, how fresh its online values are, and the serving log's size."""
    store, at = ctx.store, ctx.served_at
    if store is None or at is None:
        raise RepoError("the demo must serve online before it can show the status")
    ctx.out.print(
        "the demo's data ends on "
        f"{render.timestamp(at)} UTC, so ages are measured then (--at); measured now, views "
        "whose values are older than their ttl would be flagged"
    )
    render.repo_status(ctx.out, store.status(at))
    shown = escape(ctx.shown(ctx.repo_dir))
    ctx.hints.append(
        f"featurestore status --repo {shown} --at {at.strftime('%Y-%m-%dT%H:%M:%S')} "
        "--fail-on-flagged"
    )


STEPS: list[tuple[str, Callable[[DemoContext], None]]] = [
    ("Locate the example repo", locate_repo),
    ("Generate sample data", generate_data),
    ("Apply the feature definitions", apply_definitions),
    ("Build a training set", build_training_set),
    ("Summarize the training set", summarize),
    ("Materialize and serve online", materialize_and_serve),
    ("Windowed aggregations and pushes", windows_and_push),
    ("Serve over HTTP", serve_over_http),
    ("Report training/serving skew and drift", skew_and_drift),
    ("Change a definition", change_a_definition),
    ("Check the repo's status", show_status),
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
