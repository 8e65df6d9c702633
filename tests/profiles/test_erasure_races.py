"""Erasure is final: whatever runs beside `cdp forget` and wherever a command dies, an erased
person never comes back, and their values cannot be read from the bytes the project keeps.

Each race is made certain, not left to timing: the stage functions announce their steps
(``on_stage``), and the test runs the erasure inside the window it means to hit (between
`cdp score`'s read of the store and its write, for example). Each crash is certain too: a
command run with ``CDP_FAULT_AT=<step>`` kills itself with SIGKILL as that step begins.
After each, the person's values (customer ids, emails, phones, web cookies, as the store
held them before) are searched for, byte by byte, in the store file and every file the
project wrote beside it (the serving snapshot and anything staged), and in the scores.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from cdp.config import load_config
from features.materialized import materialize
from profiles.erasure import forget, forget_many
from profiles.subject import Lookup
from store.duckdb_store import COMPACTION_PENDING, Store
from store.snapshot import ServingSnapshot
from tests.trained_shop import SHOP_NAME, TrainedShop, private_copy
from training.score import score_store
from training.tracking import store_tracking

NOW = dt.datetime(2026, 11, 20, 9, 0)


@dataclass(frozen=True)
class Erased:
    """The person to erase, and every value of theirs the store held before."""

    customer_id: str
    values: tuple[str, ...]


@pytest.fixture
def shop(trained_shop, tmp_path) -> TrainedShop:
    """A private copy of the session's trained shop (its registry is shared: the shop keeps its name)."""
    return private_copy(trained_shop, tmp_path / "copy")


def person_in(shop: TrainedShop, rank: int = 0) -> Erased:
    """A scored customer with an email, a phone and web cookies (the ``rank``-th such, by id),
    and their values as the store holds them."""
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        customer_id = con.sql("""
            SELECT c.customer_id FROM customers c JOIN scores s USING (customer_id)
            WHERE c.email IS NOT NULL AND c.phone IS NOT NULL
              AND c.customer_id IN (SELECT customer_id FROM events WHERE anonymous_id IS NOT NULL)
            ORDER BY c.customer_id LIMIT 1 OFFSET ?""", params=[rank]).fetchall()[0][0]
        values = {customer_id}
        values |= {v for row in con.sql("SELECT email, phone FROM customers WHERE customer_id = ?",
                                        params=[customer_id]).fetchall() for v in row if v}
        values |= {r[0] for r in con.sql("SELECT id_value FROM identifier_map WHERE customer_id = ? AND id_type "
                                         "IN ('email', 'phone')", params=[customer_id]).fetchall()}
        values |= {r[0] for r in con.sql("SELECT DISTINCT anonymous_id FROM events WHERE customer_id = ? AND "
                                         "anonymous_id IS NOT NULL", params=[customer_id]).fetchall()}
    return Erased(customer_id=customer_id, values=tuple(sorted(values)))


def written_files(shop: TrainedShop) -> list[Path]:
    """The store file and everything the project wrote beside it (not the shop's own source files)."""
    folder = shop.root / "shop"
    return sorted(p for p in folder.iterdir() if p.is_file() and (
        p.name.startswith(("cdp.duckdb", ".cdp.duckdb", "online_features", ".online_features"))))


def traces(shop: TrainedShop, person: Erased) -> dict[str, list[str]]:
    """Which of the person's values each written file still holds, byte for byte."""
    found = {}
    for path in written_files(shop):
        data = path.read_bytes()
        hits = [v for v in person.values if v.encode() in data]
        if hits:
            found[path.name] = hits
    return found


def mlflow_traces(shop: TrainedShop, person: Erased) -> dict[str, list[str]]:
    """Which of the person's values any file of the MLflow store holds (its database, every
    artifact: input examples, logged frames, models), byte for byte."""
    root = Path(shop.tracking_uri.removeprefix("sqlite:///")).parent
    files = [p for p in root.rglob("*") if p.is_file()]
    assert len(files) > 10 and any(p.name == "MLmodel" for p in files)  # the store the models went to
    assert any(SHOP_NAME.encode() in p.read_bytes() for p in files)     # and a plain search finds its text
    found = {}
    for path in files:
        data = path.read_bytes()
        hits = [v for v in person.values if v.encode() in data]
        if hits:
            found[str(path.relative_to(root))] = hits
    return found


def erase(shop: TrainedShop, person: Erased, **kwargs):
    config = load_config(shop.config)
    with Store(config.store.path) as store:
        return forget(store, config, Lookup("customer_id", person.customer_id), actor="test", now=NOW,
                      snapshot=ServingSnapshot.beside(config.store.path), tombstone_key=None, **kwargs)


