"""Benchmark: windowed aggregations in training sets against a hand-written DuckDB window query.

Generates an event source (entities x events spread over a year, amounts with about 1% nulls,
a merchant per event) and a spine (half of it the events themselves, as when each transaction
is scored, half random times), builds a feature repo with ten aggregations of every kind over
four window lengths, then times ``store.get_training_set(...).to_polars()`` against the query
an expert would write by hand: the spine points unioned with the events and DuckDB window
functions over ``RANGE BETWEEN window - 1 PRECEDING AND 1 PRECEDING``. It checks first that
both give the same values, then reports wall times, their ratio and peak memory. A third,
optional phase times the library with every key forced onto its window path.

    python benchmarks/aggregations.py --scale small
    python benchmarks/aggregations.py --scale large --threads 2 --json
    python benchmarks/aggregations.py --scale large --online   # online p50/p99 and pushes/s

``--online`` materializes the view into SQLite and times, alternately, in-process
``get_online_features`` of one entity x 6 aggregations and the raw store read of the same key
(p50/p99 over ``--calls``), then pushes of new events in batches next to the raw store append of
an 80-byte fragment to the same keys (what a push writes per entity for one event): half of the
batches with ``to="online"`` (the online state only), half with the default, which also writes
each push as a Parquet part into the source's directory; then the retrieval timing again, with
the pushed events to merge at each read. Parts pushed by an earlier run are removed first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from machine import load_average, machine, reference_connection, versions
from memory import measure
from phase import Phase, alternate, phases_table, warm_up
from polars.testing import assert_frame_equal

from featurestore import FeatureStore

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data" / "aggregations"
DATA_VERSION = 2  # bump when the generator changes, so stale data is rebuilt
EVENTS_FILE = "{data}/events/events.parquet"  # the source is the directory: pushes land beside


def remove_pushed_parts(root: Path) -> None:
    """Parts an earlier run pushed into the source, so every run reads the same events."""
    for part in (root / "data" / "events").glob("push-*.parquet"):
        part.unlink()


VIEW = "user_txn"
START = dt.datetime(2024, 1, 1)
YEAR_US = 366 * 86_400_000_000
HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
MERCHANTS = 500
# name -> (declaration, hand-written aggregate, window in microseconds)
AGGREGATIONS: dict[str, tuple[str, str, int]] = {
    "spend_1d": ('Sum("amount", window=timedelta(days=1)', "sum(amount)", DAY_US),
    "spend_7d": ('Sum("amount", window=timedelta(days=7)', "sum(amount)", 7 * DAY_US),
    "txn_count_1h": ("Count(window=timedelta(hours=1)", "count(is_event)", HOUR_US),
    "txn_count_7d": ("Count(window=timedelta(days=7)", "count(is_event)", 7 * DAY_US),
    "amount_mean_30d": ('Mean("amount", window=timedelta(days=30)', "avg(amount)", 30 * DAY_US),
    "amount_min_7d": ('Min("amount", window=timedelta(days=7)', "min(amount)", 7 * DAY_US),
    "amount_max_7d": ('Max("amount", window=timedelta(days=7)', "max(amount)", 7 * DAY_US),
    "amount_last_30d": (
        'Last("amount", window=timedelta(days=30)',
        "last_value(amount IGNORE NULLS)",
        30 * DAY_US,
    ),
    "amount_std_30d": (
        'StdDev("amount", window=timedelta(days=30)',
        "stddev_samp(amount)",
        30 * DAY_US,
    ),
    "merchants_7d": (
        'CountDistinct("merchant_id", window=timedelta(days=7)',
        "count(DISTINCT merchant_id)",
        7 * DAY_US,
    ),
}
ZERO_WHEN_EMPTY = {"spend_1d", "spend_7d", "txn_count_1h", "txn_count_7d", "merchants_7d"}
# floating results that depend on the order of additions: compared to a relative 1e-12
ORDER_DEPENDENT = {"amount_std_30d"}


@dataclass(frozen=True)
class Scale:
    """Sizes of one benchmark scale and how many times each side runs."""

    name: str
    entities: int
    events_per_entity: int
    spine_rows: int
    repeats: int

    @property
    def events(self) -> int:
        return self.entities * self.events_per_entity


SCALES = {
    "small": Scale("small", entities=1_000, events_per_entity=100, spine_rows=10_000, repeats=3),
    "large": Scale(
        "large", entities=100_000, events_per_entity=100, spine_rows=1_000_000, repeats=2
    ),
}

DEFINITIONS = f'''
"""Benchmark repo: one entity, one event source, ten windowed aggregations."""

from datetime import timedelta

from featurestore import Entity, FeatureView, FileSource
from featurestore.definitions import Count, CountDistinct, Last, Max, Mean, Min, StdDev, Sum

user = Entity("user", join_keys=["user_id"])

transactions = FileSource(
    name="transactions", path="data/events/", timestamp_field="event_time"
)

{VIEW} = FeatureView(
    name="{VIEW}",
    entities=[user],
    source=transactions,
    owner="benchmarks",
    aggregations=[
{"".join(f"        {d}, name={n!r}),{chr(10)}" for n, (d, _, _) in AGGREGATIONS.items())}\
    ],
)
'''


# --------------------------------------------------------------------------- data


def _start_us() -> int:
    return int(START.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)


def generate_events(scale: Scale, rng: np.random.Generator) -> pl.DataFrame:
    """Events in time order, as a log would be. Amounts are multiples of 1/64, so sums are
    exact whatever the order of addition; no entity has two events at the same microsecond,
    so "the latest event" needs no tie rule; about 1% of amounts are null."""
    n_ent, per = scale.entities, scale.events_per_entity
    offsets = np.sort(rng.integers(0, YEAR_US // per, size=(n_ent, per), dtype=np.int64), axis=1)
    event_us = (offsets + np.arange(per, dtype=np.int64) * (YEAR_US // per)).ravel()
    entity_id = np.repeat(np.arange(n_ent, dtype=np.int64), per)
    order = np.argsort(event_us, kind="stable")
    n = entity_id.size
    amount = np.round(np.exp(rng.normal(3.5, 1.0, size=n)) * 64) / 64
    frame = pl.DataFrame(
        {
            "user_id": entity_id[order],
            "event_time": pl.Series(event_us[order] + _start_us()).cast(pl.Datetime("us")),
            "amount": amount[order],
            "merchant_id": rng.integers(0, MERCHANTS, size=n, dtype=np.int64),
        }
    )
    nulls = pl.Series(rng.random(n) < 0.01)
    return frame.with_columns(pl.when(nulls).then(None).otherwise(pl.col("amount")).alias("amount"))


def generate_spine(scale: Scale, events: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """Half the spine scores events at their own time (which their own windows exclude), half
    asks at random times for random entities, 1% of them unknown; in random order."""
    half = scale.spine_rows // 2
    scored = events.select("user_id", pl.col("event_time").alias("event_timestamp")).sample(
        half, seed=int(rng.integers(2**31))
    )
    n = scale.spine_rows - half
    random_rows = pl.DataFrame(
        {
            "user_id": rng.integers(0, int(scale.entities * 1.01), size=n, dtype=np.int64),
            "event_timestamp": pl.Series(
                _start_us() + rng.integers(0, YEAR_US + 14 * DAY_US, size=n)
            ).cast(pl.Datetime("us")),
        }
    )
    spine = pl.concat([scored, random_rows]).sample(fraction=1.0, shuffle=True, seed=7)
    return spine.with_columns(label=pl.Series(rng.integers(0, 2, size=spine.height, dtype=np.int8)))


def ensure_data(scale: Scale) -> tuple[Path, bool]:
    """Write the scale's Parquet files once (reused when present); True when generated."""
    root = DATA_ROOT / scale.name
    data = root / "data"
    marker = data / "generated.json"
    want = {"version": DATA_VERSION, **asdict(scale)}
    want.pop("repeats")
    if marker.exists() and json.loads(marker.read_text()) == want:
        return root, False
    (data / "events").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20241123)
    events = generate_events(scale, rng)
    events.write_parquet(EVENTS_FILE.format(data=data), statistics=True)
    generate_spine(scale, events, rng).write_parquet(data / "spine.parquet")
    marker.write_text(json.dumps(want))
    return root, True


