"""Data of the offline benchmark (``benchmarks/offline.py``): its scales, the variants of how
the same rows are stored (time zone, time precision, key type, writer), the seeded generator
of the feature source and the spine, and the feature repo written beside them."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
DATA_ROOT = HERE / ".data"
DATA_VERSION = 2  # bump when the generator changes, so stale data is rebuilt

VIEW = "entity_stats"
TTL_DAYS = 7
FLOAT_FEATURES = [f"f{i}" for i in range(6)]
INT_FEATURES = [f"f{i}" for i in range(6, 9)]
STRING_FEATURES = ["f9"]
FEATURES = FLOAT_FEATURES + INT_FEATURES + STRING_FEATURES
TIME_COLUMNS = ("event_time", "created", "event_timestamp")
START = dt.datetime(2024, 1, 1)
START_US = int(START.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)
HOURS = 366 * 24
MARGIN_HOURS = 14 * 24  # spine times run this far before the first and after the last row
KEY_DIGITS = 6  # string keys: "user_000123"


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
    "small": Scale("small", entities=1_000, rows_per_entity=100, spine_rows=10_000, repeats=5),
    "medium": Scale("medium", entities=10_000, rows_per_entity=100, spine_rows=100_000, repeats=3),
    "large": Scale("large", entities=100_000, rows_per_entity=100, spine_rows=1_000_000, repeats=2),
}


@dataclass(frozen=True)
class Variant:
    """How the same rows are stored, in the source and in the spine alike: the time zone of
    the timestamps (None: naive), their unit, the type of the entity key and what wrote the
    Parquet files (Polars, or pandas ``to_parquet`` from a pandas frame)."""

    name: str
    zone: str | None
    unit: Literal["ms", "us", "ns"]
    keys: Literal["int", "string"]
    writer: Literal["polars", "pandas"]
    about: str

    @property
    def dtype(self) -> pl.Datetime:
        """The Polars dtype of every timestamp, as written and as read back."""
        return pl.Datetime(self.unit, self.zone)

    @property
    def duckdb_type(self) -> str:
        """The DuckDB type of the source's timestamps (a Parquet ms column reads as
        TIMESTAMP); that of the spine's is the same or, for ms, TIMESTAMP_MS."""
        if self.zone is None:
            return "TIMESTAMP_NS" if self.unit == "ns" else "TIMESTAMP"
        return "TIMESTAMPTZ_NS" if self.unit == "ns" else "TIMESTAMPTZ"

    @property
    def tick_us(self) -> int:
        """The smallest step of the unit in microseconds (ns times stay on whole us)."""
        return 1000 if self.unit == "ms" else 1


