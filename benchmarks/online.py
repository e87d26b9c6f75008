"""Benchmark: online retrieval latency and materialization throughput, on LMDB, SQLite and Redis.

For each backend it materializes a full snapshot of N entities x 10 features into an empty store
and again over that snapshot (rows/s, and the seconds of the store's own ``publish`` inside),
next to the store's bulk-write floor for the same encoded rows measured in the same run (the
cheapest plain write of them in one transaction, outside the store: LMDB ``txn.put`` in a loop,
SQLite ``executemany`` into a table of their own, Redis pipelined ``HSET``). Then it times
in-process ``get_online_features`` for 1 entity x (10 features + 1 on-demand view, in frame mode
and in row mode) and for 100 entities, next to the raw store read of the same keys measured in
the same run, and prints p50/p99 and the ratios.

    python benchmarks/online.py --entities 1000000
    python benchmarks/online.py --entities 100000 --calls 5000 --backends sqlite,lmdb --json
    python benchmarks/online.py --entities 100000 --backends sqlite --polars-threads 1

Polars sizes its thread pool once, when it is imported (``POLARS_MAX_THREADS``, default: one
thread per core). ``--polars-threads N`` re-runs the script with that variable set, to measure
a serving process that keeps Polars from handing one-row frames to a thread pool.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from online_floor import floor_seconds

from featurestore import FeatureStore
from featurestore.online._codec import encode_key

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data" / "online"
END = dt.datetime(2024, 6, 1)
FEATURES = [f"f{i}" for i in range(10)]
THREADS_ENV = "POLARS_MAX_THREADS"  # read by Polars once, when it is imported

DEFINITIONS = '''
"""Benchmark repo: one entity, one view of 10 features, an on-demand view in each mode."""

from datetime import timedelta

import polars as pl

from featurestore import (Entity, Feature, FeatureService, FeatureView, FileSource,
                          RequestSource, on_demand_feature_view)

entity = Entity("entity", join_keys=["entity_id"])
stats = FeatureView(
    name="entity_stats",
    entities=[entity],
    source=FileSource(name="stats", path="data/stats.parquet", timestamp_field="event_time"),
    ttl=timedelta(days=30),
    owner="benchmarks",
    features=[
        *(Feature(f"f{i}", pl.Float64) for i in range(6)),
        *(Feature(f"f{i}", pl.Int64) for i in range(6, 9)),
        Feature("f9", pl.String),
    ],
)
request = RequestSource("txn", schema={"amount": pl.Float64})


@on_demand_feature_view(sources=[request, stats], schema={"amount_ratio": pl.Float64})
def ratio(df: pl.DataFrame) -> pl.DataFrame:
    return df.select((pl.col("amount") / (pl.col("f0").abs() + 1.0)).alias("amount_ratio"))


@on_demand_feature_view(
    sources=[request, stats], schema={"amount_ratio_rows": pl.Float64}, mode="rows"
)
def ratio_rows(row: dict) -> dict:
    return {"amount_ratio_rows": row["amount"] / (abs(row["f0"]) + 1.0)}


service = FeatureService("bench", [stats, ratio])
rows_service = FeatureService("bench_rows", [stats, ratio_rows])
'''


def write_repo(root: Path, backend: str, entities: int, prefix: str) -> None:
    """A feature repo with one Parquet source of ``entities`` rows."""
    if root.exists():
        shutil.rmtree(root)
    (root / "data").mkdir(parents=True)
    online = f"online_store:\n  type: {backend}\n"
    if backend == "redis":
        online += f"  key_prefix: '{prefix}'\n"
    (root / "featurestore.yaml").write_text(f"project: online_bench\n{online}")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS))
    rng = np.random.default_rng(7)
    frame = pl.DataFrame(
        {
            "entity_id": np.arange(entities, dtype=np.int64),
            "event_time": END - dt.timedelta(days=1),
            **{f"f{i}": rng.normal(size=entities) for i in range(6)},
            **{f"f{i}": rng.integers(0, 1000, size=entities) for i in range(6, 9)},
            "f9": rng.choice(["a", "b", "c", "d"], size=entities),
        }
    )
    frame.write_parquet(root / "data" / "stats.parquet")


def percentiles(fn: Callable[[], Any], calls: int) -> tuple[float, float]:
    """p50 and p99 latency of ``fn`` in microseconds, after a warm-up."""
    for _ in range(min(500, calls)):
        fn()
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - started)
    samples.sort()
    return samples[len(samples) // 2] / 1000, samples[int(len(samples) * 0.99)] / 1000


def measure_materialize(store: FeatureStore, root: Path, backend: str) -> dict[str, Any]:
    """A full snapshot into the empty store, then again over it, each timed whole and in its
    publish; then the store's floor for the same rows, written alone."""
    online = store.online
    real_publish = online.publish
    published: dict[str, Any] = {}

    def timed_publish(view: str, keys: Any, values: Any, **kwargs: Any) -> None:
        started = time.perf_counter()
        real_publish(view, keys, values, **kwargs)
        if view == "entity_stats":
            published.update(seconds=time.perf_counter() - started, keys=keys, values=values)

    online.publish = timed_publish  # type: ignore[method-assign]
    out: dict[str, Any] = {}
    try:
        for run in ("materialize", "rematerialize"):
            started = time.perf_counter()
            [result] = store.materialize(end=END, views=["entity_stats"])
            seconds = time.perf_counter() - started
            out[f"{run}_rows_per_s"] = result.rows / seconds
            out[f"{run}_seconds"] = seconds
            out[f"{run}_publish_seconds"] = published["seconds"]
    finally:
        del online.publish
    keys, values = published["keys"], published["values"]
    out["floor_seconds"] = floor_seconds(backend, root / "floor", keys, values)
    out["floor_rows_per_s"] = len(keys) / out["floor_seconds"]
    out["value_bytes"] = sum(map(len, values)) / max(len(values), 1)
    return out


