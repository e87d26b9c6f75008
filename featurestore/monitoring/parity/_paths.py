"""The two paths the parity check runs each feature through: the training-set path over the
whole spine, and the serving code one spine row at a time; a unit that raises is recorded per
row instead of hiding the others."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from featurestore._repo import RepoContents
from featurestore._selection import build_plan, parse_ref
from featurestore.definitions import FeatureView, OnDemandFeatureView
from featurestore.errors import FeatureStoreError, TransformError
from featurestore.monitoring.parity._as_of import AsOfOnlineStore
from featurestore.monitoring.parity._groups import Group
from featurestore.offline._engine import OfflineEngine
from featurestore.serving._retrieval import OnlineRetriever

__all__ = ["ERROR_STATUS", "Side", "offline_side", "online_side", "units"]

ERROR_STATUS = "ERROR"  # the status shown for a path that raised


@dataclass
class Side:
    """One path's values and statuses per reference, and the error of each row that raised."""

    values: dict[str, list[Any]] = field(default_factory=dict)
    statuses: dict[str, list[str]] = field(default_factory=dict)
    errors: dict[str, dict[int, str]] = field(default_factory=dict)


def units(repo: RepoContents, group: Group) -> list[list[str]]:
    """The group's references split so one failing on-demand view does not hide the others:
    the batch features, then each on-demand view's outputs."""
    batch = [r for r in group.requested if isinstance(repo.any_view(parse_ref(r)[0]), FeatureView)]
    on_demand: dict[str, list[str]] = {}
    for r in group.requested:
        view = parse_ref(r)[0]
        if isinstance(repo.any_view(view), OnDemandFeatureView):
            on_demand.setdefault(view, []).append(r)
    return [u for u in [batch, *on_demand.values()] if u]


def _error_text(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def offline_side(
    engine: OfflineEngine,
    spine: pl.DataFrame,
    parts: list[list[str]],
    timestamp_column: str,
) -> Side:
    """The training-set path over the whole spine (per unit when some unit raises)."""
    side = Side()
    n = spine.height

    def run(refs: list[str]) -> None:
        plan = build_plan(engine.repo, refs, full_feature_names=True)
        frame, _ = engine.training_frame(spine, plan, timestamp_column, status_columns=True)
        for r in plan.refs:
            side.values[r.ref] = frame[r.column].to_list()
            side.statuses[r.ref] = frame[f"{r.column}__status"].to_list()

    try:
        run([r for unit in parts for r in unit])
    except TransformError:
        for unit in parts:
            try:
                run(unit)
            except TransformError as exc:
                for ref in unit:
                    side.values[ref] = [None] * n
                    side.statuses[ref] = [ERROR_STATUS] * n
                    side.errors[ref] = dict.fromkeys(range(n), _error_text(exc))
    return side


def online_side(
    retriever: OnlineRetriever,
    store: AsOfOnlineStore,
    group: Group,
    spine: pl.DataFrame,
    parts: list[list[str]],
    times: list[dt.datetime],
) -> Side:
    """The serving path, one spine row at a time at the row's time."""
    requested = [r for unit in parts for r in unit]
    side = Side(values={r: [] for r in requested}, statuses={r: [] for r in requested})
    keys = {k: spine[k].to_list() for k in group.keys}
    request = {c: spine[c].to_list() for c in group.request_columns}

    def serve(refs: list[str], i: int) -> None:
        resp = retriever.get(
            refs,
            entities={k: [v[i]] for k, v in keys.items()},
            request_data={c: [v[i]] for c, v in request.items()},
            full_feature_names=True,
            request_time=times[i],
        )
        for column, ref in resp.refs.items():
            side.values[ref].append(resp.values[column][0])
            side.statuses[ref].append(str(resp.statuses[column][0]))

    for i in range(spine.height):
        store.row = i
        try:
            serve(requested, i)
        except FeatureStoreError:
            for ref in requested:  # drop what the failed call may have added
                del side.values[ref][i:], side.statuses[ref][i:]
            for unit in parts:
                try:
                    serve(unit, i)
                except FeatureStoreError as exc:
                    for ref in unit:
                        side.values[ref].append(None)
                        side.statuses[ref].append(ERROR_STATUS)
                        side.errors.setdefault(ref, {})[i] = _error_text(exc)
    return side
