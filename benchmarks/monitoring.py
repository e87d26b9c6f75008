"""Benchmark: continuous monitoring's hourly summaries, against plain scans of the same files.

Writes a serving log of N records (10,000,000 at large scale) over 7 days as the writer would
(Parquet parts of 5,000 to 50,000 records per UTC day): 50 features in two views (30 Float64,
8 Int64, 7 String, 5 Boolean, some with nulls) served in three feature lists, 1.5% of records
with a view's entity not found or stale, a few values defaulted or invalid, traffic following
the time of day; reference profiles from rows drawn from the same distributions. Times (a)
summarizing every file (``summarize_new_files`` + ``summarize_log``) against the floor, one
DuckDB scan that only decodes the monitored keys of ``values`` and ``statuses``; (b) a 30-day
window of all features from 30 days of hourly summaries (``read_summaries``, summed,
``window_profile``, ``window_statistics``) and one feature's hourly history, against the raw
read of the summary files.

    python benchmarks/monitoring.py --scale small
    python benchmarks/monitoring.py --scale large --json
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
from machine import load_average, machine, reference_connection, versions
from phase import Phase, alternate, phases_table, warm_up
from reports import timed

from featurestore._profiles import FeatureProfile, profile_frame
from featurestore.definitions._monitoring import DriftConfig
from featurestore.monitoring._monitor import _summary_files as files_of
from featurestore.monitoring._monitor._history import MonitoredFeature, feature_history
from featurestore.monitoring._monitor._statistics import window_statistics
from featurestore.monitoring._monitor._summaries import sum_summaries, summarize_log, window_profile
from featurestore.serving._serving_log._files import partition_of, write_part
from featurestore.serving._serving_log._schema import ARROW_SCHEMA, arrow_table

DATA_ROOT = Path(__file__).resolve().parent / ".data" / "monitoring"
DATA_VERSION = 1  # bump when the generator changes, so stale data is rebuilt
TARGETS = {"summarize_s": 30.0, "window_s": 0.1}  # at large scale
START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
DAYS, WINDOW_DAYS = 7, 30
Window = tuple[dt.datetime, dt.datetime]


class Scale(NamedTuple):
    """Records logged, and timed runs per side."""

    name: str
    records: int
    repeats: int


SCALES = {"small": Scale("small", 200_000, 3), "large": Scale("large", 10_000_000, 1)}

# ref -> (dtype, null rate when PRESENT); two views, so a missing entity nulls one view
FEATURES: dict[str, tuple[pl.DataType, float]] = {
    **{f"user:f{i:02d}": (pl.Float64(), 0.03 if i % 5 == 4 else 0.0) for i in range(20)},
    **{f"txn:f{i:02d}": (pl.Float64(), 0.01 if i % 4 == 1 else 0.0) for i in range(20, 30)},
    **{f"user:n{i}": (pl.Int64(), 0.02 if i == 3 else 0.0) for i in range(4)},
    **{f"txn:n{i}": (pl.Int64(), 0.0) for i in range(4, 8)},
    **{f"user:c{i}": (pl.String(), 0.05 if i == 1 else 0.0) for i in range(4)},
    **{f"txn:c{i}": (pl.String(), 0.0) for i in range(4, 7)},
    **{f"user:b{i}": (pl.Boolean(), 0.02 if i == 2 else 0.0) for i in range(3)},
    **{f"txn:b{i}": (pl.Boolean(), 0.0) for i in range(3, 5)},
}
REFS = list(FEATURES)
USER = [r for r in REFS if r.startswith("user:")]
DTYPES = {r: d for r, (d, _) in FEATURES.items()}
# (feature service, refs served, share of records)
LISTS = [("scoring", REFS, 0.6), ("profile", USER, 0.3), ("fraud", REFS[::3], 0.1)]
VOCAB = {1: 4, 4: 12, 0: 40, 2: 8, 3: 250, 5: 6, 6: 30}  # categories of c0..c6; c3 > TOP_K


def draw(ref: str, n: int, rng: np.random.Generator, shifted: bool = False) -> pl.Series:
    """``n`` values of ``ref`` (nulls at its rate); ``shifted`` moves the served values a
    little, and a few categories appear that the reference never saw."""
    dtype, null_rate = FEATURES[ref]
    i, kind = int(ref.split(":")[1][1:]), ref.split(":")[1][0]
    if kind == "f":
        loc = 0.05 if shifted else 0.0
        values: Any = [  # by i % 4: normal, lognormal, uniform, amounts in cents
            lambda: rng.normal(i + loc, 1 + i % 3, n),
            lambda: rng.lognormal(loc, 0.6, n),
            lambda: rng.uniform(-i + loc, i + 1, n),
            lambda: np.round(rng.exponential(50.0 + i + loc, n), 2),
        ][i % 4]()
    elif kind == "n":
        values = rng.poisson(2 + i * 3, n)
    elif kind == "c":
        size = VOCAB[i]
        p = 1.0 / np.arange(1, size + 1) ** 0.9
        p = np.concatenate([p / p.sum() * 0.995, [0.003, 0.002]]) if shifted else p / p.sum()
        codes = rng.choice(size + (2 if shifted else 0), n, p=p)
        vocab = pl.Series([f"c{i}_{k:03d}" for k in range(size + 2)])
        values = vocab.gather(codes)
    else:
        values = rng.random(n) < (0.1 + 0.2 * i) + (0.01 if shifted else 0.0)
    series = pl.Series(ref, values, dtype=dtype)
    return series.scatter(np.flatnonzero(rng.random(n) < null_rate), None)


def reference_frame(n: int, seed: int = 7) -> pl.DataFrame:
    """The reference rows: every feature from its distribution, unshifted."""
    rng = np.random.default_rng(seed)
    return pl.DataFrame([draw(r, n, rng) for r in REFS])


def _json_text(series: pl.Series) -> pl.Expr:
    """A column's values as JSON text (``null`` for nulls)."""
    col = pl.col(series.name)
    text = pl.lit('"') + col + pl.lit('"') if series.dtype == pl.String else col.cast(pl.String)
    return text.fill_null(pl.lit("null"))


