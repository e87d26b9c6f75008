"""Loading a feature repo: featurestore.yaml, and the definitions its modules make."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from featurestore import ConfigError, FeatureStore, RepoError
from featurestore._config import load_config
from featurestore._repo import find_repo, load_repo, repo_files

MakeRepo = Callable[..., Path]

ENTITIES = """
from featurestore import Entity, FileSource

user = Entity("user", join_keys=["user_id"])
users_source = FileSource(name="users", path="data/users.parquet", timestamp_field="updated_at")
"""

VIEWS = """
from datetime import timedelta

import polars as pl

from entities import user, users_source
from featurestore import Feature, FeatureView

user_profile = FeatureView(
    name="user_profile",
    entities=[user],
    source=users_source,
    owner="risk-team",
    ttl=timedelta(days=30),
    features=[Feature("age", pl.Int64)],
)
"""

SERVICES = """
from featurestore import FeatureService
from views import user_profile

risk_model = FeatureService("risk_model", [user_profile])
"""


def test_default_repo_is_collected(repo_dir: Path) -> None:
    repo = load_repo(repo_dir)
    assert repo.config.project == "test_project"
    assert repo.root == repo_dir.resolve()
    assert list(repo.entities) == ["user"]
    assert sorted(repo.sources) == ["txn_request", "users"]
    assert list(repo.views) == ["user_profile"]
    assert list(repo.on_demand_views) == ["txn_risk"]
    assert list(repo.services) == ["risk_model"]
    assert repo.data_dir == (repo_dir / ".featurestore").resolve()


def test_definitions_from_several_modules_are_collected_once(make_repo: MakeRepo) -> None:
    root = make_repo(
        definitions=None,
        files={"entities.py": ENTITIES, "views.py": VIEWS, "services.py": SERVICES},
    )
    repo = load_repo(root)
    assert list(repo.entities) == ["user"]
    assert list(repo.sources) == ["users"]
    assert list(repo.views) == ["user_profile"]
    assert list(repo.services) == ["risk_model"]
    # the imported definition is the very object the defining module made
    assert repo.views["user_profile"].entities[0] is repo.entities["user"]
    assert repo.origins[("entities", "user")] == "entities.py"


def test_duplicate_error_names_the_defining_module(make_repo: MakeRepo) -> None:
    root = make_repo(
        definitions=None,
        files={
            "a_views.py": VIEWS,  # imports user from entities.py
            "entities.py": ENTITIES,
            "z_other.py": (
                'from featurestore import Entity\nuser = Entity("user", join_keys=["u"])\n'
            ),
        },
    )
    with pytest.raises(RepoError) as info:
        load_repo(root)
    msg = str(info.value)
    assert "entities.py" in msg and "z_other.py" in msg


def test_modules_in_subpackages_are_collected(make_repo: MakeRepo) -> None:
    root = make_repo(
        definitions=None,
        files={"entities.py": ENTITIES, "views/__init__.py": "", "views/profile.py": VIEWS},
    )
    repo = load_repo(root)
    assert list(repo.views) == ["user_profile"]
    assert repo.origins[("views", "user_profile")] == os.path.join("views", "profile.py")


def test_private_hidden_and_data_modules_are_skipped(make_repo: MakeRepo) -> None:
    broken = "raise RuntimeError('must not be imported')\n"
    root = make_repo(
        files={
            "_private.py": broken,
            ".hidden/mod.py": broken,
            "data/script.py": broken,
            "tests/test_defs.py": broken,
            ".featurestore/x.py": broken,
        }
    )
    assert list(load_repo(root).views) == ["user_profile"]


def test_two_definitions_with_the_same_name_fail_naming_both_files(make_repo: MakeRepo) -> None:
    root = make_repo(
        definitions=None,
        files={
            "a_entities.py": 'from featurestore import Entity\nuser = Entity("user")\n',
            "b_entities.py": (
                'from featurestore import Entity\nperson = Entity("user", join_keys=["uid"])\n'
            ),
        },
    )
    with pytest.raises(RepoError) as info:
        load_repo(root)
    msg = str(info.value)
    assert "a_entities.py" in msg and "b_entities.py" in msg
    assert "'user'" in msg and "Entity" in msg


def test_equal_definitions_in_two_files_are_one_definition(make_repo: MakeRepo) -> None:
    text = 'from featurestore import Entity\nuser = Entity("user", join_keys=["user_id"])\n'
    root = make_repo(definitions=None, files={"a.py": text, "b.py": text})
    assert list(load_repo(root).entities) == ["user"]


def test_view_and_on_demand_view_sharing_a_name_fail(make_repo: MakeRepo) -> None:
    clash = """
    import polars as pl
    from featurestore import RequestSource, on_demand_feature_view

    req = RequestSource("req", schema={"x": pl.Float64})

    @on_demand_feature_view(sources=[req], schema={"y": pl.Float64})
    def user_profile(df: pl.DataFrame) -> pl.DataFrame:
        return df.select(pl.col("x").alias("y"))
    """
    root = make_repo(files={"clash.py": clash})
    with pytest.raises(RepoError, match="user_profile"):
        load_repo(root)


def test_module_that_raises_on_import_fails_naming_the_file(make_repo: MakeRepo) -> None:
    broken = "import featurestore\nraise ValueError('bad value in module')\n"
    root = make_repo(files={"broken.py": broken})
    with pytest.raises(RepoError) as info:
        load_repo(root)
    msg = str(info.value)
    assert "broken.py" in msg
    assert "ValueError" in msg and "bad value in module" in msg
    assert "broken.py:2" in msg  # the line that raised
    assert str(root) not in sys.path


def test_module_with_syntax_error_fails_naming_the_file(make_repo: MakeRepo) -> None:
    root = make_repo(files={"typo.py": "def f(:\n    pass\n"})
    with pytest.raises(RepoError, match=r"typo\.py"):
        load_repo(root)


def test_invalid_definition_in_a_module_fails_naming_the_file(make_repo: MakeRepo) -> None:
    bad = (
        'import polars as pl\nfrom featurestore import Feature\nf = Feature("bad name", pl.Int64)\n'
    )
    root = make_repo(files={"bad_defs.py": bad})
    with pytest.raises(RepoError) as info:
        load_repo(root)
    msg = str(info.value)
    assert "bad_defs.py" in msg and "Feature 'bad name'" in msg


def test_missing_config(tmp_path: Path) -> None:
    (tmp_path / "definitions.py").write_text("")
    with pytest.raises(RepoError) as info:
        FeatureStore(tmp_path)
    assert "featurestore.yaml" in str(info.value)
    assert str(tmp_path) in str(info.value)


def test_missing_repo_directory(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match=r"featurestore\.yaml"):
        load_repo(tmp_path / "nope")


def test_find_repo_accepts_the_config_file_and_the_current_directory(
    repo_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert find_repo(repo_dir / "featurestore.yaml") == repo_dir.resolve()
    monkeypatch.chdir(repo_dir)
    assert find_repo() == repo_dir.resolve()
    monkeypatch.chdir(repo_dir.parent)
    (repo_dir.parent / "feature_definitions").symlink_to(repo_dir)
    assert find_repo().name == repo_dir.name


def test_find_repo_without_any_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RepoError, match=r"featurestore\.yaml"):
        find_repo()


@pytest.mark.parametrize(
    ("config", "fragments"),
    [
        ("project: [unclosed\n", ["not valid YAML"]),
        ("data_dir: state\n", ["project", "required"]),
        ("", ["project"]),
        ("project: demo\nonline: true\n", ["online: unknown key. Did you mean 'online_store'?"]),
        ("project: demo\noffline_store:\n  threads: 0\n", ["offline_store.threads"]),
        ("project: demo\noffline_store:\n  type: hive\n", ["offline_store.type"]),
        ("project: my project\n", ["project", "my project"]),
        ("- project: demo\n", ["mapping"]),
    ],
)
def test_invalid_config(make_repo: MakeRepo, config: str, fragments: list[str]) -> None:
    root = make_repo(config=config)
    with pytest.raises(ConfigError) as info:
        load_config(root)
    msg = str(info.value)
    assert "featurestore.yaml" in msg
    for fragment in fragments:
        assert fragment in msg, f"{fragment!r} not in {msg!r}"
    with pytest.raises(ConfigError):
        FeatureStore(root)


def test_config_settings(make_repo: MakeRepo) -> None:
    root = make_repo(
        config="project: demo\ndata_dir: state\noffline_store:\n  threads: 2\n  memory_limit: 1GB\n"
    )
    repo = load_repo(root)
    assert repo.config.project == "demo"
    assert repo.data_dir == (root / "state").resolve()
    assert repo.config.offline_store.threads == 2


def test_two_repos_do_not_mix_their_modules(make_repo: MakeRepo) -> None:
    common_a = 'from featurestore import Entity\nuser = Entity("user")\nLABEL = "a"\n'
    common_b = 'from featurestore import Entity\nmerchant = Entity("merchant")\nLABEL = "b"\n'
    defs = "from common import *  # noqa: F403\n"
    a = make_repo("a", definitions=defs, files={"common.py": common_a})
    b = make_repo("b", definitions=defs, files={"common.py": common_b})
    repo_a, repo_b, repo_a_again = load_repo(a), load_repo(b), load_repo(a)
    assert list(repo_a.entities) == ["user"]
    assert list(repo_b.entities) == ["merchant"]
    assert list(repo_a_again.entities) == ["user"]
    assert "common" not in sys.modules
    assert "definitions" not in sys.modules


def test_two_stores_over_different_repos(make_repo: MakeRepo) -> None:
    a = make_repo("a", project="alpha")
    b = make_repo("b", project="beta", definitions=ENTITIES)
    store_a, store_b = FeatureStore(a), FeatureStore(b)
    assert (store_a.project, store_b.project) == ("alpha", "beta")
    assert list(store_a.repo.views) == ["user_profile"]
    assert list(store_b.repo.views) == []


def test_module_edited_in_place_is_reloaded(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "dont_write_bytecode", False)  # as in a default Python install
    root = make_repo(definitions='from featurestore import Entity\nuser = Entity("user_a")\n')
    module = root / "definitions.py"
    stamp = module.stat().st_mtime_ns
    assert list(load_repo(root).entities) == ["user_a"]
    # an edit of the same size within the same second (pinned here so the test is exact):
    # a stale bytecode cache must not be used
    module.write_text('from featurestore import Entity\nuser = Entity("user_b")\n')
    os.utime(module, ns=(stamp, stamp))
    assert list(load_repo(root).entities) == ["user_b"]


def test_two_threads_loading_repos_at_once_do_not_collide(
    repo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load pauses inside one of its modules until the second load has either
    asked for the import lock or cleared its module names: loads take turns, so the second
    waits for the first instead of popping the module the first is importing."""
    import builtins
    import shutil
    import threading

    import featurestore._repo as repo_module

    (repo_dir / "wait_here.py").write_text(
        "import builtins\n\nimport featurestore  # a definition module\n\n"
        "builtins._featurestore_test_hook()\n"
    )
    other = tmp_path / "other"
    shutil.copytree(repo_dir, other)
    inside = threading.Event()
    second_arrived = threading.Event()
    arrivals: list[str] = []

    def hook() -> None:
        if not inside.is_set():
            inside.set()
            second_arrived.wait(timeout=60)

    class AnnouncedLock:
        """The import lock, announcing the second load when it asks for it."""

        def __init__(self, lock: Any) -> None:
            self.lock = lock

        def __enter__(self) -> Any:
            if threading.current_thread().name == "second":
                arrivals.append("lock")
                second_arrived.set()
            return self.lock.__enter__()

        def __exit__(self, *exc: Any) -> Any:
            return self.lock.__exit__(*exc)

    real_forget = repo_module._forget_modules

    def forget(root: Path) -> None:
        real_forget(root)
        if root == other:
            arrivals.append("forget")
            second_arrived.set()

    monkeypatch.setattr(builtins, "_featurestore_test_hook", hook, raising=False)
    monkeypatch.setattr(repo_module, "_forget_modules", forget)
    monkeypatch.setattr(repo_module, "_IMPORT_LOCK", AnnouncedLock(repo_module._IMPORT_LOCK))
    results: dict[Path, object] = {}

    def load(root: Path) -> None:
        try:
            results[root] = load_repo(root)
        except Exception as exc:
            results[root] = exc

    first = threading.Thread(target=load, args=(repo_dir,), name="first")
    first.start()
    assert inside.wait(timeout=60), "the first load never reached its module"
    second = threading.Thread(target=load, args=(other,), name="second")
    second.start()
    first.join()
    second.join()
    assert arrivals[0] == "lock"  # the second load came while the first was importing
    for root in (repo_dir, other):
        loaded = results[root]
        assert not isinstance(loaded, Exception), loaded
        assert list(loaded.views) == ["user_profile"]  # type: ignore[attr-defined]


