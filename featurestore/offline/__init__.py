"""The offline engine: DuckDB reads sources and runs point-in-time joins into training sets."""

from featurestore.offline._engine import OfflineEngine
from featurestore.offline._event_spine import EventRange
from featurestore.offline._spine import SpineLike, read_spine
from featurestore.offline._training_set import TrainingSet, TrainingSetFeature, TrainingSetMetadata

__all__ = [
    "EventRange",
    "OfflineEngine",
    "SpineLike",
    "TrainingSet",
    "TrainingSetFeature",
    "TrainingSetMetadata",
    "read_spine",
]
