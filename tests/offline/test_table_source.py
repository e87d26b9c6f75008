"""``TableSource`` on the DuckDB engine and as a definition: with a ``path`` it reads exactly as
the FileSource of that path (training sets, materialized online values, validate); without one
every DuckDB read is a SourceError that names the table and the fix; its fingerprint covers its
table and path (a FileSource's stays as it was) and ``plan`` names a change of either; a push
cannot append to it; bad table names are refused when the source is declared."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from conftest import USER, definitions, rows_frame, view, write_repo

from featurestore import (
    ApplyError,
    DefinitionError,
    Entity,
    Feature,
    FeatureStore,
    FeatureView,
    FileSource,
    PushError,
    SourceError,
    Sum,
    TableSource,
)
from featurestore._apply_checks import checked_state
from featurestore.cli._commands._listing import definition_rows
from featurestore.definitions._fingerprint import (
    aggregation_definition,
    feature_definition,
    fingerprint,
)

from .push_repo import BASE, MINUTE, TXN_SCHEMA, H, listing, offline, online, txn

IMPORT = "from featurestore import TableSource"
FEATURES = ['Feature("amount", pl.Float64)', 'Feature("merchant", pl.String)']
AGGREGATIONS = [
    'Count(window=timedelta(hours=1), name="count_1h")',
    'Sum("amount", window=timedelta(days=1), name="spend_1d")',
]
NAMES = ["amount", "merchant", "count_1h", "spend_1d"]
USERS = [1, 2, 3]
# what the DuckDB engine says of a catalog table it has no files of
NO_FILES = (
    r"source 'events' is the catalog table 'db\.events', which the DuckDB engine cannot read: "
    r"give the TableSource path= the table's files \(e\.g\. path='warehouse/db/events/'\), or "
    r"run on Spark \(offline_store: \{type: spark\} in featurestore\.yaml\)"
)


def table_source(name: str, table: str, path: str | None = None) -> str:
    """A ``TableSource(...)`` expression over ``table`` (and the files at ``path``)."""
    files = f', path="{path}"' if path is not None else ""
    return f'TableSource(name="{name}", table="{table}", timestamp_field="ts"{files})'


def twin_definitions() -> str:
    """Two alike views over the same files: ``by_file`` as a FileSource, ``by_table`` as a
    TableSource whose path names them."""
    return definitions(
        USER,
        IMPORT,
        'events_file = FileSource(name="events_file", path="data/events/", timestamp_field="ts")',
        f"events_table = {table_source('events_table', 'db.events', 'data/events/')}",
        *(
            view(
                name,
                src,
                ttl="timedelta(hours=6)",
                features=FEATURES,
                aggregations=AGGREGATIONS,
            )
            for name, src in (("by_file", "events_file"), ("by_table", "events_table"))
        ),
    )


def table_definitions(table: str = "db.events", path: str | None = "data/events/") -> str:
    """One view, ``txns``, with a plain feature and an aggregation over the table source
    ``events``."""
    return definitions(
        USER,
        IMPORT,
        f"events = {table_source('events', table, path)}",
        view("txns", "events", features=FEATURES[:1], aggregations=AGGREGATIONS),
    )


def events_frame() -> pl.DataFrame:
    """Events of three users over a few hours, one with a null amount."""
    rows = [
        txn(1, BASE, 10.0, "a"),
        txn(1, BASE + 20 * MINUTE, 5.0, "b"),
        txn(2, BASE + H, None, "c"),
        txn(2, BASE + 2 * H, 7.5, "a"),
        txn(3, BASE - 3 * H, 1.0, "d"),
    ]
    return rows_frame(TXN_SCHEMA, rows)


def spine(*times: dt.datetime) -> pl.DataFrame:
    """Every user at each of ``times``."""
    return pl.DataFrame(
        {
            "user_id": [u for _ in times for u in USERS],
            "event_timestamp": [t for t in times for _ in USERS],
        },
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )


@pytest.fixture
def twin(make_store: Callable[..., FeatureStore]) -> FeatureStore:
    return make_store(twin_definitions(), {"data/events/part-0.parquet": events_frame()})


# --- with a path: exactly a FileSource of that path -------------------------------------


def test_a_table_with_a_path_gives_the_training_set_of_its_files(twin: FeatureStore) -> None:
    points = spine(BASE - H, BASE + 30 * MINUTE, BASE + 3 * H, BASE + 12 * H)
    by_file = twin.get_training_set(points, [f"by_file:{n}" for n in NAMES])
    by_table = twin.get_training_set(points, [f"by_table:{n}" for n in NAMES])
    assert by_table.to_polars().equals(by_file.to_polars())
    statuses = [{f.column: f.statuses} for f in by_table.metadata.features]
    assert statuses == [{f.column: f.statuses} for f in by_file.metadata.features]
    assert by_table.to_polars()["amount"].to_list()[3:6] == [5.0, None, 1.0]


def test_a_table_with_a_path_materializes_the_values_of_its_files(twin: FeatureStore) -> None:
    end = BASE + 3 * H
    results = twin.materialize(end)
    assert {r.view for r in results} == {"by_file", "by_table"}
    at = end + MINUTE
    from_file = online(twin, [f"by_file:{n}" for n in NAMES], at)
    from_table = online(twin, [f"by_table:{n}" for n in NAMES], at)
    assert from_table == from_file
    assert from_table["spend_1d"] == [15.0, 7.5, 1.0]


def test_validate_checks_a_table_with_a_path_like_its_files(twin: FeatureStore) -> None:
    reports = {r.view: r for r in twin.validate()}
    assert reports["by_table"].ok and reports["by_table"].unchecked is None
    assert reports["by_table"].rows == reports["by_file"].rows == 5
    assert reports["by_table"].path == "table db.events, files data/events/"


def test_the_sources_listing_shows_the_table_and_its_files(twin: FeatureStore) -> None:
    rows = {r["name"]: r for r in definition_rows(twin.repo, "sources")}
    assert rows["events_table"]["kind"] == "table"
    assert rows["events_table"]["reads"] == "table db.events, files data/events/ (time ts)"
    assert rows["events_file"] == {
        "name": "events_file",
        "kind": "file",
        "reads": "data/events/ (time ts)",
    }


# --- without a path: DuckDB cannot read it, and says what to do ------------------------


class _Catalog:
    """A catalog that knows the table's schema, as a Spark store's engine would."""

    def source_schema(self, view: FeatureView) -> dict[str, pl.DataType]:
        return dict(TXN_SCHEMA)


@pytest.fixture
def no_files(tmp_path: Path) -> FeatureStore:
    """A store over a table without files, applied as a Spark store would apply it."""
    root = write_repo(tmp_path / "repo", table_definitions(path=None), data={})
    store = FeatureStore(root)
    store.registry.record(checked_state(store.repo, store.offline, _Catalog))
    return store


def test_apply_on_duckdb_names_the_table_and_the_fix(no_files: FeatureStore) -> None:
    with pytest.raises(ApplyError, match=NO_FILES) as info:
        no_files.apply()
    assert len(info.value.problems) == 1
    with pytest.raises(ApplyError, match=NO_FILES):
        no_files.plan()


def test_a_training_set_on_duckdb_names_the_table_and_the_fix(no_files: FeatureStore) -> None:
    for refs in (["txns:amount"], ["txns:spend_1d"]):
        with pytest.raises(SourceError, match=NO_FILES):
            no_files.get_training_set(spine(BASE), refs)
    with pytest.raises(SourceError, match=NO_FILES):
        no_files.get_training_set(start=BASE - H, end=BASE, features=["txns:amount"])


def test_materialize_on_duckdb_names_the_table_and_the_fix(no_files: FeatureStore) -> None:
    with pytest.raises(SourceError, match=NO_FILES):
        no_files.materialize(BASE)


def test_validate_and_status_on_duckdb_name_the_table_and_the_fix(
    no_files: FeatureStore,
) -> None:
    [report] = no_files.validate()
    assert not report.ok and report.path == "table db.events"
    assert len(report.problems) == 1
    assert "which the DuckDB engine cannot read" in report.problems[0]
    [status] = [v for v in no_files.status().views if v.name == "txns"]
    assert status.source_error is not None and "path='warehouse/db/events/'" in status.source_error


def test_the_example_path_follows_a_three_part_name() -> None:
    from featurestore.sources._scans import files_of

    src = TableSource("events", table="lake.db.events", timestamp_field="ts")
    with pytest.raises(SourceError, match=r"e\.g\. path='warehouse/lake/db/events/'"):
        files_of(src)


# --- fingerprints and plan ---------------------------------------------------------------


def _fingerprints(source: FileSource | TableSource) -> tuple[str, str]:
    view = FeatureView(
        name="txn",
        entities=[Entity("user", join_keys=["user_id"])],
        source=source,
        owner="team",
        features=[Feature("amount", pl.Float64)],
        aggregations=[Sum("amount", window=dt.timedelta(days=7), name="amount_7d")],
    )
    return (
        fingerprint(feature_definition(view, view.features[0])),
        fingerprint(aggregation_definition(view, view.aggregations[0])),
    )


def test_a_file_sources_fingerprints_are_unchanged() -> None:
    """The fingerprints this definition had before catalog tables existed."""
    source = FileSource(
        name="events",
        path="warehouse/db/events/",
        timestamp_field="ts",
        created_timestamp_field="created",
    )
    assert _fingerprints(source) == ("57231be5e08e8df9", "dfa3482c0d0c1794")


def test_a_table_sources_fingerprints_cover_its_table_and_path() -> None:
    def table(**fields: Any) -> TableSource:
        given = {"table": "db.events", "path": "warehouse/db/events/", **fields}
        return TableSource(
            "events", timestamp_field="ts", created_timestamp_field="created", **given
        )

    base = _fingerprints(table())
    variants = [
        table(table="db.events_v2"),
        table(table="lake.db.events"),
        table(path=None),
        table(path="warehouse/db/events_v2/"),
        table(path="warehouse/db/events.csv"),
    ]
    found = [_fingerprints(v) for v in variants]
    assert len({base, *found}) == 1 + len(variants)
    assert all(a != b for fp in found for a, b in zip(fp, base, strict=True))
    files = FileSource(
        name="events",
        path="warehouse/db/events/",
        timestamp_field="ts",
        created_timestamp_field="created",
    )
    assert _fingerprints(files) != base  # the same files as a table are another definition
    metadata = table(description="events", owner="data", tags={"tier": "gold"})
    assert _fingerprints(metadata) == base


def test_plan_names_a_change_of_table_or_path(tmp_path: Path) -> None:
    data = {"data/events/p.parquet": events_frame(), "data/events_v2/p.parquet": events_frame()}
    root = write_repo(tmp_path / "repo", table_definitions(), data=data)
    store = FeatureStore(root)
    try:
        store.apply()
        refs = ["txns:amount", "txns:count_1h", "txns:spend_1d"]
        for table, path, changed in (
            ("db.events_v2", "data/events/", "db.events_v2"),
            ("db.events", "data/events_v2/", "data/events_v2/"),
        ):
            (root / "definitions.py").write_text(table_definitions(table, path))
            plan = store.plan()
            assert sorted(c.ref for c in plan.changed) == refs
            assert all(c.fingerprint_changed for c in plan.changed)
            assert all(any(changed in r for r in c.reasons) for c in plan.changed), plan.changed
    finally:
        store.close()


# --- push ----------------------------------------------------------------------------------


def test_a_push_cannot_append_to_a_table(make_store: Callable[..., FeatureStore]) -> None:
    store = make_store(table_definitions(), {"data/events/p.parquet": events_frame()})
    store.materialize(BASE + 3 * H)
    files = listing(store)
    rows = [txn(1, BASE + 3 * H + MINUTE, 100.0)]
    modes: list[Any] = ["online_and_offline", "offline"]
    for to in modes:
        with pytest.raises(PushError) as info:
            store.push("events", rows, to=to)
        message = str(info.value)
        assert "catalog table 'db.events'" in message
        assert "to='online'" in message and "PushSource(name='events_push'" in message
    with pytest.raises(PushError, match="catalog table"):
        store.push("events", rows)
    assert listing(store) == files
    result = store.push("events", rows, to="online")
    assert not result.offline and result.entities == {"txns": 1}
    at = BASE + 3 * H + 2 * MINUTE
    assert online(store, ["txns:spend_1d"], at)["spend_1d"][0] == 115.0
    assert offline(store, ["txns:spend_1d"], at)["spend_1d"][0] == 15.0


# --- the definition ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "table",
    ["", "db..events", "a.b.c.d", "1db.events", "db.events-raw", "db events", ".events", "db."],
)
def test_a_bad_table_name_is_refused(table: str) -> None:
    with pytest.raises(DefinitionError, match="one to three identifiers separated by dots"):
        TableSource("events", table=table, timestamp_field="ts")


def test_a_table_source_is_declared_like_a_file_source() -> None:
    for table in ("events", "db.events", "lake.db.events", "_x.y1"):
        assert TableSource("events", table=table, timestamp_field="ts").table == table
    bare = TableSource("events", table="db.events", timestamp_field="ts")
    assert bare.path is None and bare.file_format is None
    directory = TableSource("e", table="db.e", path="warehouse/db/e/", timestamp_field="ts")
    assert directory.file_format == "parquet"
    csv = TableSource("e", table="db.e", path="exports/e.csv", timestamp_field="ts")
    assert csv.file_format == "csv"
    with pytest.raises(DefinitionError, match="cannot tell the format of path"):
        TableSource("e", table="db.e", path="exports/e.json", timestamp_field="ts")
    with pytest.raises(DefinitionError, match="give path= the table's files too"):
        TableSource("e", table="db.e", file_format="csv", timestamp_field="ts")
    with pytest.raises(DefinitionError, match="must differ from timestamp_field"):
        TableSource("e", table="db.e", timestamp_field="ts", created_timestamp_field="ts")
    with pytest.raises(DefinitionError, match="name 'bad name'"):
        TableSource("bad name", table="db.e", timestamp_field="ts")


def test_a_view_names_the_kinds_of_source_it_takes() -> None:
    with pytest.raises(DefinitionError, match="source must be a FileSource, PushSource or Table"):
        FeatureView(
            name="txn",
            entities=[Entity("user", join_keys=["user_id"])],
            source="db.events",  # type: ignore[arg-type]
            owner="team",
            features=[Feature("amount", pl.Float64)],
        )
