"""What the reports and the status read, handed to them by the facade: the definitions, the
registry, the offline engine and a reader of the serving log. Reports never see the
``FeatureStore`` itself, so they sit below it and can be built from any such parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

from featurestore._registry import Registry, build_state, fingerprints_of
from featurestore._repo import RepoContents
from featurestore.offline._engine import OfflineEngine

__all__ = ["ReportInputs"]

ServingLogReader = Callable[[dt.datetime | None, dt.datetime | None], pl.DataFrame]


@dataclass(frozen=True)
class ReportInputs:
    """The parts of a feature store a report reads."""

    repo: RepoContents
    registry: Registry
    offline: OfflineEngine
    read_serving_log: ServingLogReader

    def applied_fingerprints(self, refs: list[str]) -> dict[str, str]:
        """Fingerprints of ``refs``; fails if the code no longer matches what was applied."""
        return fingerprints_of(refs, self.registry.require(), build_state(self.repo, {}))