GENERATOR = """
import pathlib

pathlib.Path(__file__).with_name("generated.txt").write_text("ran")
"""


def test_a_script_that_imports_no_featurestore_is_never_run(make_repo: MakeRepo) -> None:
    """A data generator beside the definitions is not imported by a command; a helper module
    that a definition module imports still is (by that import), and its values count."""
    helper = "OWNER = 'risk-team'\n"
    root = make_repo(files={"generate_data.py": GENERATOR, "constants.py": helper})
    repo = load_repo(root)
    assert not (root / "generated.txt").exists()
    assert list(repo.views) == ["user_profile"]
    assert [p.name for p in repo_files(root)] == ["definitions.py"]


def test_a_module_that_reaches_featurestore_through_a_repo_module_is_loaded(
    make_repo: MakeRepo,
) -> None:
    common = "from featurestore import Entity, FileSource\n"
    more = (
        "from common import Entity, FileSource\n\n"
        'merchant = Entity("merchant", join_keys=["merchant_id"])\n'
    )
    root = make_repo(files={"common.py": common, "more/merchants.py": more})
    assert sorted(load_repo(root).entities) == ["merchant", "user"]
    assert sorted(p.name for p in repo_files(root)) == [
        "common.py",
        "definitions.py",
        "merchants.py",
    ]


