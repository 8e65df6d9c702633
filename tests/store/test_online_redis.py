"""The shared online store on Redis: generations published whole, read consistently, erased everywhere."""

from __future__ import annotations

import json
import threading

import pytest
import redis

from store.online_redis import RedisOnlineStore
from tests.redis_server import redis_server


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def online(url, request):
    store = RedisOnlineStore(url, scope=request.node.name[:40])
    yield store
    store.clear()


def answer(customer_id: str, version: str = "1") -> bytes:
    return json.dumps({"customer_id": customer_id, "version": version}).encode()


def publish(online: RedisOnlineStore, ids: list[str], version: str = "1", keys=None) -> str:
    keys = keys if keys is not None else {c: [c.encode() * 2] for c in ids}
    return online.publish(((c, answer(c, version)) for c in ids), ((c, b'{"x": 1.0}') for c in ids),
                          keys.items(), {"features_as_of": "2026-12-01", "version": version})


def test_nothing_is_served_before_the_first_publish(online):
    assert online.current() is None
    assert online.answers(["a"]) == (None, [None])


def test_a_publish_serves_every_answer_feature_row_and_key(online):
    generation = publish(online, ["a", "b"])
    served = online.current()
    assert served.id == generation
    assert served.meta == {"features_as_of": "2026-12-01", "version": "1", "customers": 2}
    assert online.answers(["b", "nobody", "a"]) == (generation, [answer("b"), None, answer("a")])
    assert online.features(["a"]) == (generation, [b'{"x": 1.0}'])
    assert online.holders([b"aa", b"bb", b"zz"]) == [{"a"}, {"b"}, set()]


def test_a_key_several_customers_hold_names_them_all(online):
    publish(online, ["a", "b"], keys={"a": [b"shared", b"own-a"], "b": [b"shared"]})
    assert online.holders([b"shared", b"own-a"]) == [{"a", "b"}, {"a"}]


def test_a_new_publish_replaces_the_old_generation_whole(online, url):
    first = publish(online, ["a", "b"], version="1")
    second = publish(online, ["b", "c"], version="2")
    assert second != first
    assert online.answers(["a", "b", "c"]) == (second, [None, answer("b", "2"), answer("c", "2")])
    assert online.holders([b"aa"]) == [set()]
    leftover = redis.Redis.from_url(url).keys(f"{online.prefix}g:{first}:*")
    assert leftover == []


def test_a_failed_publish_leaves_the_served_generation_and_no_half_written_one(online, url):
    served = publish(online, ["a"])

    def broken():
        yield "b", answer("b")
        raise RuntimeError("the batch job died")

    with pytest.raises(RuntimeError):
        online.publish(broken(), [], [], {})
    assert online.current().id == served
    assert online.answers(["a", "b"]) == (served, [answer("a"), None])
    names = {name.decode() for name in redis.Redis.from_url(url).keys(f"{online.prefix}g:*")}
    assert names == {f"{online.prefix}g:{served}:{part}" for part in ("answer", "features", "key", "keys_of", "meta")}


def test_erase_removes_a_person_from_answers_features_and_keys(online):
    publish(online, ["a", "b", "c"], keys={"a": [b"ka1", b"ka2", b"shared"], "b": [b"kb", b"shared"],
                                           "c": [b"kc", b"shared"]})
    assert online.erase(["a"]) == 1
    generation = online.current().id
    assert online.answers(["a", "b"]) == (generation, [None, answer("b")])
    assert online.features(["a"]) == (generation, [None])
    assert online.holders([b"ka1", b"ka2", b"kb", b"shared"]) == [set(), set(), {"b"}, {"b", "c"}]
    assert online.erase(["b"]) == 1
    assert online.holders([b"shared"]) == [{"c"}]
    assert online.erase(["a"]) == 0  # again: nothing left


def test_readers_racing_a_publish_see_one_generation_or_the_next_never_a_mix(online):
    """Readers ask for 50 customers at once while generations are replaced: every read holds
    all 50 answers of exactly one version (a mix, or a gap from a dropped generation, fails)."""
    ids = [f"c{i}" for i in range(50)]
    publish(online, ids, version="0")
    stop, seen, problems = threading.Event(), set(), []

    def read():
        while not stop.is_set():
            _, values = online.answers(ids)
            versions = {json.loads(v)["version"] if v is not None else None for v in values}
            if len(versions) != 1 or None in versions:
                problems.append(versions)
            seen.update(versions)

    readers = [threading.Thread(target=read) for _ in range(2)]
    for reader in readers:
        reader.start()
    for version in range(1, 30):
        publish(online, ids, version=str(version))
    stop.set()
    for reader in readers:
        reader.join()
    assert problems == []
    assert len(seen) > 2  # the readers did see the generations change


def test_the_password_never_appears_in_an_error(tmp_path):
    from cdp.errors import StoreError

    store = RedisOnlineStore("redis://:s3cret@127.0.0.1:1/0", scope="x")
    with pytest.raises(StoreError) as raised:
        store.ping()
    assert "s3cret" not in str(raised.value) and "127.0.0.1:1/0" in str(raised.value)
