"""How an aggregation view's events are stored online: which inputs, cast how, under which
field names, over which window; the SQL that groups a source's events per entity into that form
and the encoding of the grouped rows (see :mod:`featurestore.online._event_state` for the
stored value and how it is read)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, ClassVar

import polars as pl

from featurestore.definitions import Aggregation, FeatureView
from featurestore.definitions._dtypes import dtype_kind
from featurestore.online._codec import TS_FIELD, events_store_name, key_expr
from featurestore.online._published import DIGEST_FIELD, PublishedDefinitions
from featurestore.sources._sql import MIN_BIGINT, SPINE_ROW, SPINE_TS, ident, input_sql

__all__ = ["WindowLayout", "aggregation_input", "events_definitions", "field_name"]


def field_name(sql: str) -> str:
    """The stored field of an input: named by its SQL, so equal inputs share a field whatever
    definition wrote them, and different ones never do."""
    return "i" + hashlib.sha256(sql.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class WindowLayout:
    """How one view's events are stored: its inputs (SQL -> field) and its longest window.
    It is also what an offline engine is handed to group a source's events per entity
    (``featurestore.offline._recent_events.EventsLayout``)."""

    newest: ClassVar[str] = TS_FIELD  # the column of each entity's newest event time
    view: FeatureView
    inputs: dict[str, str]  # input SQL -> field name in the stored value
    fields: dict[str, str]  # aggregation name -> the field it reads (not for Count)
    temporal: frozenset[str]  # fields holding epoch microseconds of temporal values
    created: bool
    max_window_us: int

    @classmethod
    def of(cls, view: FeatureView) -> WindowLayout:
        inputs: dict[str, str] = {}
        fields: dict[str, str] = {}
        temporal: set[str] = set()
        for agg in view.aggregations:
            sql = input_sql(agg)
            if sql is None:
                continue
            fields[agg.name] = inputs.setdefault(sql, field_name(sql))
            if _temporal(agg):
                temporal.add(inputs[sql])
        return cls(
            view=view,
            inputs=inputs,
            fields=fields,
            temporal=frozenset(temporal),
            created=view.source.created_timestamp_field is not None,
            max_window_us=max(a.window_us for a in view.aggregations),
        )

    def union(self, other: WindowLayout) -> WindowLayout:
        """A layout storing the inputs of both, over the longer window (for a push that must
        also be readable with the definitions the stored events were written with)."""
        return WindowLayout(
            view=self.view,
            inputs={**other.inputs, **self.inputs},
            fields=self.fields,
            temporal=self.temporal | other.temporal,
            created=self.created,
            max_window_us=max(self.max_window_us, other.max_window_us),
        )

    def _event_columns(self, timestamp: str, created: str | None) -> list[str]:
        """One event's stored columns: ``t``, ``c`` and each input, cast as offline."""
        t = f"epoch_us({timestamp})"
        c = f"COALESCE(epoch_us({created}), {MIN_BIGINT})" if created else "0"
        cols = [f"{t} AS t", f"{c} AS c"]
        for sql, name in self.inputs.items():
            cols.append(
                f"epoch_us({sql}) AS {name}" if name in self.temporal else f"{sql} AS {name}"
            )
        return cols

    def _event_lists(self, prefix: str = "") -> list[str]:
        """The stored lists of a group of events (columns of :meth:`_event_columns`, read
        with ``prefix``), sorted by ``(t, c)``, and the newest event time."""
        t, c = f"{prefix}t", f"{prefix}c"
        order = f"ORDER BY {t}, {c}"
        lists = [f"max({t}) AS {TS_FIELD}", f"list({t} {order}) AS t"]
        if self.created:
            lists.append(f"list({c} {order}) AS c")
        lists += [f"list({prefix}{name} {order}) AS {name}" for name in self.inputs.values()]
        return lists

    def events_sql(
        self,
        scan: str,
        timestamp: str,
        created: str | None,
        where: str,
        *,
        drop_late: bool = False,
    ) -> str:
        """One row per entity: its events matching ``where`` as sorted lists, newest time;
        with ``drop_late``, without events older than the entity's newest one minus the longest
        window (no request at or after the newest event can see them)."""
        keys = ", ".join(ident(k) for k in self.view.join_keys)
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in self.view.join_keys)
        t = f"epoch_us({timestamp})"
        qualify = (
            f"QUALIFY {t} > max({t}) OVER (PARTITION BY {keys}) - {self.max_window_us}"
            if drop_late
            else ""
        )
        return (
            f"SELECT {keys}, {', '.join(self._event_lists())} FROM ("
            f"SELECT {keys}, {', '.join(self._event_columns(timestamp, created))} FROM {scan} "
            f"WHERE {timestamp} IS NOT NULL AND {not_null} AND ({where}) {qualify}) GROUP BY ALL"
        )

    def spine_events_sql(
        self, scan: str, timestamp: str, created: str | None, spine_table: str
    ) -> str:
        """One row per row of ``spine_table`` (columns ``__fs_row``, the join keys and
        ``__fs_ts``, a naive UTC TIMESTAMP) whose entity has events in ``(__fs_ts - longest
        window, __fs_ts]``: ``__fs_row``, the keys and those events as :meth:`events_sql`
        lists them, i.e. what materialization with ``end`` at the row's time writes for the
        entity (:func:`featurestore.online._publish_events.publish_events`). Rows without such
        events are left out."""
        keys = self.view.join_keys
        not_null = " AND ".join(f"{ident(k)} IS NOT NULL" for k in keys)
        on = " AND ".join(f"s.{ident(k)} = e.{ident(k)}" for k in keys)
        now = f"epoch_us(s.{SPINE_TS})"
        return (
            f"SELECT s.{SPINE_ROW}, {', '.join(f's.{ident(k)}' for k in keys)}, "
            f"{', '.join(self._event_lists('e.'))} "
            f"FROM {ident(spine_table)} s JOIN ("
            f"SELECT {', '.join(ident(k) for k in keys)}, "
            f"{', '.join(self._event_columns(timestamp, created))} FROM {scan} "
            f"WHERE {timestamp} IS NOT NULL AND {not_null}) e "
            f"ON {on} AND e.t <= {now} AND e.t > {now} - {self.max_window_us} "
            f"GROUP BY ALL ORDER BY s.{SPINE_ROW}"
        )

    def encode(self, grouped: pl.DataFrame, digest: str) -> pl.DataFrame:
        """``(key, value)`` rows from :meth:`events_sql` output: entity key and JSON bytes,
        tagged with the ``digest`` of the definitions they were written with."""
        fields = [TS_FIELD, "t", *(["c"] if self.created else []), *self.inputs.values()]
        return grouped.select(
            key_expr(self.view.join_keys).alias("key"),
            pl.struct(pl.col(TS_FIELD), pl.lit(digest).alias(DIGEST_FIELD), *fields[1:])
            .struct.json_encode()
            .cast(pl.Binary)
            .alias("value"),
        )


def events_definitions(
    view: FeatureView, fingerprints: dict[str, str], definitions: dict[str, dict[str, Any]]
) -> PublishedDefinitions:
    """What a view's stored events are written with: each aggregation's fingerprint and
    definition (``view:name`` -> the applied registry's), the stored inputs and the longest
    window."""
    layout = WindowLayout.of(view)
    refs = {a.name: f"{view.name}:{a.name}" for a in view.aggregations}
    return PublishedDefinitions(
        view=events_store_name(view.name),
        fingerprints={name: fingerprints[ref] for name, ref in refs.items()},
        definitions={name: definitions[ref] for name, ref in refs.items()},
        inputs={field: sql for sql, field in layout.inputs.items()},
        max_window_us=layout.max_window_us,
    )


def aggregation_input(agg: Aggregation) -> tuple[str | None, bool]:
    """The stored field an aggregation reads (None for Count), and whether it holds epoch
    microseconds of temporal values."""
    sql = input_sql(agg)
    return (field_name(sql) if sql is not None else None), _temporal(agg)


def _temporal(agg: Aggregation) -> bool:
    return agg.kind in ("min", "max", "last") and dtype_kind(agg.dtype) in ("date", "datetime")
