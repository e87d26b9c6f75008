"""Feature views: features of one or more entities, read from one source (files or a catalog
table).

A view holds plain ``features`` (the latest source row within the ttl) and/or windowed
``aggregations`` (over the events in ``(t - window, t)``; the ttl does not apply to them).
Both are referenced as ``view:name``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import Field, field_validator, model_validator

from featurestore.definitions._aggregation import Aggregation
from featurestore.definitions._base import Definition, Identifier, did_you_mean
from featurestore.definitions._entity import Entity
from featurestore.definitions._feature import Feature
from featurestore.definitions._sources import BatchSource, FileSource, TableSource
from featurestore.errors import FeatureReferenceError


class FeatureView(Definition):
    """Features keyed by ``entities``: plain ones from the latest row with
    ``t - ttl <= event_time <= t``, aggregations over the events in ``(t - window, t)``."""

    name: Identifier
    entities: list[Entity]
    source: BatchSource
    features: list[Feature] = Field(default_factory=list)
    aggregations: list[Aggregation] = Field(default_factory=list)
    owner: str
    ttl: timedelta | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    online: bool = True

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            *,
            entities: Sequence[Entity],
            source: BatchSource,
            features: Sequence[Feature] = ...,
            aggregations: Sequence[Aggregation] = ...,
            owner: str,
            ttl: timedelta | None = None,
            description: str = "",
            tags: Mapping[str, str] = ...,
            online: bool = True,
        ) -> None: ...

    @field_validator("source", mode="before")
    @classmethod
    def _source(cls, v: Any) -> Any:
        """One clear error for a wrong kind of source, rather than one per kind it is not."""
        if isinstance(v, FileSource | TableSource | dict):
            return v
        raise ValueError(
            "source must be a FileSource, PushSource or TableSource, found "
            f"{type(v).__name__} {v!r:.60}"
        )

    @field_validator("owner")
    @classmethod
    def _owner(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("every feature view needs an owner (a team or a person)")
        return v

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: timedelta | None) -> timedelta | None:
        if v is not None and v <= timedelta(0):
            raise ValueError(f"ttl must be positive, found {v}; use None for no limit")
        return v

    @model_validator(mode="after")
    def _shape(self) -> FeatureView:
        if not self.entities:
            raise ValueError("a feature view needs at least one entity")
        if not self.features and not self.aggregations:
            raise ValueError("a feature view needs at least one feature or aggregation")
        keys = self.join_keys
        if len(set(keys)) != len(keys):
            raise ValueError(f"entities share a join key: {keys}")
        names = self.feature_names
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(
                f"feature and aggregation names must be unique within the view, repeated: {dupes}"
            )
        clash = sorted(set(names) & set(keys))
        if clash:
            raise ValueError(f"features {clash} have the same names as join keys")
        return self

    @property
    def join_keys(self) -> list[str]:
        """Join keys of all entities, in declaration order."""
        return [key for entity in self.entities for key in entity.join_keys]

    @property
    def feature_names(self) -> list[str]:
        """Every name the view serves: plain features, then aggregations."""
        return [f.name for f in self.features] + [a.name for a in self.aggregations]

    @property
    def aggregation_names(self) -> list[str]:
        return [a.name for a in self.aggregations]

    def aggregation(self, name: str) -> Aggregation | None:
        """The aggregation called ``name``, or None when it is a plain feature (or unknown)."""
        return next((a for a in self.aggregations if a.name == name), None)

    def feature(self, name: str) -> Feature:
        """The feature called ``name`` (for an aggregation, its output feature); the error
        suggests the closest name."""
        for f in self.features:
            if f.name == name:
                return f
        agg = self.aggregation(name)
        if agg is not None:
            return agg.feature
        names = self.feature_names
        hint = did_you_mean(name, names, f"{self.name}:")
        raise FeatureReferenceError(
            f"Feature '{self.name}:{name}' is not defined.{hint} "
            f"Known features of view '{self.name}': {', '.join(names)}."
        )

    def source_columns(self) -> list[str]:
        """Source columns the features and aggregations read, without keys and timestamps, in
        first-use order."""
        cols: dict[str, None] = {}
        for f in self.features:
            cols.update(dict.fromkeys(f.source_columns))
        cols.update(dict.fromkeys(a.column for a in self.aggregations if a.column is not None))
        return list(cols)