def scored_ids(shop: TrainedShop) -> set[str]:
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        return {r[0] for r in con.sql("SELECT customer_id FROM scores").fetchall()}


def snapshot_ids(shop: TrainedShop) -> set[str]:
    return set(pd.read_parquet(shop.snapshot, columns=["customer_id"])["customer_id"].astype(str))


def tracking(shop: TrainedShop):
    return store_tracking(load_config(shop.config), {"MLFLOW_TRACKING_URI": shop.tracking_uri})


def test_the_byte_search_finds_a_person_before_the_erasure_and_nothing_after(shop):
    # The control: without it a search that finds nothing would prove nothing (DuckDB compresses).
    person = person_in(shop)
    before = traces(shop, person)
    assert "cdp.duckdb" in before and set(before["cdp.duckdb"]) == set(person.values)
    assert person.customer_id in before["online_features.parquet"]
    report = erase(shop, person)
    assert sum(report.deleted.values()) > 0
    assert traces(shop, person) == {}
    assert person.customer_id not in scored_ids(shop) | snapshot_ids(shop)


def test_forget_removes_the_look_up_keys_an_app_found_the_person_by(shop):
    """The serving snapshot's look-up keys (digests of emails and phones) are personal data:
    they leave the file with the person's row, and the service no longer finds them."""
    from profiles.lookup import lookup_key
    from serving.online_store import InMemoryFeatureStore

    person = person_in(shop)
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        ids = con.sql("SELECT id_type, id_value FROM identifier_map WHERE customer_id = ? AND id_type IN "
                      "('email', 'phone')", params=[person.customer_id]).fetchall()
    keys = [lookup_key(t, v) for t, v in ids]
    before = InMemoryFeatureStore.from_parquet(shop.snapshot)
    email = next(v for t, v in ids if t == "email")
    assert before.resolve("email", email.upper()).customer_id == person.customer_id
    assert all(k in shop.snapshot.read_bytes() for k in keys)  # the control: the byte search finds them
    erase(shop, person)
    after = InMemoryFeatureStore.from_parquet(shop.snapshot)
    assert after.resolve("email", email).status == 404
    assert not any(k in shop.snapshot.read_bytes() for k in keys)
    assert len(after) == len(before) - 1


def test_the_mlflow_store_never_held_a_persons_values(shop):
    """Nothing personal goes to MLflow (aggregates and synthetic examples only), so a forget
    has nothing to erase there: checked for several people, before any erasure."""
    for rank in (0, 7, 31):
        assert mlflow_traces(shop, person_in(shop, rank)) == {}


def test_a_forget_while_score_computes_is_not_undone_by_its_write(shop):
    person = person_in(shop)
    config = load_config(shop.config)
    seen = []

    def meanwhile(step: str) -> None:
        seen.append(step)
        if step.startswith("scoring"):  # the store was read and released; the write is still to come
            erase(shop, person)
            assert person.customer_id not in scored_ids(shop)

    found = score_store(config, tracking(shop), on_stage=meanwhile)
    assert any(s.startswith("scoring") for s in seen) and any(s.startswith("writing") for s in seen)
    assert person.customer_id not in set(found.scores["customer_id"])
    assert "1 customer(s) erased while scoring are left out" in found.features_note
    assert person.customer_id not in scored_ids(shop) | snapshot_ids(shop)
    assert len(scored_ids(shop)) == len(found.scores) > 900
    assert traces(shop, person) == {}


def test_a_forget_while_features_are_materialized_is_not_undone_by_their_write(shop):
    person = person_in(shop)
    config = load_config(shop.config)

    def meanwhile(step: str) -> None:
        if step.startswith("keeping the features"):  # built from a read of the store, not yet written
            erase(shop, person)

    kept = materialize(config, None, on_stage=meanwhile)
    assert person.customer_id not in set(kept.features["customer_id"])
    assert person.customer_id not in snapshot_ids(shop)
    with duckdb.connect(str(config.store.path), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM scoring_features WHERE customer_id = ?",
                       params=[person.customer_id]).fetchall()[0][0] == 0
    assert traces(shop, person) == {}


