"""The shared online store end to end: `cdp score` publishes to Redis, the service reads what the
in-memory service would have answered, and `cdp forget` erases people there too, even when it
races a `cdp score`.

Redis is a real ``redis-server`` on a free port (`tests.redis_server`); the shop is a private
copy of the session's trained shop with ``[online_store] url`` in its cdp.toml, as a user
would configure it.
"""

from __future__ import annotations

import datetime as dt
import os
import time

import duckdb
import numpy as np
import pytest
import redis

from cdp.config import load_config
from profiles.erasure import forget
from profiles.lookup import lookup_key
from profiles.subject import Lookup
from serving.answers import precompute
from serving.models import FAMILIES, ModelSet, RegistryChampions
from serving.online_store import InMemoryFeatureStore, RedisServing
from serving.publish import redis_publisher
from serving.state import ServingState
from store.duckdb_store import Store
from store.online_redis import RedisOnlineStore
from store.snapshot import ServingSnapshot
from tests.redis_server import redis_server
from tests.trained_shop import SHOP_NAME, private_copy, run_cli
from training.risk_bands import ChurnRiskBands
from training.score import score_store
from training.tracking import store_scope, store_tracking, tracking_config

NOW = dt.datetime(2026, 11, 20, 9, 0)
BANDS = ChurnRiskBands(medium=0.55, high=0.8)  # not the defaults `cdp score` publishes with


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with redis_server(tmp_path_factory.mktemp("redis")) as running:
        yield running


@pytest.fixture
def shop(trained_shop, tmp_path, url):
    copy = private_copy(trained_shop, tmp_path / "copy")
    with open(copy.config, "a", encoding="utf-8") as config:
        config.write(f'\n[online_store]\nurl = "{url}"\n')
    yield copy
    RedisOnlineStore(url, store_scope(copy.root / "shop" / "cdp.duckdb", SHOP_NAME)).clear()


def online_of(shop, url) -> RedisOnlineStore:
    config = load_config(shop.config)
    return RedisOnlineStore(url, store_scope(config.store.path, config.store.name))


def models_of(shop) -> ModelSet:
    tracking = tracking_config({**os.environ, "MLFLOW_TRACKING_URI": shop.tracking_uri}, shop.root / "mlruns",
                               scope=store_scope(shop.root / "shop" / "cdp.duckdb", name=SHOP_NAME))
    source = RegistryChampions(tracking, horizon_days=90)
    return ModelSet({family: source.load(family) for family in FAMILIES})


def identifiers(shop, limit: int = 40) -> list[tuple[str, str, str]]:
    """(customer id, id type, value) of emails and phones the store holds."""
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        return con.sql("""SELECT customer_id, id_type, id_value FROM identifier_map
                          WHERE id_type IN ('email', 'phone') ORDER BY customer_id, id_type LIMIT ?""",
                       params=[limit]).fetchall()


def redis_text(url: str) -> bytes:
    """Every key name and value in the Redis server, as one byte string (for a byte search)."""
    client = redis.Redis.from_url(url)
    chunks = []
    for key in client.scan_iter(count=1000):
        chunks.append(key)
        kind = client.type(key)
        if kind == b"hash":
            for field, value in client.hgetall(key).items():
                chunks += [field, value]
        elif kind == b"string":
            chunks.append(client.get(key))
        elif kind == b"set":
            chunks += list(client.smembers(key))
    return b"\n".join(chunks)


def test_cdp_status_says_what_the_online_store_holds_or_why_not(shop, url):
    said = " ".join(run_cli("status", "--config", str(shop.config), tracking_uri=shop.tracking_uri).split())
    assert f"online store {url}: nothing published yet" in said
    run_cli("score", "--config", str(shop.config), "--out", str(shop.root / "scores.parquet"),
            tracking_uri=shop.tracking_uri)
    said = " ".join(run_cli("status", "--config", str(shop.config), tracking_uri=shop.tracking_uri).split())
    customers = online_of(shop, url).current().meta["customers"]
    assert f"online store {url}: {customers:,} customers' answers as of 2026-10-31" in said
    shop.config.write_text(shop.config.read_text().replace(url, "redis://:s3cret@127.0.0.1:1/0"))
    said = " ".join(run_cli("status", "--config", str(shop.config), tracking_uri=shop.tracking_uri).split())
    assert "the online store at redis://…@127.0.0.1:1/0 does not answer" in said and "s3cret" not in said