VARIANTS = {
    v.name: v
    for v in (
        Variant("naive-us", None, "us", "int", "polars", "naive Datetime(us), int keys"),
        Variant("naive-ms", None, "ms", "int", "polars", "naive Datetime(ms), int keys"),
        Variant("utc-us", "UTC", "us", "int", "polars", "Datetime(us, UTC), int keys"),
        Variant(
            "utc-ns-pandas", "UTC", "ns", "int", "pandas", "pandas datetime64[ns, UTC], int keys"
        ),
        Variant(
            "ny-us",
            "America/New_York",
            "us",
            "int",
            "polars",
            "Datetime(us, America/New_York), int keys",
        ),
        Variant("string-keys", None, "us", "string", "polars", "naive Datetime(us), str keys"),
    )
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


def times(epoch_us: np.ndarray, variant: Variant) -> pl.Series:
    """Microseconds since the epoch as the variant's timestamps (the same instants)."""
    naive = pl.Series(epoch_us).cast(pl.Datetime("us"))
    if variant.zone is not None:
        naive = naive.dt.replace_time_zone("UTC").dt.convert_time_zone(variant.zone)
    return naive.cast(variant.dtype)


def keys(ids: np.ndarray, variant: Variant) -> pl.Series:
    """Entity ids as the variant's keys: integers, or strings such as ``user_000123``."""
    series = pl.Series(ids)
    if variant.keys == "int":
        return series
    return ("user_" + series.cast(pl.String).str.zfill(KEY_DIGITS)).rename("entity_id")


def generate_features(scale: Scale, variant: Variant, rng: np.random.Generator) -> pl.DataFrame:
    """Feature rows ordered by event_time, as a log would be; about one row in ten repeats
    the event_time of its entity's previous row, so only ``created`` orders the two."""
    n_ent, per = scale.entities, scale.rows_per_entity
    hours = np.sort(rng.integers(0, HOURS, size=(n_ent, per), dtype=np.int64), axis=1)
    tie = rng.random((n_ent, per)) < 0.10
    tie[:, 0] = False
    hours[:, 1:] = np.where(tie[:, 1:], hours[:, :-1], hours[:, 1:])
    event_us = hours.ravel() * 3_600_000_000
    # created: a random lag of up to six hours, plus the row's index within its entity in
    # ticks of the unit so no two rows of an entity share (event_time, created).
    lag_us = rng.integers(0, 6 * 3600, size=(n_ent, per), dtype=np.int64) * 1_000_000
    index = np.arange(per, dtype=np.int64)[None, :] * variant.tick_us
    created_us = event_us + (lag_us + index).ravel()
    entity_id = np.repeat(np.arange(n_ent, dtype=np.int64), per)
    # time order; ties keep a random order, so file order says nothing about created.
    order = np.lexsort((rng.random(entity_id.size), event_us))

    n = entity_id.size
    cols: dict[str, Any] = {
        "entity_id": keys(entity_id[order], variant),
        "event_time": times(event_us[order] + START_US, variant),
        "created": times(created_us[order] + START_US, variant),
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


def generate_spine(scale: Scale, variant: Variant, rng: np.random.Generator) -> pl.DataFrame:
    """Spine rows in random order: 1% of keys are unknown, times run from two weeks before
    the first row to two weeks after the last; half sit on the hour grid of the event times,
    so a spine time often equals an event time or lies exactly ttl after one."""
    n = scale.spine_rows
    entity_id = rng.integers(0, int(scale.entities * 1.01), size=n, dtype=np.int64)
    hours = rng.integers(-MARGIN_HOURS, HOURS + MARGIN_HOURS, size=n, dtype=np.int64)
    jitter = np.where(rng.random(n) < 0.5, 0, rng.integers(0, 3_600_000_000, size=n))
    jitter -= jitter % variant.tick_us
    ts_us = START_US + hours * 3_600_000_000 + jitter
    return pl.DataFrame(
        {
            "entity_id": keys(entity_id, variant),
            "event_timestamp": times(ts_us, variant),
            "label": rng.integers(0, 2, size=n, dtype=np.int8),
        }
    )


def write(frame: pl.DataFrame, path: Path, variant: Variant) -> None:
    """Write with Polars, or as a pandas user would: a pandas frame and ``to_parquet``."""
    if variant.writer == "polars":
        frame.write_parquet(path, statistics=True)
        return
    pdf = frame.to_pandas()
    for col in TIME_COLUMNS:
        if col in pdf.columns:
            zone = f", {variant.zone}" if variant.zone else ""
            pdf[col] = pdf[col].astype(f"datetime64[{variant.unit}{zone}]")
    pdf.to_parquet(path)
    read = pl.read_parquet_schema(path)
    assert all(read[c] == variant.dtype for c in TIME_COLUMNS if c in read), read


def data_root(scale: Scale, variant: Variant) -> Path:
    """Where the scale's data and repo of the variant live."""
    return DATA_ROOT / scale.name / variant.name


def ensure_data(scale: Scale, variant: Variant) -> tuple[Path, bool]:
    """Write the Parquet files once (reused when present); True when generated."""
    root = data_root(scale, variant)
    data = root / "data"
    marker = data / "generated.json"
    want = {"version": DATA_VERSION, **asdict(scale), "variant": asdict(variant)}
    want.pop("repeats")
    want["variant"].pop("about")
    if marker.exists() and json.loads(marker.read_text()) == want:
        return root, False
    data.mkdir(parents=True, exist_ok=True)
    marker.unlink(missing_ok=True)
    rng = np.random.default_rng(20241123)
    write(generate_features(scale, variant, rng), data / "features.parquet", variant)
    write(generate_spine(scale, variant, rng), data / "spine.parquet", variant)
    marker.write_text(json.dumps(want))
    return root, True


def write_repo(root: Path, threads: int | None) -> None:
    """featurestore.yaml and the definitions module of the benchmark repo."""
    offline = f"offline_store:\n  threads: {threads}\n" if threads else ""
    (root / "featurestore.yaml").write_text(f"project: offline_benchmark\n{offline}")
    (root / "definitions.py").write_text(textwrap.dedent(DEFINITIONS).lstrip())