def write_repo(root: Path, threads: int | None, online_store: str = "") -> None:
    """featurestore.yaml and the definitions module of the benchmark repo."""
    offline = f"offline_store:\n  threads: {threads}\n" if threads else ""
    (root / "featurestore.yaml").write_text(
        f"project: aggregation_benchmark\n{offline}{online_store}"
    )
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())


# --------------------------------------------------------------------------- measuring


# --------------------------------------------------------------------------- the reference


def hand_written_sql(events_path: Path) -> str:
    """The reference: spine points unioned with the events, one named window per length, the
    point rows joined back onto the spine."""
    path = str(events_path).replace("'", "''")
    windows = sorted({w for _, _, w in AGGREGATIONS.values()})
    frames = ",\n  ".join(
        f"w{w} AS (PARTITION BY user_id ORDER BY t RANGE BETWEEN {w - 1} PRECEDING AND 1 PRECEDING)"
        for w in windows
    )
    aggregates = ",\n    ".join(
        f"{'coalesce(' if name in ZERO_WHEN_EMPTY else ''}{agg} OVER w{w}"
        f"{', 0)' if name in ZERO_WHEN_EMPTY else ''} AS {name}"
        for name, (_, agg, w) in AGGREGATIONS.items()
    )
    names = ", ".join(f"p.{name}" for name in AGGREGATIONS)
    return f"""
WITH points AS (SELECT DISTINCT user_id, epoch_us(event_timestamp) AS t FROM spine),
unioned AS (
  SELECT user_id, epoch_us(event_time) AS t, 1 AS is_event, amount, merchant_id
  FROM read_parquet('{path}')
  UNION ALL
  SELECT user_id, t, NULL, NULL, NULL FROM points
),
windowed AS (
  SELECT user_id, t, is_event,
    {aggregates}
  FROM unioned
  WINDOW {frames}
)
SELECT s.user_id, s.event_timestamp, s.label, {names}
FROM spine s
LEFT JOIN (SELECT * FROM windowed WHERE is_event IS NULL) p
  ON s.user_id = p.user_id AND epoch_us(s.event_timestamp) = p.t
ORDER BY s.__rn
"""


