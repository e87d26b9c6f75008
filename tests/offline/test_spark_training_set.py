"""Training sets whose rows stay on Spark: a Spark DataFrame spine gives the values and
statuses of the same spine given as a Polars frame, ``save`` writes Parquet parts from the
executors with the metadata and a profile computed in Spark (equal to the DuckDB profile within
the tolerance :mod:`featurestore.offline._spark._profile` states), ``load`` and the drift report
read them back, and a failed save leaves the previous training set whole."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featurestore import FeatureStore, TrainingSet
from featurestore._profiles import profile_frame
from featurestore.errors import FeatureStoreError

from .conftest import PitRepo, write_pit_repo
from .test_point_in_time import scenarios as pit_scenarios
from .test_point_in_time import spine_frame
from .test_spark_engine import _on_spark

pytest.importorskip("pyspark")

SLOW = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
T0 = dt.datetime(2024, 1, 1)
REFS = ["user_stats:score", "user_stats:level", "user_stats:tier", "user_stats:score_plus"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PitRepo]:
    root = write_pit_repo(tmp_path_factory.mktemp("spark_training") / "repo")
    _on_spark(root)
    store = FeatureStore(root)
    store.apply()
    yield PitRepo(root, store)
    store.close()


def _session(repo: PitRepo) -> Any:
    engine = repo.store._joiner()
    assert engine is not None
    return engine.spark


def _stats_rows(n: int) -> list[dict[str, Any]]:
    """Rows of user_stats: numeric values with ties and nulls, a few categories."""
    rng = np.random.default_rng(7)
    return [
        {
            "user_id": i % 40,
            "event_time": T0 + dt.timedelta(minutes=int(rng.integers(0, 50))),
            "created": T0,
            "score": None if i % 11 == 0 else float(rng.integers(0, 30)) / 4,
            "level": int(rng.integers(0, 11)),
            "tier": ["gold", "silver", "bronze"][i % 3],
        }
        for i in range(n)
    ]


def _feature_columns(frame: pl.DataFrame, refs: list[str]) -> pl.DataFrame:
    return frame.select(r.split(":")[1] for r in refs)


@settings(max_examples=3, deadline=None, suppress_health_check=SLOW)
@given(scenario=pit_scenarios())
def test_a_spark_spine_gives_the_values_of_the_same_polars_spine(
    repo: PitRepo, scenario: dict[str, Any]
) -> None:
    repo.write_sources(
        scenario["sources"]["user_stats"], scenario["sources"]["user_merchant"], scenario["parts"]
    )
    spine = spine_frame(scenario["spine"], scenario["zone"], scenario["unit"])
    refs = [r for r in scenario["refs"] if not r.startswith("txn_features:")] or REFS[:1]
    local = repo.store.get_training_set(spine, refs)
    remote = repo.store.get_training_set(_session(repo).createDataFrame(spine.to_arrow()), refs)
    assert _feature_columns(remote.to_polars(), refs).equals(
        _feature_columns(local.to_polars(), refs)
    )
    assert [f.statuses for f in remote.metadata.features] == [
        f.statuses for f in local.metadata.features
    ]
    assert remote.metadata.row_count == spine.height
    assert remote.to_spark().count() == spine.height


def test_a_spark_spine_with_a_null_time_is_refused(repo: PitRepo) -> None:
    from featurestore.errors import SpineError

    repo.write_sources(_stats_rows(10))
    spine = pl.DataFrame({"user_id": [1, 2], "event_timestamp": [T0, None]})
    with pytest.raises(SpineError, match="1 null value"):
        repo.store.get_training_set(_session(repo).createDataFrame(spine.to_arrow()), REFS[:1])


def test_save_writes_parts_with_the_metadata_and_a_spark_profile(
    repo: PitRepo, tmp_path: Path
) -> None:
    repo.write_sources(_stats_rows(400))
    spine = pl.DataFrame(
        {
            "user_id": [i % 45 for i in range(300)],
            "event_timestamp": [T0 + dt.timedelta(minutes=10 + i % 60) for i in range(300)],
        }
    )
    ts = repo.store.get_training_set(spine, REFS)
    target = ts.save(tmp_path / "train.parquet")
    assert target.is_dir() and (target / "_common_metadata").is_file()
    assert list(target.glob("part-*.parquet"))
    loaded = TrainingSet.load(target)
    assert loaded.to_polars().equals(ts.to_polars())
    assert loaded.metadata.model_dump(exclude={"profiles"}) == ts.metadata.model_dump(
        exclude={"profiles"}
    )
    on_duckdb = profile_frame(ts.to_polars(), [r.split(":")[1] for r in REFS])
    for column, profile in loaded.metadata.profiles.items():
        want = on_duckdb[column]
        assert (profile.count, profile.null_count) == (want.count, want.null_count)
        assert profile.top_categories == want.top_categories
        assert profile.categories == want.categories
        if profile.kind == "numeric":
            assert (profile.min, profile.max) == (want.min, want.max)
            assert profile.mean == pytest.approx(want.mean, rel=1e-12)
            assert profile.std == pytest.approx(want.std, rel=1e-9)
    # the drift report reads the saved directory as it reads a saved file
    report = repo.store.drift_report(target, ts)
    assert {f.ref for f in report.features} == set(REFS)


def test_saving_again_replaces_and_a_failed_save_keeps_the_previous(
    repo: PitRepo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from featurestore.offline._spark import _save

    repo.write_sources(_stats_rows(50))
    target = tmp_path / "train.parquet"
    first = repo.store.get_training_set(
        pl.DataFrame({"user_id": [1, 2], "event_timestamp": [T0, T0]}), REFS[:1]
    )
    first.save(target)
    second = repo.store.get_training_set(
        pl.DataFrame({"user_id": [3, 4, 5], "event_timestamp": [T0, T0, T0]}), REFS[:1]
    )
    second.save(target)
    assert TrainingSet.load(target).to_polars().equals(second.to_polars())

    def fail(*_args: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(_save, "_write_bytes", fail)  # after every part was written
    with pytest.raises(FeatureStoreError, match="disk full"):
        first.save(target)
    assert TrainingSet.load(target).to_polars().equals(second.to_polars())
    assert [p.name for p in tmp_path.iterdir()] == ["train.parquet"]  # no staging left


columns = st.lists(
    st.one_of(
        st.none(),
        st.floats(-1e6, 1e6),
        st.just(math.nan),  # counted as null
        st.sampled_from([0.0, 1.5, 2.0]),  # ties and point masses
    ),
    min_size=1,
    max_size=300,
)


@settings(max_examples=8, deadline=None, suppress_health_check=SLOW)
@given(values=columns, words=st.lists(st.sampled_from(["a", "b", "c", None]), min_size=1))
def test_the_spark_profile_is_the_duckdb_profile_within_its_tolerance(
    repo: PitRepo, values: list[float | None], words: list[str | None]
) -> None:
    from featurestore.offline._spark._profile import ACCURACY, spark_profiles

    n = min(len(values), len(words))
    frame = pl.DataFrame(
        {"x": values[:n], "w": words[:n], "b": [v is None for v in values[:n]]},
        schema={"x": pl.Float64, "w": pl.String, "b": pl.Boolean},
    )
    got = spark_profiles(
        _session(repo).createDataFrame(frame.to_arrow()).repartition(3), dict(frame.schema)
    )
    want = profile_frame(frame)
    for column in ("w", "b"):
        assert got[column].model_dump() == want[column].model_dump()
    x, ref = got["x"], want["x"]
    assert (x.count, x.null_count, x.min, x.max) == (ref.count, ref.null_count, ref.min, ref.max)
    present = np.sort(frame["x"].fill_nan(None).drop_nulls().to_numpy())
    if not present.size:
        assert x.quantiles == [] and x.cdf_counts == []
        return
    assert x.mean == pytest.approx(ref.mean, rel=1e-9, abs=1e-9)
    slack = math.ceil(present.size / ACCURACY) + 1
    for p, q in zip([i / 100 for i in range(101)], x.quantiles, strict=True):
        rank = p * (present.size - 1)
        lo = present[max(0, math.floor(rank) - slack)]
        hi = present[min(present.size - 1, math.ceil(rank) + slack)]
        assert lo <= q <= hi
    brute = [int(np.searchsorted(present, point, side="right")) for point in x.cdf_points]
    assert x.cdf_counts == brute  # exact at the points Spark chose
    assert sum(x.bin_counts) == present.size
    below = float(np.sum(np.maximum(x.tail_points[0] - present, 0)))
    assert x.tail_sums[0] == pytest.approx(below, rel=1e-9, abs=1e-9)