DIURNAL = 1.0 + 0.8 * np.sin((np.arange(24) - 9) / 24 * 2 * np.pi)
STATUSES = pl.Series(["PRESENT", "NOT_FOUND", "STALE", "DEFAULTED", "INVALID"])


def _status_codes(views: list[list[str]], n: int, rng: np.random.Generator) -> dict[str, Any]:
    """Per view a status per record (1% NOT_FOUND, 0.5% STALE), then per feature 0.2%
    DEFAULTED and 0.05% INVALID; as positions in STATUSES."""
    out = {}
    for refs in views:
        u = rng.random(n)
        view = np.where(u < 0.01, 1, np.where(u < 0.015, 2, 0))
        for ref in refs:
            v = rng.random(n)
            out[ref] = np.where(view == 0, np.where(v < 0.002, 3, np.where(v < 0.0025, 4, 0)), view)
    return out


def log_records(n: int, day: dt.date, rng: np.random.Generator) -> pl.DataFrame:
    """``n`` records of one UTC day, sorted by time, each serving one of LISTS."""
    lists = rng.choice(len(LISTS), n, p=[s for *_, s in LISTS])
    day_us = int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**6
    seconds = rng.choice(24, n, p=DIURNAL / DIURNAL.sum()) * 3600 + rng.random(n) * 3600
    times = day_us + (seconds * 1e6).astype(np.int64)
    return pl.concat(
        _list_records(service, refs, times[lists == k], rng)
        for k, (service, refs, _) in enumerate(LISTS)
    ).sort("request_time")


def _list_records(
    service: str, refs: list[str], times: np.ndarray, rng: np.random.Generator
) -> pl.DataFrame:
    """Records serving ``refs``: values nulled where their view's entity was not found or
    stale, the JSON columns as the writer encodes them."""
    m = times.size
    views = {v: [r for r in refs if r.startswith(v)] for v in ("user:", "txn:")}
    codes = _status_codes([r for r in views.values() if r], m, rng)
    served = pl.DataFrame([draw(r, m, rng, shifted=True) for r in refs])
    served = served.with_columns(
        pl.when(pl.lit(pl.Series(np.isin(codes[r], [0, 3])))).then(r) for r in refs
    )
    status_frame = pl.DataFrame({r: STATUSES.gather(codes[r]) for r in refs})
    prints = {r: hashlib.sha256(r.encode()).hexdigest()[:16] for r in refs}
    return served.select(
        pl.Series("request_time", times).cast(pl.Datetime("us", "UTC")),
        pl.lit(service).alias("feature_service"),
        pl.lit(pl.Series([refs])).first().alias("features"),
        _object([(r, _json_text(served[r])) for r in refs]).alias("values"),
        _object([(r, pl.lit(status_frame[r])) for r in refs], quoted=True).alias("statuses"),
        pl.lit(json.dumps(prints, separators=(",", ":"))).alias("fingerprints"),
        pl.lit(pl.Series(rng.integers(0, 5_000_000, m))).alias("entity_id"),
    )


