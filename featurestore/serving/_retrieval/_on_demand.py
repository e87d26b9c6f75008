"""On-demand views at request time: their input frame built from request data and served
features, run through the shared transform code, checked by the outputs' rules; and the
fingerprint an output has when some of its inputs came from earlier definitions."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import polars as pl

from featurestore._registry import RegistryState
from featurestore._row_mode import conform, row_outputs
from featurestore._transforms import run_on_demand
from featurestore._value_rules import MATCH_FOUND, FeatureStatus, resolve, resolve_value
from featurestore.definitions._fingerprint import fingerprint
from featurestore.serving._retrieval._plan import OnDemandRun, Prepared

__all__ = ["OnDemandFingerprints", "run_on_demand_view"]

_PRESENT = FeatureStatus.PRESENT
_INVALID = FeatureStatus.INVALID
_BY_NAME = {s.value: s for s in FeatureStatus}


def run_on_demand_view(
    run: OnDemandRun,
    request_data: Mapping[str, Sequence[Any]],
    values: dict[str, list[Any]],
    statuses: dict[str, list[FeatureStatus]],
) -> None:
    """Run one on-demand view over the request's rows; fill its outputs' values and statuses."""
    if run.view.mode == "rows":
        _run_rows(run, request_data, values, statuses)
        return
    columns = [request_data[key] if req else values[key] for req, key in run.inputs]
    # one dict per row builds a small typed frame faster than rows or one Series per column
    # (same row builder, without a dtype check per column); request values were
    # type-checked in row_count, view values come typed from the store
    names = run.names
    rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    inputs = pl.from_dicts(rows, schema=run.schema)
    out = run_on_demand(run.view, inputs)
    if run.ruled:
        exprs: list[pl.Expr] = []
        for f in run.view.features:
            exprs.extend(resolve(f, pl.col(f.name), pl.lit(MATCH_FOUND), f.name))
        out = out.select(exprs)
        for name, ref, _ in run.outputs:
            values[ref] = out[name].to_list()
            statuses[ref] = [_BY_NAME[s] for s in out[f"{name}__status"].to_list()]
        return
    for name, ref, is_float in run.outputs:  # no rules: resolve() is the non-finite check
        column = out[name].to_list()
        if is_float:
            bad = [v is not None and not math.isfinite(v) for v in column]
            values[ref] = [None if b else v for v, b in zip(column, bad, strict=True)]
            statuses[ref] = [_INVALID if b else _PRESENT for b in bad]
        else:
            values[ref] = column
            statuses[ref] = [_PRESENT] * len(column)


def _run_rows(
    run: OnDemandRun,
    request_data: Mapping[str, Sequence[Any]],
    values: dict[str, list[Any]],
    statuses: dict[str, list[FeatureStatus]],
) -> None:
    """Row mode: the function on each row as a dict, no frame built; inputs typed as a
    training frame's rows hold them, outputs checked by the rules' Python twin."""
    columns = [
        conform(dtype, request_data[key] if req else values[key], key)
        for (req, key), dtype in zip(run.inputs, run.schema.values(), strict=True)
    ]
    names = run.names
    rows = [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]
    outputs = row_outputs(run.view, rows)
    for feature in run.view.features:
        ref = f"{run.view.name}:{feature.name}"
        resolved = [resolve_value(feature, v) for v in outputs[feature.name]]
        values[ref] = [v for v, _ in resolved]
        statuses[ref] = [s for _, s in resolved]


class OnDemandFingerprints:
    """The fingerprints of on-demand outputs fed by values of earlier definitions, worked out
    once per combination of such inputs."""

    def __init__(self, applied: RegistryState) -> None:
        self.applied = applied
        self._known: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}

    def computed_with(self, prepared: Prepared, older: dict[str, str]) -> dict[str, str]:
        """The fingerprints the values were computed with, when some came from earlier
        definitions (``older``): those, and for each on-demand output fed by them, the
        fingerprint its definition has with those inputs."""
        out = dict(prepared.fingerprints)
        out.update({r: fp for r, fp in older.items() if r in out})
        for run in prepared.on_demand:
            fed = tuple(sorted((k, older[k]) for req, k in run.inputs if not req and k in older))
            if not fed:
                continue
            for _, ref, _ in run.outputs:
                key = (ref, fed)
                if key not in self._known:
                    definition = self.applied.features[ref].definition
                    inputs = {**definition["inputs"], **dict(fed)}
                    self._known[key] = fingerprint({**definition, "inputs": inputs})
                if ref in out:
                    out[ref] = self._known[key]
        return out
