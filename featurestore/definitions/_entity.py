"""Entities: the things features describe, identified by one or more join keys."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from pydantic import Field, field_validator

from featurestore.definitions._base import Definition, Identifier, check_identifier


class Entity(Definition):
    """A business object (a user, a merchant) and the columns that identify it."""

    name: Identifier
    join_keys: list[str] = Field(default_factory=list)
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)

    if TYPE_CHECKING:

        def __init__(
            self,
            name: str,
            *,
            join_keys: Sequence[str] = ...,
            description: str = "",
            tags: Mapping[str, str] = ...,
        ) -> None: ...

    @field_validator("join_keys")
    @classmethod
    def _keys(cls, v: list[str]) -> list[str]:
        for key in v:
            check_identifier(key, "join key")
        if len(set(v)) != len(v):
            raise ValueError(f"join keys must be unique, found {v}")
        return v

    def model_post_init(self, _context: object) -> None:
        if not self.join_keys:  # Feast's default: the entity's name is its key
            object.__setattr__(self, "join_keys", [self.name])