def _object(pairs: list[tuple[str, pl.Expr]], quoted: bool = False) -> pl.Expr:
    """A JSON object per row: keys as given, values the expressions' text."""
    parts: list[pl.Expr] = []
    for k, (key, text) in enumerate(pairs):
        prefix = ("{" if k == 0 else ",") + json.dumps(key) + ":" + ('"' if quoted else "")
        parts += [pl.lit(prefix), text, pl.lit('"' if quoted else "")]
    return pl.concat_str([*parts, pl.lit("}")])


def _part(records: pl.DataFrame, first: int) -> Any:
    """Records as a serving log part (Arrow, the log's schema): one entity per request."""
    us, ids = pl.col("request_time").dt.epoch("us"), pl.int_range(first, first + records.height)
    f = records.with_columns(
        pl.lit(0, pl.Int64).alias("row"),
        pl.format('{{"entity_id":{}}}', "entity_id").alias("entity_keys"),
        (pl.col("entity_id") % 900 + 100).alias("latency_us"),
        *(pl.lit("{}").alias(c) for c in ("request_data", "applied_fingerprints")),
        request_id=ids.cast(pl.String).str.zfill(32),
        event_times=pl.format('{{"user":{},"txn":{}}}', us - 3_600_000_000, us - 60_000_000),
    )
    return arrow_table({c: f[c].to_arrow() for c in ARROW_SCHEMA.names})


def write_log(directory: Path, records: int, seed: int = 2026) -> int:
    """The serving log of ``records`` records over DAYS days; returns the files written."""
    rng = np.random.default_rng(seed)
    per_day = np.bincount(rng.integers(0, DAYS, records), minlength=DAYS)
    files = written = 0
    for d, n in enumerate(per_day.tolist()):
        day = (START + dt.timedelta(days=d)).date()
        (partition := partition_of(directory, day)).mkdir(parents=True, exist_ok=True)
        day_records, at = log_records(n, day, rng), 0
        while at < n:
            size = min(int(rng.integers(5_000, 50_001)), n - at)
            write_part(partition, _part(day_records.slice(at, size), written + at))
            at, files = at + size, files + 1
        written += n
    return files


def ensure_log(scale: Scale) -> tuple[Path, bool, float]:
    """The scale's serving log, written once and reused while the generator is unchanged."""
    started, root = time.perf_counter(), DATA_ROOT / scale.name
    marker, log_dir = root / "generated.json", root / "log"
    want = {"version": DATA_VERSION, "records": scale.records, "days": DAYS}
    generated = not (marker.exists() and json.loads(marker.read_text()) == want)
    if generated:
        shutil.rmtree(root, ignore_errors=True)
        log_dir.mkdir(parents=True)
        write_log(log_dir, scale.records)
        marker.write_text(json.dumps(want))
    return log_dir, generated, time.perf_counter() - started


def floor_sql(files: list[Path]) -> str:
    """One DuckDB scan decoding the monitored keys of ``values`` and ``statuses`` (typed as
    declared), counting the rows and the non-null values and statuses of each key."""
    types = {pl.Float64(): "DOUBLE", pl.Int64(): "BIGINT", pl.String(): "VARCHAR"}
    spec = json.dumps({r: types.get(d, "BOOLEAN") for r, d in DTYPES.items()})
    counts = [f'count(v."{r}")' for r in REFS] + [f'count(s."{r}")' for r in REFS]
    paths = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    statuses = f"json_transform(statuses, '{json.dumps(dict.fromkeys(REFS, 'VARCHAR'))}') AS s"
    return (
        f'SELECT count(*), {", ".join(counts)} FROM (SELECT json_transform("values", '
        f"'{spec}') AS v, {statuses} FROM read_parquet([{paths}]))"
    )


