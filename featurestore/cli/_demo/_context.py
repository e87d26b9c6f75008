"""What the demo's steps share: its options, the repo in use, what earlier steps produced, and
the few names of the example repo that several steps rely on."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import polars as pl
from rich.console import Console

from featurestore._store import FeatureStore
from featurestore.errors import RepoError
from featurestore.offline import TrainingSet

__all__ = ["DRIFTED", "TIMESTAMP", "DemoContext"]

TIMESTAMP = "event_timestamp"  # the spine's time column
DRIFTED = ("merchant_profile:risk_score", "merchant_profile:online_only")  # injected drift


@dataclass
class DemoContext:
    """What the steps share: options, the repo in use and what earlier steps produced."""

    out: Console
    repo: Path | None = None
    users: int = 2_000
    seed: int = 7
    verbose: bool = False  # every table in full; otherwise non-ok rows and a summary
    cwd: Path = field(default_factory=Path.cwd)
    generator: ModuleType | None = None
    files: dict[str, Path] = field(default_factory=dict)
    store: FeatureStore | None = None
    spine: pl.DataFrame | None = None
    service: str | None = None
    training_set: TrainingSet | None = None
    training_path: Path | None = None
    data_end: dt.datetime | None = None  # when the generated data ends: the demo's start
    drift_at: dt.datetime | None = None
    served_at: dt.datetime | None = None
    sample: pl.DataFrame | None = None
    keys: list[str] = field(default_factory=list)
    request_columns: list[str] = field(default_factory=list)
    hints: list[str] = field(default_factory=list)

    def shown(self, path: Path) -> str:
        """``path`` relative to the working directory when it is inside it."""
        path = path.resolve()
        cwd = self.cwd.resolve()
        return str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)

    @property
    def repo_dir(self) -> Path:
        """The repo the demo runs in, once located."""
        if self.repo is None:
            raise RepoError("the demo has not located its repo yet")
        return self.repo
