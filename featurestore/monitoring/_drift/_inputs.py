"""How each side of a drift report becomes rows of feature values or profiles: a saved training
set (its stored profiles serve as a reference; its rows as a current side), a window of the
serving log (each record's served values, decoded), or a window of a view's source (the view's
feature values for every source row with event time in the window, computed by the offline
engine's code); and the report built from two sides.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl
import pyarrow.parquet as pq

from featurestore._profiles import FeatureProfile, merge_profiles, profile_frame
from featurestore._times import as_naive_utc
from featurestore._value_rules import MATCH_FOUND
from featurestore.definitions import Feature, FeatureView
from featurestore.definitions._base import did_you_mean
from featurestore.definitions._dtypes import parse_dtype
from featurestore.definitions._monitoring import DriftConfig
from featurestore.errors import FeatureReferenceError, FeatureStoreError, ReportError
from featurestore.monitoring._drift._compute import compute_drift
from featurestore.monitoring._drift._report import DriftFeature, DriftReport
from featurestore.monitoring._drift._sides import (
    ServingLogSide,
    Side,
    SourceSide,
    TrainingSetSide,
    window_text,
)
from featurestore.offline._engine import OfflineEngine
from featurestore.offline._feature_values import view_values
from featurestore.offline._training_set import TrainingSet, TrainingSetMetadata, read_metadata
from featurestore.serving._serving_log import decode_json_column
from featurestore.sources._read_errors import reading
from featurestore.sources._schema import check_view
from featurestore.sources._sql import ident

if TYPE_CHECKING:
    from featurestore.monitoring._inputs import ReportInputs

__all__ = ["build_drift_report", "drift_feature", "feature_dtype", "reference_profiles"]

_Rows = list[tuple[pl.DataFrame, list[str]]]  # frames with feature columns named by ref


@dataclass
class _Resolved:
    """A side as rows (frames whose columns are feature refs) and, when saved, profiles."""

    label: str
    refs: list[str]
    frames: _Rows = field(default_factory=list)
    profiles: dict[str, FeatureProfile] = field(default_factory=dict)
    load_rows: Callable[[], _Rows] | None = None  # reads a saved training set's rows if needed

    def rows(self) -> _Rows:
        if not self.frames and self.load_rows is not None:
            self.frames = self.load_rows()
        return self.frames


def _training_set(side: TrainingSetSide) -> _Resolved:
    """A saved training set: its stored profiles now, its rows when needed."""
    if isinstance(side.source, TrainingSet):
        ts = side.source
        meta = ts.metadata
        resolved = _Resolved(side.label, [f.ref for f in meta.features])
        resolved.load_rows = lambda: [_training_rows(ts.to_polars(), meta)]
    else:
        path = Path(side.source)
        try:
            meta = read_metadata(path)
        except FeatureStoreError as exc:
            raise ReportError(str(exc)) from None
        resolved = _Resolved(side.label, [f.ref for f in meta.features])
        wanted = [f.column for f in meta.features]  # only the features: spines can be wide
        resolved.load_rows = lambda: [_training_rows(_read_columns(path, wanted), meta)]
    columns = {f.column: f.ref for f in meta.features}
    resolved.profiles = {columns[c]: p for c, p in meta.profiles.items() if c in columns}
    return resolved


def _read_columns(path: Path, columns: list[str]) -> pl.DataFrame:
    """Columns of a saved training set: a Parquet file or a directory of parts."""
    table = pq.read_table(path, columns=columns)
    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


def _training_rows(
    frame: pl.DataFrame, meta: TrainingSetMetadata
) -> tuple[pl.DataFrame, list[str]]:
    """The training set's feature columns, named by reference."""
    refs = [f.ref for f in meta.features]
    return frame.select(pl.col(f.column).alias(f.ref) for f in meta.features), refs


def feature_dtype(reads: ReportInputs, ref: str) -> pl.DataType | None:
    """The dtype of ``ref`` from the definitions, else from the registry; None if unknown."""
    feature = _definition(reads, ref)
    if feature is not None:
        return feature.dtype
    state = reads.registry.load()
    record = state.features.get(ref) if state is not None else None
    if record is None:
        return None
    if record.dtype.startswith("Datetime"):
        return pl.Datetime("us", "UTC" if "UTC" in record.dtype else None)
    return parse_dtype(record.dtype)


