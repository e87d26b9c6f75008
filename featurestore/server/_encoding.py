"""The JSON body of a served response, encoded by orjson directly: per column its reference,
dtype, fingerprints, values and statuses, in request order."""

from __future__ import annotations

import orjson
import polars as pl

from featurestore.definitions._dtypes import dtype_name
from featurestore.serving._response import OnlineResponse

__all__ = ["encode_response"]

# dtype text by the dtype object's id (hashing a Polars dtype runs Python code); the object is
# kept with its text, so its id cannot be reused while cached
_DTYPE_NAMES: dict[int, tuple[pl.DataType, str]] = {}
_MAX_DTYPE_NAMES = 4096


def _dtype_text(dtype: pl.DataType) -> str:
    hit = _DTYPE_NAMES.get(id(dtype))
    if hit is not None and hit[0] is dtype:
        return hit[1]
    if len(_DTYPE_NAMES) >= _MAX_DTYPE_NAMES:
        _DTYPE_NAMES.clear()
    text = dtype_name(dtype)
    _DTYPE_NAMES[id(dtype)] = (dtype, text)
    return text


def encode_response(response: OnlineResponse, request_id: str) -> bytes:
    """The JSON body of a served response (see :mod:`featurestore.server._app`)."""
    refs, fingerprints, statuses, dtypes = (
        response.refs,
        response.fingerprints,
        response.statuses,
        response.dtypes,
    )
    features = {}
    outdated = response.outdated if fingerprints is not response.applied_fingerprints else {}
    for column, values in response.values.items():
        ref = refs[column]
        features[column] = {
            "ref": ref,
            "dtype": _dtype_text(dtypes[column]),
            "fingerprint": fingerprints[ref],
            "values": values,
            "statuses": statuses[column],
        }
        if ref in outdated:
            features[column]["applied_fingerprint"] = outdated[ref]
    return orjson.dumps(
        {
            "request_id": request_id,
            "request_time": response.request_time,
            "entities": response.entities,
            "features": features,
        }
    )
