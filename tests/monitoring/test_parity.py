"""The parity check (``store.check_parity``, ``featurestore apply --check``) on a repo with plain
features (expressions, defaults, a ttl, bounds that make values INVALID, a created timestamp),
a view keyed by two entities, aggregations of several kinds over a directory source and correct
on-demand views: nothing is flagged; on-demand functions whose per-row result differs from
their batch result (a mean over the frame, a rank, a function that fails on one row) are, with
examples of both values, and the correct outputs beside them are not. The online side's store
holds byte for byte what materialization writes; ``apply --check --fail-on-flagged`` exits 3
and writes nothing when a feature is flagged; samples are deterministic; a spine is used as
given; request values come from the serving log when it has some."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.monitoring._report import Verdict
from featurestore.monitoring.parity import ParityReport
from featurestore.monitoring.parity._as_of import as_of_store
from featurestore.online._codec import encode_key
from featurestore.online._event_state import events_store_name
from tests.cli.helpers import run
from tests.monitoring.parity_repo import (
    BATCH_DEPENDENT,
    DAYS,
    DEFINITIONS,
    FLAGGED,
    MERCHANTS,
    START,
    USERS,
    UTC,
    repo_data,
    write,
)

SAMPLE = 300


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("parity") / "good")


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write(tmp_path_factory.mktemp("parity") / "bad", DEFINITIONS + BATCH_DEPENDENT)


@pytest.fixture
def store(good: Path) -> Iterator[FeatureStore]:
    fs = FeatureStore(good)
    yield fs
    fs.close()


@pytest.fixture(scope="module")
def good_report(good: Path) -> ParityReport:
    fs = FeatureStore(good)
    try:
        return fs.check_parity(sample=SAMPLE, seed=3)
    finally:
        fs.close()


@pytest.fixture(scope="module")
def bad_report(bad: Path) -> ParityReport:
    fs = FeatureStore(bad)
    try:
        return fs.check_parity(sample=SAMPLE, seed=3)
    finally:
        fs.close()


def test_correct_definitions_agree_on_every_sampled_row(
    good: Path, good_report: ParityReport
) -> None:
    report = good_report
    assert not report.flagged
    refs = {r.ref for r in report.results}
    fs = FeatureStore(good)
    expected = {
        f"{v.name}:{f}"
        for v in [*fs.repo.views.values(), *fs.repo.on_demand_views.values()]
        for f in v.feature_names
    }
    fs.close()
    assert refs == expected
    for r in report.results:
        assert r.verdict is Verdict.OK, (r.ref, r.reasons, r.examples)
        assert r.rows_compared == SAMPLE and r.mismatches == 0
    # one spine per group of join keys, each of SAMPLE rows; nothing was applied or written
    assert set(report.spines) == {"user_id", "merchant_id", "user_id+merchant_id"}
    assert all(s.height == SAMPLE for s in report.spines.values())
    assert not (good / ".featurestore" / "registry.json").exists()
    # the sample reaches every status, so statuses were compared in every case
    seen = {s for r in report.results for s in r.offline_statuses}
    assert seen == {"PRESENT", "NOT_FOUND", "STALE", "DEFAULTED", "INVALID"}
    assert report.result("user_profile:age").offline_statuses.get("INVALID")
    assert report.result("user_profile:country").offline_statuses.get("DEFAULTED")
    assert report.result("user_merchant:avg_amt").offline_statuses.get("STALE")
    # the times hit source event times exactly and sit on both sides of the ttl edge
    times = set(report.spines["user_id"]["event_timestamp"].to_list())
    events = set(repo_data()["data/users.parquet"]["updated_at"].to_list())
    ttl = dt.timedelta(days=10)
    assert times & events
    assert {t - ttl for t in times} & events
    assert {t - ttl - dt.timedelta(microseconds=1) for t in times} & events
    # request values were synthesized: the channel from the payments' column, with edge values
    pair = report.spines["user_id+merchant_id"]
    assert set(pair["channel"].drop_nulls()) <= {"pos", "online", "mobile", ""}
    assert pair["channel"].null_count() and pair["amount"].null_count()
    assert (pair["amount"] == 0).any() and (pair["amount"] < 0).any()
    assert report.request_data == {
        "user_id": "none needed",
        "merchant_id": "none needed",
        "user_id+merchant_id": (
            "synthesized with edge values (amount, channel from same-named source columns)"
        ),
    }
    data = json.loads(report.to_json())
    assert data["kind"] == "parity" and data["summary"]["flagged"] == 0


def test_batch_dependent_on_demand_functions_are_flagged_with_examples(
    bad_report: ParityReport,
) -> None:
    report = bad_report
    assert set(report.flagged) == FLAGGED
    assert [r.ref for r in report.results[: len(FLAGGED)]] == sorted(
        FLAGGED, key=lambda ref: (-report.result(ref).mismatches, ref)
    )
    for r in report.results:
        if r.ref not in FLAGGED:
            assert r.verdict is Verdict.OK, (r.ref, r.reasons, r.examples)
    mean = report.result("batchy:amount_vs_mean")
    assert mean.rows_compared == SAMPLE and mean.mismatches > SAMPLE // 2
    assert mean.reasons == [
        f"{mean.mismatches:,} of {SAMPLE:,} rows differ between the offline path and the serving "
        f"code ({mean.value_mismatches:,} in value, {mean.status_mismatches:,} in status)",
        f"its inputs (user_profile:age) are equal online and offline on all {mean.mismatches:,} "
        "differing rows, so the function itself gives a different result on one row than on "
        "the whole frame: does it aggregate, rank, shift or sample over rows? Make it row-wise",
    ]
    for example in mean.examples:
        assert example["offline"] != example["online"] or (
            example["offline_status"] != example["online_status"]
        )
        assert {"user_id", "time", "amount", "inputs"} <= set(example)
        if example["online_status"] == "PRESENT":  # one row: amount / its own mean
            assert example["online"] == pytest.approx(1.0)
    rank = report.result("batchy:amount_rank")
    assert any(e["online"] == 1.0 and e["offline"] != 1.0 for e in rank.examples)
    fragile = report.result("fragile:doubled")
    assert fragile.errors == SAMPLE
    assert fragile.examples[0]["online_status"] == "ERROR"
    raised = (
        "TransformError: on-demand view 'fragile': the function raised ValueError: needs a batch"
    )
    assert fragile.examples[0]["error"] == raised
    assert fragile.reasons[:2] == [
        f"{SAMPLE} of {SAMPLE} rows differ between the offline path and the serving code (0 in "
        f"value, 0 in status, {SAMPLE} where a path raised)",
        f"the serving code raised on {SAMPLE} rows: {raised}",
    ]
    # the same view's row-wise output, and the other views' outputs, are fine
    assert report.result("batchy:amount_per_year").verdict is Verdict.OK
    assert report.result("risk:vs_mean_7d").verdict is Verdict.OK


def test_the_online_side_holds_what_materialization_writes(tmp_path: Path) -> None:
    """The in-memory store of the serving side holds, per spine row, the bytes a real
    materialization at the row's time publishes (SQLite), latest rows and events alike."""
    store = FeatureStore(write(tmp_path / "repo"))
    store.apply()
    end = START + dt.timedelta(days=40, hours=5, microseconds=7)
    store.materialize(end, force=True)  # the guard would refuse the ages out of bounds
    users = list(range(1, USERS + 1))
    spine = pl.DataFrame(
        {"user_id": users, "event_timestamp": [end] * len(users)},
        schema={"user_id": pl.Int64, "event_timestamp": pl.Datetime("us", "UTC")},
    )
    snapshot = as_of_store(
        store.offline,
        store.registry.require(),
        spine,
        {"user_profile": ["age"], "spending": ["spend_1d"]},
    )
    keys = [encode_key((u,)) for u in users]
    for stored in ("user_profile", events_store_name("spending")):
        published = store.online.read(stored, keys)
        ours = [snapshot.value(stored, i) for i in range(len(users))]
        assert [v[1] if v else None for v in ours] == published
        assert [v[0] for v in ours if v] == [k for k, p in zip(keys, published, strict=True) if p]
        assert sum(p is not None for p in published) > USERS // 2
    store.close()


