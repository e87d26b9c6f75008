"""OnlineResponse: served values with a status per value and the fingerprints that made them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import polars as pl

from featurestore._value_rules import FeatureStatus
from featurestore.sources._frames import to_pandas

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OnlineResponse"]


@dataclass
class OnlineResponse:
    """Feature values for each requested entity row, in request order.

    ``values`` and ``statuses`` map an output column (the feature name, or ``view__feature``)
    to one entry per row; ``refs`` maps each output column to its ``view:feature`` reference.
    ``event_times`` maps each batch view read to the event time of the row served per entity
    row (None when no row was found), so the skew report can tell a stale value from a wrong one.

    ``fingerprints`` maps each reference to the fingerprint of the definition its values were
    computed with, ``applied_fingerprints`` to the applied one; they differ (``outdated``)
    when the online store still holds values computed before the last apply, until the view
    is materialized again.
    """

    entities: dict[str, list[Any]]
    refs: dict[str, str]
    values: dict[str, list[Any]]
    statuses: dict[str, list[FeatureStatus]]
    dtypes: dict[str, pl.DataType]
    fingerprints: dict[str, str]
    request_time: dt.datetime
    event_times: dict[str, list[dt.datetime | None]] = field(default_factory=dict)
    applied_fingerprints: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.applied_fingerprints:  # not given: the values are the applied definitions'
            self.applied_fingerprints = self.fingerprints

    @property
    def outdated(self) -> dict[str, str]:
        """References served with values of an earlier definition: ref -> the applied
        fingerprint (``fingerprints[ref]`` is the one the values were computed with)."""
        return {
            ref: applied
            for ref, applied in self.applied_fingerprints.items()
            if self.fingerprints.get(ref) != applied
        }

    @property
    def row_count(self) -> int:
        return len(next(iter(self.values.values()), []))

    def to_dict(self, include_statuses: bool = False) -> dict[str, list[Any]]:
        """Entity columns then feature columns; with statuses, ``<column>__status`` too."""
        out: dict[str, list[Any]] = {k: list(v) for k, v in self.entities.items()}
        for column, values in self.values.items():
            out[column] = list(values)
            if include_statuses:
                out[f"{column}__status"] = [s.value for s in self.statuses[column]]
        return out

    def to_pandas(self, include_statuses: bool = False) -> pd.DataFrame:
        """The table of :meth:`to_polars` in pandas, with nullable dtypes (integers stay
        integers, missing values stay missing)."""
        return to_pandas(self.to_polars(include_statuses))

    def to_polars(self, include_statuses: bool = False) -> pl.DataFrame:
        """The same table as :meth:`to_dict`, with the features' declared dtypes."""
        columns = [pl.Series(k, v) for k, v in self.entities.items()]
        for column, values in self.values.items():
            columns.append(pl.Series(column, values, dtype=self.dtypes[column]))
            if include_statuses:
                columns.append(
                    pl.Series(f"{column}__status", [s.value for s in self.statuses[column]])
                )
        return pl.DataFrame(columns)