def _definition(reads: ReportInputs, ref: str) -> Feature | None:
    """The feature ``ref`` as defined now; None when it is no longer defined."""
    view_name, _, name = ref.partition(":")
    view = reads.repo.views.get(view_name) or reads.repo.on_demand_views.get(view_name)
    if view is None or name not in view.feature_names:
        return None
    return view.feature(name)


def _serving_log(reads: ReportInputs, side: ServingLogSide) -> _Resolved:
    """The values served in the window, one frame per set of features requested together."""
    log = reads.read_serving_log(side.start, side.end)
    if log.is_empty():
        raise ReportError(
            f"the serving log has no records in {window_text(side.start, side.end)}; widen the "
            "window or check that serving_log is enabled in featurestore.yaml"
        )
    resolved = _Resolved(side.label, [])
    key = pl.col("features").list.join("\n")
    for group in log.with_columns(key.alias("__fs_key")).partition_by("__fs_key"):
        served = [r for r in group["features"][0] if r is not None]
        dtypes = {r: d for r in served if (d := feature_dtype(reads, r)) is not None}
        if dtypes:
            resolved.frames.append((decode_json_column(group, "values", dtypes), list(dtypes)))
    resolved.refs = list(dict.fromkeys(r for _, refs in resolved.frames for r in refs))
    return resolved


def _source(reads: ReportInputs, side: SourceSide) -> _Resolved:
    """The plain features of a batch view over the source rows in the window."""
    view = reads.repo.views.get(side.view)
    if view is None:
        reads.repo.any_view(side.view)  # raises with the known views
        raise ReportError(
            f"{side.view!r} is an on-demand view and has no source; compare its features "
            "between training sets and serving log windows"
        )
    if not view.features:
        raise ReportError(
            f"view {side.view!r} has only aggregations, which have no value per source row; "
            "compare them between training sets and serving log windows"
        )
    frame = _source_rows(reads.offline, view, side.start, side.end)
    return _Resolved(side.label, list(frame.columns), [(frame, list(frame.columns))])


def _source_rows(
    engine: OfflineEngine, view: FeatureView, start: dt.datetime | None, end: dt.datetime | None
) -> pl.DataFrame:
    """The view's plain features (columns named by ref) for each source row with event time in
    ``[start, end)``, computed and validated exactly as in a training set."""
    schema = engine.source_schema(view)
    check_view(view, schema)
    names = [f.name for f in view.features]
    scan = engine._scan("v0", view, names, schema)
    where, params = [], {}
    for op, name, t in ((">=", "start", start), ("<", "end", end)):
        if t is not None:
            where.append(f"__fs_ts {op} ${name}")
            params[name] = as_naive_utc(t)
    columns = ", ".join(ident(c) for c in scan.outputs()[1:])
    sql = (
        f"SELECT CAST({MATCH_FOUND} AS UTINYINT) AS __fs_match_v0, {columns} "
        f"FROM ({scan.subquery()}) {'WHERE ' + ' AND '.join(where) if where else ''}"
    )
    with reading([view.source], engine.repo.root):
        raw = engine.con.sql(sql, params=params).pl()
    values = view_values(raw, scan, view, names, f"{view.name}:")
    return values.select(f"{view.name}:{n}" for n in names)


def _resolve(reads: ReportInputs, side: Side) -> _Resolved:
    """Any side as rows and, when saved, profiles."""
    if isinstance(side, TrainingSetSide):
        return _training_set(side)
    if isinstance(side, ServingLogSide):
        return _serving_log(reads, side)
    return _source(reads, side)


def _pick(reference: _Resolved, current: _Resolved, features: Sequence[str] | None) -> list[str]:
    """The features to compare: ``features`` (each on both sides), else every one on both."""
    both = [r for r in reference.refs if r in current.refs]
    if features is None:
        if not both:
            raise FeatureReferenceError(
                f"no feature is on both sides: the reference ({reference.label}) has "
                f"{', '.join(reference.refs) or 'none'}; the current side ({current.label}) has "
                f"{', '.join(current.refs) or 'none'}"
            )
        return both
    for ref in features:
        if ref not in both:
            side = current if ref in reference.refs else reference
            raise FeatureReferenceError(
                f"feature {ref!r} is not in {side.label}.{did_you_mean(ref, side.refs)} "
                f"Features on both sides: {', '.join(both) or 'none'}."
            )
    return list(dict.fromkeys(features))


