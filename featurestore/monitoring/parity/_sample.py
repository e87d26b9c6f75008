"""Sampling for the parity check: which features are compared on which spine, the spine
rows (keys and times) drawn from the sources, and the request data of on-demand views.

**What is sampled** (the same for a given seed, source files and DuckDB version). Features are
grouped by the join keys they need (a view's keys; an on-demand view's, the keys of its input
views), and each group gets ``sample`` spine rows:

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

**Request data** of on-demand views, in order of preference: the ``spine`` when one is given
(a spine replaces the sampling entirely: its rows are used as given, for every feature whose
join keys and request columns it holds); else records of the serving log
(``request_data``), drawn at random with replacement; else synthesized: 70% regular values
and 30% edge values. Regular values are drawn from a source column of the same name when one
exists (a request's ``amount`` and ``channel`` are usually columns of the events source too:
up to 1,000 of its distinct values, taken in a seeded order), else made per dtype (floats
lognormal around 20 rounded to cents, integers 1 to 999, strings ``v0`` to ``v9``, booleans,
dates and datetimes up to 30 days before the row's time). Edge values are null for every
dtype; for numbers 0, -1, a negative amount and a large one (``1e12``, ``2**40``); for strings
the empty string. A value that does not fit a narrower dtype becomes null; other dtypes are
null.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from featurestore._repo import RepoContents
from featurestore._selection import parse_ref
from featurestore.definitions import FeatureView
from featurestore.definitions._dtypes import dtype_kind, is_castable
from featurestore.offline._engine import OfflineEngine
from featurestore.serving._serving_log import decode_json_column
from featurestore.sources._read_errors import reading
from featurestore.sources._scans import scan_sql
from featurestore.sources._sql import ident, timestamp_sql

__all__ = [
    "TIME",
    "Group",
    "Needs",
    "RequestValues",
    "add_to_group",
    "default_refs",
    "group_rng",
    "needs_of",
    "sample_keys",
    "with_request_data",
]

TIME = "event_timestamp"  # the time column of a sampled spine
DEFAULT_HORIZON = dt.timedelta(days=30)  # offsets of a group without ttl or windows
REQUEST_ONLY_TIME = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # rows of request-only views
# shares of the spine times: at e, at an edge, an edge +- 1us, after e, before e
TIME_MODES = (0.30, 0.15, 0.10, 0.35, 0.10)
EDGE_SHARE = 0.3  # synthesized request values that are edge values
POOL = 1000  # distinct values read from a source column named like a request column
_EVENT = "__fs_e"  # epoch microseconds of a drawn event
_US = dt.timedelta(microseconds=1)


@dataclass
class Group:
    """Features compared on one spine: those needing exactly ``keys``."""

    label: str
    keys: tuple[str, ...]
    refs: list[str] = field(default_factory=list)  # compared here
    inputs: list[str] = field(default_factory=list)  # on-demand inputs, for the examples
    views: dict[str, FeatureView] = field(default_factory=dict)  # batch views read
    request_columns: dict[str, pl.DataType] = field(default_factory=dict)

    @property
    def requested(self) -> list[str]:
        return list(dict.fromkeys([*self.refs, *self.inputs]))


@dataclass(frozen=True)
class Needs:
    keys: tuple[str, ...]
    views: dict[str, FeatureView]
    inputs: list[str]
    request_columns: dict[str, pl.DataType]


def needs_of(repo: RepoContents, ref: str) -> Needs:
    """The join keys, batch views, on-demand inputs and request columns a reference needs."""
    view_name, name = parse_ref(ref)
    view = repo.any_view(view_name)
    view.feature(name)  # raises with the known features
    if isinstance(view, FeatureView):
        return Needs(tuple(view.join_keys), {view.name: view}, [], {})
    inputs = view.input_refs(repo.views)
    views = {v: repo.views[v] for v, _ in inputs}
    keys = tuple(dict.fromkeys(k for v in views.values() for k in v.join_keys))
    return Needs(keys, views, [f"{v}:{f}" for v, f in inputs], dict(view.request_columns))


def default_refs(repo: RepoContents) -> tuple[list[str], dict[str, str]]:
    """Every feature that can be served: those of online views, and on-demand outputs whose
    input views are all online; and the views left out, with why."""
    refs: list[str] = []
    skipped: dict[str, str] = {}
    for view in repo.views.values():
        if view.online:
            refs += [f"{view.name}:{f}" for f in view.feature_names]
        else:
            skipped[view.name] = "an offline-only view (online=False): never served"
    for odfv in repo.on_demand_views.values():
        offline = sorted({v for v, _ in odfv.input_refs(repo.views) if not repo.views[v].online})
        if offline:
            skipped[odfv.name] = f"reads offline-only view(s) {', '.join(offline)}"
        else:
            refs += [f"{odfv.name}:{f}" for f in odfv.feature_names]
    return refs, skipped


def add_to_group(groups: dict[frozenset[str], Group], ref: str, needs: Needs) -> None:
    key = frozenset(needs.keys)
    group = groups.get(key)
    if group is None:
        label = "+".join(needs.keys) if needs.keys else "request data only"
        group = groups[key] = Group(label, needs.keys)
    group.refs.append(ref)
    group.inputs += [r for r in needs.inputs if r not in group.inputs]
    group.views.update(needs.views)
    group.request_columns.update(needs.request_columns)


# ---------------------------------------------------------------------------------------------
# sampling


def group_rng(seed: int, label: str) -> np.random.Generator:
    """A generator per group, independent of the other groups."""
    return np.random.default_rng([seed, zlib.crc32(label.encode())])


def _edges_us(view: FeatureView) -> list[int]:
    """The view's ttl (when it has plain features) and windows, in microseconds."""
    edges = [a.window_us for a in view.aggregations]
    if view.features and view.ttl is not None:
        edges.append(view.ttl // _US)
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
        return engine.con.sql(
            f"SELECT {cols}, {_EVENT} FROM (SELECT DISTINCT {cols}, epoch_us({ts}) AS {_EVENT} "
            f"FROM {scan_sql(src, engine.repo.root)} WHERE {ts} IS NOT NULL AND {not_null}) "
            f"ORDER BY hash({cols}, {_EVENT}, {int(seed)}), {cols}, {_EVENT} LIMIT {int(n)}"
        ).pl()


def _fill(frame: pl.DataFrame, n: int, rng: np.random.Generator) -> pl.DataFrame:
    """``frame`` topped up to ``n`` rows with rows drawn again at random."""
    if frame.height >= n or frame.height == 0:
        return frame
    extra = rng.integers(0, frame.height, size=n - frame.height)
    return pl.concat([frame, frame[extra.tolist()]])


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
    return np.select(
        [mode == 0, mode == 1, mode == 2, mode == 3], [0, edge, edge + side, shift], -shift
    ).astype(np.int64)


def sample_keys(
    engine: OfflineEngine, group: Group, sample: int, seed: int, rng: np.random.Generator
) -> pl.DataFrame:
    """``sample`` rows of the group's keys and times (column TIME, UTC)."""
    if not group.keys:
        return pl.DataFrame({TIME: [REQUEST_ONLY_TIME] * sample}).with_columns(
            pl.col(TIME).cast(pl.Datetime("us", "UTC"))
        )
    wanted = set(group.keys)
    views = list(group.views.values())
    horizon = max((e for v in views for e in _edges_us(v)), default=DEFAULT_HORIZON // _US)
    exact = [v for v in views if set(v.join_keys) == wanted]
    candidates = exact or [v for v in views if wanted <= set(v.join_keys)]
    parts: list[pl.DataFrame] = []
    if candidates:
        counts = [
            sample // len(candidates) + (i < sample % len(candidates))
            for i in range(len(candidates))
        ]
        for i, (view, n) in enumerate(zip(candidates, counts, strict=True)):
            if n:
                drawn = _draw(engine, view, group.keys, n, seed)
                parts.append(drawn.with_columns(pl.lit(i, pl.Int32).alias("__fs_src")))
        sources = candidates
    else:  # no view holds every key: cover them view by view and pair the rows by position
        uncovered = list(group.keys)
        first: pl.DataFrame | None = None
        sources = []
        while uncovered:
            view = max(views, key=lambda v: len(set(v.join_keys) & set(uncovered)))
            keys = [k for k in uncovered if k in view.join_keys]
            drawn = _draw(engine, view, keys, sample, seed)
            if first is None:
                first = _fill(drawn, sample, rng).with_columns(
                    pl.lit(0, pl.Int32).alias("__fs_src")
                )
                sources.append(view)
            elif drawn.height and first.height:
                picks = _fill(drawn, first.height, rng)
                first = first.with_columns(picks.select(keys))
            else:
                first = first.head(0).with_columns(pl.lit(None).alias(k) for k in keys)
            uncovered = [k for k in uncovered if k not in keys]
        parts = [first] if first is not None else []
    drawn = pl.concat(parts, how="vertical_relaxed") if parts else pl.DataFrame()
    drawn = _fill(drawn, sample, rng)
    if drawn.height == 0:
        return pl.DataFrame(
            schema={**{k: pl.Int64 for k in group.keys}, TIME: pl.Datetime("us", "UTC")}
        )
    events = drawn[_EVENT].to_numpy()
    offsets = np.zeros(drawn.height, dtype=np.int64)
    src = drawn["__fs_src"].to_numpy()
    for i, view in enumerate(sources):
        mask = src == i
        edges = _edges_us(view)
        offsets[mask] = _offsets(rng, int(mask.sum()), edges, max(edges, default=horizon))
    times = pl.Series(TIME, events + offsets).cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    return drawn.select(*group.keys).with_columns(times)


def _source_values(engine: OfflineEngine, column: str, dtype: pl.DataType, seed: int) -> pl.Series:
    """Up to POOL distinct non-null values of the first source (in view order) with a column
    named ``column`` castable to ``dtype``, in a seeded order; empty when no source has one."""
    seen: set[str] = set()
    for view in engine.repo.views.values():
        src = view.source
        if src.name in seen:
            continue
        seen.add(src.name)
        schema = engine.source_schema(view)
        if column not in schema or not is_castable(schema[column], dtype):
            continue
        col = ident(column)
        with reading([src], engine.repo.root):
            values = (
                engine.con.sql(
                    f"SELECT v FROM (SELECT DISTINCT {col} AS v FROM "
                    f"{scan_sql(src, engine.repo.root)} WHERE {col} IS NOT NULL) "
                    f"ORDER BY hash(v, {int(seed)}), v LIMIT {POOL}"
                )
                .pl()["v"]
                .cast(dtype, strict=False)
                .drop_nulls()
            )
        if values.len():
            return values
    return pl.Series([], dtype=dtype)


def _synthesize(
    dtype: pl.DataType, times: pl.Series, rng: np.random.Generator, pool: pl.Series
) -> pl.Series:
    """Request values of one column (see the module docstring): regular values from ``pool``
    when it has any, mixed with edge values."""
    n = times.len()
    kind = dtype_kind(dtype)
    edge = rng.random(n) < EDGE_SHARE
    pick = rng.integers(0, 6, size=n)
    drawn = rng.integers(0, max(pool.len(), 1), size=n)
    regular: list[Any]
    edges: list[Any]
    if kind == "float":
        regular = np.round(rng.lognormal(3.0, 1.0, size=n), 2).tolist()
        edges = [None, 0.0, -1.0, -250.5, 1e12, None]
    elif kind == "int":
        regular = rng.integers(1, 1000, size=n).tolist()
        edges = [None, 0, -1, -1000, 2**40, None]
    elif kind == "bool":
        regular = (rng.random(n) < 0.5).tolist()
        edges = [None] * 6
    elif kind == "string":
        regular = [f"v{i}" for i in rng.integers(0, 10, size=n)]
        edges = [None, "", None, "", None, ""]
    elif kind in ("date", "datetime"):
        back = pl.Series(rng.integers(0, DEFAULT_HORIZON // _US, size=n)).cast(pl.Duration("us"))
        shifted = times - back
        regular = (shifted.dt.date() if kind == "date" else shifted).to_list()
        edges = [None] * 6
    else:
        regular, edges = [None] * n, [None] * 6
    if pool.len():
        regular = pool.gather(drawn).to_list()
    values = [edges[p] if e else r for r, e, p in zip(regular, edge.tolist(), pick, strict=True)]
    if kind == "datetime":
        series = pl.Series(values, dtype=pl.Datetime("us", "UTC"))
        if not getattr(dtype, "time_zone", None):
            series = series.dt.replace_time_zone(None)
        return series.cast(dtype, strict=False)
    if kind in ("int", "float"):
        return pl.Series(values, dtype=pl.Float64 if kind == "float" else pl.Int64).cast(
            dtype, strict=False
        )
    return pl.Series(values, dtype=dtype if kind != "date" else pl.Date, strict=False)


class RequestValues:
    """Where request values come from: the serving log's request data (read once when first
    needed), or same-named source columns (each read once)."""

    def __init__(
        self,
        read_serving_log: Callable[[], pl.DataFrame],
        engine: OfflineEngine,
        dtypes: dict[str, pl.DataType],
        seed: int,
    ) -> None:
        self.read_serving_log = read_serving_log
        self.engine = engine
        self.dtypes = dtypes
        self.seed = seed
        self._frame: pl.DataFrame | None = None
        self._pools: dict[str, pl.Series] = {}

    def pool(self, column: str, dtype: pl.DataType) -> pl.Series:
        """Values of a same-named source column (see :func:`_source_values`), read once."""
        if column not in self._pools:
            self._pools[column] = _source_values(self.engine, column, dtype, self.seed)
        return self._pools[column]

    def frame(self) -> pl.DataFrame:
        if self._frame is None:
            log = self.read_serving_log()
            try:
                self._frame = decode_json_column(log, "request_data", self.dtypes)
            except (pl.exceptions.PolarsError, ValueError):
                self._frame = pl.DataFrame()  # logged before a dtype change: not usable
        return self._frame


def with_request_data(
    group: Group, spine: pl.DataFrame, logged: RequestValues, rng: np.random.Generator
) -> tuple[pl.DataFrame, str]:
    """The sampled spine with the group's request columns, and where they came from."""
    columns = group.request_columns
    if not columns:
        return spine, "none needed"
    frame = logged.frame()
    if frame.width and all(c in frame.columns for c in columns):
        usable = frame.select(list(columns)).filter(
            pl.any_horizontal(pl.col(c).is_not_null() for c in columns)
        )
        if usable.height:
            picks = rng.integers(0, usable.height, size=spine.height).tolist()
            return (
                spine.hstack(usable[picks]),
                f"serving log ({usable.height:,} records with {', '.join(columns)})",
            )
    values, found = [], []
    for column, dtype in columns.items():
        pool = logged.pool(column, dtype)
        if pool.len():
            found.append(column)
        values.append(_synthesize(dtype, spine[TIME], rng, pool).alias(column))
    where = f" ({', '.join(found)} from same-named source columns)" if found else ""
    return spine.hstack(values), f"synthesized with edge values{where}"
