"""The parity check: each feature through the offline path and through the serving code on the
same sampled rows, compared row by row (see :mod:`featurestore.monitoring.parity`)."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import closing
from functools import partial

import polars as pl

from featurestore._apply_checks import checked_state
from featurestore._registry import RegistryState, fingerprints_of
from featurestore._repo import RepoContents
from featurestore._selection import parse_ref
from featurestore._times import as_utc
from featurestore.errors import ReportError
from featurestore.monitoring.parity._as_of import as_of_store, spine_table
from featurestore.monitoring.parity._compare import Compared, differs
from featurestore.monitoring.parity._groups import (
    Group,
    by_keys,
    default_refs,
    needs_of,
    spine_group,
)
from featurestore.monitoring.parity._paths import Side, offline_side, online_side, units
from featurestore.monitoring.parity._report import ParityFeatureResult, ParityReport
from featurestore.monitoring.parity._request_data import RequestValues, with_request_data
from featurestore.monitoring.parity._sample import TIME, group_rng, sample_keys
from featurestore.offline._engine import OfflineEngine, SpineLike, read_spine
from featurestore.serving._retrieval import OnlineRetriever
from featurestore.sources._sql import SPINE_TS

__all__ = ["check_parity"]


def check_parity(
    engine: OfflineEngine,
    read_serving_log: Callable[[], pl.DataFrame],
    features: list[str] | None = None,
    sample: int = 1000,
    seed: int = 0,
    spine: SpineLike | None = None,
    *,
    timestamp_column: str = TIME,
    repo: RepoContents | None = None,
) -> ParityReport:
    """Compare each feature's offline values with what the serving code computes for the same
    rows (see the module docstring), for the definitions of ``repo`` (default: the engine's;
    another repo gets an engine of its own) as ``apply`` would record them: nothing needs to
    be applied or materialized, and nothing is written. Request values come from the sources
    or from ``read_serving_log()``'s request data.

    ``features`` limits the check to some references (default: every feature that can be
    served); ``sample`` rows are drawn per group of join keys with ``seed``; a ``spine`` (with
    ``timestamp_column``, the join keys and the request columns of the features to check)
    replaces the sampling and is used as given. Raises ApplyError when apply would refuse the
    definitions.
    """
    if repo is not None and repo is not engine.repo:
        with closing(OfflineEngine(repo)) as own:
            return _check(own, read_serving_log, features, sample, seed, spine, timestamp_column)
    return _check(engine, read_serving_log, features, sample, seed, spine, timestamp_column)


def _check(
    engine: OfflineEngine,
    read_serving_log: Callable[[], pl.DataFrame],
    features: list[str] | None,
    sample: int,
    seed: int,
    spine: SpineLike | None,
    timestamp_column: str,
) -> ParityReport:
    started = time.perf_counter()
    if spine is None and sample < 1:
        raise ReportError(f"sample must be a positive number of rows, found {sample}")
    repo = engine.repo
    state = checked_state(repo, engine)
    given = read_spine(spine) if spine is not None else None
    groups, not_checked = _groups(repo, features, given)
    run = _Run(engine, state, seed, timestamp_column if given is not None else TIME)
    logged = RequestValues(
        read_serving_log,
        engine,
        {c: d for o in repo.on_demand_views.values() for c, d in o.request_columns.items()},
        seed,
    )
    results: list[ParityFeatureResult] = []
    for group in groups:
        results += run.group(group, given, sample, logged)
    run.seconds["total"] = time.perf_counter() - started
    return ParityReport(
        results,
        sample=None if given is not None else sample,
        seed=seed,
        spines=run.spines,
        request_data=run.sources,
        not_checked=not_checked,
        seconds=run.seconds,
    )


def _groups(
    repo: RepoContents, features: list[str] | None, given: pl.DataFrame | None
) -> tuple[list[Group], dict[str, str]]:
    """The groups of features to compare and the features left out, with why."""
    not_checked: dict[str, str]
    if features is not None:
        refs, not_checked = list(dict.fromkeys(features)), {}
    else:
        refs, not_checked = default_refs(repo)
    needs = {ref: needs_of(repo, ref) for ref in refs}
    if given is None:
        return by_keys(needs), not_checked
    group, left_out = spine_group(needs, given.columns, named=features is not None)
    return [group], not_checked | left_out


class _Run:
    """One check's groups run through both paths, with the spines used, where their request
    values came from, and the seconds spent sampling and on each path."""

    def __init__(
        self, engine: OfflineEngine, state: RegistryState, seed: int, time_column: str
    ) -> None:
        self.engine = engine
        self.state = state
        self.seed = seed
        self.time_column = time_column
        self.owners = {ref: record.owner for ref, record in state.features.items()}
        self.spines: dict[str, pl.DataFrame] = {}
        self.sources: dict[str, str] = {}
        self.seconds = {"sample": 0.0, "offline": 0.0, "online": 0.0}

    def group(
        self, group: Group, given: pl.DataFrame | None, sample: int, logged: RequestValues
    ) -> list[ParityFeatureResult]:
        """Sample (or take) the group's spine, run both paths over it and compare."""
        clock = time.perf_counter()
        if given is not None:
            frame, self.sources[group.label] = given, "the spine"
        else:
            rng = group_rng(self.seed, group.label)
            keys = sample_keys(self.engine, group, sample, self.seed, rng)
            frame, self.sources[group.label] = with_request_data(group, keys, logged, rng)
        self.spines[group.label] = frame
        self.seconds["sample"] += time.perf_counter() - clock
        parts = units(self.engine.repo, group)
        clock = time.perf_counter()
        empty = Side({r: [] for r in group.requested}, {r: [] for r in group.requested})
        offline = (
            offline_side(self.engine, frame, parts, self.time_column) if frame.height else empty
        )
        self.seconds["offline"] += time.perf_counter() - clock
        clock = time.perf_counter()
        online = self._online(group, frame, parts)
        self.seconds["online"] += time.perf_counter() - clock
        repo = self.engine.repo
        diffs = {ref: differs(repo, offline, online, ref) for ref in group.requested}
        compared = Compared(repo, group, frame, self.time_column, offline, online, diffs)
        return [compared.result(ref, self.owners.get(ref)) for ref in group.refs]

    def _online(self, group: Group, frame: pl.DataFrame, parts: list[list[str]]) -> Side:
        """The serving code over a store as of each spine row."""
        views: dict[str, list[str]] = {}
        for ref in group.requested:
            view_name, name = parse_ref(ref)
            if view_name in self.engine.repo.views:
                views.setdefault(view_name, []).append(name)
        snapshot = as_of_store(self.engine, self.state, frame, views, self.time_column)
        fingerprints = partial(fingerprints_of, applied=self.state, code=self.state)
        retriever = OnlineRetriever(
            self.engine.repo, snapshot, self.state, fingerprints=fingerprints
        )
        times = [
            as_utc(t) if isinstance(t, dt.datetime) else t
            for t in spine_table(frame, (), self.time_column)[SPINE_TS].to_list()
        ]
        return online_side(retriever, snapshot, group, frame, parts, times)
