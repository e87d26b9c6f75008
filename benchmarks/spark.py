"""Benchmark: training sets on Spark local beside DuckDB, and how the Spark path scales.

Reuses the data of the offline benchmark (``offline_data.py``: entities x 100 rows over a year
with a created timestamp and ties on event_time, a spine of a tenth of the rows) at 1M, 10M and
50M feature rows, and builds a repo over it with two views of the same source: the offline
benchmark's 10 plain features (a point-in-time join with a ttl) and three windowed aggregations
(exact kinds: integer sum, count, max). For each scale it times, each engine alone in a fresh
process so that peak memory and the JVM heap are its own:

- DuckDB: ``get_training_set(...).to_polars()`` (plain features, then aggregations), and the
  hand-written ASOF query of ``offline.py``;
- Spark: the same two calls on ``local[2]`` with a fixed ``spark.driver.memory`` (local mode runs
  the executors inside the driver JVM) and ``spark.sql.shuffle.partitions`` grown with the rows.

DuckDB is expected to win on two cores; what the Spark side records is the shape of its work:
the shuffles (``Exchange`` nodes) of each view's plan, the post-shuffle partitions and the rows,
bytes and execution memory of the largest one, the bytes spilled, and the JVM heap's peak, to
show they stay bounded as the rows grow with the same heap. Spark's figures come from its REST
API (the UI on a free loopback port) and a heap sampler. The results of the two engines are
compared (plain features exactly; aggregations of exact kinds exactly).

    python benchmarks/spark.py --scale small            # 1M rows, a few minutes
    python benchmarks/spark.py --scale all --json       # 1M, 10M, then 50M if it fits
    python benchmarks/spark.py --scale large --views plain --no-warmup --duckdb-memory 8GB

With ``--scale all`` the largest scale runs only when its time, extrapolated linearly from the
scale before, fits ``--budget``; when it does not, its plain view alone (no warm-up) runs if
that fits, and what was left out is recorded with the reason.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import os
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import polars as pl
from machine import load_average, machine, reference_connection, versions
from memory import measure
from offline import check_same, hand_written_sql, run_hand_written
from offline_data import (
    DATA_ROOT,
    DEFINITIONS,
    FEATURES,
    SCALES,
    VARIANTS,
    VIEW,
    Scale,
    Variant,
    ensure_data,
)

from featurestore import FeatureStore

AGG_VIEW = "entity_windows"
AGGREGATIONS = {
    "f6_sum_7d": 'Sum("f6", window=timedelta(days=7))',
    "rows_1d": "Count(window=timedelta(days=1))",
    "f7_max_30d": 'Max("f7", window=timedelta(days=30))',
}
AGG_DEFINITIONS = f'''

{AGG_VIEW} = FeatureView(
    name="{AGG_VIEW}",
    entities=[entity],
    source=events,
    owner="benchmarks",
    aggregations=[
{"".join(f"        {d[:-1]}, name={n!r}),{chr(10)}" for n, d in AGGREGATIONS.items())}\
    ],
)
'''
IMPORT_AGGREGATIONS = "from featurestore.definitions import Count, Max, Sum\n"

# 1M and 10M rows are the offline benchmark's medium and large data (shared with it)
SPARK_SCALES = {
    "small": SCALES["medium"],
    "medium": SCALES["large"],
    "large": Scale(
        "xlarge", entities=500_000, rows_per_entity=100, spine_rows=5_000_000, repeats=1
    ),
}
CORES = 2
DRIVER_MEMORY = "2g"
ROWS_PER_PARTITION = 500_000  # feature plus spine rows per shuffle partition
BUDGET_S = 15 * 60  # the largest scale runs only when its extrapolated time fits
PLAIN_REFS = [f"{VIEW}:{c}" for c in FEATURES]
AGG_REFS = [f"{AGG_VIEW}:{n}" for n in AGGREGATIONS]


@dataclass(frozen=True)
class Options:
    """What a run measures: which views, whether Spark warms up first, DuckDB's memory cap."""

    views: str = "all"  # or "plain": the point-in-time join only
    warmup: bool = True
    duckdb_memory: str | None = None  # e.g. 8GB: DuckDB's memory_limit on both of its sides
    rows_per_partition: int = ROWS_PER_PARTITION

    def args(self) -> list[str]:
        """The same options as command-line arguments, for a child process."""
        out = ["--views", self.views, "--rows-per-partition", str(self.rows_per_partition)]
        out.append("--warmup" if self.warmup else "--no-warmup")
        if self.duckdb_memory:
            out += ["--duckdb-memory", self.duckdb_memory]
        return out

    def sides(self) -> tuple[str, ...]:
        return ("plain", "aggregations") if self.views == "all" else (self.views,)

    def references(self) -> tuple[str, ...]:
        """The hand-written query is the plain view's reference (DuckDB's own aggregations are
        the aggregation view's)."""
        return ("hand_written",) if "plain" in self.sides() else ()