def _summarize(log_dir: Path, profiles: dict[str, FeatureProfile]) -> pl.DataFrame:
    """Summarize every log file into a fresh directory; returns the rows written."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "summaries"
        files_of.summarize_new_files(log_dir, out, lambda log: summarize_log(log, profiles, DTYPES))
        return files_of.read_summaries(out)


def check_summaries(rows: pl.DataFrame, floor: tuple[Any, ...]) -> str:
    """Fail loudly unless the summaries count the records, values and statuses the floor
    decoded: per feature, served rows = statuses found, rows - nulls = values found."""
    per = rows.group_by("feature").agg(pl.col("rows").sum(), pl.col("nulls").sum())
    got = {f: (r, r - n) for f, r, n in per.iter_rows()}
    want = {r: (floor[1 + len(REFS) + k], floor[1 + k]) for k, r in enumerate(REFS)}
    if got != want:
        bad = {r: (got.get(r), want[r]) for r in REFS if got.get(r) != want[r]}
        raise SystemExit(f"MISMATCH summaries vs floor (rows, values): {bad}")
    return "per feature, summarized rows and non-null values equal the floor's decoded counts"


def write_month(rows: pl.DataFrame, directory: Path) -> Window:
    """WINDOW_DAYS day files from the DAYS summarized, repeated weekly; returns their span."""
    directory.mkdir(parents=True)
    for k in range(WINDOW_DAYS):
        day = rows.filter(pl.col("hour").dt.date() == (START + dt.timedelta(k % DAYS)).date())
        shifted = day.with_columns(pl.col("hour") + dt.timedelta(days=k - k % DAYS))
        path = files_of._day_file(directory, (START + dt.timedelta(days=k)).date())
        files_of._write_day(path, shifted, set())
    return START, START + dt.timedelta(days=WINDOW_DAYS)


def answer_window(directory: Path, window: Window, profiles: dict[str, Any]) -> dict[str, Any]:
    """The drift statistics of every feature over ``window``, from its summaries."""
    days = files_of.read_summaries(directory, *window, whole_days=True)  # a row per day
    summed = sum_summaries(days, by=("feature",))
    cfg, out = DriftConfig(), {}
    for row in summed.iter_rows(named=True):
        reference = profiles[row["feature"]]
        out[row["feature"]] = window_statistics(reference, window_profile(row, reference), cfg)
    return out


def hourly_history(directory: Path, window: Window, ref: str, profile: Any) -> pl.DataFrame:
    """One feature's hourly points over ``window``, as ``monitor_history`` computes them."""
    rows = files_of.read_summaries(directory, window[0] - dt.timedelta(hours=1), window[1], [ref])
    return feature_history(MonitoredFeature(ref, profile), rows, "1h", *window)


Sides = dict[str, tuple[Phase, Callable[[], Any]]]


def _measure(sides: Sides, repeats: int, target: float, against: str) -> dict[str, Any]:
    """Warm up and time ``sides`` alternately; their figures, ratio to ``against`` and load."""
    phases, fns = {k: p for k, (p, _) in sides.items()}, {k: f for k, (_, f) in sides.items()}
    results = warm_up(phases, fns, timed)
    load = load_average()
    alternate(phases, fns, repeats, timed, "cpu_s")
    ours, ref = phases["ours"], phases[against]
    out = {"results": results, "phases": {k: p.to_dict() for k, p in phases.items()}}
    out |= {"ratio": round(ours.best_s / ref.best_s, 2), "load_before": load}
    out |= {"cpu_ratio": round(ours.best_cpu_s / ref.best_cpu_s, 2), "load_after": load_average()}
    return out | {"target_s": target, "met": ours.best_s <= target}