def _usable(profile: FeatureProfile) -> bool:
    """A saved profile fit to be a reference (numeric ones need their CDF counts)."""
    return profile.kind != "numeric" or not profile.non_null or bool(profile.cdf_counts)


def _reference_profiles(side: _Resolved, refs: list[str]) -> dict[str, FeatureProfile]:
    """The reference's profiles: the saved ones when usable, else profiled from its rows."""
    saved = {r: side.profiles[r] for r in refs if r in side.profiles and _usable(side.profiles[r])}
    todo = [r for r in refs if r not in saved]
    if not todo:
        return saved
    frames = side.rows()
    if len(frames) == 1:
        return saved | profile_frame(frames[0][0], todo)
    for ref in todo:  # a serving log: each feature's values from the records that served it
        series = pl.concat([f[ref] for f, held in frames if ref in held])
        saved |= profile_frame(series.to_frame(ref))
    return saved


def _current_profiles(
    side: _Resolved, refs: list[str], reference: dict[str, FeatureProfile]
) -> dict[str, FeatureProfile]:
    """Profiles of each frame taken at the reference, merged per feature."""
    out: dict[str, FeatureProfile] = {}
    for frame, held in side.rows():
        wanted = [r for r in refs if r in held]
        for ref, profile in profile_frame(frame, wanted, reference=reference).items():
            out[ref] = merge_profiles(out[ref], profile) if ref in out else profile
    return out


def drift_feature(reads: ReportInputs, ref: str, profile: FeatureProfile) -> DriftFeature:
    """What to compare for ``ref``: its owner, dtype and thresholds from the definitions."""
    view_name = ref.partition(":")[0]
    view = reads.repo.views.get(view_name) or reads.repo.on_demand_views.get(view_name)
    definition = _definition(reads, ref)
    owner = view.owner if view is not None else None
    if owner is None:
        state = reads.registry.load()
        record = state.features.get(ref) if state is not None else None
        owner = record.owner if record is not None else None
    dtype: pl.DataType | str = definition.dtype if definition is not None else profile.dtype
    config = definition.drift if definition is not None and definition.drift else DriftConfig()
    return DriftFeature(ref=ref, column=ref, owner=owner, dtype=dtype, config=config)


def build_drift_report(
    reads: ReportInputs,
    reference: Side,
    current: Side,
    features: list[str] | None = None,
) -> DriftReport:
    """Drift of ``current`` from ``reference`` for ``features`` (default: every feature on
    both sides); owners, dtypes and thresholds come from the definitions."""
    ref_side, cur_side = _resolve(reads, reference), _resolve(reads, current)
    refs = _pick(ref_side, cur_side, features)
    ref_profiles = _reference_profiles(ref_side, refs)
    cur_profiles = _current_profiles(cur_side, refs, ref_profiles)
    return compute_drift(
        ref_profiles,
        cur_profiles,
        [drift_feature(reads, r, ref_profiles[r]) for r in refs],
        reference_label=ref_side.label,
        current_label=cur_side.label,
    )


def reference_profiles(
    reads: ReportInputs, side: Side, features: list[str] | None = None
) -> tuple[str, dict[str, FeatureProfile]]:
    """The label of ``side`` and the profiles of ``features`` (default: all it holds) that a
    current side can be taken at: a training set's saved ones, else profiled from its rows."""
    resolved = _resolve(reads, side)
    refs = resolved.refs if features is None else [r for r in features if r in resolved.refs]
    if features is not None and len(refs) < len(set(features)):
        missing = [r for r in features if r not in resolved.refs]
        raise FeatureReferenceError(
            f"{resolved.label} holds no {', '.join(missing)}; it holds "
            f"{', '.join(resolved.refs) or 'no features'}"
        )
    return resolved.label, _reference_profiles(resolved, refs)