# --------------------------------------------------------------------------- repo


def bench_root(scale: Scale, variant: Variant) -> Path:
    """The Spark benchmark's repo of a scale: its own config and definitions, the offline
    benchmark's data linked in as ``data/``."""
    return DATA_ROOT / "spark" / scale.name / variant.name


def shuffle_partitions(scale: Scale, rows_per_partition: int) -> int:
    """``spark.sql.shuffle.partitions`` for a scale: grown with the rows a view's shuffle
    carries (feature rows plus spine rows), so each partition holds about as many rows."""
    rows = scale.feature_rows + scale.spine_rows
    return max(CORES, math.ceil(rows / rows_per_partition))


def free_port() -> int:
    """A free loopback port for the Spark UI (its REST API is where the metrics come from)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_bench_repo(
    root: Path, data: Path, engine: str, conf: dict[str, str], memory: str | None = None
) -> None:
    """featurestore.yaml (DuckDB, or Spark local with ``conf``) and the definitions: the
    offline benchmark's view plus a view of windowed aggregations over the same source."""
    root.mkdir(parents=True, exist_ok=True)
    link = root / "data"
    if not link.exists():
        link.symlink_to(data, target_is_directory=True)
    config = "project: spark_benchmark\n"
    if engine == "duckdb" and memory:
        config += f"offline_store:\n  memory_limit: {memory}\n"
    if engine == "spark":
        config += f'offline_store:\n  type: spark\n  master: "local[{CORES}]"\n  conf:\n'
        config += "".join(f'    {k}: "{v}"\n' for k, v in conf.items())
    (root / "featurestore.yaml").write_text(config)
    definitions = DEFINITIONS.lstrip().replace(
        "from featurestore import", IMPORT_AGGREGATIONS + "from featurestore import"
    )
    (root / "definitions.py").write_text(definitions + AGG_DEFINITIONS)


# --------------------------------------------------------------------------- DuckDB side


def run_duckdb(
    scale: Scale, variant: Variant, out: Path, side: str, opts: Options
) -> dict[str, Any]:
    """In this (fresh) process, one DuckDB side (featurestore's plain or aggregation training
    set, or the hand-written query): once to measure its peak memory above the start, once more
    to time it warm; featurestore's results are written to ``out`` for the comparisons."""
    data, _ = ensure_data(scale, variant)
    root = bench_root(scale, variant) / "duckdb"
    write_bench_repo(root, data / "data", "duckdb", {}, opts.duckdb_memory)
    store = FeatureStore(root)
    store.apply()
    spine = pl.read_parquet(data / "data" / "spine.parquet")
    con, threads = reference_connection()
    if opts.duckdb_memory:
        con.execute(f"SET memory_limit = '{opts.duckdb_memory}'")
    sql = hand_written_sql(data / "data" / "features.parquet", variant)
    sides = {
        "plain": lambda: store.get_training_set(spine, features=PLAIN_REFS).to_polars(),
        "aggregations": lambda: store.get_training_set(spine, features=AGG_REFS).to_polars(),
        "hand_written": lambda: run_hand_written(con, sql, spine),
    }
    try:
        frame, first_s, peak_mb = measure(sides[side])
    except Exception as exc:  # out of memory under a cap: recorded, not fatal
        return {"threads": threads, "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
    if side == "hand_written":
        if (out / "duckdb_plain.parquet").exists():
            check_same(pl.read_parquet(out / "duckdb_plain.parquet"), frame, "hand-written")
    else:
        frame.write_parquet(out / f"duckdb_{side}.parquet")
    del frame
    gc.collect()
    _, second_s, _ = measure(sides[side])
    con.close()
    store.close()
    return {
        "threads": threads,
        "first_s": round(first_s, 3),
        "second_s": round(second_s, 3),
        "best_s": round(min(first_s, second_s), 3),
        "peak_rss_mb": round(peak_mb, 1),
    }


# --------------------------------------------------------------------------- Spark side


class HeapSampler:
    """Samples the JVM's used heap (total minus free) every ``interval`` seconds in a thread:
    in local mode the executors share the driver's heap, so this is the whole job's."""

    def __init__(self, spark: Any, interval: float = 0.25) -> None:
        self.runtime = spark._jvm.java.lang.Runtime.getRuntime()
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def used(self) -> int:
        return int(self.runtime.totalMemory()) - int(self.runtime.freeMemory())

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.used())

    def __enter__(self) -> HeapSampler:
        self.peak = self.used()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


