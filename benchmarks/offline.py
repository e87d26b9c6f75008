"""Benchmark: point-in-time training sets against a hand-written DuckDB ASOF query.

Generates a feature source (entities x rows spread over a year, a created timestamp, ties on
event_time) and a spine, stored in one of several variants (naive or time-zone-aware
timestamps in ms, us or ns, integer or string keys, written by Polars or pandas; see
``offline_data.py``), builds a feature repo over them, then times
``store.get_training_set(...).to_polars()`` against the query an expert would write by hand
over the same Parquet files, checks that both give identical values, and reports wall times,
their ratio, featurestore's fixed cost per call and the peak memory of each.

    python benchmarks/offline.py --scale small
    python benchmarks/offline.py --scale small --variant all
    python benchmarks/offline.py --scale medium --variant all --json
    python benchmarks/offline.py --scale large --variant utc-us --threads 2 --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from machine import load_average, machine, reference_connection, versions
from memory import measure
from offline_data import (
    FEATURES,
    SCALES,
    TTL_DAYS,
    VARIANTS,
    VIEW,
    Scale,
    Variant,
    ensure_data,
    write_repo,
)
from phase import Phase, alternate, phases_table, warm_up
from polars.testing import assert_frame_equal
from rich.markup import escape

from featurestore import FeatureStore

# --------------------------------------------------------------------------- the two sides


def hand_written_sql(features_path: Path, variant: Variant) -> str:
    """The reference: one ASOF LEFT JOIN on the struct (event_time, created), ttl as a CASE.
    The times are joined in the types DuckDB reads them in (TIMESTAMPTZ against TIMESTAMPTZ
    when both sides are aware), with no conversion."""
    path = str(features_path).replace("'", "''")
    fresh = f"f.event_time >= s.event_timestamp - INTERVAL {TTL_DAYS} DAY"
    values = ",\n  ".join(f"CASE WHEN {fresh} THEN f.{c} END AS {c}" for c in FEATURES)
    return f"""
SELECT s.entity_id, s.event_timestamp, s.label,
  {values}
FROM spine s
ASOF LEFT JOIN read_parquet('{path}') f
  ON s.entity_id = f.entity_id
  AND {{'t': s.event_timestamp, 'c': 'infinity'::{variant.duckdb_type}}}
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
    """The reference query over ``spine`` (an in-memory Polars frame) into Polars, its spine
    columns in the spine's dtypes (see :func:`as_spine_dtypes`)."""
    con.register("spine", spine.with_row_index("__rn"))
    try:
        return as_spine_dtypes(con.sql(sql).pl(), spine.schema)
    finally:
        con.unregister("spine")


def as_spine_dtypes(frame: pl.DataFrame, schema: pl.Schema) -> pl.DataFrame:
    """``frame`` with the spine's columns back in the spine's dtypes where DuckDB returned
    others: an aware time comes back in the connection's zone (UTC), so a New York spine time is
    relabelled to its zone (the same instants; the feature values are left as they are)."""
    fixes = []
    for name, dtype in schema.items():
        got = frame.schema[name]
        if got == dtype:
            continue
        expr = pl.col(name)
        if isinstance(dtype, pl.Datetime) and isinstance(got, pl.Datetime) and dtype.time_zone:
            expr = expr.dt.convert_time_zone(dtype.time_zone)
        fixes.append(expr.cast(dtype))
    return frame.with_columns(fixes) if fixes else frame


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
    """One scale's and variant's data, feature repo, store and reference connection, ready
    to run."""

    def __init__(self, scale: Scale, variant: Variant, threads: int | None) -> None:
        started = time.perf_counter()
        self.root, self.generated = ensure_data(scale, variant)
        self.data_s = time.perf_counter() - started
        write_repo(self.root, threads)
        self.store = FeatureStore(self.root)
        self.store.apply()
        self.features_path = self.root / "data" / "features.parquet"
        self.spine = pl.read_parquet(self.root / "data" / "spine.parquet")
        self.refs = [f"{VIEW}:{c}" for c in FEATURES]
        self.con, self.threads = reference_connection(threads)
        self.sql = hand_written_sql(self.features_path, variant)
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


def probe_memory(
    scale: Scale, variant: Variant, threads: int | None, side: str
) -> dict[str, float]:
    """Run one side once in this (fresh) process: seconds and peak RSS above the start."""
    bench = Bench(scale, variant, threads)
    fn = bench.ours if side == "ours" else bench.reference
    _, elapsed, peak = measure(fn)
    return {"seconds": elapsed, "peak_mb": peak}


