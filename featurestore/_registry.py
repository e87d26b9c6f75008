"""The registry: what was applied, with a fingerprint per feature, and the diff behind plan.

Stored as one JSON file under the data directory, replaced atomically (write to a temporary
name, then rename), so a failed or interrupted apply never leaves a half-written registry.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from featurestore._files import write_text_atomically
from featurestore._repo import RepoContents
from featurestore._times import format_duration
from featurestore.definitions import Aggregation, Feature
from featurestore.definitions._dtypes import dtype_name
from featurestore.definitions._fingerprint import (
    aggregation_definition,
    feature_definition,
    fingerprint,
    on_demand_definition,
)
from featurestore.errors import RegistryError

__all__ = [
    "FeatureRecord",
    "PlanDiff",
    "Registry",
    "RegistryState",
    "build_state",
    "diff",
    "fingerprints_of",
]

REGISTRY_FILE = "registry.json"

log = logging.getLogger(__name__)


class FeatureRecord(BaseModel):
    """One applied feature: its definition, fingerprint and metadata.

    ``kind`` is ``feature``, ``aggregation`` or ``on_demand``.
    """

    ref: str
    view: str
    name: str
    kind: str
    dtype: str
    fingerprint: str
    owner: str | None
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    definition: dict[str, Any]


class ViewRecord(BaseModel):
    """One applied view: keys with the dtypes found in its source, ttl, source and owner."""

    name: str
    kind: str
    entities: list[str] = Field(default_factory=list)
    join_keys: dict[str, str] = Field(default_factory=dict)
    ttl_seconds: float | None = None
    source: str | None = None
    owner: str | None = None
    features: list[str]


class RegistryState(BaseModel):
    """The whole registry file; ``version`` counts the applies that wrote it."""

    project: str
    applied_at: dt.datetime
    version: int = 0
    features: dict[str, FeatureRecord]
    views: dict[str, ViewRecord]
    services: dict[str, list[str]]


class Change(BaseModel):
    """A changed feature and why; ``fingerprint_changed`` is False for metadata-only edits.
    The full records before and after are kept for a verbose view, out of the JSON form."""

    ref: str
    reasons: list[str]
    fingerprint_changed: bool
    old_fingerprint: str
    new_fingerprint: str
    old_record: FeatureRecord | None = Field(default=None, exclude=True, repr=False)
    new_record: FeatureRecord | None = Field(default=None, exclude=True, repr=False)


class PlanDiff(BaseModel):
    """What apply would change (or changed) in the registry."""

    added: list[str] = Field(default_factory=list)
    changed: list[Change] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    unchanged: list[str] = Field(default_factory=list)

    @property
    def has_changes(self) -> bool:
        return bool(self.added or self.changed or self.removed)


def build_state(repo: RepoContents, key_dtypes: dict[str, dict[str, str]]) -> RegistryState:
    """Registry records for everything the repo defines; ``key_dtypes`` come from the sources."""
    features: dict[str, FeatureRecord] = {}
    views: dict[str, ViewRecord] = {}
    for view in repo.views.values():
        outputs: list[tuple[Feature | Aggregation, str, dict[str, Any]]] = [
            (f, "feature", feature_definition(view, f)) for f in view.features
        ]
        outputs += [(a, "aggregation", aggregation_definition(view, a)) for a in view.aggregations]
        for item, kind, definition in outputs:
            features[f"{view.name}:{item.name}"] = FeatureRecord(
                ref=f"{view.name}:{item.name}",
                view=view.name,
                name=item.name,
                kind=kind,
                dtype=dtype_name(item.dtype),
                fingerprint=fingerprint(definition),
                owner=view.owner,
                description=item.description or view.description,
                tags=view.tags,
                definition=definition,
            )
        views[view.name] = ViewRecord(
            name=view.name,
            kind="batch",
            entities=[e.name for e in view.entities],
            join_keys=key_dtypes.get(view.name, {}),
            ttl_seconds=view.ttl.total_seconds() if view.ttl else None,
            source=view.source.name,
            owner=view.owner,
            features=view.feature_names,
        )
    upstream = {ref: rec.fingerprint for ref, rec in features.items()}
    for odfv in repo.on_demand_views.values():
        for f in odfv.features:
            definition = on_demand_definition(
                odfv, f, odfv.input_refs(repo.views), upstream, repo.functions.get(odfv.name)
            )
            features[f"{odfv.name}:{f.name}"] = FeatureRecord(
                ref=f"{odfv.name}:{f.name}",
                view=odfv.name,
                name=f.name,
                kind="on_demand",
                dtype=dtype_name(f.dtype),
                fingerprint=fingerprint(definition),
                owner=odfv.owner,
                description=f.description or odfv.description,
                tags=odfv.tags,
                definition=definition,
            )
        views[odfv.name] = ViewRecord(
            name=odfv.name, kind="on_demand", owner=odfv.owner, features=odfv.feature_names
        )
    return RegistryState(
        project=repo.config.project,
        applied_at=dt.datetime.now(dt.UTC),
        features=features,
        views=views,
        services={name: svc.references() for name, svc in repo.services.items()},
    )


_ABSENT = object()
_SHOWN_PER_KEY = 3  # changed parts listed per definition key; the rest are counted


def _short(value: Any) -> str:
    """A changed part as short text: long strings and byte lists are only said to differ."""
    if value is _ABSENT:
        return "(none)"
    if isinstance(value, dict) and set(value) == {"type", "repr"}:
        return str(value["repr"])  # a Python value as the code writes it: 5, 'abc'
    if isinstance(value, str) and len(value) == 16 and value.isalnum():
        return value  # a fingerprint
    if isinstance(value, list) and len(value) > 16 and all(isinstance(v, int) for v in value):
        return f"<{len(value)} bytes>"
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."


def _leaf_changes(path: str, a: Any, b: Any, out: list[str]) -> None:
    """``path: old -> new`` for every differing leaf of two JSON trees."""
    if a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict) and not {"type", "repr"} >= set(a) | set(b):
        for key in sorted(set(a) | set(b), key=str):
            _leaf_changes(f"{path}.{key}", a.get(key, _ABSENT), b.get(key, _ABSENT), out)
        return
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b) and len(a) <= 16:
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _leaf_changes(f"{path}[{i}]", x, y, out)
        return
    if (isinstance(a, str) and len(a) > 60) or (isinstance(b, str) and len(b) > 60):
        out.append(f"{path} changed")
        return
    out.append(f"{path}: {_short(a)} -> {_short(b)}")


_DURATIONS = {"window_us": ("window", 1e-6), "ttl_seconds": ("ttl", 1.0)}


def changed_parts(key: str, old: Any, new: Any) -> list[str]:
    """What differs between two values of a definition key, down to the changed argument
    (e.g. ``expr.Function.function.Round.decimals: 3 -> 2``), at most a few per key."""
    parts: list[str] = []
    if old == new:
        return parts
    if key in _DURATIONS:
        name, unit = _DURATIONS[key]
        shown = ["none" if v in (None, _ABSENT) else format_duration(v * unit) for v in (old, new)]
        return [f"{name}: {shown[0]} -> {shown[1]}"]
    _leaf_changes(key, old, new, parts)
    if len(parts) > _SHOWN_PER_KEY:
        more = len(parts) - _SHOWN_PER_KEY
        parts = [*parts[:_SHOWN_PER_KEY], f"{key}: and {more} more difference(s)"]
    return parts


def _reasons(old: FeatureRecord, new: FeatureRecord) -> tuple[list[str], bool]:
    reasons = []
    keys = sorted(set(old.definition) | set(new.definition))
    for key in keys:
        a, b = old.definition.get(key, _ABSENT), new.definition.get(key, _ABSENT)
        base = key.removesuffix("_bytes")
        if base != key and old.definition.get(base) != new.definition.get(base):
            continue  # the readable form of the same change is listed already
        reasons += changed_parts(key, a, b)
    for key in ("owner", "description", "tags"):
        a, b = getattr(old, key), getattr(new, key)
        if a != b:
            reasons.append(f"{key}: {json.dumps(a)} -> {json.dumps(b)}")
    return reasons, old.fingerprint != new.fingerprint


def diff(old: RegistryState | None, new: RegistryState) -> PlanDiff:
    """Added, changed (with reasons) and removed features between two registry states."""
    before = old.features if old else {}
    out = PlanDiff()
    for ref, rec in new.features.items():
        if ref not in before:
            out.added.append(ref)
            continue
        reasons, changed_fp = _reasons(before[ref], rec)
        if reasons:
            out.changed.append(
                Change(
                    ref=ref,
                    reasons=reasons,
                    fingerprint_changed=changed_fp,
                    old_fingerprint=before[ref].fingerprint,
                    new_fingerprint=rec.fingerprint,
                    old_record=before[ref],
                    new_record=rec,
                )
            )
        else:
            out.unchanged.append(ref)
    out.removed = [ref for ref in before if ref not in new.features]
    return out


def fingerprints_of(refs: list[str], applied: RegistryState, code: RegistryState) -> dict[str, str]:
    """The applied fingerprints of ``refs``; raises RegistryError naming the first reference
    whose code (``code``, the state the loaded definitions would record) differs from the
    applied one, so nothing is computed under a fingerprint that does not describe it."""
    out = {}
    for ref in refs:
        record = applied.features.get(ref)
        if record is None:
            raise RegistryError(
                f"feature {ref!r} is defined but not applied (registry version "
                f"{applied.version}); run 'featurestore apply'"
            )
        current = code.features[ref].fingerprint
        if record.fingerprint != current:
            raise RegistryError(
                f"the code of feature {ref!r} differs from the applied registry (version "
                f"{applied.version}: fingerprint {record.fingerprint} applied, {current} in the "
                "code); run 'featurestore apply' to apply the code, or restore the applied code"
            )
        out[ref] = record.fingerprint
    return out


class Registry:
    """The registry file of one repo."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / REGISTRY_FILE

    def load(self) -> RegistryState | None:
        """The applied state, or None if nothing was applied yet."""
        try:
            text = self.path.read_text()
        except FileNotFoundError:
            return None
        try:
            return RegistryState.model_validate_json(text)
        except ValidationError as exc:
            raise RegistryError(
                f"registry {self.path} is unreadable ({exc.error_count()} problem(s)); "
                "run 'featurestore apply' to rewrite it"
            ) from exc

    def require(self) -> RegistryState:
        state = self.load()
        if state is None:
            raise RegistryError(
                f"nothing has been applied yet ({self.path} does not exist); "
                "run 'featurestore apply'"
            )
        return state

    def save(self, state: RegistryState) -> None:
        """Replace the registry atomically."""
        write_text_atomically(self.path, state.model_dump_json(indent=2))

    def record(self, state: RegistryState) -> PlanDiff:
        """Save ``state`` as the next version; returns what changed since the applied one (an
        unreadable registry counts as empty: apply rewrites it)."""
        try:
            previous = self.load()
        except RegistryError as exc:
            log.warning("registry unreadable, treating as empty: %s", exc)
            previous = None
        changes = diff(previous, state)
        state.version = (previous.version if previous else 0) + 1
        self.save(state)
        log.info(
            "applied project=%s version=%d added=%d changed=%d removed=%d",
            state.project,
            state.version,
            len(changes.added),
            len(changes.changed),
            len(changes.removed),
        )
        return changes

    def applied_fingerprints(self, repo: RepoContents, refs: list[str]) -> dict[str, str]:
        """The applied fingerprints of ``refs``; fails if ``repo``'s code of one of them no
        longer matches what was applied."""
        return fingerprints_of(refs, self.require(), build_state(repo, {}))
