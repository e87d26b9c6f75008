"""Sampling the parity check's spine rows (keys and times) from the sources; the same for a
given seed, source files and DuckDB version.

Features are grouped by the join keys they need (a view's keys; an on-demand view's, the keys
of its input views), and each group gets ``sample`` spine rows:

- keys and event times are drawn from the sources of the group's views that hold all its keys,
  split evenly between them (e.g. a user-keyed profile and user-keyed aggregations give half
  each). Distinct ``(keys, event time)`` points are ordered by a seeded hash in DuckDB and the
  first ones taken; a source with fewer points is drawn again with replacement. When no view
  holds all the keys (an on-demand view over a user view and a merchant view), each view
  covering some keys gives them and the rows are paired by position.
- times, from each row's event time ``e``: 30% at ``e`` itself; 15% at ``e`` plus an edge of the
  row's view (its ttl or one of its windows); 10% one microsecond either side of such an edge;
  35% at ``e`` plus a random offset up to the group's longest ttl or window (30 days without
  either); 10% that far before ``e`` (often before the entity's first row). So rows land on
  ``t - ttl`` and ``t - window`` exactly and just inside and outside them.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence

import numpy as np
import polars as pl

from featurestore.definitions import FeatureView
from featurestore.monitoring.parity._groups import Group
from featurestore.offline._engine import OfflineEngine
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import ident, timestamp_sql

__all__ = ["DEFAULT_HORIZON", "TIME", "US", "group_rng", "sample_keys"]

TIME = "event_timestamp"  # the time column of a sampled spine
DEFAULT_HORIZON = dt.timedelta(days=30)  # offsets of a group without ttl or windows
REQUEST_ONLY_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # rows of request-only views
# shares of the spine times: at e, at an edge, an edge +- 1us, after e, before e
TIME_MODES = (0.30, 0.15, 0.10, 0.35, 0.10)
US = dt.timedelta(microseconds=1)
_EVENT = "__fs_e"  # epoch microseconds of a drawn event
_SOURCE = "__fs_src"  # which of the drawn views a row came from


def group_rng(seed: int, label: str) -> np.random.Generator:
    """A generator per group, independent of the other groups."""
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def _edges_us(view: FeatureView) -> list[int]:
    """The view's ttl (when it has plain features) and windows, in microseconds."""
    edges = [a.window_us for a in view.aggregations]
    if view.features and view.ttl is not None:
        edges.append(view.ttl // US)
    return sorted(set(edges))


def _draw(
    engine: OfflineEngine, view: FeatureView, keys: Sequence[str], n: int, seed: int
) -> pl.DataFrame:
    """Up to ``n`` distinct ``(keys, event time)`` points of the view's source, in a seeded
    pseudo-random order (keys and the event time in epoch microseconds, ``__fs_e``)."""
    src = view.source
    schema = engine.source_schema(view)
    ts = timestamp_sql(src.timestamp_field, schema[src.timestamp_field])
    cols = ", ".join(ident(k) for k in keys)
    not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in keys)
    with reading([src], engine.repo.root):
        drawn: pl.DataFrame = engine.con.sql(
            f"SELECT {cols}, {_EVENT} FROM (SELECT DISTINCT {cols}, epoch_us({ts}) AS {_EVENT} "
            f"FROM {scan_sql(src, engine.repo.root)} WHERE {ts} IS NOT NULL AND {not_null}) "
            f"ORDER BY hash({cols}, {_EVENT}, {int(seed)}), {cols}, {_EVENT} LIMIT {int(n)}"
        ).pl()
    return drawn


