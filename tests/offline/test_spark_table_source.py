"""``TableSource`` on Spark: a view over a catalog table (written with ``saveAsTable``) gives the
training set the oracle computes, and the one DuckDB gives for the same rows as a FileSource;
apply, validate and status read a table without files through Spark (its schema checked, a
missing column named); a table missing from the catalog is a SourceNotFoundError that says
what to do. The tables live in databases of their own under the test's directory, on the one
local Spark session the Spark tests share."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import polars as pl
import pytest
from conftest import USER, definitions, rows_frame, view, write_repo
from hypothesis import HealthCheck, given, settings
from rich.console import Console

from featurestore import ApplyError, FeatureStore, SourceNotFoundError, TableSource
from featurestore.cli._render._validation import validation

from .conftest import PitRepo, Row, to_frame, write_pit_repo, write_sources
from .push_repo import BASE, MINUTE, TXN_SCHEMA, H, txn
from .test_point_in_time import check_against_oracle, spine_frame
from .test_point_in_time import scenarios as pit_scenarios
from .test_spark_engine import SPARK

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

pytest.importorskip("pyspark")

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
FILE_SOURCE = (
    'FileSource(name="user_stats_src", path="data/user_stats.parquet", '
    'timestamp_field="event_time", created_timestamp_field="created")'
)
T = dt.datetime(2024, 1, 1)


@dataclass
class Catalog:
    """The shared session's catalog, and a directory for the databases the tests create."""

    spark: SparkSession
    location: Path

    def database(self) -> str:
        """A new, empty database of its own."""
        name = f"fs_{uuid.uuid4().hex[:12]}"
        where = self.location / name
        self.spark.sql(f"CREATE DATABASE IF NOT EXISTS {name} LOCATION '{where}'")
        return name

    def save(self, table: str, frame: pl.DataFrame) -> None:
        """Write ``frame`` as the catalog table ``table``, replacing it."""
        rows = self.spark.createDataFrame(frame.to_arrow())
        rows.write.mode("overwrite").saveAsTable(table)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Catalog]:
    """The Spark session of a store configured for Spark (the one the Spark tests share). The
    session's own warehouse directory, made empty when its catalog is first used, is removed
    afterwards if these tests made it."""
    root = write_repo(tmp_path_factory.mktemp("catalog") / "repo", config=f"project: c\n{SPARK}")
    store = FeatureStore(root)
    engine = store._joiner()
    assert engine is not None
    warehouse = Path(urlsplit(engine.spark.conf.get("spark.sql.warehouse.dir") or "").path)
    existed = warehouse.exists()
    yield Catalog(engine.spark, tmp_path_factory.mktemp("warehouse"))
    store.close()
    if not existed and warehouse.is_dir() and not any(warehouse.iterdir()):
        warehouse.rmdir()


@dataclass
class TablePitRepo(PitRepo):
    """The point-in-time test repo on Spark, its ``user_stats`` view reading a catalog table."""

    catalog: Catalog | None = None
    table: str = ""

    def write_sources(
        self,
        user_stats: Sequence[Row] = (),
        user_merchant: Sequence[Row] = (),
        account_parts: Sequence[Sequence[Row]] = ((),),
    ) -> dict[str, list[Row]]:
        """The source files, and the ``user_stats`` rows as its table."""
        assert self.catalog is not None
        written = write_sources(self.root, user_stats, user_merchant, account_parts)
        self.catalog.save(self.table, to_frame("user_stats", user_stats))
        return written


def _table_repo(root: Path, table: str) -> Path:
    """The point-in-time repo at ``root``, on Spark, ``user_stats`` read from ``table``."""
    write_pit_repo(root)
    source = (
        f'TableSource(name="user_stats_src", table="{table}", timestamp_field="event_time", '
        'created_timestamp_field="created")'
    )
    code = (root / "definitions.py").read_text()
    assert FILE_SOURCE in code
    code = code.replace(FILE_SOURCE, source)
    (root / "definitions.py").write_text(f"from featurestore import TableSource\n{code}")
    (root / "featurestore.yaml").write_text(f"project: spark_table\n{SPARK}")
    return root