def run_hand_written(con: duckdb.DuckDBPyConnection, sql: str, spine: pl.DataFrame) -> pl.DataFrame:
    """The reference query over ``spine`` (an in-memory Polars frame) into Polars, with the
    empty-window values and dtypes the declarations promise."""
    con.register("spine", spine.with_row_index("__rn"))
    try:
        frame = con.sql(sql).pl()
    finally:
        con.unregister("spine")
    counts = {"txn_count_1h", "txn_count_7d", "merchants_7d"}
    return frame.with_columns(
        pl.col(n).fill_null(0).cast(pl.Int64 if n in counts else pl.Float64)
        for n in sorted(ZERO_WHEN_EMPTY)
    )


def check_same(ours: pl.DataFrame, reference: pl.DataFrame) -> dict[str, float]:
    """Fail loudly unless both frames agree: identical values everywhere, but a relative
    1e-12 for the order-dependent columns. Returns their largest relative difference."""
    exact = [c for c in reference.columns if c not in ORDER_DEPENDENT]
    try:
        assert_frame_equal(ours.select(exact), reference.select(exact), check_exact=True)
        assert_frame_equal(
            ours.select(ORDER_DEPENDENT),
            reference.select(ORDER_DEPENDENT),
            check_exact=False,
            rel_tol=1e-12,
            abs_tol=1e-12,
        )
    except AssertionError as exc:
        raise SystemExit(f"MISMATCH featurestore vs hand-written:\n{exc}") from None
    return {
        c: float(
            ((ours[c] - reference[c]).abs() / reference[c].abs().clip(lower_bound=1e-300)).max()
            or 0.0
        )
        for c in ORDER_DEPENDENT
    }


