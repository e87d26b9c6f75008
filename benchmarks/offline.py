"""Benchmark: point-in-time training sets against a hand-written DuckDB ASOF query.

Generates a feature source (entities x rows spread over a year, a created timestamp, ties on
event_time) and a spine, builds a feature repo over them, then times
``store.get_training_set(...).to_polars()`` against the query an expert would write by hand
over the same Parquet files, checks that both give identical values, and reports wall times,
their ratio and the peak memory of each.

    python benchmarks/offline.py --scale small
    python benchmarks/offline.py --scale large --threads 2 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import subprocess
import sys
import textwrap
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
from machine import machine, reference_connection, versions
from memory import measure
from phase import Phase, alternate, phases_table, warm_up
from polars.testing import assert_frame_equal

from featurestore import FeatureStore

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data"
DATA_VERSION = 1  # bump when the generator changes, so stale data is rebuilt

VIEW = "entity_stats"
TTL_DAYS = 7
FLOAT_FEATURES = [f"f{i}" for i in range(6)]
INT_FEATURES = [f"f{i}" for i in range(6, 9)]
STRING_FEATURES = ["f9"]
FEATURES = FLOAT_FEATURES + INT_FEATURES + STRING_FEATURES
START = dt.datetime(2024, 1, 1)
HOURS = 366 * 24
MARGIN_HOURS = 14 * 24  # spine times run this far before the first and after the last row


@dataclass(frozen=True)
class Scale:
    """Sizes of one benchmark scale and how many times each side runs."""

    name: str
    entities: int
    rows_per_entity: int
    spine_rows: int
    repeats: int

    @property
    def feature_rows(self) -> int:
        return self.entities * self.rows_per_entity


SCALES = {
    "small": Scale("small", entities=1_000, rows_per_entity=100, spine_rows=10_000, repeats=3),
    "large": Scale("large", entities=100_000, rows_per_entity=100, spine_rows=1_000_000, repeats=2),
}

DEFINITIONS = f'''
"""Benchmark repo: one entity, one Parquet source with a created timestamp, one view."""

from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource

entity = Entity("entity", join_keys=["entity_id"])

events = FileSource(
    name="events",
    path="data/features.parquet",
    timestamp_field="event_time",
    created_timestamp_field="created",
)

{VIEW} = FeatureView(
    name="{VIEW}",
    entities=[entity],
    source=events,
    ttl=timedelta(days={TTL_DAYS}),
    owner="benchmarks",
    features=[
{"".join(f"        Feature({n!r}, pl.Float64),{chr(10)}" for n in FLOAT_FEATURES)}\
{"".join(f"        Feature({n!r}, pl.Int64),{chr(10)}" for n in INT_FEATURES)}\
{"".join(f"        Feature({n!r}, pl.String),{chr(10)}" for n in STRING_FEATURES)}\
    ],
)
'''


# --------------------------------------------------------------------------- data


def generate_features(scale: Scale, rng: np.random.Generator) -> pl.DataFrame:
    """Feature rows ordered by event_time, as a log would be; about one row in ten repeats
    the event_time of its entity's previous row, so only ``created`` orders the two."""
    n_ent, per = scale.entities, scale.rows_per_entity
    hours = np.sort(rng.integers(0, HOURS, size=(n_ent, per), dtype=np.int64), axis=1)
    tie = rng.random((n_ent, per)) < 0.10
    tie[:, 0] = False
    hours[:, 1:] = np.where(tie[:, 1:], hours[:, :-1], hours[:, 1:])
    event_us = hours.ravel() * 3_600_000_000
    # created: a random lag of up to six hours, plus the row's index within its entity in
    # microseconds so no two rows of an entity share (event_time, created).
    lag_us = rng.integers(0, 6 * 3600, size=(n_ent, per), dtype=np.int64) * 1_000_000
    created_us = event_us + (lag_us + np.arange(per, dtype=np.int64)[None, :]).ravel()
    entity_id = np.repeat(np.arange(n_ent, dtype=np.int64), per)
    # time order; ties keep a random order, so file order says nothing about created.
    order = np.lexsort((rng.random(entity_id.size), event_us))

    n = entity_id.size
    start_us = int(START.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    cols: dict[str, Any] = {
        "entity_id": entity_id[order],
        "event_time": pl.Series(event_us[order] + start_us).cast(pl.Datetime("us")),
        "created": pl.Series(created_us[order] + start_us).cast(pl.Datetime("us")),
    }
    for i, name in enumerate(FLOAT_FEATURES):
        values = rng.normal(loc=i, scale=1.0 + i, size=n)
        cols[name] = pl.Series(name, values)
    for i, name in enumerate(INT_FEATURES):
        cols[name] = pl.Series(name, rng.integers(0, 10 ** (i + 2), size=n, dtype=np.int64))
    vocab = pl.Series([f"segment_{c}" for c in "abcdefghijklmnopqrstuvwxyz"])
    for name in STRING_FEATURES:
        cols[name] = vocab.gather(rng.integers(0, vocab.len(), size=n)).alias(name)
    frame = pl.DataFrame(cols)
    # about 1% nulls in the first float and the string feature
    null_f0 = pl.Series(rng.random(n) < 0.01)
    null_f9 = pl.Series(rng.random(n) < 0.01)
    return frame.with_columns(
        pl.when(null_f0).then(None).otherwise(pl.col("f0")).alias("f0"),
        pl.when(null_f9).then(None).otherwise(pl.col(STRING_FEATURES[0])).alias("f9"),
    )


def generate_spine(scale: Scale, rng: np.random.Generator) -> pl.DataFrame:
    """Spine rows in random order: 1% of keys are unknown, times run from two weeks before
    the first row to two weeks after the last; half sit on the hour grid of the event times,
    so a spine time often equals an event time or lies exactly ttl after one."""
    n = scale.spine_rows
    entity_id = rng.integers(0, int(scale.entities * 1.01), size=n, dtype=np.int64)
    hours = rng.integers(-MARGIN_HOURS, HOURS + MARGIN_HOURS, size=n, dtype=np.int64)
    jitter = np.where(rng.random(n) < 0.5, 0, rng.integers(0, 3_600_000_000, size=n))
    start_us = int(START.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    ts_us = start_us + hours * 3_600_000_000 + jitter
    return pl.DataFrame(
        {
            "entity_id": entity_id,
            "event_timestamp": pl.Series(ts_us).cast(pl.Datetime("us")),
            "label": rng.integers(0, 2, size=n, dtype=np.int8),
        }
    )


def ensure_data(scale: Scale) -> tuple[Path, bool]:
    """Write the scale's Parquet files once (reused when present); True when generated."""
    root = DATA_ROOT / scale.name
    data = root / "data"
    marker = data / "generated.json"
    want = {"version": DATA_VERSION, **asdict(scale)}
    want.pop("repeats")
    if marker.exists() and json.loads(marker.read_text()) == want:
        return root, False
    data.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(20241123)
    generate_features(scale, rng).write_parquet(data / "features.parquet", statistics=True)
    generate_spine(scale, rng).write_parquet(data / "spine.parquet")
    marker.write_text(json.dumps(want))
    return root, True


def write_repo(root: Path, threads: int | None) -> None:
    """featurestore.yaml and the definitions module of the benchmark repo."""
    offline = f"offline_store:\n  threads: {threads}\n" if threads else ""
    (root / "featurestore.yaml").write_text(f"project: offline_benchmark\n{offline}")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())


# --------------------------------------------------------------------------- measuring


# --------------------------------------------------------------------------- the two sides


def hand_written_sql(features_path: Path) -> str:
    """The reference: one ASOF LEFT JOIN on the struct (event_time, created), ttl as a CASE."""
    path = str(features_path).replace("'", "''")
    fresh = f"f.event_time >= s.event_timestamp - INTERVAL {TTL_DAYS} DAY"
    values = ",\n  ".join(f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in FEATURES)
    return f"""
SELECT s.entity_id, s.event_timestamp, s.label,
  {values}
FROM spine s
ASOF LEFT JOIN read_parquet('{path}') f
  ON s.entity_id = f.entity_id
  AND {{'t': s.event_timestamp, 'c': 'infinity'::TIMESTAMP}}
   >= {{'t': f.event_time, 'c': f.created}}
ORDER BY s.__rn
"""


def oracle_sql(features_path: Path) -> str:
    """An independent brute-force answer (no ASOF): every row at or before t, keep the latest
    by (event_time, created). Quadratic per entity, so only run at small scale."""
    path = str(features_path).replace("'", "''")
    fresh = f"f.event_time >= s.event_timestamp - INTERVAL {TTL_DAYS} DAY"
    values = ", ".join(f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in FEATURES)
    return f"""
SELECT entity_id, event_timestamp, label, {", ".join(FEATURES)} FROM (
  SELECT s.__rn, s.entity_id, s.event_timestamp, s.label, {values},
    row_number() OVER (PARTITION BY s.__rn ORDER BY f.event_time DESC, f.created DESC) AS k
  FROM spine s
  LEFT JOIN read_parquet('{path}') f
    ON s.entity_id = f.entity_id AND f.event_time <= s.event_timestamp
) WHERE k = 1
ORDER BY __rn
"""


def run_hand_written(con: duckdb.DuckDBPyConnection, sql: str, spine: pl.DataFrame) -> pl.DataFrame:
    """The reference query over ``spine`` (an in-memory Polars frame) into Polars."""
    con.register("spine", spine.with_row_index("__rn"))
    try:
        return con.sql(sql).pl()
    finally:
        con.unregister("spine")


def explain(frame: pl.DataFrame, reference: pl.DataFrame, what: str) -> str:
    """The first differing rows of two frames, for a loud failure."""
    if frame.shape != reference.shape or frame.columns != reference.columns:
        return (
            f"{what}: shape {frame.shape} {frame.columns} vs {reference.shape} {reference.columns}"
        )
    if frame.schema != reference.schema:
        return f"{what}: schema {frame.schema} vs {reference.schema}"
    differ = pl.DataFrame([frame[c].ne_missing(reference[c]) for c in frame.columns])
    idx = differ.select(pl.arg_where(pl.any_horizontal(pl.all()))).to_series()
    sample = idx.head(5).to_list()
    return (
        f"{what}: {idx.len()} of {frame.height} rows differ; first rows {sample}:\n"
        f"ours:\n{frame[sample]}\nreference:\n{reference[sample]}"
    )


def check_same(ours: pl.DataFrame, reference: pl.DataFrame, what: str) -> None:
    """Fail loudly unless both frames hold identical values in identical order."""
    try:
        assert_frame_equal(ours, reference, check_exact=True)
    except AssertionError as exc:
        raise SystemExit(f"MISMATCH {explain(ours, reference, what)}\n{exc}") from None


# --------------------------------------------------------------------------- main


class Bench:
    """One scale's data, feature repo, store and reference connection, ready to run."""

    def __init__(self, scale: Scale, threads: int | None) -> None:
        started = time.perf_counter()
        self.root, self.generated = ensure_data(scale)
        self.data_s = time.perf_counter() - started
        write_repo(self.root, threads)
        self.store = FeatureStore(self.root)
        self.store.apply()
        self.features_path = self.root / "data" / "features.parquet"
        self.spine = pl.read_parquet(self.root / "data" / "spine.parquet")
        self.refs = [f"{VIEW}:{c}" for c in FEATURES]
        self.con, self.threads = reference_connection(threads)
        self.sql = hand_written_sql(self.features_path)
        self.statuses: dict[str, dict[str, int]] = {}

    def ours(self) -> pl.DataFrame:
        ts = self.store.get_training_set(self.spine, features=self.refs)
        self.statuses = {f.column: dict(sorted(f.statuses.items())) for f in ts.metadata.features}
        return ts.to_polars()

    def reference(self) -> pl.DataFrame:
        return run_hand_written(self.con, self.sql, self.spine)

    def close(self) -> None:
        self.con.close()
        self.store.close()


def probe_memory(scale: Scale, threads: int | None, side: str) -> dict[str, float]:
    """Run one side once in this (fresh) process: seconds and peak RSS above the start."""
    bench = Bench(scale, threads)
    fn = bench.ours if side == "ours" else bench.reference
    _, elapsed, peak = measure(fn)
    return {"seconds": elapsed, "peak_mb": peak}


def probe_in_child(scale: Scale, threads: int | None, side: str) -> dict[str, float]:
    """:func:`probe_memory` in a child process, so neither side inherits the other's heap."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--scale", scale.name, "--probe", side]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"memory probe of {side} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def run(scale: Scale, threads: int | None, repeats: int, oracle: bool) -> dict[str, Any]:
    """Build data and repo, warm up and time both sides, verify, and return the results."""
    bench = Bench(scale, threads)
    phases = {
        "ours": Phase("featurestore", "get_training_set(spine, 10 refs).to_polars()"),
        "reference": Phase("hand-written", "DuckDB ASOF LEFT JOIN on {t, c}, ttl CASE, .pl()"),
    }
    sides = {"ours": bench.ours, "reference": bench.reference}

    results = warm_up(phases, sides, measure)  # also the results that are verified
    check_same(results["ours"], results["reference"], "featurestore vs hand-written")
    if oracle:
        brute = run_hand_written(bench.con, oracle_sql(bench.features_path), bench.spine)
        check_same(results["reference"], brute, "hand-written vs brute-force oracle")
        del brute
    counts = bench.statuses[FEATURES[0]]
    results.clear()

    alternate(phases, sides, repeats, measure)  # memory: in fresh processes, below
    bench.close()
    spine_rows = bench.spine.height
    features_path = bench.features_path
    generated, data_s, duck_threads = bench.generated, bench.data_s, bench.threads
    del bench
    gc.collect()

    # memory: each side once in a fresh process
    for key in sides:
        probe = probe_in_child(scale, threads, key)
        phases[key].peak_mb.append(probe["peak_mb"])
        phases[key].fresh_s = probe["seconds"]

    feature_rows, tie_rows = _feature_stats(features_path)
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "machine": machine(),
        "versions": versions(),
        "duckdb_threads": int(duck_threads),
        "data_generated": generated,
        "data_seconds": round(data_s, 2),
        "rows": {
            "entities": scale.entities,
            "feature_rows": feature_rows,
            "feature_rows_sharing_event_time": tie_rows,
            "spine_rows": spine_rows,
            "features": len(FEATURES),
        },
        "first_feature_statuses": counts,
        "verified": "identical" + (" (and equal to a brute-force oracle)" if oracle else ""),
        "repeats": repeats,
        "phases": {key: p.to_dict() for key, p in phases.items()},
        "ratio": round(phases["ours"].best_s / phases["reference"].best_s, 3),
    }


def _feature_stats(path: Path) -> tuple[int, int]:
    """Row count of the source and how many rows share (entity, event_time) with another."""
    con = duckdb.connect()
    try:
        p = str(path).replace("'", "''")
        rows, ties = con.execute(
            f"SELECT sum(n), sum(n) FILTER (WHERE n > 1) FROM ("
            f"SELECT count(*) AS n FROM read_parquet('{p}') GROUP BY entity_id, event_time)"
        ).fetchall()[0]
        return int(rows), int(ties or 0)
    finally:
        con.close()


def print_table(res: dict[str, Any]) -> None:
    """The results as a table, with the sizes above it and the ratio below."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    rows = res["rows"]
    console.print(
        f"[bold]offline benchmark, scale={res['scale']}[/bold]: "
        f"{rows['feature_rows']:,} feature rows ({rows['entities']:,} entities, "
        f"{rows['features']} features, {rows['feature_rows_sharing_event_time']:,} rows share "
        f"an event_time), {rows['spine_rows']:,} spine rows\n"
        f"DuckDB {res['versions']['duckdb']} ({res['duckdb_threads']} threads), "
        f"Polars {res['versions']['polars']}, {res['machine']['cpus']} CPUs, "
        f"{res['machine']['memory_gb']} GiB"
    )
    console.print(phases_table(res["phases"].values()))
    console.print(
        f"ratio featurestore / hand-written (best times): [bold]{res['ratio']:.2f}[/bold]\n"
        f"results: {res['verified']}; statuses of f0: {res['first_feature_statuses']}\n"
        "fresh process: each side run once more, alone in a new process (first-run costs "
        "included); peak RSS: its highest resident memory above the level at the start of "
        "that run (sampled every 10 ms)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (both sides)")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--oracle",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="also check against a brute-force query (default: at small scale only)",
    )
    parser.add_argument("--probe", choices=["ours", "reference"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    if args.probe:
        json.dump(probe_memory(scale, args.threads, args.probe), sys.stdout)
        return 0
    oracle = args.oracle if args.oracle is not None else scale.name == "small"
    res = run(scale, args.threads, args.repeats or scale.repeats, oracle)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
