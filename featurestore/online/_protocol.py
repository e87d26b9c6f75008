"""The OnlineStore interface, as small as a transport: publish a batch atomically, read many
keys of one view, append to some keys or update them atomically, delete a view, check
reachability, close."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol, TypeAlias

from featurestore.errors import OnlineStoreError

__all__ = [
    "META_VIEW",
    "OnlineStore",
    "Parts",
    "check_pairs",
    "events_state_key",
    "view_state_key",
]

# A snapshot too large to hold at once: a function that yields its (keys, values) parts, each
# key in one part only; called again from the start if the store must restart its write.
Parts: TypeAlias = Callable[[], Iterator[tuple[Sequence[str], Sequence[bytes]]]]

META_VIEW = "__fs_meta"  # reserved (a view name never starts with "__fs"): state of publishes


def check_pairs(what: str, view: str, keys: Sequence[str], values: Sequence[object]) -> None:
    """Raise OnlineStoreError unless there is one value per key (``what``: "publish to",
    "append to", "update of"), before a backend writes anything."""
    if len(keys) != len(values):
        kind = "fragments" if what == "append to" else "values"
        raise OnlineStoreError(f"{what} {view!r}: {len(keys)} keys but {len(values)} {kind}")


def view_state_key(view: str) -> str:
    """Where a view's materialization state lives in :data:`META_VIEW`."""
    return f"state:{view}"


def events_state_key(view: str) -> str:
    """Where the state of a view's last events publish lives in :data:`META_VIEW`."""
    return f"events:{view}"


class OnlineStore(Protocol):
    """Rows are opaque bytes under a string entity key, grouped by view.

    A key's value is what was last published or updated, followed by every fragment appended
    to it since, in order: appends are cheap writes that never read or rewrite the value.
    """

    def publish(
        self,
        view: str,
        keys: Sequence[str],
        values: Sequence[bytes],
        *,
        replace: bool,
        meta: Mapping[str, bytes] | None = None,
    ) -> None:
        """Write a batch so readers see all of it or none of it.

        ``replace=True`` also drops every other entity of the view (a full snapshot);
        ``replace=False`` upserts. A published value replaces the key's appended fragments. A
        failure part-way leaves the previous values readable. ``meta`` entries are written to
        the reserved view :data:`META_VIEW` in the same transaction (read them back with
        ``read(META_VIEW, keys)``), so the state of a publish never disagrees with its data.
        """
        ...

    def publish_parts(
        self, view: str, parts: Parts, *, meta: Callable[[], Mapping[str, bytes]]
    ) -> None:
        """A full snapshot written one part at a time in one transaction, so memory holds one
        part: readers see the previous values until all of it is in. ``meta()`` is called
        after the last part and its entries written with them (as :meth:`publish` writes
        ``meta``); an exception from ``parts`` or ``meta`` leaves the previous values."""
        ...

    def read(self, view: str, keys: Sequence[str]) -> list[bytes | None]:
        """The whole value for each key, in order (None where absent), in one round trip."""
        ...

    def append(self, view: str, keys: Sequence[str], fragments: Sequence[bytes]) -> list[int]:
        """Append each fragment to its key's value (``keys`` distinct), atomically: readers
        see all of the batch or none of it. Returns, per key, the bytes appended since the key
        was last published or updated, so a caller can fold long tails with :meth:`update`."""
        ...

    def update(
        self,
        view: str,
        keys: Sequence[str],
        change: Callable[[list[bytes | None]], list[bytes]],
    ) -> None:
        """Read ``keys`` (distinct), write ``change(current whole values)`` back as their new
        values (appended fragments folded in), atomically: no concurrent write is lost in
        between and readers see all of it or none of it."""
        ...

    def count(self, view: str) -> int:
        """How many entities the view holds (with a value or appended fragments)."""
        ...

    def delete_view(self, view: str) -> None:
        """Drop every row of the view."""
        ...

    def ping(self) -> None:
        """Raise OnlineStoreUnavailableError if the store cannot be reached."""
        ...

    def close(self) -> None: ...