def test_apply_check_gates_the_registry(bad: Path, tmp_path: Path) -> None:
    good = write(tmp_path / "repo")
    flagged = run("apply", "--check", "--fail-on-flagged", "--sample", "120", cwd=bad)
    assert flagged.returncode == 3, flagged.stderr
    assert not (bad / ".featurestore" / "registry.json").exists()
    assert "batchy:amount_vs_mean" in flagged.stdout and "flagged" in flagged.stdout
    assert "nothing was applied" in flagged.stderr
    clean = run("apply", "--check", "--fail-on-flagged", "--sample", "120", "--json", cwd=good)
    assert clean.returncode == 0, clean.stderr
    data = json.loads(clean.stdout)
    assert data["applied"] is True and "user_profile:age" in data["added"]
    assert data["parity"]["summary"]["flagged"] == 0
    assert all(f["stats"]["rows_compared"] == 120 for f in data["parity"]["features"])
    assert (good / ".featurestore" / "registry.json").exists()
    # the options of the check need --check
    runner = CliRunner()
    usage = runner.invoke(main, ["apply", "--repo", str(bad), "--fail-on-flagged"])
    assert usage.exit_code == 2 and "--check" in usage.output


def test_keys_no_view_holds_together_are_sampled_view_by_view(store: FeatureStore) -> None:
    """Checked alone, an on-demand view over a user view and a merchant view gets user keys
    and times from the user view's source and merchant keys from the merchant view's."""
    report = store.check_parity(["cross:busy_for_age"], sample=60, seed=2)
    result = report.result("cross:busy_for_age")
    assert result.verdict is Verdict.OK and result.rows_compared == 60
    spine = report.spines["user_id+merchant_id"]
    data = repo_data()
    assert spine["user_id"].null_count() == spine["merchant_id"].null_count() == 0
    assert set(spine["user_id"]) <= set(data["data/users.parquet"]["user_id"])
    assert set(spine["merchant_id"]) <= set(range(100, 100 + MERCHANTS))
    assert spine["merchant_id"].n_unique() > 1
    updates = set(data["data/users.parquet"]["updated_at"])
    assert set(spine["event_timestamp"]) & updates  # times come from the user view's rows