def test_a_batch_of_requests_erases_everyone_in_it_and_reports_who_was_not_found(shop, tmp_path):
    first, second = person_in(shop, 0), person_in(shop, 1)
    config = load_config(shop.config)
    with duckdb.connect(str(config.store.path), read_only=True) as con:
        email = con.sql("SELECT email FROM customers WHERE customer_id = ?",
                        params=[second.customer_id]).fetchall()[0][0]
    lookups = [Lookup("customer_id", first.customer_id), Lookup("email", email),
               Lookup("email", "nobody-at-all@example.org")]
    with Store(config.store.path) as store:
        done = forget_many(store, config, lookups, actor="test", now=NOW,
                           snapshot=ServingSnapshot.beside(config.store.path), tombstone_key=None)
    assert len(done.reports) == 2 and done.not_found == ((3, "no customer with that email"),)
    assert done.snapshot_rows_removed == 2
    for person in (first, second):
        assert traces(shop, person) == {}
    # Asked again, the same people are known as erased (their tombstones), not "not found".
    with Store(config.store.path) as store:
        again = forget_many(store, config, lookups[:2], actor="test", now=NOW,
                            snapshot=ServingSnapshot.beside(config.store.path), tombstone_key=None)
    assert [r.already_erased for r in again.reports] == [True, True] and again.not_found == ()


def test_the_erasure_lists_every_registered_model_with_its_aliases_for_retraining(shop):
    from cdp import environment

    person = person_in(shop)
    os.environ["MLFLOW_TRACKING_URI"] = shop.tracking_uri
    try:
        report = erase(shop, person, list_models=environment.registered_models(load_config(shop.config)))
    finally:
        del os.environ["MLFLOW_TRACKING_URI"]
    names = {m.name for m in report.models_to_retrain}
    assert names == {"cdp-segments", "cdp-churn", "cdp-next-purchase", "cdp-first-purchase"}
    # The champions say so: the audit's aliases are the registry's, not an empty list.
    assert all(any(a.startswith("champion") for a in m.aliases) for m in report.models_to_retrain
               if m.name == "cdp-churn" and m.version == max(v.version for v in report.models_to_retrain
                                                              if v.name == "cdp-churn"))


def test_a_forget_while_train_runs_waits_for_it_and_then_lists_the_model_it_registered(trained_shop, tmp_path):
    """Training reads the store from its first query to the last registration; a forget in
    that window is refused (one line, nothing erased), so no model trained on the person's
    data can be registered after the erasure listed the models to retrain."""
    import mlflow

    from training.run import train_store

    shutil.copytree(trained_shop.root / "shop", tmp_path / "shop")
    shutil.copytree(trained_shop.root / "mlruns", tmp_path / "mlruns")  # a registry of its own to train into
    shop = TrainedShop(root=tmp_path, config=tmp_path / "shop" / "cdp.toml",
                       tracking_uri=f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}",
                       snapshot=tmp_path / "shop" / "online_features.parquet")
    person = person_in(shop)
    refused = []

    def meanwhile(step: str) -> None:
        if step.startswith(("churn: fitting", "registering")):
            refused.append(cli(shop, "forget", "--customer-id", person.customer_id))

    saved = mlflow.get_tracking_uri()
    try:
        trained = train_store(load_config(shop.config), tracking(shop), families=("churn",), n_snapshots=2,
                              on_stage=meanwhile)
    finally:
        mlflow.set_tracking_uri(saved)
    assert len(refused) == 2
    for attempt in refused:
        assert attempt.returncode == 1 and "in use by another process; wait for it to finish" in attempt.stderr, \
            attempt.stdout + attempt.stderr
        assert "Traceback" not in attempt.stdout + attempt.stderr
    assert set(person.values) <= set(traces(shop, person).get("cdp.duckdb", []))  # nothing was erased
    new_version = trained.results[0].version
    done = cli(shop, "forget", "--customer-id", person.customer_id)
    assert done.returncode == 0, done.stdout + done.stderr
    retrain = " ".join(done.stdout.split())  # the CLI wraps long lines
    assert f"cdp-churn v{new_version}" in retrain, done.stdout
    assert traces(shop, person) == {}


