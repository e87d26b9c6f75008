"""A full snapshot published in parts, on every backend: it replaces the view with its meta in
one transaction, readers see the previous values until the last part is in, a failure in a
part or in the meta leaves the previous values; materializing a view in parts publishes what
one batch publishes, and a refused guard publishes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from featurestore import FeatureStore
from featurestore.errors import MaterializationGuardError
from featurestore.online._protocol import META_VIEW, OnlineStore

from .conftest import (
    ALL_FEATURES,
    PROJECT,
    VIEW,
    batch,
    online_store_yaml,
    write_online_repo,
)

D = dt.datetime
SIGNUP = D(2023, 6, 1)
END = D(2024, 2, 10)
Part = tuple[Sequence[str], Sequence[bytes]]


def parts_of(*parts: Part, between: Callable[[int], None] = lambda i: None) -> Any:
    """A parts function yielding ``parts``, calling ``between(i)`` after part ``i``."""

    def parts_() -> Iterator[Part]:
        for i, part in enumerate(parts):
            yield part
            between(i)

    return parts_


def test_parts_replace_the_view_with_their_meta(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a", "b", "c"], batch(1, ["a", "b", "c"]), replace=True)
    online_store.append(VIEW, ["a"], [b"+tail"])
    parts = parts_of((["b", "d"], batch(2, ["b", "d"])), (["e"], batch(2, ["e"])))
    online_store.publish_parts(VIEW, parts, meta=lambda: {"state:v": b"2"})
    assert online_store.read(VIEW, ["a", "b", "c", "d", "e"]) == [
        None,
        b"2:b",
        None,
        b"2:d",
        b"2:e",
    ]
    assert online_store.count(VIEW) == 3
    assert online_store.read(META_VIEW, ["state:v"]) == [b"2"]
    online_store.append(VIEW, ["b"], [b"+more"])  # appends follow the new value
    assert online_store.read(VIEW, ["b"]) == [b"2:b+more"]


def test_readers_see_the_previous_values_until_the_last_part(
    open_store: Callable[[str], OnlineStore],
) -> None:
    """Between two parts, a reader on its own connection (in another thread) still reads the
    previous snapshot, whole."""
    writer, reader = open_store(PROJECT), open_store(PROJECT)
    old = [str(i) for i in range(6)]
    writer.publish(VIEW, old, batch(1, old), replace=True, meta={"state:v": b"1"})
    seen: list[list[bytes | None]] = []

    def read_meanwhile(_: int) -> None:
        with ThreadPoolExecutor(1) as pool:
            seen.append(pool.submit(reader.read, VIEW, [*old, "new"]).result(timeout=10))
            seen.append(pool.submit(reader.read, META_VIEW, ["state:v"]).result(timeout=10))

    new = ["3", "4", "new"]
    parts = parts_of(
        (new[:2], batch(2, new[:2])), (new[2:], batch(2, new[2:])), between=read_meanwhile
    )
    writer.publish_parts(VIEW, parts, meta=lambda: {"state:v": b"2"})
    assert seen[0] == [*batch(1, old), None] and seen[1] == [b"1"]
    assert seen[2] == [*batch(1, old), None] and seen[3] == [b"1"]
    assert reader.read(VIEW, [*old, "new"]) == [None, None, None, b"2:3", b"2:4", None, b"2:new"]
    assert reader.read(META_VIEW, ["state:v"]) == [b"2"]


@pytest.mark.parametrize("fails", ["in a part", "in the meta"])
def test_a_failure_leaves_the_previous_values(online_store: OnlineStore, fails: str) -> None:
    keys = ["a", "b"]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True, meta={"state:v": b"1"})

    def broken(i: int) -> None:
        if fails == "in a part" and i == 0:
            raise ValueError("the source went away")

    def meta() -> dict[str, bytes]:
        if fails == "in the meta":
            raise ValueError("the guard refused")
        return {"state:v": b"2"}

    parts = parts_of((["c"], batch(2, ["c"])), (["d"], batch(2, ["d"])), between=broken)
    with pytest.raises(ValueError):
        online_store.publish_parts(VIEW, parts, meta=meta)
    assert online_store.read(VIEW, ["a", "b", "c", "d"]) == [*batch(1, keys), None, None]
    assert online_store.count(VIEW) == 2
    assert online_store.read(META_VIEW, ["state:v"]) == [b"1"]


def users(n: int, day: int = 1) -> list[dict[str, Any]]:
    return [
        {
            "user_id": u,
            "updated_at": D(2024, 2, day),
            "created": D(2024, 2, day),
            "signup_at": SIGNUP,
            "country": ["FR", "US", None][u % 3],
            "age": 20 + u % 70,
            "score": float(u) if u % 7 else None,
        }
        for u in range(1, n + 1)
    ]


def open_repo(root: Path, backend: str, prefix: str, part_rows: int, **kw: Any) -> FeatureStore:
    online = online_store_yaml(backend, prefix) + f"materialization: {{part_rows: {part_rows}}}\n"
    store = FeatureStore(write_online_repo(root, online, **kw))
    store.apply()
    return store


def test_materializing_in_parts_publishes_what_one_batch_publishes(
    backend: str, tmp_path: Path, redis_prefix: str
) -> None:
    rows = users(40)
    whole = open_repo(tmp_path / "whole", backend, redis_prefix + "w:", 1_000, users=rows)
    parted = open_repo(tmp_path / "parted", backend, redis_prefix + "p:", 7, users=rows)
    try:
        sizes: list[int] = []
        real = parted.online.publish_parts

        def counted(view: str, parts: Any, *, meta: Any) -> None:
            def spied() -> Iterator[Part]:
                for keys, values in parts():
                    sizes.append(len(keys))
                    yield keys, values

            real(view, spied, meta=meta)

        parted.online.publish_parts = counted  # type: ignore[method-assign]
        [one] = whole.materialize(end=END, views=["user_profile"])
        [many] = parted.materialize(end=END, views=["user_profile"])
        assert len(sizes) == 6 and sum(sizes) == 40, sizes  # 40 source rows, parts of ~7
        assert (many.rows, many.guard.checks) == (one.rows, one.guard.checks)
        ask: dict[str, Any] = {
            "features": [f for f in ALL_FEATURES if f.startswith("user_profile:")],
            "entities": {"user_id": list(range(0, 43))},
            "request_time": END,
        }
        got, want = parted.get_online_features(**ask), whole.get_online_features(**ask)
        assert (got.values, got.statuses) == (want.values, want.statuses)
        assert parted.online.count("user_profile") == 40

        write_online_repo(parted.repo.root, "", users=users(9, day=2))  # most users vanish
        with pytest.raises(MaterializationGuardError, match="row count"):
            parted.materialize(end=END, views=["user_profile"])
        assert parted.get_online_features(**ask).values == want.values
        assert parted.online.count("user_profile") == 40
    finally:
        whole.close()
        parted.close()
