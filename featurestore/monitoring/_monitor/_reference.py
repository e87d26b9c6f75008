"""What monitoring compares against: the reference of ``monitoring.reference`` (a saved training
set or a serving log window), its features with their dtypes, drift settings and owners, and an
id that changes whenever the reference's profiles do (summaries are counted at one reference's
points, so each reference keeps its own)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from featurestore._config import MonitoringConfig
from featurestore._profiles import FeatureProfile
from featurestore.errors import ConfigError
from featurestore.monitoring._drift import parse_side, reference_profiles
from featurestore.monitoring._drift._inputs import drift_feature, feature_dtype
from featurestore.monitoring._drift._sides import TrainingSetSide
from featurestore.monitoring._inputs import ReportInputs
from featurestore.monitoring._monitor._history import MonitoredFeature

__all__ = ["MonitorReference", "load_reference"]


@dataclass(frozen=True)
class MonitorReference:
    """The reference's label and id, and each monitored feature with its declared dtype."""

    label: str
    id: str
    features: dict[str, MonitoredFeature]
    dtypes: dict[str, pl.DataType]

    @property
    def profiles(self) -> dict[str, FeatureProfile]:
        return {ref: f.reference for ref, f in self.features.items()}


def _side(inputs: ReportInputs, spec: str) -> TrainingSetSide | object:
    if spec.startswith("log:"):
        return parse_side(spec)
    path = Path(spec).expanduser()
    path = path if path.is_absolute() else inputs.repo.root / path
    if not path.is_file():
        raise ConfigError(
            f"monitoring.reference: training set {spec!r} does not exist (looked at {path}); "
            "save one with TrainingSet.save() or use a serving log window like "
            "log:2025-03-01..2025-03-08"
        )
    return TrainingSetSide(path)


def load_reference(inputs: ReportInputs, config: MonitoringConfig) -> MonitorReference:
    """The configured reference and the monitored features (``monitoring.features``, default
    every feature of the reference that is still defined)."""
    if config.reference is None:
        raise ConfigError(
            "monitoring.reference is not set in featurestore.yaml; set it to a saved training "
            "set (data/training_sets/name.parquet) or a serving log window (log:START..END)"
        )
    wanted = None if config.features == "all" else list(config.features)
    side = _side(inputs, config.reference)
    label, profiles = reference_profiles(inputs, side, wanted)  # type: ignore[arg-type]
    dtypes = {r: d for r in profiles if (d := feature_dtype(inputs, r)) is not None}
    features = {}
    for ref in dtypes:
        described = drift_feature(inputs, ref, profiles[ref])
        features[ref] = MonitoredFeature(ref, profiles[ref], described.config, described.owner)
    text = json.dumps(
        {r: profiles[r].model_dump(mode="json") for r in sorted(features)}, sort_keys=True
    )
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    return MonitorReference(label, digest, features, dtypes)