def probe_in_child(
    scale: Scale, variant: Variant, threads: int | None, side: str
) -> dict[str, float]:
    """:func:`probe_memory` in a child process, so neither side inherits the other's heap."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--scale", scale.name]
    cmd += ["--variant", variant.name, "--probe", side]
    if threads:
        cmd += ["--threads", str(threads)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"memory probe of {side} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def time_sides(bench: Bench, repeats: int, oracle: bool) -> dict[str, Phase]:
    """Warm up both sides, check their results (and the oracle's), then time them
    alternately."""
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
    results.clear()
    alternate(phases, sides, repeats, timed, "cpu_s")  # memory: in fresh processes, see run()
    return phases


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and the CPU seconds of this process (all threads) meanwhile,
    after a garbage collection. On a loaded machine CPU time says what the work costs."""
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started, time.process_time() - cpu


def run(
    scale: Scale, variant: Variant, threads: int | None, repeats: int, oracle: bool
) -> dict[str, Any]:
    """Build data and repo, warm up and time both sides, verify, and return the results."""
    load_before = load_average()
    bench = Bench(scale, variant, threads)
    phases = time_sides(bench, repeats, oracle)
    counts = bench.statuses[FEATURES[0]]
    bench.close()
    spine_rows = bench.spine.height
    features_path = bench.features_path
    generated, data_s, duck_threads = bench.generated, bench.data_s, bench.threads
    del bench
    gc.collect()

    # memory: each side once in a fresh process
    for key, phase in phases.items():
        probe = probe_in_child(scale, variant, threads, key)
        phase.peak_mb.append(probe["peak_mb"])
        phase.fresh_s = probe["seconds"]

    feature_rows, tie_rows = _feature_stats(features_path)
    ours, reference = phases["ours"].best_s, phases["reference"].best_s
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "variant": variant.name,
        "variant_about": variant.about,
        "machine": machine(),
        "versions": versions(),
        "load_average": {"before": load_before, "after": load_average()},
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
        "ratio": round(ours / reference, 3),
        "cpu_ratio": round(phases["ours"].best_cpu_s / phases["reference"].best_cpu_s, 3),
        "fixed_cost_ms": round((ours - reference) * 1000, 1),
        "fixed_cost_cpu_ms": round(
            (phases["ours"].best_cpu_s - phases["reference"].best_cpu_s) * 1000, 1
        ),
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


def _console() -> Any:
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=140)


def print_table(res: dict[str, Any]) -> None:
    """The results as a table, with the sizes above it and the ratio below."""
    console = _console()
    rows = res["rows"]
    console.print(
        f"[bold]offline benchmark, scale={res['scale']}, variant={res['variant']}[/bold] "
        f"({escape(res['variant_about'])}): "
        f"{rows['feature_rows']:,} feature rows ({rows['entities']:,} entities, "
        f"{rows['features']} features, {rows['feature_rows_sharing_event_time']:,} rows share "
        f"an event_time), {rows['spine_rows']:,} spine rows\n"
        f"DuckDB {res['versions']['duckdb']} ({res['duckdb_threads']} threads), "
        f"Polars {res['versions']['polars']}, {res['machine']['cpus']} CPUs, "
        f"{res['machine']['memory_gb']} GiB; load average before {res['load_average']['before']}"
        f", after {res['load_average']['after']}"
    )
    console.print(phases_table(res["phases"].values()))
    console.print(
        f"ratio featurestore / hand-written (best times): [bold]{res['ratio']:.2f}[/bold]; "
        f"fixed cost per call (difference of the best times): {res['fixed_cost_ms']:.1f} ms; "
        f"ratio of the best CPU times (all threads): {res['cpu_ratio']:.2f}, difference "
        f"{res['fixed_cost_cpu_ms']:.1f} ms\n"
        f"results: {res['verified']}; statuses of f0: {res['first_feature_statuses']}\n"
        "fresh process: each side run once more, alone in a new process (first-run costs "
        "included); peak RSS: its highest resident memory above the level at the start of "
        "that run (sampled every 10 ms)"
    )


def print_summary(results: list[dict[str, Any]]) -> None:
    """One line per variant: best times, their ratio and difference (wall and CPU), the
    fresh-process times and peak memory of both sides, and the load around the run."""
    from rich.table import Table

    table = Table(title=f"offline benchmark, scale={results[0]['scale']}: all variants")
    table.add_column("variant")
    for title in ("ours ms", "hand ms", "ratio", "CPU ratio", "fixed cost ms (wall / CPU)"):
        table.add_column(title, justify="right")
    table.add_column("fresh process ms (ours / hand)", justify="right")
    table.add_column("peak RSS MiB (ours / hand)", justify="right")
    table.add_column("load before, after")
    for res in results:
        ours, ref = res["phases"]["ours"], res["phases"]["reference"]
        table.add_row(
            res["variant"],
            f"{ours['best_s'] * 1000:,.1f}",
            f"{ref['best_s'] * 1000:,.1f}",
            f"[bold]{res['ratio']:.2f}[/bold]",
            f"{res['cpu_ratio']:.2f}",
            f"{res['fixed_cost_ms']:,.1f} / {res['fixed_cost_cpu_ms']:,.1f}",
            f"{ours['fresh_process_s'] * 1000:,.0f} / {ref['fresh_process_s'] * 1000:,.0f}",
            f"{ours['peak_rss_mb']:,.0f} / {ref['peak_rss_mb']:,.0f}",
            f"{res['load_average']['before'][0]}, {res['load_average']['after'][0]}",
        )
    _console().print(table)
    _console().print(
        "fixed cost: featurestore's best time minus the hand-written best time, per call; "
        "CPU: of this process, all threads (steadier than wall time on a loaded machine)"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=list(SCALES), default="small")
    parser.add_argument(
        "--variant",
        choices=[*VARIANTS, "all"],
        default="naive-us",
        help="how timestamps and keys are stored; all: each in turn, then a summary",
    )
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
        variant = VARIANTS[args.variant]
        json.dump(probe_memory(scale, variant, args.threads, args.probe), sys.stdout)
        return 0
    oracle = args.oracle if args.oracle is not None else scale.name == "small"
    variants = list(VARIANTS.values()) if args.variant == "all" else [VARIANTS[args.variant]]
    results = []
    for variant in variants:
        res = run(scale, variant, args.threads, args.repeats or scale.repeats, oracle)
        results.append(res)
        if not args.json:
            print_table(res)
    if args.json:
        json.dump(results if args.variant == "all" else results[0], sys.stdout, indent=2)
        print()
    elif len(results) > 1:
        print_summary(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