def test_cdp_score_publishes_what_the_in_memory_service_answers(shop, url):
    run_cli("score", "--config", str(shop.config), "--out", str(shop.root / "scores.parquet"),
            tracking_uri=shop.tracking_uri)
    models = models_of(shop)
    memory = precompute(models, InMemoryFeatureStore.from_parquet(shop.snapshot), BANDS)
    shared = RedisServing(online_of(shop, url), BANDS)
    state = ServingState(RegistryChampions(tracking_config({"MLFLOW_TRACKING_URI": shop.tracking_uri},
                                                           shop.root / "mlruns",
                                                           scope=store_scope(shop.root / "shop" / "cdp.duckdb",
                                                                             SHOP_NAME)), 90),
                         shop.snapshot, open_snapshot=shared.open, precompute=shared.answers, stamp=shared.stamp)
    state.refresh()
    assert state.ready, state.errors
    served = state.served
    ids = [answer["customer_id"] for answer in memory.all()]
    found, missing = served.answers.answers(ids + ["nobody"])
    assert missing == ["nobody"]
    assert [{**a, "features_as_of": str(a["features_as_of"])} for a in memory.all()] == found
    assert {a["churn_risk"] for a in found} - {None} == {"low", "medium", "high"}  # the service bands, not the defaults
    assert served.answers.typical == pytest.approx(memory.typical)
    assert served.features.features_as_of == memory.features_as_of and len(served.features) == len(ids)
    in_memory = InMemoryFeatureStore.from_parquet(shop.snapshot)
    asked = [(t, v) for _, t, v in identifiers(shop)] + [("email", "STORE@zaytoun.example"), ("phone", "+97022741234"),
                                                          ("email", "not an email"), ("customer_id", ids[3]),
                                                          ("customer_id", "nobody")]
    for kind, value in asked:
        assert served.features.resolve(kind, value) == in_memory.resolve(kind, value), (kind, value)
    # The feature rows, as the models read them (JSON keeps numbers and text, not dtypes).
    types = models.feature_types()

    def model_values(frame):
        return [{name: (None if record[name] is None or record[name] != record[name] else
                        float(record[name]) if kind == "number" else str(record[name]))
                 for name, kind in types.items()} for record in frame.to_dict("records")]

    for got, want in zip(model_values(served.features.lookup(ids[:20])), model_values(in_memory.lookup(ids[:20])),
                         strict=True):
        assert {k: (got[k], want[k]) for k in want if got[k] != want[k]} == {}


def test_forget_erases_a_person_from_the_online_store(shop, url):
    run_cli("score", "--config", str(shop.config), "--out", str(shop.root / "scores.parquet"),
            tracking_uri=shop.tracking_uri)
    customer_id, kind, value = identifiers(shop)[0]
    online = online_of(shop, url)
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        values = [v for (v,) in con.sql("SELECT id_value FROM identifier_map WHERE customer_id = ? AND id_type IN "
                                        "('email', 'phone')", params=[customer_id]).fetchall()]
    keys = [lookup_key(kind, value)]
    assert online.answers([customer_id])[1][0] is not None and online.holders(keys) == [{customer_id}]
    assert customer_id.encode() in redis_text(url)  # the control: the byte search finds them before
    said = run_cli("forget", "--customer-id", customer_id, "--config", str(shop.config), tracking_uri=shop.tracking_uri)
    assert "online store: 1 answer(s) deleted" in " ".join(said.split())
    assert online.answers([customer_id])[1] == [None] and online.features([customer_id])[1] == [None]
    assert online.holders(keys) == [set()]
    text = redis_text(url)
    assert customer_id.encode() not in text
    assert not any(v.encode() in text for v in values)  # raw identifiers never went there either
    assert not any(k.hex().encode() in text for k in keys)
    assert online.current().meta["customers"] - 1 == len(online._redis.hkeys(online._key(online.current().id,
                                                                                          "answer")))