def test_the_sample_is_deterministic(store: FeatureStore, bad_report: ParityReport) -> None:
    once = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=5)
    again = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=5)
    other = store.check_parity(["risk:vs_mean_7d", "user_profile:age"], sample=80, seed=6)
    assert once.spines.keys() == again.spines.keys() == {"user_id", "user_id+merchant_id"}
    for label, frame in once.spines.items():
        assert frame.equals(again.spines[label])
        assert not frame.equals(other.spines[label])
    strip = [{k: v for k, v in f.items() if k != "stats"} for f in once.to_dict()["features"]]
    assert strip == [
        {k: v for k, v in f.items() if k != "stats"} for f in again.to_dict()["features"]
    ]


def test_a_spine_is_used_as_given(bad: Path) -> None:
    t = dt.datetime(2024, 2, 1, 12, tzinfo=UTC)
    spine = pl.DataFrame(
        {
            "user_id": [1, 2, 3, 4, 5],
            "when": [t, t, t + dt.timedelta(days=3), t, t - dt.timedelta(days=20)],
            "amount": [10.0, 20.0, 30.0, 40.0, 50.0],
            "channel": ["pos", "online", None, "pos", ""],
        }
    )
    fs = FeatureStore(bad)
    try:
        report = fs.check_parity(spine=spine, timestamp_column="when")
    finally:
        fs.close()
    assert list(report.spines) == ["spine"] and report.spines["spine"].equals(spine)
    assert report.sample is None
    checked = {r.ref for r in report.results}
    assert "user_profile:age" in checked and "spending:spend_1d" in checked
    # features needing merchant_id are left out, with why
    assert "user_merchant:n_txn" not in checked and "risk:vs_mean_7d" not in checked
    assert report.not_checked["risk:card_not_present"] == "the spine lacks merchant_id"
    assert all(r.rows_compared == 5 for r in report.results)
    mean = report.result("batchy:amount_vs_mean")
    assert mean.verdict is Verdict.FLAGGED
    # offline, each amount over the mean of the spine's five amounts: the rows as given
    offline = {e["user_id"]: e["offline"] for e in mean.examples}
    assert offline == {
        u: pytest.approx(a / 30.0)
        for u, a in zip(range(1, 6), spine["amount"], strict=True)
        if a != 30.0
    }
    assert [e["time"] for e in mean.examples] == [
        w.isoformat() for w, a in zip(spine["when"], spine["amount"], strict=True) if a != 30.0
    ]


def test_request_values_come_from_the_serving_log(tmp_path: Path) -> None:
    config = "project: parity\nserving_log: {enabled: true}\n"
    fs = FeatureStore(write(tmp_path / "repo", config=config))
    try:
        fs.apply()
        end = START + dt.timedelta(days=DAYS)
        fs.materialize(end, force=True)
        fs.get_online_features(
            ["risk:card_not_present"],
            entities={"user_id": [1, 2, 3], "merchant_id": [100, 101, 102]},
            request_data={"amount": [12.5, 99.0, None], "channel": ["pos", "kiosk", "online"]},
            request_time=end,
        )
        report = fs.check_parity(["risk:card_not_present", "risk:amount_per_age"], sample=50)
    finally:
        fs.close()
    assert not report.flagged
    assert report.request_data["user_id+merchant_id"] == (
        "serving log (3 records with amount, channel)"
    )
    spine = report.spines["user_id+merchant_id"]
    assert set(spine["channel"]) == {"pos", "kiosk", "online"}
    assert set(spine["amount"].to_list()) == {12.5, 99.0, None}
