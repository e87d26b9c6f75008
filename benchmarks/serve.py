"""Benchmark: the HTTP feature server under load on loopback, next to a bare ASGI endpoint.

Builds a repo of N entities x 10 features (SQLite online store by default, LMDB with
``--online-store lmdb``; materialized), starts ``featurestore serve`` and, under the same HTTP
server with the same settings (uvicorn by default, granian with ``--server granian``; default event
loop and HTTP implementation, access log off, ``--workers`` processes), a bare ASGI app that
answers every request with the feature server's own response bytes, and a floor endpoint that
does only the feature server's retrieval and response encoding. Each server then takes a
bounded number of ``POST /v1/online-features`` requests (1 entity x 10 features, random entity ids)
over 1, 8 and 32 persistent HTTP/1.1 connections, from an asyncio client that writes prebuilt
requests and reads responses by Content-Length. Reported per concurrency: throughput, p50/p99
latency, errors, the CPU each side used (a server's CPU includes its worker processes), and the
feature server's throughput as a share of the bare endpoint's, which is the server's own cost.
Client and servers share this machine's cores.

    python benchmarks/serve.py
    python benchmarks/serve.py --requests 5000 --concurrency 1,8 --json
    python benchmarks/serve.py --server granian
    python benchmarks/serve.py --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import http.client
import itertools
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextlib import ExitStack
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from featurestore.server._launch import free_port, wait_until_healthy

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data" / "serve"
HOST = "127.0.0.1"  # every request of this benchmark goes to the loopback interface
ONLINE_PATH = "/v1/online-features"
VIEW = "entity_stats"
SERVERS = ("uvicorn", "granian")
BARE_BODY_ENV = "FEATURESTORE_BENCH_BARE_BODY"  # the bare endpoint's body file, for its workers
TARGET_SEQUENTIAL_P99_MS = 1.0
TARGET_CONCURRENT = 8
TARGET_CONCURRENT_P99_MS = 5.0
TARGET_CONCURRENT_US = 120.0  # server CPU per request at TARGET_CONCURRENT, serving log on
TARGET_RATIO = 0.35
TARGET_RATIO_LEVELS = (8, 32)

try:  # the cheapest client loop available, so that the client is not the bottleneck
    import uvloop

    LOOP_FACTORY: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
except ImportError:
    LOOP_FACTORY = None

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

# --- the bare endpoint ---------------------------------------------------------------------

BARE_BODY = b"{}"  # replaced by the feature server's response bytes before the server starts
BARE_REQUEST_ID = b"0" * 32


async def bare_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Reads the request body and answers a constant JSON body: HTTP and ASGI costs alone."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(BARE_BODY)).encode()),
                (b"x-request-id", BARE_REQUEST_ID),
            ],
        }
    )
    await send({"type": "http.response.body", "body": BARE_BODY})


def bare_factory() -> Callable[..., Awaitable[None]]:
    """:func:`bare_app` answering the bytes of the file named by ``BARE_BODY_ENV`` (the app
    factory each worker process calls)."""
    global BARE_BODY
    BARE_BODY = Path(os.environ[BARE_BODY_ENV]).read_bytes()
    return bare_app


# --- the floor: retrieval and encoding alone under the same HTTP server --------------------

FLOOR_REPO_ENV = "FEATURESTORE_BENCH_FLOOR_REPO"  # the floor endpoint's repo, for its workers


def floor_factory() -> Callable[..., Awaitable[None]]:
    """An ASGI app that answers each request with the feature server's own retrieval and
    encoding (orjson parse, ``OnlineRetriever.get`` on the served version, the server's
    ``encode_response``) and nothing else: no request id, auth, metrics, serving log, limits
    or error handling. What any server built from these parts pays on top of the bare
    endpoint."""
    import orjson

    from featurestore import FeatureStore
    from featurestore.server._encoding import encode_response

    store = FeatureStore(Path(os.environ[FLOOR_REPO_ENV]))
    retriever = store.retriever
    request_id = BARE_REQUEST_ID.decode()

    async def floor_app(
        scope: Scope,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan" or scope["method"] != "POST":  # and health checks
            await bare_app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        request = orjson.loads(b"".join(chunks))
        response = retriever.get(request["features"], None, request["entities"])
        body = encode_response(response, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-request-id", BARE_REQUEST_ID),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return floor_app


def run_server(server: str, app: str, port: int, workers: int, target: Path) -> None:
    """Serve the feature server over the repo ``target``, the floor endpoint over the same
    repo, or the bare endpoint answering the bytes of the file ``target``, under ``server``
    (granian) with the options ``featurestore serve`` gives uvicorn; the floor and bare
    endpoints also under uvicorn."""
    if app == "bare":
        os.environ[BARE_BODY_ENV] = str(target.resolve())
        factory = f"{Path(__file__).stem}:bare_factory"
    elif app == "floor":
        os.environ[FLOOR_REPO_ENV] = str(target.resolve())
        factory = f"{Path(__file__).stem}:floor_factory"
    else:
        from featurestore import FeatureStore
        from featurestore.server._run import REPO_ENV, _multiprocess_metrics

        os.environ[REPO_ENV] = str(target.resolve())
        if workers > 1:
            store = FeatureStore(target)
            _multiprocess_metrics(store)
            store.close()
        factory = "featurestore.server._run:app_from_env"
    if server == "uvicorn":
        import uvicorn

        uvicorn.run(
            factory,
            factory=True,
            app_dir=str(HERE),
            host=HOST,
            port=port,
            workers=workers,
            access_log=False,
            timeout_graceful_shutdown=None,
        )
        return
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        factory,
        factory=True,
        working_dir=HERE,
        address=HOST,
        port=port,
        interface=Interfaces.ASGI,
        workers=workers,
        websockets=False,
        log_access=False,
    ).serve()


# --- the repo and the server processes -----------------------------------------------------


def build_repo(root: Path, entities: int, online_store: str = "sqlite") -> None:
    """The repo of benchmarks/online.py, its rows an hour old, applied and materialized now."""
    import polars as pl
    from online import write_repo

    from featurestore import FeatureStore

    write_repo(root, online_store, entities, "")
    source = root / "data" / "stats.parquet"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    frame = pl.read_parquet(source).with_columns(
        pl.lit(now - dt.timedelta(hours=1), pl.Datetime("us")).alias("event_time")
    )
    frame.write_parquet(source)
    store = FeatureStore(root)
    try:
        store.apply()
        store.materialize(end=dt.datetime.now(dt.UTC), views=[VIEW])
    finally:
        store.close()


@dataclass
class ServerProcess:
    """A server started by this benchmark, its output going to ``log_path``."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM and wait for the graceful shutdown (killed if it takes too long)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def request(port: int, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
    """One HTTP request to the loopback server on ``port`` (no proxy, a fresh connection)."""
    con = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        con.request(method, path, body=body, headers=headers)
        response = con.getresponse()
        return response.status, response.read()
    finally:
        con.close()


