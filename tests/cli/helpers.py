"""Running the ``featurestore`` command in this process (click's runner) and reading what it
prints; copies of the example repo with generated data for the online and report verbs."""

from __future__ import annotations

import contextlib
import datetime as dt
import shutil
import subprocess
from pathlib import Path

from click.testing import CliRunner

from featurestore import FeatureStore
from featurestore.cli import main
from featurestore.cli._demo import NOT_COPIED, load_generator

EXAMPLE = Path(__file__).resolve().parents[2] / "feature_definitions"
SERVICE = "fraud_detection_v1"
ENV = {"COLUMNS": "200", "NO_COLOR": "1"}


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``featurestore ARGS`` in ``cwd``, run in this process; an exception the command does not
    turn into a message and an exit code fails the test with its traceback."""
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(
            main, list(args), env=ENV, catch_exceptions=False, prog_name="featurestore"
        )
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


def table_line(text: str, first: str) -> list[str]:
    """The words of the one line of ``text`` whose first word is ``first``."""
    (line,) = [ln for ln in text.splitlines() if ln.split()[:1] == [first]]
    return line.split()


def boxed_rows(text: str) -> list[list[str]]:
    """The cells of each body row of the boxed tables in ``text``."""
    return [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in text.splitlines()
        if line.startswith("│")
    ]


def example_repo(
    target: Path, users: int, seed: int, drift_at: dt.datetime | None = None, apply: bool = True
) -> Path:
    """A copy of the example repo at ``target`` with generated data, applied unless told not."""
    root = Path(shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(*NOT_COPIED)))
    load_generator(root).generate(root / "data", n_users=users, seed=seed, drift_at=drift_at)
    if apply:
        store = FeatureStore(root)
        store.apply()
        store.close()
    return root