@pytest.fixture(scope="module")
def table_repo(
    catalog: Catalog, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TablePitRepo]:
    """The table repo, applied on Spark once its table holds a row."""
    table = f"{catalog.database()}.user_stats"
    root = _table_repo(tmp_path_factory.mktemp("spark_table") / "repo", table)
    store = FeatureStore(root)
    repo = TablePitRepo(root, store, catalog, table)
    repo.write_sources(
        [{"user_id": 1, "event_time": T, "created": T, "score": 1.0, "level": 1, "tier": "gold"}]
    )
    store.apply()
    yield repo
    store.close()


@settings(max_examples=4, deadline=None, suppress_health_check=SLOW)
@given(scenario=pit_scenarios())
def test_training_set_from_a_catalog_table_matches_oracle(
    table_repo: TablePitRepo, scenario: dict[str, Any]
) -> None:
    written = table_repo.write_sources(
        scenario["sources"]["user_stats"],
        scenario["sources"]["user_merchant"],
        scenario["parts"],
    )
    check_against_oracle(
        table_repo,
        spine_frame(scenario["spine"], scenario["zone"], scenario["unit"]),
        scenario["refs"],
        written,
        scenario["full_feature_names"],
        scenario["as_arrow"],
    )


USER_STATS = [
    {"user_id": 1, "event_time": T, "created": T, "score": 2.5, "level": 3, "tier": "gold"},
    {"user_id": 1, "event_time": T, "created": T + MINUTE, "score": 3.5, "level": 4, "tier": "x"},
    {"user_id": 2, "event_time": T - H, "created": T, "score": None, "level": 99, "tier": None},
]
REFS = ["user_stats:score", "user_stats:level", "user_stats:score_plus", "user_stats:tier"]


@pytest.fixture
def duckdb_twin(
    table_repo: TablePitRepo, tmp_path: Path
) -> Iterator[tuple[FeatureStore, FeatureStore]]:
    """The table repo holding :data:`USER_STATS`, and the point-in-time repo on DuckDB holding
    the same rows in its FileSource, applied."""
    table_repo.write_sources(USER_STATS)
    duck = FeatureStore(write_pit_repo(tmp_path / "duck"))
    write_sources(duck.repo.root, USER_STATS)
    duck.apply()
    yield table_repo.store, duck
    duck.close()


def test_a_catalog_table_on_spark_equals_its_rows_as_a_file_source_on_duckdb(
    duckdb_twin: tuple[FeatureStore, FeatureStore],
) -> None:
    spark, duck = duckdb_twin
    spine = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 1, 2],
            "event_timestamp": [T, T, T, T - dt.timedelta(seconds=1), T + 2 * H],
        }
    )
    on_spark = spark.get_training_set(spine, REFS)
    on_duckdb = duck.get_training_set(spine, REFS)
    assert on_spark.to_polars().equals(on_duckdb.to_polars())
    assert on_spark.to_polars()["score"].to_list() == [3.5, None, None, None, None]
    assert [f.statuses for f in on_spark.metadata.features] == [
        f.statuses for f in on_duckdb.metadata.features
    ]


def test_materialize_on_spark_reads_the_catalog_table(
    duckdb_twin: tuple[FeatureStore, FeatureStore],
) -> None:
    spark, duck = duckdb_twin
    end = T + H
    for store in (spark, duck):
        [result] = store.materialize(end, views=["user_stats"], force=True)
        assert result.published
    request: dict[str, Any] = {"entities": {"user_id": [1, 2, 3]}, "request_time": end}
    from_table = spark.get_online_features(REFS, **request)
    from_files = duck.get_online_features(REFS, **request)
    assert from_table.values == from_files.values
    assert from_table.values["score"] == [3.5, None, None]


def test_validate_and_status_on_spark_read_the_table(table_repo: TablePitRepo) -> None:
    table_repo.write_sources(USER_STATS)
    reports = {r.view: r for r in table_repo.store.validate()}
    report = reports["user_stats"]
    assert report.ok and report.path == f"table {table_repo.table}"
    assert report.rows is None and report.features == []
    assert report.unchecked is not None and "were not checked" in report.unchecked
    assert reports["account_risk"].rows is not None  # the other sources: read by DuckDB
    out = Console(record=True, width=300)
    validation(out, list(reports.values()))
    shown = out.export_text()
    assert f"table {table_repo.table}" in shown and report.unchecked in shown
    assert "the values of 1 catalog table(s) were not checked" in shown
    [status] = [v for v in table_repo.store.status(now=T).views if v.name == "user_stats"]
    assert status.source_error is None
    assert status.source_newest_event_time == T.replace(tzinfo=dt.UTC)


