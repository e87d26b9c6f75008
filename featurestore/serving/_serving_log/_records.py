"""A served response as serving log records: packed into JSON bytes when it is logged (cheap,
on the request path), encoded later by the writer thread into one record per entity row."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import orjson

from featurestore._times import as_utc, epoch_us
from featurestore.serving._response import OnlineResponse
from featurestore.serving._serving_log._schema import Columns

__all__ = ["Entry", "encode", "entry_of", "row_count"]


def _json_default(value: Any) -> Any:
    """Values orjson cannot encode natively are logged as their text."""
    return str(value)


def _dumps_bytes(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_json_default, option=orjson.OPT_SERIALIZE_NUMPY)


def _dumps(obj: Mapping[str, Any]) -> str:
    return _dumps_bytes(obj).decode()


def row_count(response: OnlineResponse) -> int:
    """The records a response gives: one per entity row."""
    if response.values:
        return response.row_count
    return len(next(iter(response.entities.values()), []))


class Entry(NamedTuple):
    """A served response, packed into JSON bytes by :func:`entry_of` as soon as it is logged:
    a tuple of atomic values, which the garbage collector stops scanning at once. (Holding
    the response objects themselves until the writer takes them promoted them to older
    collector generations, and full collections of those cost more than the packing.)"""

    request_id: str
    day: dt.date  # the UTC date of the request time: the partition
    rows: int
    packed: bytes


def _pack(
    response: OnlineResponse,
    request_id: str,
    latency_us: int,
    request_data: Mapping[str, Sequence[Any]] | None,
    feature_service: str | None,
) -> bytes:
    """What :func:`encode` needs of one response, as one JSON array. Values keep the text
    orjson gives them (dates and datetimes as ISO 8601), so unpacking and encoding them again
    writes the same JSON as encoding the response directly."""
    r = response
    columns = list(r.values)
    outdated = r.outdated if r.fingerprints is not r.applied_fingerprints else {}
    return _dumps_bytes(
        (
            request_id,
            epoch_us(r.request_time),
            latency_us,
            feature_service,
            [r.refs[c] for c in columns],
            [r.fingerprints.get(r.refs[c]) for c in columns],
            r.entities,
            request_data or {},
            [r.values[c] for c in columns],
            [r.statuses[c] for c in columns],
            {
                view: [None if t is None else epoch_us(t) for t in times]
                for view, times in r.event_times.items()
            },
            outdated,
        )
    )


def entry_of(
    response: OnlineResponse,
    request_id: str,
    latency_us: int,
    request_data: Mapping[str, Sequence[Any]] | None,
    feature_service: str | None,
    rows: int,
) -> Entry:
    """The queued form of a served response; raises what cannot be encoded."""
    packed = _pack(response, request_id, latency_us, request_data, feature_service)
    return Entry(request_id, as_utc(response.request_time).date(), rows, packed)


def _fingerprints_text(refs: list[str], printed: list[str], cache: dict[Any, Any]) -> str:
    """The fingerprints JSON of a plan, shared by every request of it."""
    key = (tuple(refs), *printed)
    text = cache.get(key)
    if text is None:
        text = cache[key] = _dumps(dict(zip(refs, printed, strict=True)))
    return text


def encode(e: Entry, cols: Columns, refs_cache: dict[Any, Any]) -> None:
    """Append one record per entity row of ``e`` to ``cols``, as text and integers."""
    (
        request_id,
        time_us,
        latency_us,
        feature_service,
        refs,
        printed,
        entities,
        request,
        values,
        statuses,
        event_times,
        outdated,
    ) = orjson.loads(e.packed)
    key = tuple(refs)
    refs = refs_cache.get(key) or refs_cache.setdefault(key, refs)  # one list per plan
    fingerprints = _fingerprints_text(refs, printed, refs_cache)
    applied = _dumps(outdated) if outdated else "{}"
    entity_items = list(entities.items())
    request_items = list(request.items())
    view_items = list(event_times.items())
    encoded = []  # encode every row first, so a bad value drops the whole entry, not part
    for i in range(e.rows):
        encoded.append(
            (
                _dumps({k: v[i] if i < len(v) else None for k, v in entity_items}),
                _dumps({k: v[i] for k, v in request_items if i < len(v)}),
                _dumps(dict(zip(refs, [v[i] for v in values], strict=True))),
                _dumps(dict(zip(refs, [s[i] for s in statuses], strict=True))),
                _dumps({view: ts[i] for view, ts in view_items}),
            )
        )
    for i, (keys, req, row_values, row_statuses, row_times) in enumerate(encoded):
        cols["request_id"].append(request_id)
        cols["row"].append(i)
        cols["request_time"].append(time_us)
        cols["feature_service"].append(feature_service)
        cols["features"].append(refs)
        cols["entity_keys"].append(keys)
        cols["request_data"].append(req)
        cols["values"].append(row_values)
        cols["statuses"].append(row_statuses)
        cols["fingerprints"].append(fingerprints)
        cols["event_times"].append(row_times)
        cols["latency_us"].append(latency_us)
        cols["applied_fingerprints"].append(applied)
