"""Training sets: conversions, spine inputs, and save/load with metadata in the Parquet footer."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq
import pytest

from featurestore import FeatureStore, FeatureStoreError, TrainingSet
from featurestore.offline import _training_set as training_set_module

SERVICE_REFS = [
    "user_profile:country",
    "user_profile:age",
    "user_profile:tenure_days",
    "txn_risk:amount_per_age",
]


@pytest.fixture
def training_set(store: FeatureStore, spine: pl.DataFrame) -> TrainingSet:
    return store.get_training_set(spine, feature_service="risk_model")


def _plain(value: Any) -> Any:
    """NaN (pandas' null for numbers) as None, numpy scalars as Python values."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "to_pydatetime"):
        return value.to_pydatetime()
    return value


def test_expected_values(training_set: TrainingSet) -> None:
    out = training_set.to_polars()
    assert out.columns == [
        "user_id",
        "event_timestamp",
        "amount",
        "country",
        "age",
        "tenure_days",
        "amount_per_age",
    ]
    assert out["user_id"].to_list() == [1, 1, 2, 3, 4, 1]
    assert out["country"].to_list() == ["FR", "FR", "US", "unknown", "unknown", "unknown"]
    assert out["age"].to_list() == [30, 31, 45, None, None, None]
    assert out["tenure_days"].to_list() == [365, 396, 1475, 10, None, None]
    assert out["amount_per_age"].to_list() == [2.0, 2.0, 2.0, None, None, None]


def test_conversions_agree(training_set: TrainingSet) -> None:
    frame = training_set.to_polars()
    arrow = training_set.to_arrow()
    assert arrow.column_names == frame.columns
    assert pl.from_arrow(arrow).equals(frame)  # type: ignore[union-attr]
    pdf = training_set.to_pandas()
    assert list(pdf.columns) == frame.columns
    assert len(pdf) == frame.height
    for column in frame.columns:
        got = [_plain(v) for v in pdf[column].tolist()]
        assert got == frame[column].to_list(), column


def _spine_forms(spine: pl.DataFrame, tmp_path: Path) -> dict[str, Any]:
    parquet = tmp_path / "spine.parquet"
    spine.write_parquet(parquet)
    return {
        "pandas": spine.to_pandas(),
        "arrow": spine.to_arrow(),
        "lazy": spine.lazy(),
        "parquet_path": parquet,
        "parquet_str": str(parquet),
    }


def test_spine_forms_give_the_same_result(
    store: FeatureStore, spine: pl.DataFrame, tmp_path: Path
) -> None:
    expected = store.get_training_set(spine, feature_service="risk_model").to_polars()
    for name, form in _spine_forms(spine, tmp_path).items():
        got = store.get_training_set(form, feature_service="risk_model").to_polars()
        assert got.equals(expected), name


def test_spine_with_time_zone_is_read_in_utc(store: FeatureStore, spine: pl.DataFrame) -> None:
    expected = store.get_training_set(spine, features=["user_profile:age"]).to_polars()["age"]
    # 2024-01-15 00:00 UTC is 2024-01-15 01:00 in Paris: the same instants
    paris = spine.with_columns(
        pl.col("event_timestamp").dt.replace_time_zone("UTC").dt.convert_time_zone("Europe/Paris")
    )
    got = store.get_training_set(paris, features=["user_profile:age"]).to_polars()["age"]
    assert got.to_list() == expected.to_list()


def test_duplicate_and_unordered_spine_rows_are_kept_in_order(
    store: FeatureStore, spine: pl.DataFrame
) -> None:
    shuffled = pl.concat([spine.reverse(), spine.head(2)])
    out = store.get_training_set(shuffled, features=["user_profile:age"]).to_polars()
    assert out.select(spine.columns).equals(shuffled)
    assert out["age"].to_list() == [None, None, None, 45, 31, 30, 30, 31]


def test_metadata(store: FeatureStore, training_set: TrainingSet, spine: pl.DataFrame) -> None:
    meta = training_set.metadata
    assert meta.project == "test_project"
    assert meta.row_count == spine.height
    assert meta.timestamp_column == "event_timestamp"
    assert meta.spine_start == dt.datetime(2024, 1, 11)
    assert meta.spine_end == dt.datetime(2024, 6, 1)
    assert [f.ref for f in meta.features] == SERVICE_REFS
    assert [f.column for f in meta.features] == [
        "country",
        "age",
        "tenure_days",
        "amount_per_age",
    ]
    applied = {r.ref: r.fingerprint for r in store.list_features()}
    assert meta.fingerprints() == {ref: applied[ref] for ref in SERVICE_REFS}
    statuses = {f.ref: f.statuses for f in meta.features}
    assert statuses["user_profile:age"] == {"PRESENT": 3, "INVALID": 1, "NOT_FOUND": 1, "STALE": 1}
    assert statuses["user_profile:country"] == {"PRESENT": 3, "DEFAULTED": 2, "STALE": 1}
    for counts in statuses.values():
        assert sum(counts.values()) == spine.height
    assert "rows=6" in repr(training_set)


def test_save_and_load_round_trip(
    store: FeatureStore, training_set: TrainingSet, tmp_path: Path
) -> None:
    target = tmp_path / "datasets" / "v1.parquet"  # the folder does not exist yet
    assert training_set.save(target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["v1.parquet"]

    loaded = TrainingSet.load(target)
    assert loaded.to_polars().equals(training_set.to_polars())
    assert loaded.metadata == training_set.metadata
    applied = {r.ref: r.fingerprint for r in store.list_features()}
    assert loaded.metadata.fingerprints() == {ref: applied[ref] for ref in SERVICE_REFS}
    assert loaded.metadata.spine_start == dt.datetime(2024, 1, 11)
    assert loaded.metadata.row_count == 6

    profiles = loaded.metadata.profiles
    assert sorted(profiles) == ["age", "amount_per_age", "country", "tenure_days"]
    age = profiles["age"]
    assert (age.count, age.null_count) == (6, 3)
    assert (age.min, age.max) == (30, 45)
    assert age.mean == pytest.approx((30 + 31 + 45) / 3)
    assert profiles["country"].top_categories == [("unknown", 3), ("FR", 2), ("US", 1)]

    # the footer is plain JSON under one key, readable without featurestore
    raw = pq.read_schema(target).metadata[training_set_module.METADATA_KEY]
    footer = json.loads(raw)
    assert footer["row_count"] == 6
    assert [f["ref"] for f in footer["features"]] == SERVICE_REFS


def test_save_replaces_an_existing_file(training_set: TrainingSet, tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    target = out_dir / "v1.parquet"
    target.write_text("old content")
    training_set.save(str(target))
    assert TrainingSet.load(target).to_polars().height == 6
    assert [p.name for p in out_dir.iterdir()] == ["v1.parquet"]


def test_failed_save_leaves_no_temporary_file_and_keeps_the_old_one(
    training_set: TrainingSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "out" / "v1.parquet"
    training_set.save(target)
    before = target.read_bytes()

    def broken_write(table: Any, where: Any, **kwargs: Any) -> None:
        where.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(training_set_module.pq, "write_table", broken_write)
    with pytest.raises(OSError, match="disk full"):
        training_set.save(target)
    assert target.read_bytes() == before
    assert [p.name for p in target.parent.iterdir()] == ["v1.parquet"]


def test_load_a_file_without_metadata(tmp_path: Path) -> None:
    path = tmp_path / "plain.parquet"
    pl.DataFrame({"a": [1]}).write_parquet(path)
    with pytest.raises(FeatureStoreError) as info:
        TrainingSet.load(path)
    assert str(path) in str(info.value) and "TrainingSet.save" in str(info.value)


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("not parquet", "cannot be read as Parquet"),
        ("a directory without metadata", "TrainingSet.save"),
        ("missing", "does not exist"),
    ],
)
def test_load_what_is_no_training_set(tmp_path: Path, what: str, message: str) -> None:
    path = tmp_path / "train.parquet"
    if what == "not parquet":
        path.write_text("junk")
    elif what == "a directory without metadata":
        path.mkdir()
        pl.DataFrame({"a": [1]}).write_parquet(path / "part-0.parquet")
    with pytest.raises(FeatureStoreError, match=message):
        TrainingSet.load(path)


def test_empty_spine(store: FeatureStore, spine: pl.DataFrame, tmp_path: Path) -> None:
    ts = store.get_training_set(spine.clear(), feature_service="risk_model")
    out = ts.to_polars()
    assert out.height == 0
    assert out.columns[-4:] == ["country", "age", "tenure_days", "amount_per_age"]
    assert ts.metadata.spine_start is None and ts.metadata.spine_end is None
    loaded = TrainingSet.load(ts.save(tmp_path / "empty.parquet"))
    assert loaded.metadata.row_count == 0
    assert loaded.metadata.profiles["age"].count == 0


def test_progress_messages(store: FeatureStore, spine: pl.DataFrame) -> None:
    messages: list[str] = []
    store.get_training_set(spine, feature_service="risk_model", progress=messages.append)
    assert messages
    assert any("users" in m for m in messages)
    assert any("txn_risk" in m for m in messages)


@pytest.mark.parametrize("name", ["v1.csv", "v1.json", "v1.JSONL"])
def test_save_writes_csv_and_json_lines_by_extension(
    training_set: TrainingSet, tmp_path: Path, name: str
) -> None:
    target = training_set.save(tmp_path / name)
    frame = training_set.to_polars()
    if name.endswith(".csv"):
        read = pl.read_csv(target, schema=frame.schema)
    else:
        read = pl.read_ndjson(target, schema=frame.schema)
    assert read.equals(frame)


def test_save_refuses_an_unknown_extension(training_set: TrainingSet, tmp_path: Path) -> None:
    with pytest.raises(FeatureStoreError, match=r"name a \.parquet, \.csv or \.json file"):
        training_set.save(tmp_path / "out" / "v1.xlsx")
    assert not (tmp_path / "out").exists()


def test_to_pandas_keeps_integers_booleans_and_missing_values() -> None:
    """Nullable pandas dtypes: an Int32 with nulls stays Int32, a Boolean with nulls stays
    boolean, a missing value is pd.NA (NaT for times), never NaN or None in an object column."""
    import pandas as pd

    from featurestore.offline._training_set import TrainingSetMetadata

    frame = pl.DataFrame(
        {
            "n": [1, None],
            "flag": [True, None],
            "name": ["a", None],
            "x": [0.5, None],
            "at": [dt.datetime(2024, 1, 1), None],
        },
        schema={
            "n": pl.Int32,
            "flag": pl.Boolean,
            "name": pl.String,
            "x": pl.Float64,
            "at": pl.Datetime("us"),
        },
    )
    metadata = TrainingSetMetadata(
        project="p",
        created_at=dt.datetime(2024, 1, 2),
        row_count=2,
        timestamp_column="at",
        spine_start=None,
        spine_end=None,
        features=[],
    )
    pdf = TrainingSet(frame, metadata).to_pandas()
    assert {c: str(t) for c, t in pdf.dtypes.items()} == {
        "n": "Int32",
        "flag": "boolean",
        "name": "string",
        "x": "Float64",
        "at": "datetime64[us]",
    }
    assert pdf["n"][0] == 1 and pdf["n"][1] is pd.NA
    assert pdf["flag"][1] is pd.NA and pdf["name"][1] is pd.NA and pdf["x"][1] is pd.NA
    assert pdf["at"][1] is pd.NaT
    assert pl.from_pandas(pdf).equals(frame)


def test_a_source_rewritten_between_two_training_sets_is_read_and_checked_again(
    store: FeatureStore, spine: pl.DataFrame
) -> None:
    """The engine keeps a source's schema between calls only while its files stay the same:
    a rewrite that breaks the declarations fails the next call, a rewrite that mends them (or
    changes the time zone of the timestamps) is read as it now is."""
    from conftest import users_frame

    from featurestore.errors import SchemaMismatchError

    path = store.repo.root / "data" / "users.parquet"
    first = store.get_training_set(spine, features=["user_profile:age"]).to_polars()
    users_frame().with_columns(pl.col("age").cast(pl.String)).write_parquet(path)
    with pytest.raises(SchemaMismatchError, match="age"):
        store.get_training_set(spine, features=["user_profile:age"])
    aware = pl.col("updated_at", "signup_at").dt.replace_time_zone("UTC")
    users_frame().with_columns(aware.dt.convert_time_zone("Asia/Tokyo")).write_parquet(path)
    again = store.get_training_set(spine, features=["user_profile:age"]).to_polars()
    assert again.equals(first)