# --------------------------------------------------------------------------- main


class WindowPathLog(logging.Handler):
    """Keeps the engine's count of keys sent down the window path."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.keys: list[int] = []  # one count per training set built

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if "keys_on_window_path=" in message:
            self.keys.append(int(message.rsplit("=", 1)[1]))


class Bench:
    """One scale's data, feature repo, store and reference connection, ready to run."""

    def __init__(self, scale: Scale, threads: int | None) -> None:
        started = time.perf_counter()
        self.root, self.generated = ensure_data(scale)
        remove_pushed_parts(self.root)
        self.data_s = time.perf_counter() - started
        write_repo(self.root, threads)
        self.store = FeatureStore(self.root)
        self.store.apply()
        self.events_path = Path(EVENTS_FILE.format(data=self.root / "data"))
        self.spine = pl.read_parquet(self.root / "data" / "spine.parquet")
        self.refs = [f"{VIEW}:{name}" for name in AGGREGATIONS]
        self.con, self.threads = reference_connection(threads)
        self.sql = hand_written_sql(self.events_path)
        self.log = WindowPathLog()
        engine_log = logging.getLogger("featurestore.offline._engine")
        engine_log.addHandler(self.log)
        engine_log.setLevel(logging.INFO)
        self.statuses: dict[str, dict[str, int]] = {}

    def ours(self, window_above: float | None = None) -> pl.DataFrame:
        engine = self.store.offline
        engine.window_above = type(engine).window_above if window_above is None else window_above
        ts = self.store.get_training_set(self.spine, features=self.refs)
        self.statuses = {f.column: dict(sorted(f.statuses.items())) for f in ts.metadata.features}
        return ts.to_polars()

    def reference(self) -> pl.DataFrame:
        return run_hand_written(self.con, self.sql, self.spine)

    def close(self) -> None:
        self.con.close()
        self.store.close()


def run(scale: Scale, threads: int | None, repeats: int, window_path: bool) -> dict[str, Any]:
    """Build data and repo, warm up and verify, time the sides, and return the results."""
    bench = Bench(scale, threads)
    phases = {
        "ours": Phase("featurestore", "get_training_set(spine, 10 aggregations).to_polars()"),
        "reference": Phase("hand-written", "DuckDB union + RANGE window functions, .pl()"),
    }
    sides: dict[str, Callable[[], pl.DataFrame]] = {
        "ours": bench.ours,
        "reference": bench.reference,
    }
    if window_path:
        phases["window_path"] = Phase("featurestore", "the same, every key on the window path")
        sides["window_path"] = lambda: bench.ours(window_above=0.0)

    results = warm_up(phases, sides, measure)  # also the results that are verified
    keys_on_window_path = bench.log.keys[0]  # the first run is ours with its default threshold
    differences = check_same(results["ours"], results["reference"])
    if window_path:
        check_same(results["window_path"], results["reference"])
    statuses = bench.statuses
    results.clear()

    alternate(phases, sides, repeats, measure, "peak_mb")
    bench.close()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "machine": machine(),
        "versions": versions(),
        "duckdb_threads": bench.threads,
        "data_generated": bench.generated,
        "data_seconds": round(bench.data_s, 2),
        "rows": {
            "entities": scale.entities,
            "events": scale.events,
            "spine_rows": bench.spine.height,
            "aggregations": len(AGGREGATIONS),
        },
        "keys_on_window_path": keys_on_window_path,
        "statuses": statuses,
        "verified": "identical (amount_std_30d within a relative 1e-12)",
        "max_relative_difference": differences,
        "repeats": repeats,
        "phases": {key: p.to_dict() for key, p in phases.items()},
        "ratio": round(phases["ours"].best_s / phases["reference"].best_s, 3),
    }


