"""Sampled row-level consistency: each monitor run replays a deterministic sample of the logged
records through the offline path (the skew report's replay, point in time at each record's
request time) and counts, per hour and feature, the records compared and those whose served
value matches the offline one within the feature's ``SkewConfig`` tolerance.

The sample rule. Each record's ``entity_keys`` JSON text is hashed (the first 8 bytes of its
BLAKE2b digest, an unsigned 64-bit ``h``). A batch of ``n`` records keeps those with
``h mod 2**j == 0``, ``j`` being the least level with ``n <= sample * 2**j`` (so about ``n / 2**j``,
between ``sample / 2`` and ``sample``, are kept); if a few busy entities still give more than
``sample``, the records of the lowest ``h`` are kept (ties by request time, id and row). The
choice depends on the entity keys alone, never on the log's order, so the same entities are
chosen every run and every hour; a busier log only raises ``j``, which keeps a subset of the
entities chosen at a lower level, so the entities of quiet and busy hours nest.
Records without entity keys (request-only features) share one hash: all of them are
chosen (the earliest ``sample``) or none.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import replace

import polars as pl

from featurestore.monitoring._inputs import ReportInputs
from featurestore.monitoring._monitor._summaries import SUMMARY_SCHEMA
from featurestore.monitoring._skew._replay import replay
from featurestore.monitoring._skew._specs import Spec, build_specs

__all__ = ["entity_hash", "sample_records", "sampled_consistency"]

log = logging.getLogger("featurestore.monitoring")

_HASH = "__fs_entity_hash"
_COUNTED = ("hour", "feature", "compared", "matched")


def entity_hash(entity_keys: str) -> int:
    """The stable 64-bit hash of a record's ``entity_keys`` text (the same in every process)."""
    digest = hashlib.blake2b(entity_keys.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _level(records: int, sample: int) -> int:
    """The least ``j`` with ``records <= sample * 2**j``."""
    level = 0
    while sample << level < records:
        level += 1
    return level


def sample_records(log: pl.DataFrame, sample: int) -> pl.DataFrame:
    """The records of ``log`` the sample rule chooses (at most ``sample``, see the module)."""
    if sample <= 0 or log.is_empty():
        return log.clear()
    keys = log["entity_keys"].unique()
    hashes = pl.DataFrame(
        {"entity_keys": keys, _HASH: [entity_hash(k) for k in keys.to_list()]},
        schema={"entity_keys": pl.String(), _HASH: pl.UInt64()},
    )
    modulus = pl.lit(1 << _level(log.height, sample), dtype=pl.UInt64())
    chosen = log.join(hashes, on="entity_keys", how="left").filter(pl.col(_HASH) % modulus == 0)
    order = [_HASH, "request_time", "request_id", "row"]
    return chosen.sort(order).head(sample).drop(_HASH)


def _specs(inputs: ReportInputs, refs: list[str], served: set[str]) -> list[Spec]:
    """What to compare for each of ``refs`` that can still be replayed; warns of the others."""
    specs: list[Spec] = []
    for ref in refs:
        try:
            (spec,) = build_specs(inputs, [ref], served)
        except Exception as exc:  # one feature never stops the run
            log.warning("consistency check skips %s: %s", ref, exc)
            continue
        specs.append(replace(spec, index=len(specs)))
    return specs


def _replays(
    inputs: ReportInputs, records: pl.DataFrame, specs: list[Spec]
) -> Iterable[tuple[Spec, pl.DataFrame]]:
    """Each spec with a replay frame holding its columns: one replay of them all, or when that
    fails, one per feature, skipping (with a warning) those that cannot be replayed."""
    try:
        frame = replay(inputs, records, specs, event_times_logged=False)
    except Exception as exc:  # find the features at fault, one by one
        log.debug("consistency check replays features one by one: %s", exc)
    else:
        return [(s, frame) for s in specs]
    out = []
    for s in specs:
        try:
            out.append((s, replay(inputs, records, [s], event_times_logged=False)))
        except Exception as exc:  # one feature never stops the run
            log.warning("consistency check skips %s: %s", s.ref, exc)
    return out


def _counts(spec: Spec, frame: pl.DataFrame) -> pl.DataFrame:
    """Per hour, the records that served ``spec``'s feature (with a status) and those of them
    whose served and offline values match within the tolerance."""
    served = pl.col(spec.col("m")) & pl.col(spec.col("st")).is_not_null()
    return (
        frame.filter(served)
        .group_by(pl.col("request_time").dt.truncate("1h").alias("hour"))
        .agg(
            pl.len().cast(pl.Int64()).alias("compared"),
            (~pl.col(spec.col("bad"))).sum().cast(pl.Int64()).alias("matched"),
        )
        .select("hour", pl.lit(spec.ref).alias("feature"), "compared", "matched")
    )


def _summary_rows(counts: pl.DataFrame) -> pl.DataFrame:
    """Counts as rows of ``SUMMARY_SCHEMA``: other counts 0, lists empty, min and max null."""
    filler: list[pl.Expr] = []
    for column, dtype in SUMMARY_SCHEMA.items():
        if column in _COUNTED:
            continue
        if column in ("min", "max"):
            filler.append(pl.lit(None, dtype=dtype).alias(column))
        elif isinstance(dtype, pl.List):
            filler.append(pl.lit([], dtype=dtype).alias(column))
        else:
            filler.append(pl.lit(0, dtype=dtype).alias(column))
    out = counts.with_columns(filler).select(list(SUMMARY_SCHEMA))
    return out.cast(SUMMARY_SCHEMA).sort("hour", "feature")  # type: ignore[arg-type]


def sampled_consistency(
    inputs: ReportInputs, log: pl.DataFrame, features: list[str], sample: int
) -> pl.DataFrame:
    """Summary rows (one per hour and feature of ``features``) counting the sampled records of
    ``log`` compared with their offline replay and those matching; ``sample=0`` replays none.
    A feature that cannot be replayed is skipped with a warning, never failing the run."""
    records = sample_records(log, sample)
    if records.is_empty():
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    served = set(records["features"].explode().drop_nulls().to_list())
    refs = [r for r in dict.fromkeys(features) if r in served]
    specs = _specs(inputs, refs, served)
    counts = [_counts(s, frame) for s, frame in _replays(inputs, records, specs)] if specs else []
    if not counts:
        return pl.DataFrame(schema=SUMMARY_SCHEMA)
    return _summary_rows(pl.concat(counts))
