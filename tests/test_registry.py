"""The registry: apply and plan, fingerprints that change when and only when a feature's
values may change, atomic failed applies, and training sets refusing unapplied changes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from conftest import DEFINITIONS, PROJECT, spine_frame, users_frame

from featurestore import ApplyError, FeatureStore, RegistryError
from featurestore._registry import PlanDiff

MakeRepo = Callable[..., Path]

# Every variant of the repo shares one data directory, hence one registry.
SHARED_CONFIG = f"project: {PROJECT}\ndata_dir: ../state\n"
ALL = ["user_profile:country", "user_profile:age", "user_profile:tenure_days"]
ODFV = "txn_risk:amount_per_age"


def variant(
    make_repo: MakeRepo,
    name: str,
    *replacements: tuple[str, str],
    data: dict[str, pl.DataFrame] | None = None,
) -> Path:
    """The default repo with text replacements in its definitions, sharing the registry."""
    text = DEFINITIONS
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    return make_repo(name, definitions=text, config=SHARED_CONFIG, data=data)


@pytest.fixture
def applied(make_repo: MakeRepo) -> Path:
    """The default repo, applied; its registry lives in tmp_path/state."""
    root = variant(make_repo, "base")
    FeatureStore(root).apply()
    return root


def _registry(root: Path) -> Path:
    return root.parent / "state" / "registry.json"


def _plan(root: Path) -> PlanDiff:
    return FeatureStore(root).plan()


def test_plan_before_apply_lists_everything_as_added(repo_dir: Path) -> None:
    diff = FeatureStore(repo_dir).plan()
    assert diff.added == [*ALL, ODFV]
    assert not diff.changed and not diff.removed and not diff.unchanged
    assert not (repo_dir / ".featurestore" / "registry.json").exists()


def test_apply_then_plan_shows_no_changes(repo_dir: Path) -> None:
    store = FeatureStore(repo_dir)
    first = store.apply()
    assert first.added == [*ALL, ODFV]
    diff = store.plan()
    assert not diff.has_changes
    assert diff.unchanged == [*ALL, ODFV]
    assert not store.apply().has_changes
    assert not FeatureStore(repo_dir).plan().has_changes  # a fresh load agrees


def test_list_features_after_apply(store: FeatureStore) -> None:
    records = {r.ref: r for r in store.list_features()}
    assert list(records) == [*ALL, ODFV]
    age = records["user_profile:age"]
    assert (age.view, age.name, age.kind, age.dtype, age.owner) == (
        "user_profile",
        "age",
        "feature",
        "Int64",
        "risk-team",
    )
    assert age.tags == {"domain": "risk"}
    assert records[ODFV].kind == "on_demand"
    assert len({r.fingerprint for r in records.values()}) == 4
    state = store.registry.require()
    assert state.project == PROJECT
    assert state.services == {"risk_model": [*ALL, ODFV]}
    assert state.views["user_profile"].join_keys == {"user_id": "Int64"}
    assert state.views["user_profile"].ttl_seconds == 30 * 86400


def test_fingerprints_do_not_depend_on_the_repo_location(
    applied: Path, make_repo: MakeRepo
) -> None:
    moved = variant(make_repo, "moved")
    assert not _plan(moved).has_changes


FINGERPRINT_CHANGES = {
    "expression": (
        [(".dt.total_days(),", ".dt.total_days() + 1,")],
        None,
        ["user_profile:tenure_days", ODFV],
        "expr",
    ),
    "dtype": (
        [('Feature("age", pl.Int64,', 'Feature("age", pl.Int32,')],
        None,
        ["user_profile:age", ODFV],
        "dtype",
    ),
    "bounds": ([("le=130", "le=120")], None, ["user_profile:age", ODFV], "le"),
    "default": (
        [('default="unknown"', 'default="n/a"')],
        None,
        ["user_profile:country", ODFV],
        "default",
    ),
    "ttl": ([("ttl=timedelta(days=30)", "ttl=timedelta(days=31)")], None, [*ALL, ODFV], "ttl"),
    "source_path": (
        [("data/users.parquet", "data/users_v2.parquet")],
        {"data/users_v2.parquet": users_frame()},
        [*ALL, ODFV],
        "source",
    ),
    "timestamp_field": (
        [('timestamp_field="updated_at"', 'timestamp_field="signup_at"')],
        None,
        [*ALL, ODFV],
        "source",
    ),
    "join_keys": (
        [('join_keys=["user_id"]', 'join_keys=["uid"]')],
        {"data/users.parquet": users_frame().with_columns(uid=pl.col("user_id"))},
        [*ALL, ODFV],
        "join_keys",
    ),
    "on_demand_body": (
        [('/ pl.col("age"))', '/ (pl.col("age") + 1))')],
        None,
        [ODFV],
        "function",
    ),
    "upstream_of_on_demand": (
        [("ge=0, le=130", "ge=1, le=130")],
        None,
        ["user_profile:age", ODFV],
        "ge",
    ),
}


@pytest.mark.parametrize(
    ("replacements", "data", "changed", "reason"),
    list(FINGERPRINT_CHANGES.values()),
    ids=list(FINGERPRINT_CHANGES),
)
def test_fingerprint_changes_with_the_definition(
    applied: Path,
    make_repo: MakeRepo,
    replacements: list[tuple[str, str]],
    data: dict[str, pl.DataFrame] | None,
    changed: list[str],
    reason: str,
) -> None:
    before = {r.ref: r.fingerprint for r in FeatureStore(applied).list_features()}
    root = variant(make_repo, "edited", *replacements, data=data)
    diff = _plan(root)
    got = {c.ref: c for c in diff.changed}
    assert sorted(got) == sorted(changed)
    assert sorted(diff.unchanged) == sorted({*ALL, ODFV} - set(changed))
    assert not diff.added and not diff.removed
    for ref, change in got.items():
        assert change.fingerprint_changed, ref
        assert change.old_fingerprint == before[ref]
        assert change.new_fingerprint != before[ref]
        assert change.reasons, ref
    first = changed[0]
    assert any(r.startswith(reason) for r in got[first].reasons), got[first].reasons
    if first != ODFV and ODFV in got:
        # the on-demand feature changes because one of its inputs did
        assert any(r.startswith("inputs") and first in r for r in got[ODFV].reasons)
    # applying records the new fingerprints, after which plan is clean again
    FeatureStore(root).apply()
    assert not _plan(root).has_changes
    after = {r.ref: r.fingerprint for r in FeatureStore(root).list_features()}
    assert {ref for ref in after if after[ref] != before[ref]} == set(changed)


METADATA_CHANGES = {
    "owner": ([('owner="risk-team"', 'owner="ml-team"')], ALL, "owner"),
    "tags": ([('tags={"domain": "risk"}', 'tags={"domain": "fraud"}')], ALL, "tags"),
    "feature_description": (
        [('default="unknown")', 'default="unknown", description="ISO country code.")')],
        ["user_profile:country"],
        "description",
    ),
    "on_demand_docstring": (
        [
            (
                "-> pl.DataFrame:\n    return",
                '-> pl.DataFrame:\n    """Amount per year of age."""\n    return',
            )
        ],
        [ODFV],
        "description",
    ),
    "on_demand_owner": (
        [
            (
                'schema={"amount_per_age": pl.Float64}',
                'schema={"amount_per_age": pl.Float64}, owner="x"',
            )
        ],
        [ODFV],
        "owner",
    ),
}


@pytest.mark.parametrize(
    ("replacements", "changed", "reason"),
    list(METADATA_CHANGES.values()),
    ids=list(METADATA_CHANGES),
)
def test_metadata_changes_keep_the_fingerprint(
    applied: Path,
    make_repo: MakeRepo,
    replacements: list[tuple[str, str]],
    changed: list[str],
    reason: str,
) -> None:
    diff = _plan(variant(make_repo, "edited", *replacements))
    got = {c.ref: c for c in diff.changed}
    assert sorted(got) == sorted(changed)
    for ref, change in got.items():
        assert not change.fingerprint_changed, ref
        assert change.old_fingerprint == change.new_fingerprint
        assert any(r.startswith(reason) for r in change.reasons), change.reasons
    assert not diff.added and not diff.removed


def test_view_description_change_is_listed(applied: Path, make_repo: MakeRepo) -> None:
    root = variant(make_repo, "edited", ('"Profile of a user."', '"Who the user is."'))
    got = {c.ref: c for c in _plan(root).changed}
    assert sorted(got) == sorted(ALL)
    assert all(not c.fingerprint_changed for c in got.values())
    assert all(any(r.startswith("description") for r in c.reasons) for c in got.values())


COSMETIC_CHANGES = {
    "comment_in_on_demand": [
        ("-> pl.DataFrame:\n    return", "-> pl.DataFrame:\n    # ratio of two inputs\n    return")
    ],
    "reformatted_on_demand": [
        (
            'return df.select((pl.col("amount") / pl.col("age")).cast(pl.Float64)'
            '.alias("amount_per_age"))',
            "return df.select(\n        (pl.col('amount')\n         / pl.col('age'))"
            ".cast(pl.Float64).alias('amount_per_age')\n    )",
        )
    ],
    "reformatted_view": [
        (
            'Feature("age", pl.Int64, ge=0, le=130)',
            "Feature(\n    'age', pl.Int64, ge=0, le=130,\n)",
        ),
        ("ttl=timedelta(days=30)", "ttl=timedelta(hours=30 * 24)"),
        ('"""Definitions of the test repo."""', "# a comment at the top\n"),
    ],
}


@pytest.mark.parametrize(
    "replacements", list(COSMETIC_CHANGES.values()), ids=list(COSMETIC_CHANGES)
)
def test_cosmetic_changes_change_nothing(
    applied: Path, make_repo: MakeRepo, replacements: list[tuple[str, str]]
) -> None:
    diff = _plan(variant(make_repo, "edited", *replacements))
    assert not diff.has_changes, diff
    assert sorted(diff.unchanged) == sorted([*ALL, ODFV])


def test_removed_and_added_features(applied: Path, make_repo: MakeRepo) -> None:
    root = variant(
        make_repo,
        "edited",
        ('        Feature("country", pl.String, default="unknown"),\n', ""),
        (
            '        Feature("age", pl.Int64, ge=0, le=130),\n',
            '        Feature("age", pl.Int64, ge=0, le=130),\n'
            '        Feature("age_next_year", pl.Int64, expr=pl.col("age") + 1),\n',
        ),
    )
    diff = _plan(root)
    assert diff.removed == ["user_profile:country"]
    assert diff.added == ["user_profile:age_next_year"]
    changed = {c.ref: c for c in diff.changed}
    assert list(changed) == [ODFV]  # its inputs (all of user_profile) changed
    assert changed[ODFV].fingerprint_changed
    assert any("user_profile:country" in r for r in changed[ODFV].reasons)
    FeatureStore(root).apply()
    assert [r.ref for r in FeatureStore(root).list_features()] == [
        "user_profile:age",
        "user_profile:age_next_year",
        "user_profile:tenure_days",
        ODFV,
    ]


# --- failed applies -------------------------------------------------------------------------

BROKEN = (
    (
        '        Feature("age", pl.Int64, ge=0, le=130),\n',
        '        Feature("age", pl.Int64, ge=0, le=130),\n'
        '        Feature("income", pl.Float64),\n'
        '        Feature("mixed", pl.String, expr=pl.col("country") + pl.col("age")),\n'
        '        Feature("is_adult", pl.Boolean, expr=pl.col("age") * 2),\n',
    ),
    (".cast(pl.Float64).alias", ".cast(pl.Int64).alias"),
)


def _check_broken_apply(exc: ApplyError) -> None:
    problems = exc.problems
    assert len(problems) == 4, problems
    text = str(exc)
    for fragment in (
        "'user_profile:income'",
        "'income'",
        "'user_profile:mixed'",
        "'user_profile:is_adult'",
        "Boolean",
        "txn_risk",
        "Float64",
        "nothing was written",
    ):
        assert fragment in text, fragment
    assert all(p in text for p in problems)


def test_failed_apply_lists_every_problem_and_keeps_the_registry(
    applied: Path, make_repo: MakeRepo
) -> None:
    registry = _registry(applied)
    before = registry.read_bytes()
    store = FeatureStore(variant(make_repo, "broken", *BROKEN))
    with pytest.raises(ApplyError) as info:
        store.apply()
    _check_broken_apply(info.value)
    with pytest.raises(ApplyError):
        store.plan()
    assert registry.read_bytes() == before
    assert sorted(p.name for p in registry.parent.iterdir()) == ["registry.json"]


def test_failed_first_apply_writes_no_registry(make_repo: MakeRepo) -> None:
    root = variant(make_repo, "broken", *BROKEN)
    with pytest.raises(ApplyError) as info:
        FeatureStore(root).apply()
    _check_broken_apply(info.value)
    state = root.parent / "state"
    assert not (state / "registry.json").exists()
    assert not state.exists() or not any(state.iterdir())


def test_apply_with_a_missing_source_file(applied: Path, make_repo: MakeRepo) -> None:
    before = _registry(applied).read_bytes()
    root = variant(make_repo, "broken", ("data/users.parquet", "data/missing.parquet"))
    with pytest.raises(ApplyError) as info:
        FeatureStore(root).apply()
    msg = str(info.value)
    assert "'users'" in msg and "missing.parquet" in msg and "matches no file" in msg
    assert _registry(applied).read_bytes() == before


def test_apply_with_a_source_lacking_key_or_timestamp(make_repo: MakeRepo) -> None:
    data = {"data/users.parquet": users_frame().drop("user_id").rename({"updated_at": "ts"})}
    root = variant(make_repo, "broken", data=data)
    with pytest.raises(ApplyError) as info:
        FeatureStore(root).apply()
    msg = str(info.value)
    assert "join key column 'user_id'" in msg
    assert "timestamp column 'updated_at'" in msg
    assert len(info.value.problems) >= 3  # the key, the timestamp, tenure_days' input


def test_apply_with_a_service_naming_an_unknown_feature(make_repo: MakeRepo) -> None:
    root = variant(make_repo, "broken", ('"txn_risk:amount_per_age"', '"txn_risk:amount"'))
    with pytest.raises(ApplyError) as info:
        FeatureStore(root).apply()
    msg = str(info.value)
    assert "risk_model" in msg and "txn_risk:amount" in msg and "amount_per_age" in msg


def test_apply_rejects_an_expression_that_fails_on_the_source_types(make_repo: MakeRepo) -> None:
    root = variant(
        make_repo,
        "broken",
        (
            '        Feature("age", pl.Int64, ge=0, le=130),\n',
            '        Feature("age", pl.Int64, ge=0, le=130),\n'
            '        Feature("year", pl.Int64, expr=pl.col("country").dt.year()),\n',
        ),
    )
    with pytest.raises(ApplyError, match="user_profile:year"):
        FeatureStore(root).apply()


def test_corrupt_registry_file_is_reported(applied: Path) -> None:
    _registry(applied).write_text("{not json")
    store = FeatureStore(applied)
    with pytest.raises(RegistryError) as info:
        store.plan()
    assert "unreadable" in str(info.value) and str(_registry(applied)) in str(info.value)
    with pytest.raises(RegistryError, match="unreadable"):
        store.list_features()


def test_apply_rewrites_a_corrupt_registry_file(applied: Path) -> None:
    _registry(applied).write_text("{not json")
    store = FeatureStore(applied)
    store.apply()
    assert not store.plan().has_changes


# --- training sets and the applied state ----------------------------------------------------


def test_nothing_applied(repo_dir: Path) -> None:
    store = FeatureStore(repo_dir)
    with pytest.raises(RegistryError, match="apply"):
        store.list_features()
    with pytest.raises(RegistryError, match="apply"):
        store.get_training_set(spine_frame(), features=["user_profile:age"])


def test_training_set_refuses_features_changed_since_apply(
    applied: Path, make_repo: MakeRepo
) -> None:
    store = FeatureStore(variant(make_repo, "edited", ("le=130", "le=120")))
    with pytest.raises(RegistryError) as info:
        store.get_training_set(spine_frame(), features=["user_profile:country", "user_profile:age"])
    msg = str(info.value)
    assert "'user_profile:age'" in msg and "differs from the applied registry" in msg
    assert "featurestore apply" in msg
    with pytest.raises(RegistryError, match=ODFV):
        store.get_training_set(spine_frame(), features=[ODFV])
    # an unchanged feature still works, and after apply the changed one does too
    ts = store.get_training_set(spine_frame(), features=["user_profile:country"])
    assert ts.to_polars()["country"].to_list()[:3] == ["FR", "FR", "US"]
    store.apply()
    assert store.get_training_set(spine_frame(), features=["user_profile:age"]).to_polars().height


def test_training_set_refuses_features_not_applied(applied: Path, make_repo: MakeRepo) -> None:
    root = variant(
        make_repo,
        "edited",
        (
            '        Feature("age", pl.Int64, ge=0, le=130),\n',
            '        Feature("age", pl.Int64, ge=0, le=130),\n'
            '        Feature("age2", pl.Int64, expr=pl.col("age") * 2),\n',
        ),
    )
    with pytest.raises(RegistryError) as info:
        FeatureStore(root).get_training_set(spine_frame(), features=["user_profile:age2"])
    assert "'user_profile:age2'" in str(info.value) and "not applied" in str(info.value)


def test_registry_records_the_apply_time(store: FeatureStore) -> None:
    state = store.registry.require()
    assert abs(dt.datetime.now(dt.UTC) - state.applied_at) < dt.timedelta(minutes=5)