def print_table(res: dict[str, Any]) -> None:
    """The results as a table, with the sizes above it and the ratio below."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    rows = res["rows"]
    console.print(
        f"[bold]aggregation benchmark, scale={res['scale']}[/bold] ({res['date']}): "
        f"{rows['events']:,} events ({rows['entities']:,} entities), "
        f"{rows['spine_rows']:,} spine rows, {rows['aggregations']} aggregations\n"
        f"DuckDB {res['versions']['duckdb']} ({res['duckdb_threads']} threads), "
        f"Polars {res['versions']['polars']}, {res['machine']['cpus']} CPUs, "
        f"{res['machine']['memory_gb']} GiB"
    )
    console.print(phases_table(res["phases"].values()))
    console.print(
        f"featurestore: {res['phases']['ours']['best_s']:.3f} s, "
        f"hand-written: {res['phases']['reference']['best_s']:.3f} s, "
        f"ratio featurestore / hand-written (best times): [bold]{res['ratio']:.2f}[/bold]\n"
        f"results: {res['verified']}; keys on the window path: {res['keys_on_window_path']}\n"
        f"statuses of amount_mean_30d: {res['statuses'].get('amount_mean_30d')}\n"
        "peak RSS: highest resident memory above the level at the start of a run (10 ms samples)"
    )


# --------------------------------------------------------------------------- online


ONLINE_FEATURES = [
    "spend_1d",
    "spend_7d",
    "txn_count_1h",
    "txn_count_7d",
    "amount_mean_30d",
    "merchants_7d",
]


def _percentiles(samples_ns: list[int]) -> dict[str, float]:
    us = np.array(samples_ns) / 1000
    return {
        "p50_us": round(float(np.percentile(us, 50)), 1),
        "p99_us": round(float(np.percentile(us, 99)), 1),
    }


# what a push appends per entity for one event of this source (about 80 bytes of JSON)
RAW_FRAGMENT = b'\n{"__ts":1735689600000000,"t":[1735689600000000],"x0":[123.45],"x1":[77]}'


def _time_retrieval(
    store: FeatureStore, users: list[int], refs: list[str], name: str, at: dt.datetime
) -> dict[str, Any]:
    """p50/p99 of ``get_online_features`` for one entity next to the raw read of its key,
    alternately, so machine noise hits both alike; the first 500 calls warm up."""
    ours, raw = [], []
    for i, user in enumerate(users):
        t0 = time.perf_counter_ns()
        store.get_online_features(features=refs, entities={"user_id": [user]}, request_time=at)
        t1 = time.perf_counter_ns()
        store.online.read(name, [str(user)])
        t2 = time.perf_counter_ns()
        if i >= 500:
            ours.append(t1 - t0)
            raw.append(t2 - t1)
    timed = {"featurestore": _percentiles(ours), "raw_read": _percentiles(raw)}
    timed["ratio_p99"] = round(timed["featurestore"]["p99_us"] / timed["raw_read"]["p99_us"], 2)
    return timed


REDIS_STORE = (
    "online_store: {type: redis, url: 'redis://127.0.0.1:6379/0', key_prefix: 'fsbench:'}\n"
)


def run_online(
    scale: Scale, calls: int, push_batch: int, push_events: int, backend: str
) -> dict[str, Any]:
    """Materialize the aggregation view into SQLite, then time in-process online retrieval of
    one entity x 6 aggregations next to the raw store read of the same key, and pushes of new
    events next to the raw store append of the same keys (into a scratch view)."""
    root, _ = ensure_data(scale)
    write_repo(root, None, REDIS_STORE if backend == "redis" else "")
    for old in (root / ".featurestore").glob("online*"):
        old.unlink()
    remove_pushed_parts(root)
    store = FeatureStore(root)
    store.apply()
    events = pl.read_parquet(EVENTS_FILE.format(data=root / "data"))
    end = events["event_time"].max()
    started = time.perf_counter()
    store.materialize(end)
    materialize_s = time.perf_counter() - started
    rng = np.random.default_rng(7)
    users = rng.integers(1, scale.entities + 1, calls + 500).tolist()
    refs = [f"{VIEW}:{n}" for n in ONLINE_FEATURES]
    online = store.online
    name = f"{VIEW}@events"
    retrieval = _time_retrieval(store, users, refs, name, end)

    later = end + dt.timedelta(seconds=1)
    pushed = pl.DataFrame(
        {
            "user_id": rng.integers(1, scale.entities + 1, push_events),
            "event_time": [later] * push_events,
            "amount": np.round(rng.random(push_events) * 200, 2),
            "merchant_id": rng.integers(1, MERCHANTS + 1, push_events),
        },
        schema_overrides={"event_time": events.schema["event_time"]},
    )
    push_s = {"online": 0.0, "online_and_offline": 0.0}
    pushed_n = dict.fromkeys(push_s, 0)
    raw_s, compacted = 0.0, 0
    scratch = f"{VIEW}@bench"
    for i, start in enumerate(range(0, push_events, push_batch)):
        batch = pushed.slice(start, push_batch)
        mode = "online" if i % 2 == 0 else "online_and_offline"
        keys = sorted(str(u) for u in batch["user_id"].unique().to_list())
        t0 = time.perf_counter()
        result = store.push("transactions", batch, to=mode)  # type: ignore[arg-type]
        t1 = time.perf_counter()
        online.append(scratch, keys, [RAW_FRAGMENT] * len(keys))
        t2 = time.perf_counter()
        push_s[mode] += t1 - t0
        pushed_n[mode] += batch.height
        raw_s += t2 - t1
        compacted += result.compacted[VIEW]
    online.delete_view(scratch)
    # again, now that most entities carry appended events to merge at each read
    after_pushes = _time_retrieval(store, users, refs, name, later + dt.timedelta(seconds=1))
    if backend == "redis":  # leave the shared Redis as it was
        online.delete_view(name)
    store.close()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "backend": backend,
        "load_average": load_average(),
        "entities": scale.entities,
        "events": scale.events,
        "materialize_s": round(materialize_s, 3),
        "retrieval_calls": calls,
        "retrieval": retrieval,
        "retrieval_after_pushes": after_pushes,
        "push": {
            "events": push_events,
            "batch": push_batch,
            "online_events_per_s": round(pushed_n["online"] / push_s["online"]),
            "online_and_offline_events_per_s": round(
                pushed_n["online_and_offline"] / push_s["online_and_offline"]
            ),
            "raw_append_same_keys_s": round(raw_s, 3),
            "push_s": {mode: round(s, 3) for mode, s in push_s.items()},
            "entities_compacted": compacted,
            "ratio": round(sum(push_s.values()) / raw_s, 2),
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (all sides)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--window-path",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the library with every key on the window path",
    )
    parser.add_argument(
        "--online",
        action="store_true",
        help="instead: online retrieval (1 entity x 6 aggregations, SQLite) and push throughput",
    )
    parser.add_argument("--calls", type=int, default=5_000, help="online retrievals timed")
    parser.add_argument("--online-store", choices=["sqlite", "redis"], default="sqlite")
    parser.add_argument("--push-batch", type=int, default=10_000, help="events per push")
    parser.add_argument("--push-events", type=int, default=200_000, help="events pushed in all")
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    if args.online:
        online = run_online(scale, args.calls, args.push_batch, args.push_events, args.online_store)
        print(json.dumps(online, indent=2))
        return 0
    res = run(scale, args.threads, args.repeats or scale.repeats, args.window_path)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