# --- apply's schema checks, and a table missing from the catalog ---------------------------


def _txn_definitions(table: str, path: str | None = None) -> str:
    """One view, ``txns``, of an amount and a merchant read from the table ``table``."""
    files = f', path="{path}"' if path is not None else ""
    return definitions(
        USER,
        "from featurestore import TableSource",
        f'events = TableSource(name="events", table="{table}", timestamp_field="ts"{files})',
        view(
            "txns",
            "events",
            features=['Feature("amount", pl.Float64)', 'Feature("merchant", pl.String)'],
        ),
    )


@pytest.fixture
def txn_store(
    catalog: Catalog, make_repo: Callable[..., Path]
) -> Iterator[Callable[[str], FeatureStore]]:
    """A factory of Spark stores (not applied) over the ``txns`` view of a table."""
    stores: list[FeatureStore] = []

    def make(table: str) -> FeatureStore:
        root = make_repo(
            f"txns{len(stores)}", _txn_definitions(table), config=f"project: t\n{SPARK}", data={}
        )
        stores.append(FeatureStore(root))
        return stores[-1]

    yield make
    for store in stores:
        store.close()


def test_apply_on_spark_names_a_column_the_table_lacks(
    catalog: Catalog, txn_store: Callable[[str], FeatureStore]
) -> None:
    table = f"{catalog.database()}.events"
    catalog.save(table, rows_frame(TXN_SCHEMA, [txn(1, BASE)]).drop("merchant"))
    store = txn_store(table)
    with pytest.raises(ApplyError) as info:
        store.apply()
    [problem] = info.value.problems
    assert problem.startswith("source 'events' (view 'txns'): column(s) ['merchant']")
    catalog.save(table, rows_frame(TXN_SCHEMA, [txn(1, BASE, 4.0, "m")]))
    store.apply()
    spine = pl.DataFrame({"user_id": [1], "event_timestamp": [BASE + MINUTE]})
    frame = store.get_training_set(spine, ["txns:amount", "txns:merchant"]).to_polars()
    assert frame.row(0) == (1, BASE + MINUTE, 4.0, "m")


def test_a_table_missing_from_the_catalog_says_what_to_do(
    catalog: Catalog, txn_store: Callable[[str], FeatureStore]
) -> None:
    database = catalog.database()
    table = f"{database}.events"
    catalog.save(table, rows_frame(TXN_SCHEMA, [txn(1, BASE)]))
    store = txn_store(table)
    store.apply()
    catalog.spark.sql(f"DROP TABLE {table}")
    missing = (
        rf"source 'events': the table '{database}\.events' is not in the Spark session's "
        rf"catalog\. Create the table \(e\.g\. df\.write\.saveAsTable\('{database}\.events'\)\) "
        r"or fix table= in the definition"
    )
    spine = pl.DataFrame({"user_id": [1], "event_timestamp": [BASE]})
    with pytest.raises(SourceNotFoundError, match=missing):
        store.get_training_set(spine, ["txns:amount"])
    with pytest.raises(ApplyError, match=missing):
        store.apply()
    with pytest.raises(ApplyError, match="is not in the Spark session's catalog"):
        txn_store("nowhere.events").apply()


def test_a_missing_table_with_a_path_is_not_read_from_the_path(
    catalog: Catalog, tmp_path: Path
) -> None:
    from featurestore.offline._spark._sources import read_source

    rows_frame(TXN_SCHEMA, [txn(1, BASE)]).write_parquet(tmp_path / "events.parquet")
    source = TableSource(
        "events", table=f"{catalog.database()}.events", path="events.parquet", timestamp_field="ts"
    )
    with pytest.raises(SourceNotFoundError) as info:
        read_source(catalog.spark, source, tmp_path)
    assert "its path 'events.parquet' is read only by the DuckDB engine" in str(info.value)