def run_backend(backend: str, entities: int, calls: int) -> dict[str, Any]:
    root = DATA_ROOT / backend
    prefix = f"fsbench:{time.time_ns()}:"
    write_repo(root, backend, entities, prefix)
    store = FeatureStore(root)
    store.apply()
    out: dict[str, Any] = {
        "backend": backend,
        "entities": entities,
        "calls": calls,
        "polars_threads": pl.thread_pool_size(),
    }
    out |= measure_materialize(store, root, backend)
    out |= measure_latency(store, entities, calls)
    if backend == "redis":
        store.online.delete_view("entity_stats")
    store.close()
    return out


def measure_latency(store: FeatureStore, entities: int, calls: int) -> dict[str, Any]:
    """p50/p99 of each request shape, each next to the raw store read of the same keys."""
    out: dict[str, Any] = {}
    rng = np.random.default_rng(1)
    keys = [int(k) for k in rng.integers(0, entities, size=calls + 1000)]
    refs = [f"entity_stats:{f}" for f in FEATURES]
    one = iter(keys * 3)

    def online_one() -> None:
        store.get_online_features(
            feature_service="bench",
            entities={"entity_id": [next(one)]},
            request_data={"amount": [12.5]},
            request_time=END,
        )

    rows_one = iter(keys * 3)

    def online_one_rows() -> None:
        store.get_online_features(
            feature_service="bench_rows",
            entities={"entity_id": [next(rows_one)]},
            request_data={"amount": [12.5]},
            request_time=END,
        )

    raw_one = iter(keys * 3)

    def raw_read_one() -> None:
        store.online.read("entity_stats", [encode_key((next(raw_one),))])

    batch = [int(k) for k in rng.integers(0, entities, size=100)]
    batch_keys = [encode_key((k,)) for k in batch]

    def online_hundred() -> None:
        store.get_online_features(features=refs, entities={"entity_id": batch}, request_time=END)

    def raw_read_hundred() -> None:
        store.online.read("entity_stats", batch_keys)

    check = store.get_online_features(
        feature_service="bench",
        entities={"entity_id": batch[:5]},
        request_data={"amount": [1.0] * 5},
        request_time=END,
    )
    assert all(s.value == "PRESENT" for s in check.statuses["f0"]), "benchmark rows must be present"

    out["one_p50_us"], out["one_p99_us"] = percentiles(online_one, calls)
    out["one_rows_p50_us"], out["one_rows_p99_us"] = percentiles(online_one_rows, calls)
    out["raw_one_p50_us"], out["raw_one_p99_us"] = percentiles(raw_read_one, calls)
    hundred_calls = max(calls // 5, 1000)
    out["hundred_p50_us"], out["hundred_p99_us"] = percentiles(online_hundred, hundred_calls)
    out["raw_hundred_p50_us"], out["raw_hundred_p99_us"] = percentiles(
        raw_read_hundred, hundred_calls
    )
    return out


def report(results: list[dict[str, Any]]) -> None:
    print(
        f"featurestore online benchmark ({platform.machine()}, duckdb {duckdb.__version__}, "
        f"polars {pl.__version__}, {pl.thread_pool_size()} polars thread(s))"
    )
    for r in results:
        print(
            f"\n[{r['backend']}] {r['entities']:,} entities, {r['calls']:,} calls per latency row"
        )
        floor = r["floor_seconds"]
        print(
            f"  bulk-write floor: {r['floor_rows_per_s']:,.0f} rows/s ({floor:.2f} s, "
            f"{r['value_bytes']:.0f}-byte values)"
        )
        for run, label in (("materialize", "into an empty store"), ("rematerialize", "over it")):
            seconds, publish = r[f"{run}_seconds"], r[f"{run}_publish_seconds"]
            print(
                f"  materialize {label}: {r[f'{run}_rows_per_s']:,.0f} rows/s ({seconds:.2f} s, "
                f"{seconds / floor:.1f}x the floor); its publish {publish:.2f} s "
                f"({publish / floor:.2f}x the floor)"
            )
        header = f"  {'what':<44}{'p50 us':>10}{'p99 us':>10}{'p99 / raw':>11}"
        print(header)
        rows = [
            ("get_online_features 1 entity x (10 + 1 odfv)", "one", "raw_one"),
            ("  ... the odfv in row mode", "one_rows", "raw_one"),
            ("get_online_features 100 entities x 10", "hundred", "raw_hundred"),
        ]
        for label, ours, raw in rows:
            p50, p99 = r[f"{ours}_p50_us"], r[f"{ours}_p99_us"]
            raw50, raw99 = r[f"{raw}_p50_us"], r[f"{raw}_p99_us"]
            print(f"  {label:<44}{p50:>10.1f}{p99:>10.1f}{p99 / raw99:>11.1f}")
            print(f"  {'  raw store read, same keys':<44}{raw50:>10.1f}{raw99:>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument("--calls", type=int, default=5_000)
    parser.add_argument("--backends", default="lmdb,sqlite,redis")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--polars-threads", type=int, help="set POLARS_MAX_THREADS (re-runs this script)"
    )
    args = parser.parse_args()
    threads = args.polars_threads
    if threads is not None and os.environ.get(THREADS_ENV) != str(threads):
        os.execve(
            sys.executable, [sys.executable, *sys.argv], {**os.environ, THREADS_ENV: str(threads)}
        )
    results = [run_backend(b, args.entities, args.calls) for b in args.backends.split(",")]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        report(results)


if __name__ == "__main__":
    main()