def cli(shop: TrainedShop, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """`cdp` in its own process (SIGKILL must take a whole process), optionally killed at ``fault``."""
    env = {"PATH": os.environ["PATH"], "HOME": str(shop.root), "MLFLOW_TRACKING_URI": shop.tracking_uri,
           "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    if fault:
        env["CDP_FAULT_AT"] = fault
    return subprocess.run([sys.executable, "-m", "cdp.cli", *args, "--config", str(shop.config)], env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("fault", ["erasing", "replacing the serving snapshot", "committing the erasure",
                                   "rebuilding the store file"])
def test_forget_killed_at_any_step_is_whole_or_nothing_and_a_rerun_finishes_it(shop, fault):
    person = person_in(shop)
    killed = cli(shop, "forget", "--customer-id", person.customer_id, fault=fault)
    assert killed.returncode == -9, killed.stdout + killed.stderr
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        held = con.sql("SELECT count(*) FROM customers WHERE customer_id = ?",
                       params=[person.customer_id]).fetchall()[0][0]
        pending = con.sql("SELECT count(*) FROM meta WHERE key = ?", params=[COMPACTION_PENDING]).fetchall()[0][0]
    if fault == "rebuilding the store file":  # committed: gone from every table, the rebuild still owed
        assert held == 0 and pending == 1
    else:  # not committed: still wholly there
        assert held == 1 and pending == 0 and person.customer_id in scored_ids(shop)
    rerun = cli(shop, "forget", "--customer-id", person.customer_id)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert traces(shop, person) == {}
    assert person.customer_id not in scored_ids(shop) | snapshot_ids(shop)


def test_score_killed_before_its_write_leaves_the_store_and_snapshot_as_they_were(shop):
    before = shop.snapshot.read_bytes()
    killed = cli(shop, "score", "--out", str(shop.root / "scores.csv"), fault="writing the scores")
    assert killed.returncode == -9
    assert shop.snapshot.read_bytes() == before
    person = person_in(shop)
    assert cli(shop, "forget", "--customer-id", person.customer_id).returncode == 0
    assert traces(shop, person) == {}


def test_files_a_killed_writer_left_beside_the_store_go_at_the_next_write(shop):
    person = person_in(shop)
    leftover = shop.snapshot.with_name(f".{shop.snapshot.name}.writing-99999")
    shutil.copy(shop.snapshot, leftover)  # a half-finished snapshot write, holding the person
    erase(shop, person)
    assert not leftover.exists()
    assert traces(shop, person) == {}


def test_a_compaction_a_crash_left_owing_is_done_by_the_next_writer(shop):
    config = load_config(shop.config)
    with duckdb.connect(str(config.store.path)) as con:
        con.execute("INSERT INTO meta VALUES (?, '1')", [COMPACTION_PENDING])
    inode = config.store.path.stat().st_ino
    with Store(config.store.path):
        pass
    assert config.store.path.stat().st_ino != inode  # a new file took the old one's place
    with duckdb.connect(str(config.store.path), read_only=True) as con:
        assert con.sql("SELECT count(*) FROM meta WHERE key = ?", params=[COMPACTION_PENDING]).fetchall()[0][0] == 0
        assert con.sql("SELECT count(*) FROM scores").fetchall()[0][0] > 900


def test_forget_takes_a_file_of_requests(shop, tmp_path):
    first, second = person_in(shop, 0), person_in(shop, 1)
    requests = tmp_path / "requests.csv"
    requests.write_text(f"customer_id,email\n{first.customer_id},\n,nobody-at-all@example.org\n"
                        f"{second.customer_id},\n", encoding="utf-8")
    done = cli(shop, "forget", "--file", str(requests))
    assert done.returncode == 0, done.stdout + done.stderr
    said = " ".join(done.stdout.split())
    assert f"{requests}, row 3: no customer with that email; nothing erased for it" in said, done.stdout
    assert done.stdout.count("erased customer ") == 2
    for person in (first, second):
        assert traces(shop, person) == {}
    for value in first.values + second.values:  # the output names people by their audit reference only
        assert value not in done.stdout + done.stderr


@pytest.mark.parametrize("content, message", [
    ("name\nAda\n", "the header must name at least one of customer_id, email, phone"),
    ("customer_id,email,shoe_size\nc1,,\n", "unknown column(s) shoe_size"),
    ("customer_id,email\nc1,a@b.org\n", "row 2: name the person in exactly one of customer_id, email (2 given)"),
    ("customer_id\n", "no requests in it"),
])
def test_a_malformed_requests_file_is_refused_before_anything_is_erased(shop, tmp_path, content, message):
    from typer.testing import CliRunner

    from cdp.cli import app

    requests = tmp_path / "requests.csv"
    requests.write_text(content, encoding="utf-8")
    before = scored_ids(shop)
    result = CliRunner().invoke(app, ["forget", "--file", str(requests), "--config", str(shop.config)],
                                env={"COLUMNS": "400", "MLFLOW_TRACKING_URI": shop.tracking_uri})
    assert result.exit_code == 1 and message in result.output, result.output
    assert scored_ids(shop) == before