class SparkMetrics:
    """What Spark's REST API says about the stages a piece of work ran."""

    def __init__(self, spark: Any) -> None:
        sc = spark.sparkContext
        self.base = f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}"

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.base}/{path}", timeout=60) as response:
            return json.load(response)

    def stage_ids(self) -> set[tuple[int, int]]:
        return {(s["stageId"], s["attemptId"]) for s in self.get("stages")}

    def executor_heap_peak(self) -> int | None:
        """The driver's peak JVM heap as its executor metrics report it (sampled on
        heartbeats), when reported."""
        for executor in self.get("executors"):
            peaks = executor.get("peakMemoryMetrics") or {}
            if "JVMHeapMemory" in peaks:
                return int(peaks["JVMHeapMemory"])
        return None

    def stages_since(self, before: set[tuple[int, int]]) -> dict[str, Any]:
        """Totals over the stages run since ``before``, and for the stages that read a
        shuffle, their partitions and the largest partition's rows, bytes and peak execution
        memory (the largest task of each)."""
        time.sleep(1.0)  # the listener bus posts the last task ends asynchronously
        stages = [
            s
            for s in self.get("stages?status=complete")
            if (s["stageId"], s["attemptId"]) not in before
        ]
        shuffled = []
        for s in stages:
            if not s.get("shuffleReadRecords"):
                continue
            summary = self.get(
                f"stages/{s['stageId']}/{s['attemptId']}/taskSummary?quantiles=0.5,1.0"
            )
            read = summary["shuffleReadMetrics"]
            shuffled.append(
                {
                    "stage": s["stageId"],
                    "name": s["name"].split(" ")[0],
                    "partitions": s["numTasks"],
                    "rows_read": s["shuffleReadRecords"],
                    "median_partition_rows": int(read["readRecords"][0]),
                    "max_partition_rows": int(read["readRecords"][1]),
                    "max_partition_bytes": int(read["readBytes"][1]),
                    "max_peak_execution_memory": int(summary["peakExecutionMemory"][1]),
                    "spilled_disk_bytes": s.get("diskBytesSpilled", 0),
                }
            )
        shuffled.sort(key=lambda x: x["stage"])
        return {
            "stages": len(stages),
            "tasks": sum(s["numTasks"] for s in stages),
            "executor_run_s": round(sum(s["executorRunTime"] for s in stages) / 1000, 2),
            "executor_cpu_s": round(sum(s["executorCpuTime"] for s in stages) / 1e9, 2),
            "shuffle_write_bytes": sum(s["shuffleWriteBytes"] for s in stages),
            "shuffle_write_rows": sum(s["shuffleWriteRecords"] for s in stages),
            "spilled_disk_bytes": sum(s["diskBytesSpilled"] for s in stages),
            "spilled_memory_bytes": sum(s["memoryBytesSpilled"] for s in stages),
            "shuffle_stages": shuffled,
            "max_partition_rows": max((x["max_partition_rows"] for x in shuffled), default=0),
            "max_partition_bytes": max((x["max_partition_bytes"] for x in shuffled), default=0),
            "max_peak_execution_memory": max(
                (x["max_peak_execution_memory"] for x in shuffled), default=0
            ),
        }


