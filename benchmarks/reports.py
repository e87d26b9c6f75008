"""Benchmark: drift and skew reports against hand-written DuckDB queries over the same files.

Drift: one view of 50 features (40 ``Float64``, 5 ``String``, 5 ``Boolean``); a reference and a
current training set of N rows each (1,000,000 at large scale) saved with ``TrainingSet.save``,
the current one with six features drifted. Times ``store.drift_report(reference, current)`` end
to end against one DuckDB query over the current Parquet file that counts the 40 numeric
columns in the reference's decile bins and the values of the other ten (the floor), and checks
first that exactly the drifted features are flagged and that the report's current histograms
hold the floor's counts.

Skew: one view of 6 features and an on-demand view of 2, materialized to SQLite; a serving log
of single-entity requests (200,000 at large scale) served by the real retrieval and written by
the real serving log writer, about 1% of them served a stale row. Times
``store.skew_report(start, end)`` end to end against two DuckDB queries over the same log files:
a scan that extracts keys, request data and served values from the JSON columns, and a
hand-written replay that also joins each record point in time with the source and counts the
mismatches per feature; checks first that the report's counts equal the replay's and that
exactly the features fed by the stale rows are flagged.

    python benchmarks/reports.py --scale small
    python benchmarks/reports.py --scale large --json
    python benchmarks/reports.py --scale large --only drift --profile
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import io
import json
import math
import pstats
import resource
import shutil
import sys
import textwrap
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
from machine import load_average, machine, reference_connection, versions
from phase import Phase, alternate, phases_table, warm_up

from featurestore import FeatureStore
from featurestore._profiles import TOP_K, FeatureProfile
from featurestore.monitoring._drift import DriftReport
from featurestore.monitoring._report import Verdict
from featurestore.monitoring._skew import SkewReport
from featurestore.offline._training_set import (
    METADATA_KEY,
    TrainingSet,
    TrainingSetFeature,
    TrainingSetMetadata,
)
from featurestore.serving._response import OnlineResponse

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data" / "reports"
DATA_VERSION = 1  # bump when a generator changes, so stale data is rebuilt
TARGETS_S = {"drift": 3.0, "skew": 10.0}  # at large scale


@dataclass(frozen=True)
class Scale:
    """Sizes of one benchmark scale and how many times each side runs."""

    name: str
    drift_rows: int  # per side
    log_records: int
    entities: int  # of the skew view
    repeats: int


SCALES = {
    "small": Scale("small", drift_rows=100_000, log_records=20_000, entities=10_000, repeats=3),
    "large": Scale("large", drift_rows=1_000_000, log_records=200_000, entities=100_000, repeats=2),
}


def _sql_path(path: Path | str) -> str:
    return str(path).replace("'", "''")


# =========================================================================== drift

DRIFT_VIEW = "stats"
FLOATS = [f"f{i:02d}" for i in range(40)]
STRINGS = [f"c{i}" for i in range(5)]
BOOLEANS = [f"b{i}" for i in range(5)]
DRIFT_FEATURES = FLOATS + STRINGS + BOOLEANS
VOCAB_SIZES = (5, 12, 30, 60, 200)  # categories of c0..c4; c4 has more than TOP_K
TRUE_RATES = (0.1, 0.3, 0.5, 0.7, 0.9)
DRIFTED = {
    "f00": "mean +0.5 std",
    "f01": "log-std x2 (lognormal values squared)",
    "f02": "null rate 0% -> 8%",
    "c0": "share of its rarest category 11% -> 22%",
    "c1": "3% of rows in a category the reference never saw",
    "b0": "true rate 10% -> 25%",
}
REFERENCE_START = dt.datetime(2025, 1, 1)
CURRENT_START = dt.datetime(2025, 3, 1)

DRIFT_DEFINITIONS = f'''
"""Benchmark repo: one view of 40 Float64, 5 String and 5 Boolean features."""

from datetime import timedelta

import polars as pl

from featurestore import Entity, Feature, FeatureView, FileSource

entity = Entity("entity", join_keys=["entity_id"])

{DRIFT_VIEW} = FeatureView(
    name="{DRIFT_VIEW}",
    entities=[entity],
    source=FileSource(name="stats_src", path="data/source.parquet", timestamp_field="event_time"),
    ttl=timedelta(days=30),
    owner="benchmarks",
    features=[
        *(Feature(f"f{{i:02d}}", pl.Float64) for i in range(40)),
        *(Feature(f"c{{i}}", pl.String) for i in range(5)),
        *(Feature(f"b{{i}}", pl.Boolean) for i in range(5)),
    ],
)
'''


def _with_nulls(values: pl.Series, rng: np.random.Generator, rate: float) -> pl.Series:
    if not rate:
        return values
    mask = pl.Series(rng.random(values.len()) < rate)
    return values.to_frame().select(
        pl.when(pl.lit(mask)).then(None).otherwise(pl.col(values.name)).alias(values.name)
    )[values.name]


def _float_column(i: int, n: int, rng: np.random.Generator, drifted: bool) -> pl.Series:
    """Four shapes by ``i % 4``: normal, lognormal, uniform, Poisson counts (ties at every
    decile); about 1% nulls in every fifth column."""
    shape = i % 4
    if shape == 0:
        values = rng.normal(loc=i, scale=1.0 + i % 5, size=n)
    elif shape == 1:
        values = rng.lognormal(mean=0.0, sigma=0.5 + 0.1 * (i % 3), size=n)
    elif shape == 2:
        values = rng.uniform(-i, i + 1.0, size=n)
    else:
        values = rng.poisson(3 + i % 7, size=n).astype(np.float64)
    name = FLOATS[i]
    null_rate = 0.01 if i % 5 == 3 else 0.0
    if drifted and name == "f00":
        values = values + 0.5 * (1.0 + i % 5)
    elif drifted and name == "f01":
        values = np.exp(2.0 * np.log(values))  # lognormal sigma doubled
    elif drifted and name == "f02":
        null_rate = 0.08
    return _with_nulls(pl.Series(name, values), rng, null_rate)


def _string_column(i: int, n: int, rng: np.random.Generator, drifted: bool) -> pl.Series:
    """Zipf-like shares over a vocabulary; 1% nulls in c2."""
    size = VOCAB_SIZES[i]
    weights = 1.0 / np.arange(1, size + 1) ** 0.8
    if drifted and STRINGS[i] == "c0":
        weights = weights / weights.sum()
        weights[-1] += 0.15
    vocab = pl.Series([f"{STRINGS[i]}_value_{k:03d}" for k in range(size)])
    values = vocab.gather(rng.choice(size, size=n, p=weights / weights.sum())).alias(STRINGS[i])
    if drifted and STRINGS[i] == "c1":
        unseen = pl.Series(rng.random(n) < 0.03)
        values = values.to_frame().select(
            pl.when(pl.lit(unseen)).then(pl.lit("c1_new_value")).otherwise(pl.col("c1")).alias("c1")
        )["c1"]
    return _with_nulls(values, rng, 0.01 if i == 2 else 0.0)


def _bool_column(i: int, n: int, rng: np.random.Generator, drifted: bool) -> pl.Series:
    rate = 0.25 if drifted and BOOLEANS[i] == "b0" else TRUE_RATES[i]
    return _with_nulls(pl.Series(BOOLEANS[i], rng.random(n) < rate), rng, 0.02 if i == 4 else 0.0)


def drift_frame(
    n: int, rng: np.random.Generator, start: dt.datetime, drifted: bool, time_column: str
) -> pl.DataFrame:
    """``n`` rows of the 50 features, keyed by entity_id, times spread over 28 days."""
    start_us = int(start.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    times = start_us + rng.integers(0, 28 * 86_400, size=n, dtype=np.int64) * 1_000_000
    return pl.DataFrame(
        [
            pl.Series("entity_id", np.arange(n, dtype=np.int64)),
            pl.Series(time_column, np.sort(times)).cast(pl.Datetime("us")),
            *(_float_column(i, n, rng, drifted) for i in range(len(FLOATS))),
            *(_string_column(i, n, rng, drifted) for i in range(len(STRINGS))),
            *(_bool_column(i, n, rng, drifted) for i in range(len(BOOLEANS))),
        ]
    )


def _write_repo(root: Path, config: str, definitions: str) -> None:
    (root / "featurestore.yaml").write_text(config)
    (root / "definitions.py").write_text(textwrap.dedent(definitions).lstrip())


def _training_set(store: FeatureStore, frame: pl.DataFrame) -> TrainingSet:
    """A training set of ``frame`` with the metadata ``get_training_set`` would record (the
    applied fingerprints, the spine time range); statuses are not recorded."""
    refs = [f"{DRIFT_VIEW}:{c}" for c in DRIFT_FEATURES]
    fingerprints = store.applied_fingerprints(refs)
    ts = frame["event_timestamp"]
    metadata = TrainingSetMetadata(
        project=store.project,
        created_at=dt.datetime.now(dt.UTC),
        row_count=frame.height,
        timestamp_column="event_timestamp",
        spine_start=ts.min(),  # type: ignore[arg-type]
        spine_end=ts.max(),  # type: ignore[arg-type]
        features=[
            TrainingSetFeature(
                ref=ref, column=c, dtype=str(frame.schema[c]), fingerprint=fingerprints[ref]
            )
            for ref, c in zip(refs, DRIFT_FEATURES, strict=True)
        ],
    )
    return TrainingSet(frame, metadata)


@dataclass
class DriftData:
    """The drift repo and its two saved training sets."""

    root: Path
    reference: Path
    current: Path
    generated: bool
    seconds: float


def ensure_drift_data(scale: Scale) -> DriftData:
    """Write the repo, apply it, and save both training sets once (reused when present)."""
    started = time.perf_counter()
    root = DATA_ROOT / scale.name / "drift"
    (root / "data").mkdir(parents=True, exist_ok=True)
    _write_repo(root, "project: drift_benchmark\n", DRIFT_DEFINITIONS)
    source = root / "data" / "source.parquet"
    if not source.exists():
        drift_frame(
            1_000, np.random.default_rng(1), REFERENCE_START, False, "event_time"
        ).write_parquet(source)
    store = FeatureStore(root)
    store.apply()
    fingerprints = store.applied_fingerprints([f"{DRIFT_VIEW}:{c}" for c in DRIFT_FEATURES])
    marker = root / "generated.json"
    want = {"version": DATA_VERSION, "rows": scale.drift_rows, "fingerprints": fingerprints}
    reference, current = root / "reference.parquet", root / "current.parquet"
    generated = not (
        marker.exists()
        and json.loads(marker.read_text()) == want
        and reference.exists()
        and current.exists()
    )
    if generated:
        rng = np.random.default_rng(20250301)
        for path, start, drifted in (
            (reference, REFERENCE_START, False),
            (current, CURRENT_START, True),
        ):
            frame = drift_frame(scale.drift_rows, rng, start, drifted, "event_timestamp")
            _training_set(store, frame).save(path)
            del frame
        marker.write_text(json.dumps(want))
    store.close()
    return DriftData(root, reference, current, generated, time.perf_counter() - started)


def reference_profiles(path: Path) -> dict[str, FeatureProfile]:
    """The profiles saved in a training set's footer, by column."""
    raw = (pq.read_schema(path).metadata or {})[METADATA_KEY]
    return TrainingSetMetadata.model_validate_json(raw).profiles


