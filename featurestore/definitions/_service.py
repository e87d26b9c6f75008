"""Feature services: a named, versionable set of features a model consumes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from featurestore.definitions._base import Definition, Identifier, split_ref
from featurestore.definitions._on_demand import OnDemandFeatureView
from featurestore.definitions._view import FeatureView


class FeatureService(Definition):
    """Whole views, or ``"view:feature"`` references, served together under one name."""

    _positional = ("name", "features")

    name: Identifier
    features: list[FeatureView | OnDemandFeatureView | str]
    owner: str | None = None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            features: Sequence[FeatureView | OnDemandFeatureView | str],
            *,
            owner: str | None = None,
            description: str = "",
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @field_validator("features")
    @classmethod
    def _features(
        cls, v: list[FeatureView | OnDemandFeatureView | str]
    ) -> list[FeatureView | OnDemandFeatureView | str]:
        if not v:
            raise ValueError("a feature service needs at least one view or feature reference")
        for item in v:
            if isinstance(item, str):
                split_ref(item)
        return v

    def references(self) -> list[str]:
        """The service's features as ``view:feature`` references, in order."""
        refs: list[str] = []
        for item in self.features:
            if isinstance(item, str):
                refs.append(item)
            else:
                refs.extend(f"{item.name}:{f}" for f in item.feature_names)
        return list(dict.fromkeys(refs))
