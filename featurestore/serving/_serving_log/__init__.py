"""The serving log: every served entity row, appended to Parquet by a background thread.

A request for N entities gives N records. Files live under ``directory/date=YYYY-MM-DD/``
(the UTC date of the request time), named ``part-<UTC write time>-<uuid>.parquet``; each is
written under a hidden temporary name, fsynced and renamed, so a reader never sees half a file.
The columns are the contract that the skew report replays through the offline engine:

- ``request_id`` (String): the id the server gave the request.
- ``row`` (Int64): the record's position among the request's entity rows, from 0.
- ``request_time`` (Datetime us, UTC): the time the values were served as of.
- ``feature_service`` (String, nullable): the feature service asked for, if any.
- ``features`` (List[String]): the ``view:feature`` references served, in response order.
- ``entity_keys`` (String): JSON object of the row's join key values, e.g. ``{"user_id": 7}``.
- ``request_data`` (String): JSON object of the row's request values, ``{}`` if none.
- ``values`` (String): JSON object ``{ref: value}``; dates and datetimes as ISO 8601 text
  (naive datetimes stay naive, meaning UTC), missing values as ``null``.
- ``statuses`` (String): JSON object ``{ref: FeatureStatus}``.
- ``fingerprints`` (String): JSON object ``{ref: fingerprint}`` of the definitions the served
  values were computed with.
- ``applied_fingerprints`` (String, nullable): JSON object ``{ref: fingerprint}`` of the applied
  definitions of the references served with values of an earlier one (``{}`` when none; null
  in logs written before the column existed).
- ``event_times`` (String): JSON object ``{view: epoch microseconds}``, the event time of the
  row served from each batch view read, ``null`` where none was found.
- ``latency_us`` (Int64): the request's serving latency in microseconds.

The columns are declared in ``_schema``, a response becomes records in ``_records``, the
background writer is ``_writer``, the partitioned files ``_files`` and reading them ``_reader``.
"""

from featurestore.serving._serving_log._files import log_files, write_part
from featurestore.serving._serving_log._handle import ServingLog
from featurestore.serving._serving_log._reader import decode_json_column, read_serving_log
from featurestore.serving._serving_log._schema import SERVING_LOG_SCHEMA
from featurestore.serving._serving_log._writer import ServingLogWriter, open_serving_log

__all__ = [
    "SERVING_LOG_SCHEMA",
    "ServingLog",
    "ServingLogWriter",
    "decode_json_column",
    "log_files",
    "open_serving_log",
    "read_serving_log",
    "write_part",
]