def run_summarize(scale: Scale, repeats: int, profiles: dict[str, FeatureProfile]) -> Any:
    """Time summarizing the whole log against the floor; check their counts agree."""
    log_dir, generated, setup = ensure_log(scale)
    files = sorted(log_dir.glob("date=*/*.parquet"))
    con, _ = reference_connection()
    sql = floor_sql(files)
    ours = Phase("featurestore", "summarize_new_files + summarize_log")
    floor = Phase("DuckDB floor", "one scan: json_transform of values and statuses")
    sides: Sides = {"ours": (ours, lambda: _summarize(log_dir, profiles))}
    sides["floor"] = (floor, lambda: con.execute(sql).fetchone())
    out = _measure(sides, repeats, TARGETS["summarize_s"], "floor")
    results = out.pop("results")
    out["verified"] = check_summaries(results["ours"], results["floor"])
    con.close()
    size = round(sum(f.stat().st_size for f in files) / 2**20, 1)
    out |= {"records": scale.records, "files": len(files), "log_mb": size}
    return out | {"data_generated": generated, "setup_s": round(setup, 1)}, results["ours"]


def run_window(rows: pl.DataFrame, repeats: int, profiles: dict[str, FeatureProfile]) -> Any:
    """Time a 30-day window of every feature and one feature's hourly history against the
    raw read of the summary files."""
    with tempfile.TemporaryDirectory() as tmp:
        month = Path(tmp) / "month"
        window = write_month(rows, month)
        files, ref = sorted(month.glob("*.parquet")), REFS[0]
        ours = Phase("featurestore", f"{WINDOW_DAYS}-day window, {len(REFS)} features")
        history = Phase("featurestore", f"hourly history of {ref}, {WINDOW_DAYS} days")
        raw = Phase("raw read", "pl.read_parquet of the summary files")
        sides: Sides = {"ours": (ours, lambda: answer_window(month, window, profiles))}
        sides["history"] = (history, lambda: hourly_history(month, window, ref, profiles[ref]))
        sides["raw"] = (raw, lambda: pl.read_parquet(files))
        out = _measure(sides, max(repeats, 5), TARGETS["window_s"], "raw")
        out["summary_rows"] = files_of.read_summaries(month).height
    out.pop("results")
    out["history_ratio"] = round(history.best_s / raw.best_s, 2)
    return out


def run(scale: Scale, repeats: int) -> dict[str, Any]:
    """Both measurements, with the machine, versions, date and load around them."""
    res: dict[str, Any] = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    res |= {"scale": scale.name, "repeats": repeats, "load_at_start": load_average()}
    res |= {"machine": machine(), "versions": versions()}
    profiles = profile_frame(reference_frame(200_000), REFS)
    res["summarize"], rows = run_summarize(scale, repeats, profiles)
    res["window"] = run_window(rows, repeats, profiles)
    res["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return res


def print_table(res: dict[str, Any]) -> None:
    """The results as tables, with sizes and load above and ratios and targets below."""
    from rich.console import Console

    s, w, v = res["summarize"], res["window"], res["versions"]
    for line in (
        f"[bold]monitoring, scale={res['scale']}[/bold], {res['date']} to {res['finished']} UTC;"
        f" DuckDB {v['duckdb']}, Polars {v['polars']}, {res['machine']['cpus']} CPUs",
        f"\n[bold]summarize[/bold] {s['records']:,} records x {len(REFS)} features, {s['files']}"
        f" files ({s['log_mb']} MiB), {DAYS} days; load {s['load_before']} -> {s['load_after']}",
        phases_table(s["phases"].values()),
        f"ours / floor [bold]{s['ratio']:.2f}[/bold] (CPU {s['cpu_ratio']:.2f}); "
        f"{_verdict(s, res['scale'])}; verified: {s['verified']}",
        f"\n[bold]window[/bold] {w['summary_rows']:,} summary rows, {WINDOW_DAYS} days; "
        f"load {w['load_before']} -> {w['load_after']}",
        phases_table(w["phases"].values()),
        f"window / raw read [bold]{w['ratio']:.2f}[/bold] (CPU {w['cpu_ratio']:.2f}), history /"
        f" raw read {w['history_ratio']:.2f}; {_verdict(w, res['scale'])}",
    ):
        Console(width=140).print(line)


def _verdict(part: dict[str, Any], scale: str) -> str:
    met = "applies at large scale" if scale != "large" else "met" if part["met"] else "NOT met"
    return f"target {part['target_s']:g} s: {met}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after a warm-up")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    res = run(SCALES[args.scale], args.repeats or SCALES[args.scale].repeats)
    print(json.dumps(res, indent=2, default=str)) if args.json else print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