def start_server(
    stack: ExitStack, name: str, args: list[str], timeout: float = 120
) -> ServerProcess:
    """Start ``args`` plus ``--port P`` on a free port; return once ``GET /healthz`` is 200.
    ``stack`` stops the process on exit, whatever happens."""
    port = free_port()
    log_path = DATA_ROOT / f"{name}.log"
    env = {k: v for k, v in os.environ.items() if k not in ("FEATURESTORE_TOKENS",)}
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            [*args, "--port", str(port)], stdout=log_file, stderr=subprocess.STDOUT, env=env
        )
    server = ServerProcess(name, process, port, log_path)
    stack.callback(server.stop)
    wait_until_healthy(process, port, timeout, output=server.log_tail)
    return server


# --- the load --------------------------------------------------------------------------------


def payloads(port: int, entities: int, count: int, seed: int) -> list[bytes]:
    """``count`` prebuilt HTTP/1.1 requests, each for one random entity and the 10 features."""
    import random

    rng = random.Random(seed)
    features = json.dumps([f"{VIEW}:f{i}" for i in range(10)])
    out = []
    for _ in range(count):
        body = (
            f'{{"features": {features}, "entities": {{"entity_id": [{rng.randrange(entities)}]}}}}'
        )
        out.append(
            (
                f"POST {ONLINE_PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
    return out


@dataclass
class Load:
    """What the connections of one run share: the requests, a ticket counter and results."""

    requests: list[bytes]
    tickets: itertools.count[int]
    latencies_ns: list[int]
    errors: int = 0
    first_error: str = ""

    def fail(self, what: str) -> None:
        self.errors += 1
        self.first_error = self.first_error or what


async def connection(port: int, load: Load) -> None:
    """One persistent connection: send a request, read the whole response, repeat until the
    requests run out (reconnecting after an error or a server-side close)."""
    total = len(load.requests)
    reader = writer = None
    try:
        while (i := next(load.tickets)) < total:
            if writer is None:
                reader, writer = await asyncio.open_connection(HOST, port)
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            assert reader is not None
            started = time.perf_counter_ns()
            try:
                writer.write(load.requests[i])
                head = await reader.readuntil(b"\r\n\r\n")
                lower = head.lower()
                at = lower.find(b"\r\ncontent-length:")
                if at < 0:
                    raise ValueError("response without Content-Length")
                length = int(head[at + 17 : lower.index(b"\r\n", at + 17)])
                body = await reader.readexactly(length)
            except (OSError, ValueError, asyncio.IncompleteReadError) as exc:
                load.fail(f"{type(exc).__name__}: {exc}")
                writer.close()
                reader = writer = None
                continue
            load.latencies_ns.append(time.perf_counter_ns() - started)
            if head[9:12] != b"200":
                load.fail(head.split(b"\r\n", 1)[0].decode() + " " + body[:200].decode())
            if b"\r\nconnection: close" in lower:
                writer.close()
                reader = writer = None
    finally:
        if writer is not None:
            writer.close()


@dataclass
class Row:
    """The measured figures of one server at one concurrency."""

    server: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    server_cpu: float  # CPU seconds of the server process per wall second (1.0 = one core)
    server_us_per_request: float  # CPU microseconds of the server process per request
    client_cpu: float  # the same for the load client
    first_error: str


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds used so far by process ``pid`` and its live child
    processes (the workers), all their threads."""
    import psutil

    process = psutil.Process(pid)
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


async def drive(port: int, requests: list[bytes], concurrency: int, timeout: float) -> Load:
    """Send ``requests`` over ``concurrency`` connections sharing one ticket counter."""
    load = Load(requests, itertools.count(), [])
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(connection(port, load) for _ in range(concurrency)))
    return load


def measure(server: ServerProcess, requests: list[bytes], concurrency: int, timeout: float) -> Row:
    """Run ``requests`` at ``concurrency`` against ``server`` and summarize them."""
    gc.collect()
    cpu_before = cpu_seconds(server.process.pid)
    client_before = time.process_time()
    started = time.perf_counter()
    with asyncio.Runner(loop_factory=LOOP_FACTORY) as runner:
        load = runner.run(drive(server.port, requests, concurrency, timeout))
    seconds = time.perf_counter() - started
    client_cpu = (time.process_time() - client_before) / seconds
    server_cpu = (cpu_seconds(server.process.pid) - cpu_before) / seconds
    samples = sorted(load.latencies_ns)
    n = len(samples)

    def pct(q: float) -> float:
        return samples[min(n - 1, int(n * q))] / 1e6 if n else float("nan")

    return Row(
        server=server.name,
        concurrency=concurrency,
        requests=len(requests),
        seconds=seconds,
        rps=n / seconds,
        p50_ms=pct(0.50),
        p99_ms=pct(0.99),
        max_ms=samples[-1] / 1e6 if n else float("nan"),
        errors=load.errors,
        server_cpu=server_cpu,
        server_us_per_request=server_cpu * seconds / n * 1e6 if n else float("nan"),
        client_cpu=client_cpu,
        first_error=load.first_error,
    )


# --- the run ---------------------------------------------------------------------------------


def check_response(port: int) -> bytes:
    """One real request: the 10 values must be PRESENT (the response bytes are returned)."""
    body = json.dumps(
        {"features": [f"{VIEW}:f{i}" for i in range(10)], "entities": {"entity_id": [1]}}
    ).encode()
    status, payload = request(port, "POST", ONLINE_PATH, body)
    if status != 200:
        raise RuntimeError(f"the feature server answered {status}: {payload[:500]!r}")
    statuses = {s for f in json.loads(payload)["features"].values() for s in f["statuses"]}
    if statuses != {"PRESENT"}:
        raise RuntimeError(f"benchmark values must be PRESENT, got {sorted(statuses)}")
    return payload


def environment(server: str, workers: int) -> dict[str, Any]:
    """The machine, Python and HTTP server setup the figures belong to."""
    import importlib.metadata
    import importlib.util

    def has(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    return {
        "machine": platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "server": server,
        "server_version": importlib.metadata.version(server),
        "workers": workers,
        "loop": "uvloop" if has("uvloop") else "asyncio",
        "http": ("httptools" if has("httptools") else "h11") if server == "uvicorn" else "hyper",
    }


def run(
    entities: int,
    total: int,
    levels: list[int],
    warmup: int,
    timeout: float,
    http_server: str = "uvicorn",
    workers: int = 1,
    online_store: str = "sqlite",
) -> dict[str, Any]:
    """Build the repo, start both servers, load each at every concurrency level in turn, and
    stop them (whatever happens); returns every figure."""
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    repo = DATA_ROOT / "repo"
    # built in a child process: this one stays a lean load client (no DuckDB or Polars threads)
    script = str(Path(__file__).resolve())
    build = ["--build-repo", str(repo), "--entities", str(entities)]
    build += ["--online-store", online_store]
    subprocess.run([sys.executable, script, *build], check=True)
    rows: list[Row] = []
    run_server_args = ["--run-server", http_server, "--workers", str(workers)]
    with ExitStack() as stack:
        if http_server == "uvicorn":  # as operators start it
            command = [sys.executable, "-m", "featurestore.cli", "serve", "--repo", str(repo)]
            command += ["--workers", str(workers)]
        else:
            command = [sys.executable, script, *run_server_args, "--app", str(repo)]
        featurestore = start_server(stack, "featurestore", command)
        response = check_response(featurestore.port)
        body_file = DATA_ROOT / "bare_body.json"
        body_file.write_bytes(response)
        bare = start_server(
            stack,
            "bare",
            [sys.executable, script, *run_server_args, "--bare", str(body_file)],
        )
        floor = start_server(
            stack,
            "floor",
            [sys.executable, script, *run_server_args, "--floor", str(repo)],
        )
        servers = [featurestore, floor, bare]
        batches = {s.name: payloads(s.port, entities, total, seed=1) for s in servers}
        for server in servers:  # warm up both (caches, lazily built plans, branch predictors)
            measure(server, payloads(server.port, entities, warmup, seed=2), 8, timeout)
        gc.freeze()  # the client's prebuilt requests are out of its collector's reach
        for concurrency in levels:
            for server in servers:
                rows.append(measure(server, batches[server.name], concurrency, timeout))
    return {
        "environment": environment(http_server, workers),
        "entities": entities,
        "online_store": online_store,
        "requests_per_row": total,
        "warmup_requests": warmup,
        "response_bytes": len(response),
        "client": f"one process, asyncio on {'uvloop' if LOOP_FACTORY else 'its default loop'}, "
        "prebuilt requests",
        "rows": [asdict(r) for r in rows],
        **evaluate(rows),
    }


def evaluate(rows: list[Row]) -> dict[str, Any]:
    """The throughput ratios and the three targets, with whether each is met."""
    by = {(r.server, r.concurrency): r for r in rows}
    levels = sorted({r.concurrency for r in rows})

    def ratios_of(app: str) -> dict[int, float]:
        return {
            c: by[app, c].rps / by["bare", c].rps
            for c in levels
            if (app, c) in by and ("bare", c) in by and by["bare", c].rps > 0
        }

    ratios = ratios_of("featurestore")
    targets: list[dict[str, Any]] = []
    if ("featurestore", 1) in by:
        p99 = by["featurestore", 1].p99_ms
        targets.append(
            {
                "target": f"1 connection: p99 <= {TARGET_SEQUENTIAL_P99_MS} ms",
                "measured": f"{p99:.2f} ms",
                "met": p99 <= TARGET_SEQUENTIAL_P99_MS,
            }
        )
    if ("featurestore", TARGET_CONCURRENT) in by:
        row = by["featurestore", TARGET_CONCURRENT]
        targets.append(
            {
                "target": f"{TARGET_CONCURRENT} connections: p99 <= {TARGET_CONCURRENT_P99_MS} ms",
                "measured": f"{row.p99_ms:.2f} ms",
                "met": row.p99_ms <= TARGET_CONCURRENT_P99_MS,
            }
        )
        targets.append(
            {
                "target": f"{TARGET_CONCURRENT} connections: server CPU <= "
                f"{TARGET_CONCURRENT_US:.0f} us/request",
                "measured": f"{row.server_us_per_request:.0f} us",
                "met": row.server_us_per_request <= TARGET_CONCURRENT_US,
            }
        )
    for c, ratio in ratios.items():
        if c not in TARGET_RATIO_LEVELS:
            continue
        targets.append(
            {
                "target": f"{c} connection(s): throughput >= {TARGET_RATIO:.0%} of bare",
                "measured": f"{ratio:.0%}",
                "met": ratio >= TARGET_RATIO,
            }
        )
    errors = sum(r.errors for r in rows)
    return {
        "ratios": {str(c): r for c, r in ratios.items()},
        "floor_ratios": {str(c): r for c, r in ratios_of("floor").items()},
        "targets": targets,
        "all_met": all(t["met"] for t in targets) and errors == 0,
    }


def report(res: dict[str, Any]) -> None:
    """Print the figures as a table, with the targets and whether each is met."""
    env = res["environment"]
    print(
        f"featurestore HTTP server benchmark ({env['machine']}, {env['cores']} cores, "
        f"python {env['python']}, {env['server']} {env['server_version']} with {env['loop']} + "
        f"{env['http']}, {env['workers']} worker(s))"
    )
    print(
        f"POST {ONLINE_PATH}: 1 entity x 10 features, random ids of {res['entities']:,} "
        f"({res['online_store']}); {res['requests_per_row']:,} requests per row after "
        f"{res['warmup_requests']:,} warm-up; persistent HTTP/1.1 connections on loopback; "
        f"response {res['response_bytes']:,} bytes (the bare endpoint sends the same bytes)"
    )
    print(
        f"client: {res['client']}; client and servers share the {env['cores']} cores, so at "
        "higher concurrency the client's CPU is taken from the server's"
    )
    header = (
        f"\n{'conns':>5}  {'server':<13}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'errors':>8}{'server cpu':>12}{'us/req':>8}{'client cpu':>12}"
    )
    print(header)
    targets = {t["target"]: t for t in res["targets"]}
    for r in res["rows"]:
        print(
            f"{r['concurrency']:>5}  {r['server']:<13}{r['rps']:>9,.0f}{r['p50_ms']:>9.2f}"
            f"{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}{r['errors']:>8,}"
            f"{r['server_cpu']:>11.0%} {r['server_us_per_request']:>7.0f} {r['client_cpu']:>11.0%}"
        )
        if r["server"] != "bare":
            continue
        for app, key in (("featurestore", "ratios"), ("floor", "floor_ratios")):
            ratio = res[key].get(str(r["concurrency"]))
            if ratio is not None:
                print(f"{'':>7}{app} / bare throughput: {ratio:.0%}")
    print("\ntargets:")
    for t in targets.values():
        print(f"  {t['target']:<48} {t['measured']:>9}  {'met' if t['met'] else 'MISSED'}")
    for r in res["rows"]:
        if r["errors"]:
            what = f"{r['server']} at {r['concurrency']}"
            print(f"  {what}: {r['errors']} errors, first: {r['first_error']}")
    print(
        "server cpu / client cpu: CPU seconds per wall second of the run (100% = one core); "
        "us/req: server CPU microseconds per request; p50/p99: from sending a request to "
        "reading the last byte of its response; floor: retrieval and encoding alone under the "
        "same HTTP server (no request id, auth, metrics, serving log or error handling)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="requests per row")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated connections")
    parser.add_argument("--entities", type=int, default=100_000, help="entities materialized")
    parser.add_argument("--warmup", type=int, default=2_000, help="warm-up requests per server")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per row")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--server", choices=SERVERS, default="uvicorn", help="the HTTP server of both apps"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes per server")
    parser.add_argument(
        "--online-store", choices=("sqlite", "lmdb"), default="sqlite", help="the online store"
    )
    parser.add_argument("--run-server", choices=SERVERS, help=argparse.SUPPRESS)
    parser.add_argument("--app", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--bare", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--floor", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--build-repo", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.build_repo is not None:
        build_repo(args.build_repo, args.entities, args.online_store)
        return 0
    if args.run_server is not None:
        if args.bare is not None:
            app, target = "bare", args.bare
        elif args.floor is not None:
            app, target = "floor", args.floor
        else:
            app, target = "featurestore", args.app
        run_server(args.run_server, app, args.port, args.workers, target)
        return 0
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if args.requests < 1 or not levels or min(levels) < 1 or args.workers < 1:
        parser.error("--requests, --workers and every --concurrency level must be at least 1")
    res = run(
        args.entities,
        args.requests,
        levels,
        args.warmup,
        args.timeout,
        args.server,
        args.workers,
        args.online_store,
    )
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        report(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