def exchanges(plan: str) -> dict[str, int]:
    """Shuffles (``Exchange`` nodes) and broadcasts in a physical plan's text."""
    return {
        "shuffles": len(re.findall(r"(?<![A-Za-z])Exchange (?:hash|range|round|single)", plan)),
        "broadcasts": plan.count("BroadcastExchange"),
    }


def run_spark(
    scale: Scale, variant: Variant, out: Path, partitions: int, opts: Options
) -> dict[str, Any]:
    """In this (fresh) process: a warm-up on a slice of the spine, then featurestore's plain and
    aggregation training sets on Spark local, each timed once, with its plan's shuffles, the
    partitions, the largest partition and the JVM heap; results written to ``out``."""
    from featurestore._selection import build_plan
    from featurestore.offline._spark import SparkEngine
    from featurestore.offline._spark._session import spark_session

    data, _ = ensure_data(scale, variant)
    root = bench_root(scale, variant) / "spark"
    conf = {
        "spark.driver.memory": DRIVER_MEMORY,
        "spark.sql.shuffle.partitions": str(partitions),
        "spark.ui.enabled": "true",
        "spark.ui.port": str(free_port()),
        "spark.ui.host": "127.0.0.1",
        "spark.driver.host": "127.0.0.1",
        "spark.ui.showConsoleProgress": "false",
        "spark.local.dir": str(root / "tmp"),
    }
    write_bench_repo(root, data / "data", "spark", conf)
    store = FeatureStore(root)
    store.apply()
    started = time.perf_counter()
    spark = spark_session(store.repo.config.offline_store)
    session_s = time.perf_counter() - started
    spark.sparkContext.setLogLevel("ERROR")
    runtime = spark._jvm.java.lang.Runtime.getRuntime()
    metrics = SparkMetrics(spark)
    engine = SparkEngine(store.repo, spark)
    spine = pl.read_parquet(data / "data" / "spine.parquet")

    started = time.perf_counter()
    if opts.warmup:
        store.get_training_set(spine.head(10_000), features=PLAIN_REFS + AGG_REFS).to_polars()
    warmup_s = time.perf_counter() - started

    results: dict[str, Any] = {
        "session_s": round(session_s, 2),
        "warmup_s": round(warmup_s, 2),
        "max_heap_mb": round(int(runtime.maxMemory()) / 2**20),
        "conf": {k: v for k, v in conf.items() if not k.endswith(("port", "dir", "host"))},
    }
    refs_of = {"plain": PLAIN_REFS, "aggregations": AGG_REFS}
    for name, refs in ((side, refs_of[side]) for side in opts.sides()):
        plan = build_plan(store.repo, refs)
        joined = engine.joined_dataframe(spine, plan)[0]
        before_plan = joined._jdf.queryExecution().executedPlan().toString()
        before = metrics.stage_ids()
        gc.collect()
        with HeapSampler(spark) as heap:
            frame, wall_s, rss_mb = measure(
                lambda refs=refs: store.get_training_set(spine, features=refs).to_polars()
            )
        frame.write_parquet(out / f"spark_{name}.parquet")
        rows_in = scale.feature_rows + scale.spine_rows
        stages = metrics.stages_since(before)
        results[name] = {
            "wall_s": round(wall_s, 2),
            "python_peak_rss_mb": round(rss_mb, 1),
            "plan": exchanges(before_plan),
            "jvm_heap_peak_mb": round(heap.peak / 2**20, 1),
            "rows_per_s_per_core": round(rows_in / wall_s / CORES),
            "rows_per_task_cpu_s": round(rows_in / max(stages["executor_cpu_s"], 1e-9)),
            **stages,
        }
        del frame
    peak = metrics.executor_heap_peak()
    results["executor_heap_peak_mb"] = round(peak / 2**20, 1) if peak else None
    spark.stop()
    return results


# --------------------------------------------------------------------------- driver


