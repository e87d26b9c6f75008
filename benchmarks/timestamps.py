"""Benchmark: the cost of time-zone-aware source timestamps on every path that converts them.

Every query reads a source's timestamps through one conversion
(``featurestore.sources._sql.timestamp_sql``): an aware column goes through its epoch offset,
never a per-value zone lookup. The training-set path is measured per variant by
``offline.py``; this benchmark measures the other paths that convert source timestamps:

1. materialization: ``store.materialize(end, views=[plain view])`` into the embedded LMDB store;
2. windowed aggregations: ``store.get_training_set(spine, [Sum/Count/Max refs])``;
3. push: ``store.push(source, rows)`` of a batch of new events into an aggregation view's source;
4. skew replay: ``store.skew_report(start, end)`` over a serving log written by
   ``store.get_online_features(..., request_time=...)``;
5. drift, source side: ``store.drift_report(training_set, "source:VIEW:START..END")``.

The same rows are written twice (or more), once with naive UTC timestamps and once time-zone
aware (``timestamp[us, tz=UTC]``, as Polars, pyarrow and pandas write them; optionally also
another zone or pandas' nanoseconds), each in its own repo of identical definitions. Each path
runs on every repo in the same process, alternating, after a warm-up each; the results of the
warm-ups are compared, so both sides do the same work. The figure is the ratio of the best
aware time to the best naive time: near 1.0 when an aware timestamp costs nothing extra.

    python benchmarks/timestamps.py
    python benchmarks/timestamps.py --rows 100000 --repeats 2
    python benchmarks/timestamps.py --aware utc-us ny-us utc-ns-pandas --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from machine import load_average, machine, versions
from offline import timed
from offline_data import DATA_ROOT, START, START_US, VARIANTS, Variant, times, write
from phase import Phase, alternate, warm_up

from featurestore import FeatureStore

ROOT = DATA_ROOT / "timestamps"
NAIVE = "naive-us"
AWARE = [name for name, v in VARIANTS.items() if v.zone is not None and v.keys == "int"]
HOUR_US = 3_600_000_000
YEAR_HOURS = 366 * 24
END = START + dt.timedelta(hours=YEAR_HOURS)  # after the last source row: 2025-01-01
PLAIN = "profile"
AGG = "txn"
EVENTS_SOURCE = "transactions"
FLOATS = ["f0", "f1", "f2", "f3"]
INTS = ["f4"]
AGG_REFS = [f"{AGG}:{n}" for n in ("spend_1d", "spend_7d", "txn_count_1h", "amount_max_7d")]
LOG_BATCH = 1000  # entity rows per logged get_online_features call

CONFIG = """\
project: timestamps_benchmark
serving_log:
  enabled: true
