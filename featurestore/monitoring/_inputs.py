"""What the reports and the status read, handed to them by the facade: the definitions, the
registry, the offline engine, a reader of the serving log and, on a store that runs on Spark,
its Spark engine (for catalog tables DuckDB cannot read). Reports never see the
``FeatureStore`` itself, so they sit below it and can be built from any such parts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import polars as pl

from featurestore._registry import Registry, build_state, fingerprints_of
from featurestore._repo import RepoContents
from featurestore.definitions import FeatureView
from featurestore.offline._engine import OfflineEngine
from featurestore.sources._scans import needs_catalog

if TYPE_CHECKING:
    from featurestore.offline._spark import SparkEngine

__all__ = ["ReportInputs"]

ServingLogReader = Callable[[dt.datetime | None, dt.datetime | None], pl.DataFrame]


@dataclass(frozen=True)
class ReportInputs:
    """The parts of a feature store a report reads."""

    repo: RepoContents
    registry: Registry
    offline: OfflineEngine
    read_serving_log: ServingLogReader
    catalog: Callable[[], SparkEngine | None] | None = None  # the Spark engine, if any

    def source_engine(self, view: FeatureView) -> OfflineEngine | SparkEngine:
        """The engine that reads the view's source: DuckDB, except for a catalog table
        without files on a store that runs on Spark."""
        if self.catalog is not None and needs_catalog(view.source):
            spark = self.catalog()
            if spark is not None:
                return spark
        return self.offline

    def applied_fingerprints(self, refs: list[str]) -> dict[str, str]:
        """Fingerprints of ``refs``; fails if the code no longer matches what was applied."""
        return fingerprints_of(refs, self.registry.require(), build_state(self.repo, {}))