def in_child(engine: str, scale_name: str, variant: Variant, out: Path, opts: Options) -> Any:
    """One engine's run of a scale in a child process, so that memory and the JVM are its own."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--scale", scale_name]
    cmd += ["--variant", variant.name, "--probe", engine, "--out", str(out), *opts.args()]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        log = out / f"{engine.replace(':', '_')}.stderr.txt"
        log.write_text(done.stderr)
        python = [ln for ln in done.stderr.splitlines() if not ln.startswith(("\tat ", "["))]
        tail = "\n".join(python[-40:])
        raise SystemExit(f"{engine} run failed (all of stderr in {log}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(out: Path, sides: tuple[str, ...]) -> str:
    """Both engines' training sets of ``sides``, checked to be identical (where DuckDB ran)."""
    checked = []
    for name in sides:
        theirs = out / f"duckdb_{name}.parquet"
        if not theirs.exists():
            continue
        ours = pl.read_parquet(out / f"spark_{name}.parquet")
        check_same(ours, pl.read_parquet(theirs), f"Spark {name}")
        checked.append(name)
    return f"identical on Spark and DuckDB: {', '.join(checked) or 'nothing compared'}"


def run(scale_name: str, variant: Variant, opts: Options) -> dict[str, Any]:
    """Data, then each engine in its own process, then the comparison and the results."""
    scale = SPARK_SCALES[scale_name]
    load_before = load_average()
    started = time.perf_counter()
    ensure_data(scale, variant)
    data_s = time.perf_counter() - started
    out = bench_root(scale, variant) / "out"
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.parquet"):
        old.unlink()
    partitions = shuffle_partitions(scale, opts.rows_per_partition)
    duck = {
        side: in_child(f"duckdb:{side}", scale_name, variant, out, opts)
        for side in (*opts.sides(), *opts.references())
    }
    load_mid = load_average()
    spark = in_child("spark", scale_name, variant, out, opts)
    verified = compare(out, opts.sides())
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale_name,
        "variant": variant.name,
        "rows": {**asdict(scale), "feature_rows": scale.feature_rows},
        "machine": machine(),
        "versions": {**versions(), "pyspark": _pyspark_version()},
        "load_average": {"before": load_before, "between": load_mid, "after": load_average()},
        "data_seconds": round(data_s, 1),
        "shuffle_partitions": partitions,
        "options": asdict(opts),
        "duckdb": duck,
        "spark": spark,
        "verified": verified,
    }


def _pyspark_version() -> str:
    import pyspark

    return pyspark.__version__


def predicted_s(last: dict[str, Any], scale: Scale, opts: Options) -> float:
    """Seconds a scale would take, from the last scale run, linear in the rows (each side's
    runs and Spark's warm-up; Spark's session start as it was)."""
    rows = last["rows"]["feature_rows"] + last["rows"]["spine_rows"]
    ratio = (scale.feature_rows + scale.spine_rows) / rows
    spark, duck = last["spark"], last["duckdb"]
    work = sum(spark[side]["wall_s"] for side in opts.sides())
    work += sum(
        duck[k].get("first_s", 0) + duck[k].get("second_s", 0)
        for k in (*opts.sides(), *opts.references())
    )
    warmup = spark["warmup_s"] * ratio if opts.warmup else 0.0
    return work * ratio + spark["session_s"] + warmup


def fitting(
    last: dict[str, Any], scale: Scale, opts: Options, budget: float
) -> tuple[Options | None, str]:
    """The options a scale can run with inside ``budget`` (all views, else the plain view
    without warm-up, else none) and, when something is left out, why."""
    estimate = predicted_s(last, scale, opts)
    if estimate <= budget:
        return opts, ""
    why = (
        f"extrapolated {estimate:,.0f} s from {last['scale']} (linear in rows) exceeds the "
        f"budget of {budget:,.0f} s"
    )
    plain = Options("plain", False, opts.duckdb_memory, opts.rows_per_partition)
    if opts.views != "plain" and (alone := predicted_s(last, scale, plain)) <= budget:
        return plain, f"{why}: ran the plain view alone (extrapolated {alone:,.0f} s)"
    return None, why


def _seconds(side: dict[str, Any] | None, key: str) -> str:
    if side is None:
        return "-"
    return "failed" if "error" in side else f"{side[key]:.2f}"


