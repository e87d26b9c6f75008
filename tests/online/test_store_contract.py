"""The OnlineStore contract, run over every backend: round trips, ordered reads with absent keys,
upsert vs replace, counts, deletes, project isolation, updates, and appends that follow a value
until a publish or an update writes it whole (atomicity and concurrency:
:mod:`test_store_atomicity`)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from featurestore._config import OnlineStoreConfig
from featurestore.errors import OnlineStoreError
from featurestore.online._protocol import META_VIEW, OnlineStore
from featurestore.online._redis import RedisOnlineStore

from .conftest import REDIS_URL, VIEW, batch


@pytest.mark.parametrize("replace", [True, False], ids=["replace", "upsert"])
def test_a_publish_writes_its_meta_with_it(online_store: OnlineStore, replace: bool) -> None:
    keys = ["a", "b"]
    online_store.publish(VIEW, keys, batch(1, keys), replace=replace, meta={"state:v": b"1"})
    online_store.publish("other", ["x"], [b"x"], replace=True, meta={"state:other": b"o"})
    assert online_store.read(META_VIEW, ["state:v", "state:other", "absent"]) == [
        b"1",
        b"o",
        None,
    ]
    online_store.publish(VIEW, ["c"], batch(2, ["c"]), replace=replace, meta={"state:v": b"2"})
    assert online_store.read(META_VIEW, ["state:v", "state:other"]) == [b"2", b"o"]
    assert online_store.count(VIEW) == (1 if replace else 3)


def test_publish_then_read_round_trips(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["1", "2"], [b'{"a": 1}', b"\x00\xffbinary"], replace=True)
    assert online_store.read(VIEW, ["1", "2"]) == [b'{"a": 1}', b"\x00\xffbinary"]
    assert online_store.read(VIEW, ["2"]) == [b"\x00\xffbinary"]
    assert online_store.count(VIEW) == 2


def test_read_keeps_request_order_with_none_for_absent_keys(online_store: OnlineStore) -> None:
    keys = [str(i) for i in range(2_500)]  # more keys than one SQL statement may bind
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    wanted = ["2499", "missing", "0", "2499", "1200", "", "7|x"]
    assert online_store.read(VIEW, wanted) == [
        b"1:2499",
        None,
        b"1:0",
        b"1:2499",
        b"1:1200",
        None,
        None,
    ]
    shuffled = [*keys[::-1], "nope"]
    assert online_store.read(VIEW, shuffled) == [*batch(1, keys[::-1]), None]
    assert online_store.read(VIEW, []) == []
    assert online_store.read("never_published", ["0", "1"]) == [None, None]


def test_keys_with_separators_and_unicode_are_distinct(online_store: OnlineStore) -> None:
    keys = ["1|a", "1\\|a", "1|a\\", "é|ü", "1", " 1"]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    assert online_store.read(VIEW, keys[::-1]) == batch(1, keys[::-1])
    assert online_store.count(VIEW) == len(keys)


def test_upsert_keeps_other_entities_and_replace_drops_them(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a", "b"], [b"a1", b"b1"], replace=True)
    online_store.publish(VIEW, ["b", "c"], [b"b2", b"c2"], replace=False)
    assert online_store.read(VIEW, ["a", "b", "c"]) == [b"a1", b"b2", b"c2"]
    assert online_store.count(VIEW) == 3
    online_store.publish(VIEW, ["c", "d"], [b"c3", b"d3"], replace=True)
    assert online_store.read(VIEW, ["a", "b", "c", "d"]) == [None, None, b"c3", b"d3"]
    assert online_store.count(VIEW) == 2


def test_an_upsert_into_an_empty_view_creates_it(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a"], [b"a1"], replace=False)
    assert online_store.read(VIEW, ["a"]) == [b"a1"]
    assert online_store.count(VIEW) == 1


def test_empty_batches(online_store: OnlineStore) -> None:
    online_store.publish(VIEW, ["a", "b"], [b"a1", b"b1"], replace=True)
    online_store.publish(VIEW, [], [], replace=False)
    assert online_store.read(VIEW, ["a", "b"]) == [b"a1", b"b1"]
    online_store.publish(VIEW, [], [], replace=True)  # an empty snapshot empties the view
    assert online_store.read(VIEW, ["a", "b"]) == [None, None]
    assert online_store.count(VIEW) == 0
    online_store.publish(VIEW, ["c"], [b"c1"], replace=False)
    assert online_store.read(VIEW, ["a", "c"]) == [None, b"c1"]


def test_views_are_independent(online_store: OnlineStore) -> None:
    online_store.publish("v1", ["a", "b"], [b"v1a", b"v1b"], replace=True)
    online_store.publish("v2", ["a"], [b"v2a"], replace=True)
    online_store.publish("v1", ["z"], [b"v1z"], replace=True)
    assert online_store.read("v2", ["a"]) == [b"v2a"]
    assert online_store.read("v1", ["a", "z"]) == [None, b"v1z"]
    assert (online_store.count("v1"), online_store.count("v2")) == (1, 1)
    online_store.delete_view("v1")
    assert online_store.read("v1", ["z"]) == [None]
    assert (online_store.count("v1"), online_store.count("v2")) == (0, 1)
    assert online_store.read("v2", ["a"]) == [b"v2a"]


def test_count_and_delete_view(online_store: OnlineStore) -> None:
    assert online_store.count(VIEW) == 0
    keys = [str(i) for i in range(1_234)]
    online_store.publish(VIEW, keys, batch(1, keys), replace=True)
    online_store.publish(VIEW, keys[:10], batch(2, keys[:10]), replace=False)
    assert online_store.count(VIEW) == 1_234
    online_store.delete_view(VIEW)
    assert online_store.count(VIEW) == 0
    assert online_store.read(VIEW, keys[:3]) == [None, None, None]
    online_store.delete_view(VIEW)  # deleting an absent view is fine
    online_store.ping()


def test_a_new_connection_sees_published_values(
    open_store: Callable[[str], OnlineStore],
) -> None:
    writer = open_store("proj")
    writer.publish(VIEW, ["a"], [b"a1"], replace=True)
    writer.close()
    reader = open_store("proj")
    assert reader.read(VIEW, ["a"]) == [b"a1"]


def test_two_projects_on_one_redis_do_not_see_each_other(
    redis_server: redis.Redis, redis_prefix: str
) -> None:
    config = OnlineStoreConfig(type="redis", url=REDIS_URL, key_prefix=redis_prefix)
    fraud, churn = RedisOnlineStore(config, "fraud"), RedisOnlineStore(config, "churn")
    try:
        fraud.publish(VIEW, ["1", "2"], [b"fraud1", b"fraud2"], replace=True)
        churn.publish(VIEW, ["1"], [b"churn1"], replace=True)
        assert fraud.read(VIEW, ["1", "2"]) == [b"fraud1", b"fraud2"]
        assert churn.read(VIEW, ["1", "2"]) == [b"churn1", None]
        churn.publish(VIEW, ["3"], [b"churn3"], replace=True)
        churn.publish(VIEW, ["2"], [b"churn2"], replace=False)
        assert fraud.read(VIEW, ["1", "2", "3"]) == [b"fraud1", b"fraud2", None]
        assert (fraud.count(VIEW), churn.count(VIEW)) == (2, 2)
        churn.delete_view(VIEW)
        assert fraud.read(VIEW, ["1"]) == [b"fraud1"]
        keys = {k.decode() for k in redis_server.scan_iter(match=f"{redis_prefix}*")}
        assert keys == {f"{redis_prefix}fraud:{VIEW}"}
    finally:
        fraud.close()
        churn.close()


def test_update_reads_changes_and_writes_back(online_store: OnlineStore) -> None:
    online_store.publish("v", ["a", "b"], [b"1", b"2"], replace=True)
    seen: list[list[bytes | None]] = []

    def change(current: list[bytes | None]) -> list[bytes]:
        seen.append(current)
        return [b"%d" % (int(v or b"0") + 10) for v in current]

    online_store.update("v", ["b", "c"], change)
    assert seen == [[b"2", None]]
    assert online_store.read("v", ["a", "b", "c"]) == [b"1", b"12", b"10"]
    online_store.update("v", [], lambda current: [])
    assert online_store.count("v") == 3


def test_appended_fragments_follow_the_value_until_it_is_written_whole(
    online_store: OnlineStore,
) -> None:
    online_store.publish("v", ["a", "b"], [b"A", b"B"], replace=True)
    assert online_store.append("v", ["a", "c"], [b"+1", b"+x"]) == [2, 2]
    assert online_store.append("v", ["a"], [b"+22"]) == [5]
    assert online_store.read("v", ["a", "b", "c", "d"]) == [b"A+1+22", b"B", b"+x", None]
    assert online_store.read("v", ["a"]) == [b"A+1+22"]
    assert online_store.read("v", ["c"]) == [b"+x"]
    assert online_store.count("v") == 3  # "c" has only fragments
    # an upsert replaces the key's fragments; other keys keep theirs
    online_store.publish("v", ["a"], [b"A2"], replace=False)
    assert online_store.read("v", ["a", "c"]) == [b"A2", b"+x"]
    assert online_store.append("v", ["a"], [b"+3"]) == [2]
    # an update sees the whole value and writes it back folded
    seen: list[list[bytes | None]] = []

    def fold(current: list[bytes | None]) -> list[bytes]:
        seen.append(current)
        return [(v or b"").upper() for v in current]

    online_store.update("v", ["a", "c"], fold)
    assert seen == [[b"A2+3", b"+x"]]
    assert online_store.read("v", ["a", "c"]) == [b"A2+3", b"+X"]
    assert online_store.append("v", ["c"], [b"!"]) == [1]
    # a full snapshot drops every fragment
    online_store.publish("v", ["b"], [b"B2"], replace=True)
    assert online_store.read("v", ["a", "b", "c"]) == [None, b"B2", None]
    assert online_store.count("v") == 1
    online_store.append("v", ["z"], [b"+z"])
    online_store.delete_view("v")
    assert (online_store.read("v", ["b", "z"]), online_store.count("v")) == ([None, None], 0)
    assert online_store.append("v", [], []) == []
    with pytest.raises(OnlineStoreError, match="2 keys but 1 fragments"):
        online_store.append("v", ["a", "b"], [b"x"])


def test_appends_of_one_view_stay_in_that_view(online_store: OnlineStore) -> None:
    online_store.publish("v1", ["a"], [b"1"], replace=True)
    online_store.publish("v2", ["a"], [b"2"], replace=True)
    online_store.append("v1", ["a"], [b"+"])
    assert online_store.read("v1", ["a"]) + online_store.read("v2", ["a"]) == [b"1+", b"2"]
    online_store.publish("v2", ["a"], [b"3"], replace=True)
    assert online_store.read("v1", ["a"]) == [b"1+"]
