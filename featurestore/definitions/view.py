"""Feature views: features of one or more entities, read from one source, with a ttl."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator, model_validator

from featurestore.definitions.base import Definition, check_identifier, did_you_mean
from featurestore.definitions.entity import Entity
from featurestore.definitions.feature import Feature
from featurestore.definitions.sources import FileSource
from featurestore.errors import FeatureReferenceError


class FeatureView(Definition):
    """Features keyed by ``entities``; a row is usable while ``t - ttl <= event_time <= t``."""

    name: str
    entities: list[Entity]
    source: FileSource
    features: list[Feature]
    owner: str
    ttl: timedelta | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    online: bool = True

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return check_identifier(v)

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
        if not self.features:
            raise ValueError("a feature view needs at least one feature")
        keys = self.join_keys
        if len(set(keys)) != len(keys):
            raise ValueError(f"entities share a join key: {keys}")
        names = [f.name for f in self.features]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"feature names must be unique within the view, repeated: {dupes}")
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
        return [f.name for f in self.features]

    def feature(self, name: str) -> Feature:
        """The feature called ``name``; the error suggests the closest name."""
        for f in self.features:
            if f.name == name:
                return f
        names = self.feature_names
        hint = did_you_mean(name, names, f"{self.name}:")
        raise FeatureReferenceError(
            f"Feature '{self.name}:{name}' is not defined.{hint} "
            f"Known features of view '{self.name}': {', '.join(names)}."
        )

    def source_columns(self) -> list[str]:
        """Source columns the features read, without keys and timestamps, in first-use order."""
        cols: dict[str, None] = {}
        for f in self.features:
            cols.update(dict.fromkeys(f.source_columns))
        return list(cols)