"""

DEFINITIONS = f'''
"""Benchmark repo: one entity; a profile source of plain features with a created time, and an
event source (a directory, so pushes land beside its file) with windowed aggregations."""

from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource
from featurestore.definitions import Count, Max, Sum

user = Entity("user", join_keys=["user_id"])

profiles = FileSource(
    name="profiles",
    path="data/profiles/",
    timestamp_field="event_time",
    created_timestamp_field="created",
)

transactions = FileSource(name="{EVENTS_SOURCE}", path="data/events/", timestamp_field="event_time")

{PLAIN} = FeatureView(
    name="{PLAIN}",
    entities=[user],
    source=profiles,
    ttl=timedelta(days=30),
    owner="benchmarks",
    features=[
{"".join(f"        Feature({n!r}, pl.Float64),{chr(10)}" for n in FLOATS)}\
{"".join(f"        Feature({n!r}, pl.Int64),{chr(10)}" for n in INTS)}\
    ],
)

{AGG} = FeatureView(
    name="{AGG}",
    entities=[user],
    source=transactions,
    owner="benchmarks",
    aggregations=[
        Sum("amount", window=timedelta(days=1), name="spend_1d"),
        Sum("amount", window=timedelta(days=7), name="spend_7d"),
        Count(window=timedelta(hours=1), name="txn_count_1h"),
        Max("amount", window=timedelta(days=7), name="amount_max_7d"),
    ],
)
'''


# --------------------------------------------------------------------------- data


@dataclass(frozen=True)
class Sizes:
    """How much data each path reads or writes."""

    rows: int  # rows of each source (profiles, events)
    entities: int
    spine_rows: int  # aggregation training set
    push_rows: int  # events per push
    log_rows: int  # entity rows in the serving log the skew report replays
    reference_rows: int  # rows of the training set the drift report compares with


def source_frames(sizes: Sizes, variant: Variant) -> dict[str, pl.DataFrame]:
    """The two sources and the spine, seeded, so every variant holds the same instants: the
    profile rows (hourly event times over 2024, a created time up to six hours later), the
    events (to the microsecond, amounts in 1/64ths so sums are exact) and an aggregation
    spine at random times of the year."""
    rng = np.random.default_rng(20261207)
    n, ents = sizes.rows, sizes.entities
    profile_us = np.sort(rng.integers(0, YEAR_HOURS, size=n, dtype=np.int64)) * HOUR_US
    created_us = profile_us + rng.integers(0, 6 * 3600, size=n, dtype=np.int64) * 1_000_000
    profiles = pl.DataFrame(
        {
            "user_id": rng.integers(0, ents, size=n, dtype=np.int64),
            "event_time": times(profile_us + START_US, variant),
            "created": times(created_us + START_US, variant),
            **{c: rng.normal(i, 1.0 + i, size=n) for i, c in enumerate(FLOATS)},
            **{c: rng.integers(0, 1000, size=n, dtype=np.int64) for c in INTS},
        }
    )
    event_us = np.sort(rng.integers(0, YEAR_HOURS * HOUR_US, size=n, dtype=np.int64))
    events = pl.DataFrame(
        {
            "user_id": rng.integers(0, ents, size=n, dtype=np.int64),
            "event_time": times(event_us + START_US, variant),
            "amount": np.round(np.exp(rng.normal(3.5, 1.0, size=n)) * 64) / 64,
            "merchant_id": rng.integers(0, 500, size=n, dtype=np.int64),
        }
    )
    m = sizes.spine_rows
    spine_us = rng.integers(0, YEAR_HOURS * HOUR_US, size=m, dtype=np.int64)
    spine = pl.DataFrame(
        {
            "user_id": rng.integers(0, ents, size=m, dtype=np.int64),
            "event_timestamp": times(spine_us + START_US, variant).rename("event_timestamp"),
        }
    )
    return {"profiles": profiles, "events": events, "spine": spine}


def push_batches(sizes: Sizes, variant: Variant, count: int) -> list[pl.DataFrame]:
    """``count`` batches of new events, batch ``i`` within hour ``i`` after the end of the
    source, so none is late and every run pushes the same amount of work."""
    rng = np.random.default_rng(7)
    end_us = START_US + YEAR_HOURS * HOUR_US
    batches = []
    for i in range(count):
        k = sizes.push_rows
        offsets = np.sort(rng.integers(0, HOUR_US, size=k, dtype=np.int64))
        batches.append(
            pl.DataFrame(
                {
                    "user_id": rng.integers(0, sizes.entities, size=k, dtype=np.int64),
                    "event_time": times(end_us + i * HOUR_US + offsets, variant),
                    "amount": np.round(np.exp(rng.normal(3.5, 1.0, size=k)) * 64) / 64,
                    "merchant_id": rng.integers(0, 500, size=k, dtype=np.int64),
                }
            )
        )
    return batches


def write_repo(sizes: Sizes, variant: Variant) -> tuple[Path, pl.DataFrame]:
    """A fresh repo of the variant (earlier online state, logs and pushed parts removed):
    config, definitions and the two sources; returns its root and the aggregation spine."""
    root = ROOT / variant.name
    shutil.rmtree(root, ignore_errors=True)
    frames = source_frames(sizes, variant)
    for name in ("profiles", "events"):
        (root / "data" / name).mkdir(parents=True)
        write(frames[name], root / "data" / name / "part-0.parquet", variant)
    (root / "featurestore.yaml").write_text(CONFIG)
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())
    return root, frames["spine"]


# --------------------------------------------------------------------------- one repo


@dataclass
class Repo:
    """One variant's repo, its store and what each path needs, set up before any timing."""

    variant: Variant
    sizes: Sizes
    root: Path = field(init=False)
    store: FeatureStore = field(init=False)
    spine: pl.DataFrame = field(init=False)
    reference: Path = field(init=False)
    pushes: Iterator[pl.DataFrame] = field(init=False)

    def set_up(self, push_count: int) -> float:
        """Write the data, apply, materialize both views once, write the serving log and save
        the drift reference training set; returns the seconds it took."""
        started = time.perf_counter()
        self.root, self.spine = write_repo(self.sizes, self.variant)
        self.store = FeatureStore(self.root)
        self.store.apply()
        for res in self.store.materialize(END):
            assert res.published, res
        self.pushes = iter(push_batches(self.sizes, self.variant, push_count))
        self._write_serving_log()
        rng = np.random.default_rng(11)
        ref_us = rng.integers(0, YEAR_HOURS * HOUR_US, size=self.sizes.reference_rows)
        ref_spine = pl.DataFrame(
            {
                "user_id": rng.integers(0, self.sizes.entities, size=ref_us.size),
                "event_timestamp": times(ref_us + START_US, self.variant).rename("event_timestamp"),
            }
        )
        refs = [f"{PLAIN}:{c}" for c in FLOATS + INTS]
        self.reference = self.root / "data" / "reference.parquet"
        self.store.get_training_set(ref_spine, refs).save(self.reference)
        return time.perf_counter() - started

    def _write_serving_log(self) -> None:
        """Served requests one second apart after the materialization, LOG_BATCH entities each;
        the request side is the same in every repo (only the stored data differs)."""
        rng = np.random.default_rng(13)
        refs = [f"{PLAIN}:{c}" for c in FLOATS + INTS]
        for i in range(max(1, self.sizes.log_rows // LOG_BATCH)):
            ids = rng.integers(0, self.sizes.entities, size=LOG_BATCH).tolist()
            self.store.get_online_features(
                refs, entities={"user_id": ids}, request_time=END + dt.timedelta(seconds=i)
            )
        self.store.serving_log.flush()

    # the five timed paths; each returns a small summary that both variants must share

    def materialize(self) -> Any:
        (res,) = self.store.materialize(END, views=[PLAIN])
        assert res.published, res
        return res.rows

    def aggregations(self) -> Any:
        return self.store.get_training_set(self.spine, AGG_REFS).to_polars().drop("event_timestamp")

    def push(self) -> Any:
        res = self.store.push(EVENTS_SOURCE, next(self.pushes))
        assert res.online_error is None, res.online_error
        return dict(res.entities), dict(res.late)

    def skew(self) -> Any:
        report = self.store.skew_report(END, END + dt.timedelta(days=1))
        return rounded(report.to_dict()["features"])

    def drift(self) -> Any:
        window = f"source:{PLAIN}:{START:%Y-%m-%d}..{END:%Y-%m-%d}"
        report = self.store.drift_report(self.reference, window)
        return rounded(report.to_dict()["features"])

    def close(self) -> None:
        self.store.close()


@dataclass(frozen=True)
class TimedPath:
    """A timed path: its name, what is timed, and the Repo method that runs it."""

    name: str
    what: str
    run: Callable[[Repo], Any]


PATHS = [
    TimedPath("materialization", f"materialize(end, views=[{PLAIN!r}]), LMDB", Repo.materialize),
    TimedPath("aggregations", "get_training_set(spine, 4 Sum/Count/Max refs)", Repo.aggregations),
    TimedPath("push", f"push({EVENTS_SOURCE!r}, batch), online and offline", Repo.push),
    TimedPath("skew replay", "skew_report(start, end) over the serving log", Repo.skew),
    TimedPath("drift source side", f"drift_report(training set, source:{PLAIN}:2024)", Repo.drift),
]


# --------------------------------------------------------------------------- main


def rounded(value: Any) -> Any:
    """A report's entries with floats to 10 significant digits: DuckDB's parallel sums add in
    no fixed order, so two runs over the same rows may differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.10g}")
    if isinstance(value, dict):
        return {k: rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v) for v in value]
    return value


def same(a: Any, b: Any) -> bool:
    """Whether two warm-up results agree (frames by value, whatever their time dtypes)."""
    if isinstance(a, pl.DataFrame):
        return a.equals(b)
    return bool(a == b)


def run(
    sizes: Sizes, aware: list[str], repeats: int, paths: list[TimedPath] | None = None
) -> dict[str, Any]:
    """Set up every variant's repo, then per path (all by default) warm up, check and time the
    variants alternately; the ratios are against the naive repo."""
    load_before = load_average()
    repos = {name: Repo(VARIANTS[name], sizes) for name in [NAIVE, *aware]}
    setup_s = {name: round(r.set_up(push_count=repeats + 1), 2) for name, r in repos.items()}
    results: dict[str, Any] = {}
    for path in paths or PATHS:
        phases = {name: Phase(name, path.what) for name in repos}
        sides = {name: (lambda r=r, p=path: p.run(r)) for name, r in repos.items()}
        first = warm_up(phases, sides, timed)
        agree = {name: same(first[NAIVE], res) for name, res in first.items()}
        first.clear()
        alternate(phases, sides, repeats, timed, "cpu_s")
        naive = phases[NAIVE]
        results[path.name] = {
            "what": path.what,
            "same_result_as_naive": agree,
            "phases": {name: p.to_dict() for name, p in phases.items()},
            "ratio": {n: round(phases[n].best_s / naive.best_s, 3) for n in aware},
            "cpu_ratio": {n: round(phases[n].best_cpu_s / naive.best_cpu_s, 3) for n in aware},
        }
    for repo in repos.values():
        repo.close()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "sizes": sizes.__dict__,
        "variants": {n: VARIANTS[n].about for n in repos},
        "repeats": repeats,
        "machine": machine(),
        "versions": versions(),
        "load_average": {"before": load_before, "after": load_average()},
        "setup_s": setup_s,
        "paths": results,
    }


def print_table(res: dict[str, Any]) -> None:
    """One line per path and aware variant: best naive and aware seconds, their ratio (wall
    and CPU), the runs, and whether the results agreed."""
    from rich.console import Console
    from rich.table import Table

    s = res["sizes"]
    table = Table(
        title=(
            f"aware vs naive source timestamps: {s['rows']:,} rows per source, "
            f"{s['entities']:,} entities, spine {s['spine_rows']:,}, push {s['push_rows']:,}, "
            f"log {s['log_rows']:,}; load {res['load_average']['before']} -> "
            f"{res['load_average']['after']}"
        )
    )
    for title in ("path", "variant", "naive best s", "aware best s", "ratio", "CPU ratio"):
        table.add_column(title, justify="left" if title in ("path", "variant") else "right")
    table.add_column("runs (warm-up excluded)", justify="right")
    table.add_column("same result")
    for name, path in res["paths"].items():
        naive = path["phases"][NAIVE]
        for variant, ratio in path["ratio"].items():
            aware = path["phases"][variant]
            table.add_row(
                name,
                variant,
                f"{naive['best_s']:.3f}",
                f"{aware['best_s']:.3f}",
                f"[bold]{ratio:.2f}[/bold]",
                f"{path['cpu_ratio'][variant]:.2f}",
                str(len(aware["times_s"])),
                "yes" if path["same_result_as_naive"][variant] else "NO",
            )
    console = Console()
    console = console if console.is_terminal else Console(width=160)
    console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of each source")
    parser.add_argument("--rows-per-entity", type=int, default=10)
    parser.add_argument("--spine-rows", type=int, default=None, help="default: rows / 10")
    parser.add_argument("--push-rows", type=int, default=None, help="default: rows / 10")
    parser.add_argument("--log-rows", type=int, default=20_000, help="entity rows logged")
    parser.add_argument("--reference-rows", type=int, default=20_000)
    parser.add_argument(
        "--aware",
        nargs="+",
        choices=AWARE,
        default=["utc-us"],
        help="aware variants compared with naive-us (see offline_data.py)",
    )
    parser.add_argument(
        "--paths",
        nargs="+",
        choices=[p.name.replace(" ", "-") for p in PATHS],
        default=None,
        help="time only these paths (default: all)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    sizes = Sizes(
        rows=args.rows,
        entities=max(1, args.rows // args.rows_per_entity),
        spine_rows=args.spine_rows or max(1, args.rows // 10),
        push_rows=args.push_rows or max(1, args.rows // 10),
        log_rows=args.log_rows,
        reference_rows=args.reference_rows,
    )
    chosen = [p for p in PATHS if p.name.replace(" ", "-") in (args.paths or [])] or None
    res = run(sizes, args.aware, args.repeats, chosen)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
