"""Right of access (`cdp export`) and right to be forgotten (`cdp forget`), checked against the
generator's ground truth: which records are the person's comes from truth/, never from the
code under test, and every count after an erasure is compared with one taken before it."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.config import load_config
from profiles import erasure
from profiles.erasure import forget
from profiles.ingest import ingest
from profiles.subject import Lookup
from profiles.tombstones import TombstoneKeyError
from store.duckdb_store import Store
from store.snapshot import ServingSnapshot

NOW = datetime(2026, 11, 20, 9, 0)
SOURCE_TABLES = ("source_customers", "source_orders", "source_events")


NO_REGISTRY = f"sqlite:///{Path(__file__).parent / 'no-registry-here' / 'mlflow.db'}"


def cdp(*args: str, env: dict | None = None):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "400", "NO_COLOR": "1",
                                                    "MLFLOW_TRACKING_URI": NO_REGISTRY, **(env or {})})


@dataclass(frozen=True)
class Person:
    """A generated person, as the ground truth knows them."""

    person_id: str
    customer_id: str
    identifiers: dict[str, list[str]]  # id_type -> values as truth/identifiers.csv lists them
    records: frozenset[tuple[str, str]]  # accepted (source, source_key)
    rejected: frozenset[tuple[str, int]]  # (source, row_number) of their rejected rows
    names: tuple[str, ...]

    def identifier_strings(self) -> list[str]:
        """Values only this person has (names are shared: another person may be called the same)."""
        return [v for t, vs in self.identifiers.items() if t in ("email", "phone", "anonymous_id") for v in vs]

    def personal_strings(self) -> list[str]:
        """What must never be printed or logged."""
        return self.identifier_strings() + list(self.names)


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Path:
    """A 300-customer sample shop, ingested and unified, with a score table and a serving snapshot."""
    root = tmp_path_factory.mktemp("privacy") / "shop"
    assert cdp("sample", "--customers", "300", "--seed", "3", "--end", "2026-10-31", "--out", str(root)).exit_code == 0
    for command in ("ingest", "unify"):
        result = cdp(command, "--config", str(root / "cdp.toml"))
        assert result.exit_code == 0, result.output
    with duckdb.connect(str(root / "cdp.duckdb")) as con:
        # What `cdp score` leaves behind, without training: one scores row and one snapshot row per customer.
        con.execute("""CREATE TABLE scores AS SELECT customer_id, 'Loyal' AS segment, 0.25 AS churn_probability,
                       DATE '2026-10-31' AS features_as_of FROM customers""")
        snapshot = root / "online_features.parquet"
        con.execute(f"""COPY (SELECT customer_id, TIMESTAMP '2026-10-31' AS features_as_of, n_orders AS purchase_days
                        FROM customers ORDER BY customer_id) TO '{snapshot}' (FORMAT parquet)""")
    return root


@pytest.fixture(scope="module")
def person(shop) -> Person:
    """The owner of a rejected row (with an identifier) whose accepted records unify into one
    customer, with the most kinds of identifiers: erasure must reach records, rejects and maps."""
    truth = shop / "truth"
    records = pd.read_csv(truth / "records.csv", dtype=str)
    rejects = pd.read_csv(truth / "expected_rejects.csv", dtype=str)
    identifiers = pd.read_csv(truth / "identifiers.csv", dtype=str)
    with duckdb.connect(str(shop / "cdp.duckdb"), read_only=True) as con:
        linked = con.sql("SELECT source, source_key, customer_id FROM record_map").df()
        golden = con.sql("SELECT customer_id, first_name, last_name FROM customers").df()
    rejected_keys = set(zip(rejects["source"], rejects["source_key"]))
    row_numbers = dict(zip(zip(rejects["source"], rejects["source_key"]), rejects["row_number"].astype(int)))
    owners = rejects[rejects["problem"] != "no_identifier"].merge(records, on=["source", "source_key"])["person_id"]
    candidates = []
    for person_id in sorted(set(owners)):
        mine = records[records["person_id"] == person_id]
        keys = set(zip(mine["source"], mine["source_key"]))
        accepted = keys - rejected_keys
        ids = pd.DataFrame(sorted(accepted), columns=["source", "source_key"]).merge(linked, how="left")["customer_id"]
        if ids.notna().all() and ids.nunique() == 1:
            kinds = identifiers[identifiers["person_id"] == person_id]["id_type"].nunique()
            candidates.append((kinds, len(accepted), person_id, ids.iloc[0], frozenset(accepted),
                               frozenset((s, row_numbers[(s, k)]) for s, k in keys & rejected_keys)))
    assert candidates, "the sample shop has no suitable person"
    _, _, person_id, customer_id, accepted, rejected = max(candidates)
    mine = identifiers[identifiers["person_id"] == person_id]
    names = golden[golden["customer_id"] == customer_id][["first_name", "last_name"]].iloc[0].dropna()
    return Person(person_id=person_id, customer_id=customer_id,
                  identifiers=mine.groupby("id_type")["value"].apply(list).to_dict(),
                  records=accepted, rejected=rejected, names=tuple(n for n in names if len(n) > 2))


@pytest.fixture
def copy(shop, tmp_path) -> Path:
    """A private copy of the shop for a test that changes it."""
    return Path(shutil.copytree(shop, tmp_path / "shop"))


def table_counts(store_path: Path) -> dict[str, int]:
    with duckdb.connect(str(store_path), read_only=True) as con:
        tables = [r[0] for r in con.sql("SELECT table_name FROM information_schema.tables "
                                        "WHERE table_type = 'BASE TABLE'").fetchall()]
        return {t: con.sql(f'SELECT count(*) FROM "{t}"').fetchall()[0][0] for t in tables}


def all_text(store_path: Path, tables: list[str] | None = None) -> str:
    """Every value of every table (or of ``tables``) as one string, to search for personal data."""
    with duckdb.connect(str(store_path), read_only=True) as con:
        names = tables or [r[0] for r in con.sql("SELECT table_name FROM information_schema.tables "
                                                 "WHERE table_type = 'BASE TABLE'").fetchall()]
        return "\n".join(con.sql(f'SELECT * FROM "{t}"').df().astype(str).to_csv() for t in names)


def stored_keys(store_path: Path) -> set[tuple[str, str]]:
    with duckdb.connect(str(store_path), read_only=True) as con:
        rows = con.sql(" UNION ALL ".join(f"SELECT source, source_key FROM {t}" for t in SOURCE_TABLES)).fetchall()
    return set(rows)


def resave_with_crlf(folder: Path) -> None:
    """The same rows in new bytes, so `cdp ingest` reads every file again instead of skipping it."""
    for path in folder.glob("*.csv"):
        data = path.read_bytes().replace(b"\r\n", b"\n")
        path.write_bytes(data.replace(b"\n", b"\r\n"))


# --- right of access ---


def test_export_holds_every_record_the_ground_truth_gives_the_person_and_where_it_came_from(shop, person, tmp_path):
    email = person.identifiers["email"][0]
    out = tmp_path / "person.json"
    result = cdp("export", "--email", f"  {email.upper()} ", "--out", str(out), "--config", str(shop / "cdp.toml"))
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text(encoding="utf-8"))

    exported = {(r["source"], r["source_key"]) for rows in data["source_records"].values() for r in rows}
    assert exported == set(person.records)
    for rows in data["source_records"].values():
        for r in rows:
            assert r["file"].endswith(".csv") and r["row_number"] >= 1
            datetime.fromisoformat(r["ingested_at"])  # an ISO string
    assert {(r["source"], r["row_number"]) for r in data["rejected_rows"]} == set(person.rejected)
    truth_orders = {f"{s}:{k}" for s, k in person.records if s in ("web_orders", "pos_receipts")}
    assert {o["order_id"] for o in data["orders"]} == truth_orders
    assert {e["event_id"] for e in data["events"]} == {f"{s}:{k}" for s, k in person.records
                                                       if s in ("web_events", "email_events", "ad_touchpoints")}
    assert data["golden_record"]["customer_id"] == person.customer_id
    assert {i["id_value"] for i in data["identifiers"] if i["id_type"] == "email"} == {
        e.strip().lower() for e in person.identifiers["email"]}
    assert [r["customer_id"] for r in data["features"]["rows"]] == [person.customer_id]
    assert data["features"]["rows"][0]["purchase_days"] == data["golden_record"]["n_orders"]
    assert data["segment"] == "Loyal" and data["scores"][0]["churn_probability"] == 0.25
    for secret in person.personal_strings():
        assert secret not in result.output
    with duckdb.connect(str(shop / "cdp.duckdb"), read_only=True) as con:
        logged = [json.loads(d) for (d,) in con.sql("SELECT details FROM audit_log WHERE action = 'export'").fetchall()]
    assert logged[-1]["looked_up_by"] == "email"
    assert logged[-1]["exported_rows"]["source_records"] == len(person.records)


def test_export_finds_the_same_person_by_customer_id_email_and_phone(shop, person, tmp_path):
    documents = []
    for option, value in (("--customer-id", person.customer_id), ("--email", person.identifiers["email"][0]),
                          ("--phone", person.identifiers["phone"][0])):
        out = tmp_path / f"{option.strip('-')}.json"
        assert cdp("export", option, value, "--out", str(out), "--config", str(shop / "cdp.toml")).exit_code == 0
        data = json.loads(out.read_text(encoding="utf-8"))
        data.pop("exported_at")
        documents.append(data)
    assert documents[0] == documents[1] == documents[2]


@pytest.mark.parametrize("args, message", [
    ((), "exactly one of --customer-id, --email or --phone"),
    (("--email", "nobody@nowhere.example", "--phone", "+970599123456"), "exactly one of"),
    (("--email", "nobody@nowhere.example"), "no customer with that email"),
    (("--phone", "+970591111222"), "no customer with that phone"),
    (("--phone", "not a phone"), "--phone is not a valid phone number"),
    (("--customer-id", "c0000000000000000"), "no customer with that customer id"),
])
def test_bad_requests_are_one_clear_line_that_never_repeats_the_identifier(shop, tmp_path, args, message):
    for command in (("export", "--out", str(tmp_path / "x.json")), ("forget",)):
        result = cdp(*command, *args, "--config", str(shop / "cdp.toml"))
        assert result.exit_code == 1, result.output
        assert message in result.output and "Traceback" not in result.output
        for value in args[1::2]:
            assert value not in result.output
    assert not (tmp_path / "x.json").exists()


def test_a_shared_identifier_identifies_no_one(shop, tmp_path):
    result = cdp("export", "--email", "store@zaytoun.example", "--out", str(tmp_path / "x.json"),
                 "--config", str(shop / "cdp.toml"))
    assert result.exit_code == 1 and "identifies no one" in result.output


# --- right to be forgotten ---


def test_forget_removes_the_person_from_every_table_and_the_snapshot(copy, person):
    before = table_counts(copy / "cdp.duckdb")
    keys_before = stored_keys(copy / "cdp.duckdb")
    snapshot_before = pd.read_parquet(copy / "online_features.parquet")

    result = cdp("forget", "--phone", person.identifiers["phone"][0], "--actor", "dpo@shop",
                 "--config", str(copy / "cdp.toml"))
    assert result.exit_code == 0, result.output

    after = table_counts(copy / "cdp.duckdb")
    assert stored_keys(copy / "cdp.duckdb") == keys_before - set(person.records)
    assert sum(after[t] for t in SOURCE_TABLES) == sum(before[t] for t in SOURCE_TABLES) - len(person.records)
    assert after["rejects"] == before["rejects"] - len(person.rejected)
    assert after["customers"] == before["customers"] - 1
    assert after["scores"] == before["scores"] - 1
    orders = sum(1 for s, _ in person.records if s in ("web_orders", "pos_receipts"))
    assert after["orders"] == before["orders"] - orders
    assert after["record_map"] == before["record_map"] - len(person.records)
    everything = all_text(copy / "cdp.duckdb")
    assert person.customer_id not in everything
    for value in person.identifier_strings():
        assert value not in everything
    snapshot = pd.read_parquet(copy / "online_features.parquet")
    assert len(snapshot) == len(snapshot_before) - 1 and person.customer_id not in set(snapshot["customer_id"])
    for secret in person.personal_strings():
        assert secret not in result.output
    assert "outside the store" in result.output
    assert not list(copy.glob(".*erasing*"))


def test_forget_keeps_the_person_out_when_the_original_files_are_ingested_again(copy, person):
    keys_before = stored_keys(copy / "cdp.duckdb")
    customers_before = table_counts(copy / "cdp.duckdb")["customers"]
    assert cdp("forget", "--email", person.identifiers["email"][0], "--config", str(copy / "cdp.toml")).exit_code == 0
    resave_with_crlf(copy)

    config = load_config(copy / "cdp.toml")
    with Store(config.store.path) as store:
        reports = ingest(store, config, now=NOW, run_id="again")
    assert not any(r.skipped for r in reports)
    assert sum(r.suppressed for r in reports) == len(person.records) + len(person.rejected)
    for r in reports:
        assert r.rows_read == r.accepted + r.rejected + r.suppressed
    assert stored_keys(copy / "cdp.duckdb") == keys_before - set(person.records)

    result = cdp("unify", "--config", str(copy / "cdp.toml"))
    assert result.exit_code == 0, result.output
    assert table_counts(copy / "cdp.duckdb")["customers"] == customers_before - 1
    everything = all_text(copy / "cdp.duckdb")
    for value in person.identifier_strings():
        assert value not in everything


def test_the_audit_log_and_tombstones_record_the_erasure_without_personal_data(copy, person):
    before = table_counts(copy / "cdp.duckdb")
    result = cdp("forget", "--customer-id", person.customer_id, "--actor", "dpo@shop",
                 "--config", str(copy / "cdp.toml"))
    assert result.exit_code == 0, result.output
    after = table_counts(copy / "cdp.duckdb")

    with duckdb.connect(str(copy / "cdp.duckdb"), read_only=True) as con:
        entries = con.sql("SELECT action, actor, details FROM audit_log WHERE action = 'forget'").df()
        tombstones = set(con.sql("SELECT id_hash FROM tombstones").df()["id_hash"])
        secret = bytes.fromhex(con.sql("SELECT value FROM meta WHERE key = 'tombstone_key'").fetchall()[0][0])
        excluded = con.sql("SELECT id_type, id_value FROM identifier_exclusions").fetchall()
    assert list(entries["actor"]) == ["dpo@shop"]
    details = json.loads(entries["details"][0])
    changed = {t: before[t] - after[t] for t in before if t not in ("audit_log", "tombstones", "meta")
               and before[t] != after[t]}
    assert details["deleted_rows"] == changed
    log = all_text(copy / "cdp.duckdb", ["audit_log", "tombstones"])
    for value in [person.customer_id, *person.personal_strings()]:
        assert value not in log

    def digest(id_type: str, value: str) -> str:  # HMAC-SHA256 as documented, computed here by hand
        return hmac.new(secret, f"{id_type}\x1f{value}".encode(), hashlib.sha256).hexdigest()

    expected = {digest("email", e.strip().lower()) for e in person.identifiers["email"]}
    expected |= {digest("phone", p) for p in person.identifiers["phone"]}  # the truth lists phones in E.164
    expected |= {digest("customer_key", "crm_customers\x1f" + k) for k in person.identifiers.get("customer_key", [])}
    expected |= {digest("external_id", x) for x in person.identifiers.get("external_id", [])}
    assert expected <= tombstones
    assert len(tombstones) == sum(details["tombstones_written"].values())
    assert not {digest(t, v) for t, v in excluded} & tombstones  # a shared identifier is nobody's to erase


def test_forget_reports_that_no_registry_means_no_models_to_retrain(copy, person, tmp_path):
    result = cdp("forget", "--customer-id", person.customer_id, "--config", str(copy / "cdp.toml"),
                 env={"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'none' / 'mlflow.db'}"})
    assert result.exit_code == 0, result.output
    assert "no models to retrain" in result.output and "retrain:" not in result.output


def test_a_failed_erasure_leaves_the_store_and_the_snapshot_as_they_were(copy, person, monkeypatch):
    before = table_counts(copy / "cdp.duckdb")
    snapshot = (copy / "online_features.parquet").read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(erasure, "_write_tombstones", broken)
    config = load_config(copy / "cdp.toml")
    with Store(config.store.path) as store, pytest.raises(OSError):
        forget(store, config, Lookup("customer_id", person.customer_id), actor="t", now=NOW,
               snapshot=ServingSnapshot(copy / "online_features.parquet"), tombstone_key=None)
    assert table_counts(copy / "cdp.duckdb") == before
    assert (copy / "online_features.parquet").read_bytes() == snapshot


def test_tombstones_made_with_an_outside_key_cannot_be_bypassed_without_it(copy, person):
    key = b"a-secret-kept-outside-the-store"
    config = load_config(copy / "cdp.toml")
    with Store(config.store.path) as store:
        forget(store, config, Lookup("customer_id", person.customer_id), actor="t", now=NOW,
               snapshot=ServingSnapshot(copy / "online_features.parquet"), tombstone_key=key)
    resave_with_crlf(copy)
    with Store(config.store.path) as store:
        with pytest.raises(TombstoneKeyError, match="CDP_TOMBSTONE_KEY"):
            ingest(store, config, now=NOW, run_id="no-key")
        reports = ingest(store, config, now=NOW, run_id="key", tombstone_key=key)
    assert sum(r.suppressed for r in reports) == len(person.records) + len(person.rejected)
    assert not stored_keys(copy / "cdp.duckdb") & set(person.records)


def test_the_cli_reads_the_outside_key_for_forget_and_for_ingest_and_says_what_it_suppressed(copy, person):
    env = {"CDP_TOMBSTONE_KEY": "a-secret-kept-outside-the-store"}
    config = str(copy / "cdp.toml")
    assert cdp("forget", "--customer-id", person.customer_id, "--config", config, env=env).exit_code == 0
    resave_with_crlf(copy)
    refused = cdp("ingest", "--config", config)
    assert refused.exit_code == 1 and "CDP_TOMBSTONE_KEY" in refused.output
    result = cdp("ingest", "--config", config, env=env)
    assert result.exit_code == 0, result.output
    suppressed = sum(int(n.replace(",", "")) for n in re.findall(r"suppressed: ([\d,]+) records of erased people",
                                                                 result.output))
    assert suppressed == len(person.records) + len(person.rejected)
    assert not stored_keys(copy / "cdp.duckdb") & set(person.records)