def _fill(frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``frame`` topped up to ``n`` rows with rows drawn again at random."""
    if frame.height >= n or frame.height == 0:
        return frame
    extra = rng.integers(0, frame.height, size=n - frame.height)
    again: pl.DataFrame = frame[extra.tolist()]
    return pl.concat([frame, again])


def _offsets(rng: np.random.Generator, n: int, edges: list[int], horizon: int) -> np.ndarray:
    """Time offsets from the drawn event times (see the module docstring)."""
    mode = rng.choice(len(TIME_MODES), size=n, p=TIME_MODES)
    shift = rng.integers(1, horizon + 1, size=n)
    side = rng.choice(np.array([-1, 1]), size=n)
    edge = (
        np.array(edges, dtype=np.int64)[rng.integers(0, len(edges), size=n)]
        if edges
        else np.zeros(n, dtype=np.int64)
    )
    offsets: np.ndarray = np.select(
        [mode == 0, mode == 1, mode == 2, mode == 3], [0, edge, edge + side, shift], -shift
    ).astype(np.int64)
    return offsets


def sample_keys(
    engine: OfflineEngine, group: Group, sample: int, seed: int, rng: np.random.Generator
) -> pl.DataFrame:
    """``sample`` rows of the group's keys and times (column TIME, UTC)."""
    if not group.keys:
        return pl.DataFrame({TIME: [REQUEST_ONLY_TIME] * sample}).with_columns(
            pl.col(TIME).cast(pl.Datetime("us", "UTC"))
        )
    views = list(group.views.values())
    exact = [v for v in views if set(v.join_keys) == set(group.keys)]
    candidates = exact or [v for v in views if set(group.keys) <= set(v.join_keys)]
    if candidates:
        drawn = _draw_split(engine, candidates, group.keys, sample, seed)
        sources = candidates
    else:
        drawn, sources = _draw_view_by_view(engine, views, group.keys, sample, seed, rng)
    drawn = _fill(drawn, sample, rng)
    if drawn.height == 0:
        return pl.DataFrame(
            schema={**{k: pl.Int64 for k in group.keys}, TIME: pl.Datetime("us", "UTC")}
        )
    horizon = max((e for v in views for e in _edges_us(v)), default=DEFAULT_HORIZON // US)
    offsets = np.zeros(drawn.height, dtype=np.int64)
    source = drawn[_SOURCE].to_numpy()
    for i, view in enumerate(sources):
        mask = source == i
        edges = _edges_us(view)
        offsets[mask] = _offsets(rng, int(mask.sum()), edges, max(edges, default=horizon))
    events = drawn[_EVENT].to_numpy()
    times = pl.Series(TIME, events + offsets).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return drawn.select(*group.keys).with_columns(times)


def _draw_split(
    engine: OfflineEngine,
    views: list[FeatureView],
    keys: Sequence[str],
    sample: int,
    seed: int,
) -> pl.DataFrame:
    """``sample`` points split evenly between views that each hold every key."""
    counts = [sample // len(views) + (i < sample % len(views)) for i in range(len(views))]
    parts = [
        _draw(engine, view, keys, n, seed).with_columns(pl.lit(i, pl.Int32).alias(_SOURCE))
        for i, (view, n) in enumerate(zip(views, counts, strict=True))
        if n
    ]
    return pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()


def _draw_view_by_view(
    engine: OfflineEngine,
    views: list[FeatureView],
    keys: Sequence[str],
    sample: int,
    seed: int,
    rng: np.random.Generator,
) -> tuple[pl.DataFrame, list[FeatureView]]:
    """When no view holds every key: cover them view by view (most keys first) and pair the
    rows by position; times come from the first view."""
    uncovered = list(keys)
    first: pl.DataFrame | None = None
    sources: list[FeatureView] = []
    while uncovered:
        view = max(views, key=lambda v: len(set(v.join_keys) & set(uncovered)))
        covered = [k for k in uncovered if k in view.join_keys]
        drawn = _draw(engine, view, covered, sample, seed)
        if first is None:
            first = _fill(drawn, sample, rng).with_columns(pl.lit(0, pl.Int32).alias(_SOURCE))
            sources.append(view)
        elif drawn.height and first.height:
            first = first.with_columns(_fill(drawn, first.height, rng).select(covered))
        else:
            first = first.head(0).with_columns(pl.lit(None).alias(k) for k in covered)
        uncovered = [k for k in uncovered if k not in covered]
    return (first if first is not None else pl.DataFrame()), sources