def test_a_forget_while_score_publishes_is_not_undone(shop, url):
    """The race made certain: the erasure runs after `cdp score` read the store and before it
    writes and publishes; the person must be absent from Redis afterwards."""
    config = load_config(shop.config)
    online = online_of(shop, url)
    customer_id = identifiers(shop)[0][0]

    def meanwhile(step: str) -> None:
        if step.startswith("scoring"):
            with Store(config.store.path) as store:
                forget(store, config, Lookup("customer_id", customer_id), actor="test", now=NOW,
                       snapshot=ServingSnapshot.beside(config.store.path), tombstone_key=None, online=online)

    found = score_store(config, store_tracking(config, {"MLFLOW_TRACKING_URI": shop.tracking_uri}),
                        on_stage=meanwhile, publish=redis_publisher(online))
    assert "erased while scoring are left out" in found.features_note
    assert found.online_note.startswith(f"answers of {len(found.scores):,} customers")
    assert online.answers([customer_id])[1] == [None]
    assert customer_id.encode() not in redis_text(url)
    others = found.scores["customer_id"].astype(str).tolist()
    assert all(v is not None for v in online.answers(others)[1])


def test_the_service_moves_to_a_new_publish_and_keeps_answering_when_redis_is_gone(shop, url, tmp_path):
    online = online_of(shop, url)
    shared = RedisServing(online, BANDS)
    tracking = tracking_config({"MLFLOW_TRACKING_URI": shop.tracking_uri}, shop.root / "mlruns",
                               scope=store_scope(shop.root / "shop" / "cdp.duckdb", SHOP_NAME))
    state = ServingState(RegistryChampions(tracking, 90), shop.snapshot, open_snapshot=shared.open,
                         precompute=shared.answers, stamp=shared.stamp, missing="nothing published")
    state.refresh()
    assert not state.ready and state.errors == ("nothing published",)
    run_cli("score", "--config", str(shop.config), "--out", str(tmp_path / "a.parquet"),
            tracking_uri=shop.tracking_uri)
    state.refresh()
    first = state.served.snapshot_stamp
    assert state.ready and first == online.current().id
    run_cli("score", "--config", str(shop.config), "--out", str(tmp_path / "b.parquet"),
            tracking_uri=shop.tracking_uri)
    state.refresh()
    assert state.served.snapshot_stamp == online.current().id != first
    churn = np.array([a["churn_probability"] for a in state.served.answers.answers(
        [str(i) for i in online._redis.hkeys(online._key(online.current().id, "answer"))[:5]])[0]])
    assert np.isfinite(churn).all()


def test_two_workers_serve_the_published_answers_and_forget_reaches_them_at_once(shop, url, tmp_path):
    """`cdp serve --workers 2` on a shop with an online store: both workers answer from Redis
    what the in-memory service answers, look-ups included, and a `cdp forget` is effective
    on every worker at the next request (nothing to poll: answers are read per request)."""
    from tests.serving.conftest import Server

    run_cli("score", "--config", str(shop.config), "--out", str(tmp_path / "scores.parquet"),
            tracking_uri=shop.tracking_uri)
    customer_id, kind, value = identifiers(shop)[0]
    memory = precompute(models_of(shop), InMemoryFeatureStore.from_parquet(shop.snapshot),
                        ChurnRiskBands(medium=0.6, high=0.9))
    server = Server(shop, tmp_path / "serve.log", extra_args=("--workers", "2", "--churn-medium", "0.6",
                                                              "--churn-high", "0.9"))
    try:
        server.wait("/readyz")
        # Each worker answers /readyz for itself: wait until 20 in a row say ready (both are then
        # ready but for a one-in-a-million run of the same worker).
        deadline, streak = time.monotonic() + 120, 0
        while streak < 20:
            assert time.monotonic() < deadline, server.log_text()
            streak = streak + 1 if server.request("GET", "/readyz", key=None).status == 200 else 0
            time.sleep(0.05 if streak else 0.5)
        for _ in range(12):
            answer = server.post("/score", {kind: f"  {value.upper() if kind == 'email' else value} "})
            assert answer.status == 200, answer.body
            expected = memory.answer(customer_id)
            assert answer.json() == {**expected, "features_as_of": str(expected["features_as_of"])}
        versions = server.request("GET", "/versions").json()
        assert versions["customers"] == len(memory) and versions["ready"]
        log = server.log_text()
        assert "scored" not in log  # no worker scored the snapshot: the answers were published
        assert log.count(f"answering {len(memory)} customers from the online store") == 2  # one line per worker
        run_cli("forget", "--customer-id", customer_id, "--config", str(shop.config), tracking_uri=shop.tracking_uri)
        for _ in range(12):
            gone = server.post("/score", {kind: value})
            assert gone.status == 404, gone.body
            assert customer_id not in gone.body.decode() and value not in gone.body.decode()
        assert server.post("/score", {"customer_id": customer_id}).status == 404
    finally:
        server.stop()