def decile_edges(profile: FeatureProfile) -> list[float]:
    """The reference's distinct decile edges: the PSI bins' inner boundaries."""
    return sorted(set(profile.bin_edges))


def drift_floor_sql(current: Path, profiles: dict[str, FeatureProfile]) -> str:
    """One scan of the current file: per numeric column its non-null counts in the reference's
    decile bins (``histogram`` at the edges; the key ``inf`` is the open top bin), per other
    column its value counts, plus the row count."""
    parts = ["count(*) AS n"]
    for c in FLOATS:
        edges = ", ".join(repr(e) for e in decile_edges(profiles[c]))
        parts.append(f"histogram({c}, [{edges}]::DOUBLE[]) AS {c}")
    parts += [f"histogram({c}) AS {c}" for c in STRINGS + BOOLEANS]
    return f"SELECT {', '.join(parts)} FROM read_parquet('{_sql_path(current)}')"


def run_drift_floor(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    (row,) = con.execute(sql).fetchall()
    return dict(zip(["n", *DRIFT_FEATURES], row, strict=True))


def _floor_buckets(
    column: str, counts: dict[Any, int], total: int, profile: FeatureProfile
) -> list[int]:
    """The floor's counts in the report's buckets: numeric bins (the top one keyed ``inf``); the
    reference's top categories, OTHER and NULL; or false, true and NULL."""
    if column in FLOATS:
        return [int(counts.get(k, 0)) for k in [*decile_edges(profile), math.inf]]
    non_null = sum(counts.values())
    if column in BOOLEANS:
        return [counts.get(False, 0), counts.get(True, 0), total - non_null]
    top = [counts.get(v, 0) for v, _ in profile.top_categories[:TOP_K]]
    return [*top, non_null - sum(top), total - non_null]


def check_drift(
    report: DriftReport, floor: dict[str, Any], profiles: dict[str, FeatureProfile]
) -> dict[str, Any]:
    """Fail loudly unless exactly the drifted features are flagged, every other one is OK, and
    each current histogram in the report equals the floor's counts."""
    verdicts = {f.ref.split(":", 1)[1]: f.verdict for f in report.features}
    flagged = {c for c, v in verdicts.items() if v == Verdict.FLAGGED}
    not_ok = {c: str(v) for c, v in verdicts.items() if c not in DRIFTED and v != Verdict.OK}
    if flagged != set(DRIFTED) or not_ok or set(verdicts) != set(DRIFT_FEATURES):
        raise SystemExit(
            f"MISMATCH drift verdicts: flagged {sorted(flagged)}, expected {sorted(DRIFTED)}; "
            f"undrifted features not OK: {not_ok}"
        )
    for f in report.features:
        column = f.ref.split(":", 1)[1]
        assert f.histogram is not None
        want = _floor_buckets(column, floor[column] or {}, int(floor["n"]), profiles[column])
        shares = np.asarray(f.histogram["current"], dtype=np.float64)
        got = np.rint(shares * sum(want)).astype(np.int64).tolist()
        if got != want:
            raise SystemExit(
                f"MISMATCH drift histogram of {f.ref}: report {got}, DuckDB floor {want}"
            )
    return {
        "flagged": sorted(flagged),
        "verdicts": {str(v): sum(x == v for x in verdicts.values()) for v in Verdict},
        "checked": (
            "exactly the 6 drifted features flagged, the other 44 OK; every current histogram "
            "(50 features) equal to the floor's counts"
        ),
        "reasons": {f.ref: f.reasons[0] for f in report.features if f.verdict == Verdict.FLAGGED},
    }


# =========================================================================== skew

SKEW_VIEW = "user_stats"
ODFV = "txn_risk"
SKEW_FEATURES = {
    "f0": pl.Float64,
    "f1": pl.Float64,
    "f2": pl.Float64,
    "n0": pl.Int64,
    "c0": pl.String,
    "b0": pl.Boolean,
}
ODFV_FEATURES = ["amount_ratio", "amount_x_f1"]
SKEW_REFS = [f"{SKEW_VIEW}:{f}" for f in SKEW_FEATURES] + [f"{ODFV}:{f}" for f in ODFV_FEATURES]
CHANGED = ["f0", "n0", "c0"]  # features whose late rows carry new values
STALE_SKEW = {f"{SKEW_VIEW}:{f}" for f in CHANGED} | {f"{ODFV}:amount_ratio"}
SKEW_TTL_DAYS = 90
ROWS_PER_ENTITY = 3
LATE_SHARE = 0.01  # entities with a source row that arrives after the materialization
UNKNOWN_SHARE = 0.01  # requests for entities without any row
BATCH = 25  # entity rows per get_online_features call while generating the log
T0 = dt.datetime(2025, 6, 1)  # materialization
LATE = T0 + dt.timedelta(days=1)  # event time of the late rows
T1 = T0 + dt.timedelta(days=3)  # first request
WINDOW = dt.timedelta(days=2)  # requests run over [T1, T1 + WINDOW)

SKEW_DEFINITIONS = f'''
"""Benchmark repo: one view of 6 features, one on-demand view of 2."""

from datetime import timedelta

import polars as pl

from featurestore import (
    Entity,
    Feature,
    FeatureView,
    FileSource,
    RequestSource,
    on_demand_feature_view,
)

user = Entity("user", join_keys=["user_id"])

{SKEW_VIEW} = FeatureView(
    name="{SKEW_VIEW}",
    entities=[user],
    source=FileSource(name="user_events", path="data/source.parquet", timestamp_field="event_time"),
    ttl=timedelta(days={SKEW_TTL_DAYS}),
    owner="benchmarks",
    features=[
        Feature("f0", pl.Float64),
        Feature("f1", pl.Float64),
        Feature("f2", pl.Float64),
        Feature("n0", pl.Int64),
        Feature("c0", pl.String),
        Feature("b0", pl.Boolean),
    ],
)

txn = RequestSource("txn", schema={{"amount": pl.Float64}})


@on_demand_feature_view(
    sources=[txn, {SKEW_VIEW}],
    schema={{"amount_ratio": pl.Float64, "amount_x_f1": pl.Float64}},
)
def {ODFV}(df: pl.DataFrame) -> pl.DataFrame:
    return df.select(
        (pl.col("amount") / (pl.col("f0").abs() + 1.0)).alias("amount_ratio"),
        (pl.col("amount") * pl.col("f1")).alias("amount_x_f1"),
    )
'''
SKEW_CONFIG = "project: skew_benchmark\nserving_log:\n  queue_size: 1000000\n"


def skew_source(entities: int, rng: np.random.Generator) -> pl.DataFrame:
    """``ROWS_PER_ENTITY`` rows per entity at whole seconds over the 92 days before T0, so for a
    few entities (about 0.02%) even the latest row is past the ttl at request time (served
    STALE); 1% nulls in f2 and c0."""
    n = entities * ROWS_PER_ENTITY
    t0_us = int(T0.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
    seconds = rng.integers(3600, 92 * 86_400, size=n, dtype=np.int64)
    vocab = pl.Series([f"segment_{c}" for c in "abcdefghij"])
    frame = pl.DataFrame(
        [
            pl.Series("user_id", np.repeat(np.arange(entities, dtype=np.int64), ROWS_PER_ENTITY)),
            pl.Series("event_time", t0_us - seconds * 1_000_000).cast(pl.Datetime("us")),
            pl.Series("f0", rng.normal(0.0, 3.0, size=n)),
            pl.Series("f1", rng.lognormal(0.0, 1.0, size=n)),
            _with_nulls(pl.Series("f2", rng.uniform(-1.0, 1.0, size=n)), rng, 0.01),
            pl.Series("n0", rng.integers(0, 1000, size=n, dtype=np.int64)),
            _with_nulls(vocab.gather(rng.integers(0, vocab.len(), size=n)).alias("c0"), rng, 0.01),
            pl.Series("b0", rng.random(n) < 0.3),
        ]
    )
    return frame.sort("event_time")


def late_rows(source: pl.DataFrame, rng: np.random.Generator) -> pl.DataFrame:
    """For about LATE_SHARE of the entities whose latest row is fresh at every request time,
    a row at LATE: f0 +1 (0.5 where null), n0 +1, c0 renamed; f1, f2, b0 unchanged."""
    latest = source.sort("event_time").group_by("user_id").last()
    fresh = latest.filter(pl.col("event_time") > T0 - dt.timedelta(days=SKEW_TTL_DAYS - 10))
    chosen = fresh.filter(pl.Series(rng.random(fresh.height) < LATE_SHARE))
    return chosen.with_columns(
        pl.lit(LATE).cast(pl.Datetime("us")).alias("event_time"),
        (pl.col("f0") + 1.0).fill_null(0.5),
        pl.col("n0") + 1,
        (pl.col("c0") + "_new").fill_null("segment_new"),
    ).select(source.columns)


def _single(response: OnlineResponse, i: int) -> OnlineResponse:
    """Entity row ``i`` of a response, as the response to a request for that entity alone."""
    return OnlineResponse(
        entities={k: [v[i]] for k, v in response.entities.items()},
        refs=response.refs,
        values={c: [v[i]] for c, v in response.values.items()},
        statuses={c: [v[i]] for c, v in response.statuses.items()},
        dtypes=response.dtypes,
        fingerprints=response.fingerprints,
        request_time=response.request_time,
        event_times={k: [v[i]] for k, v in response.event_times.items()},
    )


def write_log(store: FeatureStore, scale: Scale, rng: np.random.Generator) -> None:
    """Serve ``log_records`` entity rows through ``get_online_features`` in calls of BATCH rows
    spread over the window, and log each row as its own request through the store's serving
    log writer (one record each, exactly as a single-entity request is logged)."""
    n = scale.log_records
    ids = rng.integers(0, int(scale.entities * (1 + UNKNOWN_SHARE)), size=n).tolist()
    amounts = np.round(rng.lognormal(3.0, 1.0, size=n), 2).tolist()
    calls = -(-n // BATCH)
    step_us = WINDOW // dt.timedelta(microseconds=1) // calls
    writer = store.serving_log
    for j in range(calls):
        lo, hi = j * BATCH, min((j + 1) * BATCH, n)
        at = T1 + dt.timedelta(microseconds=j * step_us + int(rng.integers(0, step_us)))
        started = time.perf_counter_ns()
        response = store.get_online_features(
            features=SKEW_REFS,
            entities={"user_id": ids[lo:hi]},
            request_data={"amount": amounts[lo:hi]},
            request_time=at,
        )
        latency_us = (time.perf_counter_ns() - started) // 1000 // (hi - lo)
        for i in range(hi - lo):
            writer.log(
                _single(response, i),
                request_id=uuid.uuid4().hex,
                latency_us=latency_us,
                request_data={"amount": [amounts[lo + i]]},
            )
        if j % 1000 == 999:
            writer.flush()
    writer.flush()
    if writer.dropped or writer.written != n:
        raise SystemExit(f"serving log: {writer.written} written, {writer.dropped} dropped of {n}")


@dataclass
class SkewData:
    """The skew repo, its source and serving log."""

    root: Path
    source: Path
    log_glob: str
    generated: bool
    seconds: float


def ensure_skew_data(scale: Scale) -> SkewData:
    """Build the repo, materialize, add late rows and write the serving log once."""
    started = time.perf_counter()
    root = DATA_ROOT / scale.name / "skew"
    marker = root / "generated.json"
    want = {"version": DATA_VERSION, **asdict(scale), "definitions": SKEW_DEFINITIONS}
    for key in ("drift_rows", "repeats", "name"):
        want.pop(key)
    generated = not (marker.exists() and json.loads(marker.read_text()) == want)
    if generated:
        shutil.rmtree(root, ignore_errors=True)
        (root / "data").mkdir(parents=True)
    _write_repo(root, SKEW_CONFIG, SKEW_DEFINITIONS)
    source = root / "data" / "source.parquet"
    if generated:
        rng = np.random.default_rng(20250601)
        base = skew_source(scale.entities, rng)
        base.write_parquet(source)
        store = FeatureStore(root)
        store.apply()
        store.materialize(end=T0)
        late = late_rows(base, rng)
        pl.concat([base, late]).sort("event_time").write_parquet(source)
        write_log(store, scale, rng)
        store.close()
        marker.write_text(json.dumps(want))
    log_glob = str(root / ".featurestore" / "logs" / "date=*" / "*.parquet")
    return SkewData(root, source, log_glob, generated, time.perf_counter() - started)


def _json_value(column: str, key: str, sql_type: str) -> str:
    return f"CAST({column}->>'$.\"{key}\"' AS {sql_type})"


_SQL_TYPES = {pl.Float64: "DOUBLE", pl.Int64: "BIGINT", pl.String: "VARCHAR", pl.Boolean: "BOOLEAN"}


def _served_columns() -> list[str]:
    """The served values, user id and amount extracted from the log's JSON text columns."""
    cols = [
        f"{_json_value('entity_keys', 'user_id', 'BIGINT')} AS user_id",
        f"{_json_value('request_data', 'amount', 'DOUBLE')} AS amount",
    ]
    values = '"values"'  # a keyword in DuckDB
    cols += [
        f"{_json_value(values, f'{SKEW_VIEW}:{f}', _SQL_TYPES[t])} AS s_{f}"
        for f, t in SKEW_FEATURES.items()
    ]
    cols += [f"{_json_value(values, f'{ODFV}:{f}', 'DOUBLE')} AS s_{f}" for f in ODFV_FEATURES]
    return cols


def skew_scan_sql(log_glob: str) -> str:
    """The scan floor: read the window's records and extract every served value from JSON,
    aggregated so that nothing is left out."""
    names = ["user_id", "amount", *(f"s_{f}" for f in [*SKEW_FEATURES, *ODFV_FEATURES])]
    aggregates = ", ".join(
        f"count({n}) AS n_{n}" + (f", sum({n}) AS sum_{n}" if n in {"user_id", "amount"} else "")
        for n in names
    )
    return f"""
SELECT count(*) AS records, {aggregates}
FROM (
  SELECT {", ".join(_served_columns())}
  FROM read_parquet('{_sql_path(log_glob)}', hive_partitioning = false)
  WHERE request_time >= $start AND request_time < $end
)
"""


def _mismatch_sql(name: str, is_float: bool) -> list[str]:
    s, o = f"s_{name}", f"o_{name}"
    differ = f"abs({s} - {o}) > 1e-9 + 1e-6 * abs({o})" if is_float else f"{s} <> {o}"
    return [
        f"count(*) FILTER (WHERE {s} IS NOT NULL AND {o} IS NOT NULL AND {differ}) AS vm_{name}",
        f"count(*) FILTER (WHERE {s} IS NULL AND {o} IS NOT NULL) AS sn_{name}",
        f"count(*) FILTER (WHERE {s} IS NOT NULL AND {o} IS NULL) AS on_{name}",
    ]


def skew_replay_sql(log_glob: str, source: Path) -> str:
    """The hand-written replay: the scan, an ASOF join of each record with the source at its
    request time (ttl as a CASE), the on-demand functions in SQL, and per feature the counts of
    value mismatches (floats with the default tolerances) and of null mismatches both ways."""
    fresh = f"o.event_time >= l.ts - INTERVAL {SKEW_TTL_DAYS} DAY"
    offline = [f"CASE WHEN {fresh} THEN o.{f} END AS o_{f}" for f in SKEW_FEATURES]
    checks = [e for f, t in SKEW_FEATURES.items() for e in _mismatch_sql(f, t == pl.Float64)]
    checks += [e for f in ODFV_FEATURES for e in _mismatch_sql(f, True)]
    return f"""
WITH log AS (
  SELECT CAST(request_time AS TIMESTAMP) AS ts, {", ".join(_served_columns())}
  FROM read_parquet('{_sql_path(log_glob)}', hive_partitioning = false)
  WHERE request_time >= $start AND request_time < $end
),
replay AS (
  SELECT l.*, {", ".join(offline)}
  FROM log l ASOF LEFT JOIN read_parquet('{_sql_path(source)}') o
    ON l.user_id = o.user_id AND l.ts >= o.event_time
)
SELECT count(*) AS records, {", ".join(checks)}
FROM (
  SELECT *, amount / (abs(o_f0) + 1.0) AS o_amount_ratio, amount * o_f1 AS o_amount_x_f1
  FROM replay
)
"""


def _fetch(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    window = {"start": T1.replace(tzinfo=dt.UTC), "end": (T1 + WINDOW).replace(tzinfo=dt.UTC)}
    cursor = con.execute(sql, window)
    names = [d[0] for d in cursor.description]
    (row,) = cursor.fetchall()
    return dict(zip(names, row, strict=True))


def expected_stale_records(con: duckdb.DuckDBPyConnection, data: SkewData) -> int:
    """Log records whose entity has a late row: each was served the row before it."""
    sql = f"""
SELECT count(*) FROM read_parquet('{_sql_path(data.log_glob)}', hive_partitioning = false)
WHERE CAST(entity_keys->>'$.user_id' AS BIGINT) IN (
  SELECT user_id FROM read_parquet('{_sql_path(data.source)}') WHERE event_time > $t0)
"""
    return int(con.execute(sql, {"t0": T0}).fetchall()[0][0])


def check_skew(report: SkewReport, replay: dict[str, Any], stale: int) -> dict[str, Any]:
    """Fail loudly unless every feature's counts equal the hand-written replay's, the features
    fed by the late rows are flagged with a stale materialization (or differing inputs) as the
    cause and mismatch on exactly the stale records, and every other feature is OK."""
    problems = []
    if report.rows_replayed != replay["records"]:
        problems.append(f"rows replayed {report.rows_replayed} vs {replay['records']} records")
    for r in report.results:
        name = r.ref.split(":", 1)[1]
        ours = (r.rows_compared, r.mismatches, r.served_null_offline_value)
        ours += (r.served_value_offline_null,)
        theirs = (replay["records"], replay[f"vm_{name}"], replay[f"sn_{name}"])
        theirs += (replay[f"on_{name}"],)
        if ours != theirs:
            problems.append(f"{r.ref}: report (rows, vm, sn, on) {ours} vs replay {theirs}")
        if r.ref in STALE_SKEW:
            cause = r.causes.get("served_older_rows", r.causes.get("inputs_differ_rows"))
            if r.verdict != Verdict.FLAGGED or cause != r.mismatches + r.null_mismatches:
                problems.append(f"{r.ref}: {r.verdict}, causes {r.causes}")
            if r.ref.startswith(SKEW_VIEW) and r.mismatches + r.null_mismatches != stale:
                problems.append(f"{r.ref}: {r.mismatches} mismatches, {stale} stale records")
        elif r.verdict != Verdict.OK:
            problems.append(f"{r.ref}: {r.verdict} ({r.reasons})")
    if {r.ref for r in report.results} != set(SKEW_REFS):
        problems.append(f"features {[r.ref for r in report.results]}")
    if problems:
        raise SystemExit("MISMATCH skew: " + "; ".join(problems))
    stale_share = report.result(f"{SKEW_VIEW}:f1").served_status_shares.get("STALE")
    return {
        "flagged": sorted(r.ref for r in report.results if r.verdict == Verdict.FLAGGED),
        "stale_records": stale,
        "served_stale_share": stale_share,
        "checked": (
            "rows compared, value and null mismatches of all 8 features equal to the "
            "hand-written replay; the 4 features fed by late rows flagged, each mismatch "
            "explained by the stale materialization (or its inputs), the other 4 OK"
        ),
        "reasons": {r.ref: r.reasons[0] for r in report.results if r.verdict == Verdict.FLAGGED},
    }


# =========================================================================== measuring


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any]) -> tuple[Any, float, float]:
    """``fn()``, its wall seconds and the CPU seconds of this process (all threads) meanwhile,
    after a garbage collection. On a loaded machine CPU time says what the work costs."""
    gc.collect()
    cpu = _cpu_seconds()
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started, _cpu_seconds() - cpu


def profile_call(fn: Callable[[], Any], top: int = 30) -> str:
    """A cProfile of one call of ``fn``: the ``top`` entries by cumulative time."""
    profiler = cProfile.Profile()
    profiler.enable()
    fn()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


def run_drift(scale: Scale, repeats: int, profile: bool) -> dict[str, Any]:
    """Warm up, check, and time the drift report against the DuckDB floor."""
    data = ensure_drift_data(scale)
    store = FeatureStore(data.root)
    profiles = reference_profiles(data.reference)
    con, _ = reference_connection()
    sql = drift_floor_sql(data.current, profiles)
    phases = {
        "ours": Phase("featurestore", "store.drift_report(reference.parquet, current.parquet)"),
        "floor": Phase("DuckDB floor", "one scan: 40 x histogram(x, deciles), 10 x histogram(x)"),
    }
    sides: dict[str, Callable[[], Any]] = {
        "ours": lambda: store.drift_report(data.reference, data.current),
        "floor": lambda: run_drift_floor(con, sql),
    }
    results = warm_up(phases, sides, timed)
    verified = check_drift(results["ours"], results["floor"], profiles)
    results.clear()
    load_before = load_average()
    alternate(phases, sides, repeats, timed, "cpu_s")
    out: dict[str, Any] = {
        "rows": {
            "reference": scale.drift_rows,
            "current": scale.drift_rows,
            "features": {
                "Float64": len(FLOATS),
                "String": len(STRINGS),
                "Boolean": len(BOOLEANS),
            },
            "current_file_mb": round(data.current.stat().st_size / 2**20, 1),
        },
        "drifted": DRIFTED,
        "data_generated": data.generated,
        "setup_seconds": round(data.seconds, 1),
        "verified": verified,
        "load_before": load_before,
        "load_after": load_average(),
        "phases": {k: p.to_dict() for k, p in phases.items()},
        "ratio": round(phases["ours"].best_s / phases["floor"].best_s, 2),
        "cpu_ratio": round(phases["ours"].best_cpu_s / phases["floor"].best_cpu_s, 2),
        "target_s": TARGETS_S["drift"],
    }
    if profile:
        out["profile"] = profile_call(sides["ours"])
    con.close()
    store.close()
    return out


def run_skew(scale: Scale, repeats: int, profile: bool) -> dict[str, Any]:
    """Warm up, check, and time the skew report against the two DuckDB floors."""
    data = ensure_skew_data(scale)
    store = FeatureStore(data.root)
    store.apply()
    con, _ = reference_connection()
    scan, replay = skew_scan_sql(data.log_glob), skew_replay_sql(data.log_glob, data.source)
    start, end = T1, T1 + WINDOW
    phases = {
        "ours": Phase("featurestore", "store.skew_report(start, end)"),
        "replay": Phase(
            "DuckDB replay", "log scan + JSON + ASOF join with the source + mismatch counts"
        ),
        "scan": Phase("DuckDB scan", "log scan + JSON extraction of keys, request, values"),
    }
    sides: dict[str, Callable[[], Any]] = {
        "ours": lambda: store.skew_report(start, end),
        "replay": lambda: _fetch(con, replay),
        "scan": lambda: _fetch(con, scan),
    }
    results = warm_up(phases, sides, timed)
    verified = check_skew(results["ours"], results["replay"], expected_stale_records(con, data))
    records = results["scan"]["records"]
    results.clear()
    load_before = load_average()
    alternate(phases, sides, repeats, timed, "cpu_s")
    files = list(Path(data.log_glob).parent.parent.glob("date=*/*.parquet"))
    source_rows = pq.read_metadata(data.source).num_rows
    out: dict[str, Any] = {
        "rows": {
            "log_records": records,
            "log_files": len(files),
            "log_mb": round(sum(f.stat().st_size for f in files) / 2**20, 1),
            "source_rows": source_rows,
            "entities": scale.entities,
            "features": len(SKEW_REFS),
        },
        "data_generated": data.generated,
        "setup_seconds": round(data.seconds, 1),
        "verified": verified,
        "load_before": load_before,
        "load_after": load_average(),
        "phases": {k: p.to_dict() for k, p in phases.items()},
        "ratio": round(phases["ours"].best_s / phases["replay"].best_s, 2),
        "cpu_ratio": round(phases["ours"].best_cpu_s / phases["replay"].best_cpu_s, 2),
        "ratio_scan": round(phases["ours"].best_s / phases["scan"].best_s, 2),
        "target_s": TARGETS_S["skew"],
    }
    if profile:
        out["profile"] = profile_call(sides["ours"])
    con.close()
    store.close()
    return out


def run(scale: Scale, repeats: int, only: str | None, profile: bool) -> dict[str, Any]:
    """Both benchmarks (or one) with the machine, versions, date and load around them."""
    res: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "scale": scale.name,
        "repeats": repeats,
        "load_at_start": load_average(),
        "machine": machine(),
        "versions": versions(),
    }
    if only in (None, "drift"):
        res["drift"] = run_drift(scale, repeats, profile)
    if only in (None, "skew"):
        res["skew"] = run_skew(scale, repeats, profile)
    res["finished"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    return res


def _verdict(best: float, target: float, scale: str) -> str:
    if scale != "large":
        return f"target {target:g} s applies at large scale"
    return f"target {target:g} s: {'met' if best <= target else 'NOT met'}"


def print_table(res: dict[str, Any]) -> None:
    """The results as tables, with sizes and load above and ratios below."""
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        console = Console(width=140)
    console.print(
        f"[bold]reports benchmark, scale={res['scale']}[/bold], {res['date']} to "
        f"{res['finished']} UTC; load average (1, 5, 15 min) at start {res['load_at_start']}\n"
        f"DuckDB {res['versions']['duckdb']}, Polars {res['versions']['polars']}, "
        f"{res['machine']['cpus']} CPUs, {res['machine']['memory_gb']} GiB; "
        f"{res['repeats']} timed runs per side after a warm-up, alternating"
    )
    for kind in ("drift", "skew"):
        part = res.get(kind)
        if part is None:
            continue
        rows = part["rows"]
        if kind == "drift":
            about = (
                f"{rows['reference']:,} reference rows vs {rows['current']:,} current rows, "
                f"{sum(rows['features'].values())} features {rows['features']}, current file "
                f"{rows['current_file_mb']} MiB"
            )
        else:
            about = (
                f"{rows['log_records']:,} logged single-entity requests in {rows['log_files']} "
                f"files ({rows['log_mb']} MiB), {rows['features']} features, source of "
                f"{rows['source_rows']:,} rows over {rows['entities']:,} entities"
            )
        console.print(
            f"\n[bold]{kind}[/bold]: {about}\ndata "
            f"{'generated' if part['data_generated'] else 'reused'} (setup "
            f"{part['setup_seconds']} s); load before/after the timed runs "
            f"{part['load_before']} / {part['load_after']}"
        )
        console.print(phases_table(part["phases"].values()))
        best = part["phases"]["ours"]["best_s"]
        floor = "floor" if kind == "drift" else "hand-written replay"
        ratios = (
            f"ratio featurestore / {floor}, best wall times: [bold]{part['ratio']:.2f}[/bold], "
            f"lowest CPU times: {part['cpu_ratio']:.2f}"
        )
        if kind == "skew":
            ratios += f"; featurestore / log scan (wall): {part['ratio_scan']:.2f}"
        console.print(
            f"{ratios}\n{_verdict(best, part['target_s'], res['scale'])}; verified: "
            f"{part['verified']['checked']}; flagged: {', '.join(part['verified']['flagged'])}"
        )
        if "profile" in part:
            console.print(part["profile"], markup=False, highlight=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--repeats", type=int, default=None, help="timed runs after a warm-up")
    parser.add_argument("--only", choices=["drift", "skew"], help="run one of the two")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--profile", action="store_true", help="add a cProfile of one call of each report"
    )
    args = parser.parse_args(argv)
    scale = SCALES[args.scale]
    res = run(scale, args.repeats or scale.repeats, args.only, args.profile)
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        print()
    else:
        print_table(res)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