def print_results(results: list[dict[str, Any]], skipped: dict[str, str]) -> None:
    """One table of wall times and one of the Spark path's shape, scale by scale."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    times = Table(
        title=f"training sets: DuckDB (best of 2) and Spark local[{CORES}] (1 run), seconds"
    )
    for col in ("events", "spine", "duck plain", "duck aggs", "hand-written", "spark plain"):
        times.add_column(col, justify="right")
    for col in ("spark aggs", "rows per task CPU s (plain, aggs)", "load before/after"):
        times.add_column(col, justify="right")
    shape = Table(title=f"the Spark path's shape ({DRIVER_MEMORY} driver heap, local[{CORES}])")
    for col in ("events", "view", "shuffles", "partitions", "max part rows", "max part MiB"):
        shape.add_column(col, justify="right")
    for col in ("max exec mem MiB", "spilled MiB", "heap peak MiB", "task CPU s"):
        shape.add_column(col, justify="right")
    for res in results:
        d, s, rows = res["duckdb"], res["spark"], res["rows"]
        rates = " / ".join(
            f"{s[v]['rows_per_task_cpu_s']:,}" for v in s if v in ("plain", "aggregations")
        )
        times.add_row(
            f"{rows['feature_rows']:,}",
            f"{rows['spine_rows']:,}",
            _seconds(d.get("plain"), "best_s"),
            _seconds(d.get("aggregations"), "best_s"),
            _seconds(d.get("hand_written"), "best_s"),
            _seconds(s.get("plain"), "wall_s"),
            _seconds(s.get("aggregations"), "wall_s"),
            rates,
            f"{res['load_average']['before'][0]} / {res['load_average']['after'][0]}",
        )
        for view in ("plain", "aggregations"):
            if view not in s:
                continue
            v = s[view]
            shape.add_row(
                f"{rows['feature_rows']:,}",
                view,
                str(v["plan"]["shuffles"]),
                ", ".join(str(x["partitions"]) for x in v["shuffle_stages"]),
                f"{v['max_partition_rows']:,}",
                f"{v['max_partition_bytes'] / 2**20:,.1f}",
                f"{v['max_peak_execution_memory'] / 2**20:,.1f}",
                f"{v['spilled_disk_bytes'] / 2**20:,.1f}",
                f"{v['jvm_heap_peak_mb']:,.0f}",
                f"{v['executor_cpu_s']:,.1f}",
            )
    console.print(times)
    console.print(shape)
    for name, why in skipped.items():
        console.print(f"scale {name} not run: {why}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=[*SPARK_SCALES, "all"], default="small")
    parser.add_argument("--variant", choices=list(VARIANTS), default="naive-us")
    parser.add_argument(
        "--views",
        choices=["all", "plain", "aggregations"],
        default="all",
        help="plain: the point-in-time join only; aggregations: the aggregation view only",
    )
    parser.add_argument(
        "--warmup",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="warm Spark up on 10,000 spine rows before the timed runs",
    )
    parser.add_argument(
        "--duckdb-memory", default=None, help="DuckDB memory_limit for both DuckDB sides (8GB)"
    )
    parser.add_argument(
        "--rows-per-partition",
        type=int,
        default=ROWS_PER_PARTITION,
        help="feature plus spine rows per shuffle partition (sets spark.sql.shuffle.partitions)",
    )
    parser.add_argument(
        "--budget", type=float, default=BUDGET_S, help="seconds the largest scale may take"
    )
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--probe", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    variant = VARIANTS[args.variant]
    opts = Options(args.views, args.warmup, args.duckdb_memory, args.rows_per_partition)
    if args.probe:
        scale = SPARK_SCALES[args.scale]
        if args.probe.startswith("duckdb:"):
            res = run_duckdb(scale, variant, args.out, args.probe.split(":")[1], opts)
        else:
            partitions = shuffle_partitions(scale, opts.rows_per_partition)
            res = run_spark(scale, variant, args.out, partitions, opts)
        print(json.dumps(res))
        return 0
    names = list(SPARK_SCALES) if args.scale == "all" else [args.scale]
    results: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for name in names:
        chosen = opts
        if results and name == names[-1] and len(names) > 1:
            chosen, why = fitting(results[-1], SPARK_SCALES[name], opts, args.budget)
            if why:
                skipped[name] = why
            if chosen is None:
                continue
        results.append(run(name, variant, chosen))
        if not args.json:
            print(f"done: {name} at {results[-1]['date']}", file=sys.stderr, flush=True)
    if args.json:
        json.dump({"results": results, "skipped": skipped}, sys.stdout, indent=2)
        print()
    else:
        print_results(results, skipped)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    raise SystemExit(main())