def test_featurestoreignore_skips_matching_files_and_folders(make_repo: MakeRepo) -> None:
    failing = "import featurestore\nraise RuntimeError('must not be imported')\n"
    kept = 'from featurestore import Entity\nm = Entity("m", join_keys=["m"])\n'
    ignore = "# scratch work\nscratch/\nexperiment_*.py\nnotebooks/old.py  # one file\n"
    root = make_repo(
        files={
            ".featurestoreignore": ignore,
            "scratch/try.py": failing,
            "experiment_1.py": failing,
            "notebooks/old.py": failing,
            "notebooks/kept.py": kept,
        }
    )
    repo = load_repo(root)
    assert sorted(repo.entities) == ["m", "user"]
    assert sorted(p.relative_to(root).as_posix() for p in repo_files(root)) == [
        "definitions.py",
        "notebooks/kept.py",
    ]


def test_an_ignored_file_changes_no_code_signature(make_repo: MakeRepo) -> None:
    """A process serving the repo follows edits of its definition modules only."""
    from featurestore.serving._versions import code_signature

    root = make_repo(files={"generate_data.py": GENERATOR})
    before = code_signature(root)
    (root / "generate_data.py").write_text(GENERATOR + "\n# edited\n")
    assert code_signature(root) == before


def test_a_command_in_a_subfolder_finds_the_repo_above(
    make_repo: MakeRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_repo()
    deep = root / "notebooks" / "week1"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_repo() == root.resolve()
    assert list(FeatureStore().repo.views) == ["user_profile"]


def test_no_repo_here_or_above_says_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(
        RepoError, match=r"current directory, its parents or \./feature_definitions"
    ):
        find_repo()


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        (
            "onlin_store:\n  type: sqlite\n",
            "onlin_store: unknown key. Did you mean 'online_store'?",
        ),
        ("online_store:\n  typ: sqlite\n", "online_store.typ: unknown key. Did you mean 'type'?"),
        ("server:\n  prot: 1\n", "server.prot: unknown key. Did you mean 'port'?"),
    ],
)
def test_a_config_typo_gets_a_did_you_mean(tmp_path: Path, yaml_text: str, expected: str) -> None:
    (tmp_path / "featurestore.yaml").write_text("project: p\n" + yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)
    assert expected in str(info.value)
    assert "Known keys here: " in str(info.value)


def test_a_definition_refused_on_import_points_at_the_users_line(make_repo: MakeRepo) -> None:
    no_owner = """\
from featurestore import Entity, Feature, FeatureView, FileSource
import polars as pl

user = Entity("user", join_keys=["user_id"])
src = FileSource(name="users", path="data/users.parquet", timestamp_field="updated_at")

orphan = FeatureView(
    name="orphan",
    entities=[user],
    source=src,
    features=[Feature("age", pl.Int64)],
)
"""
    root = make_repo(definitions=None, files={"views/orphan.py": no_owner})
    with pytest.raises(RepoError) as info:
        load_repo(root)
    assert str(info.value) == (
        "importing views/orphan.py failed: DefinitionError: FeatureView 'orphan': field 'owner' "
        "is required: add owner=... to FeatureView(...) (at views/orphan.py:7)"
    )


def test_editing_the_ignore_file_changes_the_code_signature(make_repo: MakeRepo) -> None:
    """Which modules load depends on .featurestoreignore, so a serving process that follows
    the code on disk sees an edit of it as a change."""
    from featurestore.serving._versions import code_signature

    root = make_repo()
    before = code_signature(root)
    (root / ".featurestoreignore").write_text("scratch/\n")
    assert code_signature(root) != before
