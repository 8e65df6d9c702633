"""Identity resolution, as a specification on tiny hand-made sources.

Each test writes a few CSV rows, runs ingest and unify, and checks who was linked to
whom against what a person reading the rows would conclude.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pandas as pd
import pytest

from cdp.config import load_config
from profiles.ingest import ingest
from profiles.unify import unify
from profiles.unify_spark import unify_on_spark
from store.interface import open_configured, open_store
from tests.same_tables import assert_same_tables

CRM = ("crm", "customers", {"source_key": "id", "customer_key": "id", "email": "email", "phone": "phone",
                            "first_name": "first", "last_name": "last", "created_at": "created",
                            "consent_email": "consent"})
WEB = ("web", "orders", {"source_key": "order", "email": "email", "timestamp": "ts", "amount": "amount"})
POS = ("pos", "orders", {"source_key": "receipt", "phone": "phone", "timestamp": "ts", "amount": "amount"})
LEADS = ("leads", "customers", {"source_key": "lead", "email": "email", "phone": "phone", "first_name": "first",
                                "created_at": "created"})
CLICKS = ("clicks", "events", {"source_key": "id", "email": "email", "anonymous_id": "cookie",
                               "customer_key": "crm_id", "timestamp": "ts", "event_type": "type"})


# What unify writes: on Spark, each must equal DuckDB's, row for row, after every run.
UNIFIED = ("record_map", "identifier_map", "identifier_exclusions", "customers", "orders", "events", "customer_ids",
           "id_events", "unify_runs")


class Shop:
    """A throwaway shop: CSV sources in a folder, a cdp.toml, and a store. With ``spark`` (a
    session), the store is a directory of Parquet tables unified on Spark, and a twin DuckDB
    store beside it is unified from the same files after every run: the two must agree."""

    def __init__(self, root: Path, sources=(CRM, WEB, POS, LEADS, CLICKS), spark=None):
        self.root = root
        self.sources = sources
        self.spark = spark
        self.runs = 0
        for name, _, columns in sources:
            self.write(name, [])

    def write(self, name: str, rows: list[dict]) -> None:
        columns = next(c for n, _, c in self.sources if n == name)
        header = list(dict.fromkeys(columns.values()))
        frame = pd.DataFrame(rows, columns=header, dtype=object).fillna("")
        frame.to_csv(self.root / f"{name}.csv", index=False)

    def config(self, twin: bool = False):
        on_spark = self.spark is not None and not twin
        parts = ['[store]\npath = "store"\nformat = "parquet"\n' if on_spark else
                 f'[store]\npath = "{"twin" if twin else "cdp"}.duckdb"\n']
        for name, kind, columns in self.sources:
            extra = 'default_phone_region = "PS"\n'
            if name == "clicks":
                extra += 'customer_key_namespace = "crm"\n'
            mapping = "".join(f'{k} = "{v}"\n' for k, v in columns.items())
            parts.append(f'[[sources]]\nname = "{name}"\nkind = "{kind}"\npath = "{name}.csv"\n{extra}'
                         f'[sources.columns]\n{mapping}')
        name = "twin.toml" if twin else "cdp.toml"
        (self.root / name).write_text("\n".join(parts))
        return load_config(self.root / name)

    def run(self):
        config = self.config()
        self.runs += 1
        now = datetime(2026, 1, self.runs)
        with open_configured(config.store) as store:
            ingest(store, config, now=now, run_id=f"i{self.runs}")
            if self.spark is None:
                return unify(store, config, now=now, run_id=f"u{self.runs}")
            report = unify_on_spark(store, config, self.spark, self.root / "spark-work", now=now,
                                    run_id=f"u{self.runs}")
        twin = self.config(twin=True)
        with open_configured(twin.store) as store:
            ingest(store, twin, now=now, run_id=f"i{self.runs}")
            assert unify(store, twin, now=now, run_id=f"u{self.runs}") == report
        assert_same_tables(config.store.path, twin.store.path, UNIFIED)
        return report

    def query(self, sql: str) -> pd.DataFrame:
        with open_store(self.config().store.path, read_only=True) as store:
            return store.frame(sql)

    def customer_of(self, source: str, key: str) -> str | None:
        found = self.query(f"SELECT customer_id FROM record_map WHERE source = '{source}' AND source_key = '{key}'")
        return None if found.empty else found["customer_id"].iloc[0]


# Spark runs cost seconds each: the rules with Spark code of their own (linking, exclusions, cookies,
# merges, splits, revivals, golden records, failure) run on both engines, the rest on DuckDB.
DUCKDB_ONLY = pytest.mark.parametrize("engine", ["duckdb"])


@pytest.fixture(params=["duckdb", pytest.param("spark", marks=pytest.mark.spark)])
def engine(request):
    return request.param


@pytest.fixture
def shop(tmp_path, engine, request):
    return Shop(tmp_path, spark=request.getfixturevalue("small_spark") if engine == "spark" else None)


def test_links_islands_transitively_through_normalized_email_and_phone(shop):
    # web email ↔ lead (same email in other case, local phone) ↔ POS receipt (phone written internationally)
    shop.write("web", [{"order": "W1", "email": "  Layla.Haddad@Mail.com ", "ts": "2025-03-01", "amount": "40"}])
    shop.write("leads", [{"lead": "L1", "email": "layla.haddad@mail.com", "phone": "059-812 3456", "first": "ليلى",
                          "created": "2025-02-01"}])
    shop.write("pos", [{"receipt": "R1", "phone": "+970 59 812 3456", "ts": "2025-04-01", "amount": "12.5"},
                       {"receipt": "R2", "phone": "00970598123456", "ts": "2025-05-01", "amount": "7"},
                       {"receipt": "R3", "phone": "0567000111", "ts": "2025-05-02", "amount": "9"}])
    report = shop.run()
    layla = {shop.customer_of("web", "W1"), shop.customer_of("leads", "L1"),
             shop.customer_of("pos", "R1"), shop.customer_of("pos", "R2")}
    assert len(layla) == 1 and None not in layla
    other = shop.customer_of("pos", "R3")
    assert other is not None and other not in layla
    assert report.customers == 2
    golden = shop.query(f"SELECT * FROM customers WHERE customer_id = '{layla.pop()}'").iloc[0]
    assert golden["email"] == "layla.haddad@mail.com"
    assert golden["phone"] == "+970598123456"
    assert golden["first_name"] == "ليلى"
    assert golden["n_orders"] == 3


def test_placeholder_and_hub_identifiers_do_not_glue_people(shop):
    shop.write("leads", [
        {"lead": "L1", "email": "test@test.com", "phone": "0591111234", "created": "2025-01-01"},
        {"lead": "L2", "email": "TEST@test.com", "phone": "0592222345", "created": "2025-01-02"},
    ])
    # A walk-in number typed on receipts of 15 different web customers (each also known by their own email).
    shop.write("crm", [{"id": f"{i:03d}", "email": f"person{i}@mail.com", "phone": "0595550001",
                        "created": "2025-01-01"} for i in range(15)])
    shop.write("pos", [{"receipt": "R0", "phone": "0599999999", "ts": "2025-02-01", "amount": "5"}])
    report = shop.run()
    assert shop.customer_of("leads", "L1") != shop.customer_of("leads", "L2")
    crm_ids = {shop.customer_of("crm", f"{i:03d}") for i in range(15)}
    assert len(crm_ids) == 15
    excluded = shop.query("SELECT id_type, id_value, reason FROM identifier_exclusions ORDER BY id_value")
    assert set(excluded["id_value"]) == {"test@test.com", "+970595550001", "+970599999999"}
    assert report.excluded_identifiers == {
        "placeholder email": 1, "placeholder phone": 1, "seen with more than 12 other identifiers": 1}
    # A receipt whose only identifier is junk is kept, unlinked, and still counted as an order.
    assert shop.customer_of("pos", "R0") is None
    assert shop.query("SELECT customer_id FROM orders WHERE source_key = 'R0'")["customer_id"].isna().all()
    # The junk values never become a golden record's email or phone.
    golden = shop.query("SELECT email, phone FROM customers")
    assert not golden["email"].isin(["test@test.com"]).any()
    assert not golden["phone"].isin(["+970595550001", "+970599999999"]).any()


def test_ids_survive_new_data_and_merges_keep_the_oldest_id(shop):
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"}])
    shop.run()
    a = shop.customer_of("web", "W1")

    # New orders for the known person, and two new people (one known only by phone): a's id stays.
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"},
                       {"order": "W2", "email": "a@mail.com", "ts": "2025-02-01", "amount": "15"},
                       {"order": "W3", "email": "new@mail.com", "ts": "2025-02-01", "amount": "15"}])
    shop.write("pos", [{"receipt": "R1", "phone": "0591234000", "ts": "2025-01-02", "amount": "10"}])
    report = shop.run()
    p = shop.customer_of("pos", "R1")
    assert shop.customer_of("web", "W1") == shop.customer_of("web", "W2") == a
    assert len({a, p, shop.customer_of("web", "W3")}) == 3
    assert report.new_customers == 2 and report.merged_ids == 0

    # A lead reveals that a@mail.com and 0591234000 are one person: a's id (the older) survives.
    shop.write("leads", [{"lead": "L1", "email": "a@mail.com", "phone": "+970591234000", "created": "2025-03-01"}])
    report = shop.run()
    assert shop.customer_of("leads", "L1") == shop.customer_of("pos", "R1") == shop.customer_of("web", "W1") == a
    assert report.merged_ids == 1 and report.new_customers == 0
    history = shop.query("SELECT event, customer_id, other_id FROM id_events WHERE event = 'merged'")
    assert history.to_dict("records") == [{"event": "merged", "customer_id": p, "other_id": a}]
    registry = shop.query(f"SELECT status, merged_into FROM customer_ids WHERE customer_id = '{p}'").iloc[0]
    assert (registry["status"], registry["merged_into"]) == ("merged", a)
    assert shop.query(f"SELECT count(*) AS n FROM customers WHERE customer_id = '{p}'")["n"].iloc[0] == 0


def test_a_component_that_breaks_apart_keeps_its_id_on_the_larger_part(shop):
    # Three records glued only by one phone; then 13 more emails arrive on that phone, making it a hub.
    shop.write("crm", [{"id": "001", "email": "big@mail.com", "phone": "0595550002", "created": "2025-01-01"},
                       {"id": "002", "email": "small@mail.com", "phone": "0595550002", "created": "2025-01-02"}])
    shop.write("web", [{"order": f"W{i}", "email": "big@mail.com", "ts": "2025-01-03", "amount": "5"}
                       for i in range(3)])
    shop.run()
    before = shop.customer_of("crm", "001")
    assert shop.customer_of("crm", "002") == before
    shop.write("leads", [{"lead": f"L{i}", "email": f"walkin{i}@mail.com", "phone": "0595550002",
                          "created": "2025-02-01"} for i in range(13)])
    report = shop.run()
    assert shop.customer_of("crm", "001") == before          # big part: 4 of the 5 old records
    assert shop.customer_of("crm", "002") != before
    assert report.split_ids == 1
    splits = shop.query("SELECT customer_id, other_id, records FROM id_events WHERE event = 'split'")
    assert splits.to_dict("records") == [
        {"customer_id": before, "other_id": shop.customer_of("crm", "002"), "records": 1}]


def test_same_data_rebuilt_from_scratch_gives_the_same_ids(tmp_path):
    ids = []
    for run in ("one", "two"):
        root = tmp_path / run
        root.mkdir()
        shop = Shop(root)
        shop.write("web", [{"order": f"W{i}", "email": f"p{i % 7}@mail.com", "ts": "2025-01-01", "amount": "3"}
                           for i in range(30)])
        shop.run()
        ids.append(shop.query("SELECT source_key, customer_id FROM record_map ORDER BY source_key"))
    pd.testing.assert_frame_equal(ids[0], ids[1])


def test_golden_record_takes_most_recent_value_then_first_listed_source(shop):
    shop.write("crm", [{"id": "001", "email": "m@mail.com", "first": "Mona", "last": "Saleh",
                        "created": "2024-01-01", "consent": "yes"}])
    shop.write("leads", [{"lead": "L1", "email": "m@mail.com", "first": "Muna", "created": "2025-06-01"},
                         {"lead": "L2", "email": "m@mail.com", "phone": "0591231231", "created": "2024-01-01"}])
    shop.run()
    golden = shop.query("SELECT * FROM customers").iloc[0]
    assert golden["first_name"] == "Muna"        # the lead is the most recent record
    assert golden["last_name"] == "Saleh"        # only the CRM knows it
    assert bool(golden["consent_email"]) is True
    assert golden["phone"] == "+970591231231"
    assert golden["n_records"] == 3


def test_tie_on_time_goes_to_the_source_listed_first(shop):
    shop.write("crm", [{"id": "001", "email": "m@mail.com", "first": "Mona", "created": "2025-01-01"}])
    shop.write("leads", [{"lead": "L1", "email": "m@mail.com", "first": "Muna", "created": "2025-01-01"}])
    shop.run()
    assert shop.query("SELECT first_name FROM customers")["first_name"].tolist() == ["Mona"]


def test_cookies_attach_anonymous_events_only_to_one_known_person(shop):
    shop.write("clicks", [
        {"id": "E1", "cookie": "ck1", "ts": "2025-01-01", "type": "page_view"},
        {"id": "E2", "cookie": "ck1", "email": "s@mail.com", "ts": "2025-01-02", "type": "login"},
        {"id": "E3", "cookie": "ck2", "email": "x@mail.com", "ts": "2025-01-01", "type": "login"},
        {"id": "E4", "cookie": "ck2", "email": "y@mail.com", "ts": "2025-01-02", "type": "login"},
        {"id": "E5", "cookie": "ck2", "ts": "2025-01-03", "type": "page_view"},
        {"id": "E6", "cookie": "ck3", "ts": "2025-01-03", "type": "page_view"},
    ])
    report = shop.run()
    assert shop.customer_of("clicks", "E1") == shop.customer_of("clicks", "E2") is not None
    # A shared computer: the cookie never joins x and y, and its anonymous view stays unlinked.
    assert shop.customer_of("clicks", "E3") != shop.customer_of("clicks", "E4")
    assert shop.customer_of("clicks", "E5") is None and shop.customer_of("clicks", "E6") is None
    assert report.unlinked_events == 2
    assert shop.query("SELECT count(*) AS n FROM events")["n"].iloc[0] == 6


@DUCKDB_ONLY
def test_customer_key_links_within_its_namespace_only(shop):
    shop.write("crm", [{"id": "00004", "email": "k@mail.com", "created": "2025-01-01"}])
    # clicks carry the CRM's id (customer_key_namespace = "crm"); a web order keyed '00004' elsewhere would not link.
    shop.write("clicks", [{"id": "E1", "crm_id": "00004", "ts": "2025-01-02", "type": "ad_click"}])
    shop.run()
    assert shop.customer_of("clicks", "E1") == shop.customer_of("crm", "00004")
    kept = shop.query("SELECT id_value FROM identifier_map WHERE id_type = 'customer_key'")["id_value"]
    assert set(kept) == {"00004"}


def test_unify_failure_leaves_previous_tables(shop, monkeypatch):
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"}])
    shop.run()
    before = shop.query("SELECT * FROM customers")

    import profiles.unify as unify_module
    import profiles.unify_spark as unify_spark

    def broken(con):
        con.execute("DELETE FROM customers")
        raise RuntimeError("disk full")

    def broken_on_spark(*args):
        raise RuntimeError("disk full")

    monkeypatch.setattr(unify_module, "_write_golden", broken)
    monkeypatch.setattr(unify_spark, "_golden", broken_on_spark)  # after the other tables were staged
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"},
                       {"order": "W2", "email": "b@mail.com", "ts": "2025-01-01", "amount": "10"}])
    with pytest.raises(RuntimeError):
        shop.run()
    pd.testing.assert_frame_equal(shop.query("SELECT * FROM customers"), before)
    assert shop.query("SELECT count(*) AS n FROM record_map")["n"].iloc[0] == 1


def test_an_id_merged_away_comes_back_to_its_records_when_they_part_again(shop):
    # Run 1: two people. Run 2: a lead shows they are one (b's id merged into a's).
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"}])
    shop.run()
    shop.write("pos", [{"receipt": "R1", "phone": "0591234000", "ts": "2025-01-02", "amount": "10"}])
    shop.run()
    a, b = shop.customer_of("web", "W1"), shop.customer_of("pos", "R1")
    shop.write("leads", [{"lead": "L1", "email": "a@mail.com", "phone": "0591234000", "created": "2025-03-01"}])
    shop.run()
    assert shop.customer_of("pos", "R1") == a
    # Run 4: the lead is withdrawn (the file is replaced by an empty one and the source re-read whole).
    shop.sources = tuple(s for s in shop.sources if s[0] != "leads")
    report = shop.run()
    assert shop.customer_of("web", "W1") == a
    assert shop.customer_of("pos", "R1") == b  # b's own id, not a fresh one, and not a's
    assert report.revived_ids == 1 and report.new_customers == 0
    registry = shop.query(f"SELECT status, merged_into FROM customer_ids WHERE customer_id = '{b}'").iloc[0]
    assert registry["status"] == "active" and pd.isna(registry["merged_into"])
    events = shop.query("SELECT event, customer_id FROM id_events WHERE event = 'revived'")
    assert events["customer_id"].tolist() == [b]


@DUCKDB_ONLY
def test_customer_records_without_a_date_never_win_on_recency(shop):
    # The lead has no created_at: its phone must not beat the phone of the most recent order.
    shop.sources = (CRM, POS, ("leads", "customers", {"source_key": "lead", "email": "email", "phone": "phone"}))
    shop.write("leads", [{"lead": "L1", "email": "x@mail.com", "phone": "0591110364"}])
    shop.write("crm", [{"id": "001", "email": "x@mail.com", "phone": "0591110365", "created": "2023-06-01"}])
    shop.write("pos", [{"receipt": "R1", "phone": "0591110364", "ts": "2020-01-01", "amount": "5"},
                       {"receipt": "R2", "phone": "0591110365", "ts": "2023-06-01", "amount": "5"}])
    shop.run()
    golden = shop.query("SELECT phone, first_seen, last_seen FROM customers").iloc[0]
    assert golden["phone"] == "+970591110365"
    assert golden["last_seen"] == pd.Timestamp("2023-06-01")
    assert golden["first_seen"] == pd.Timestamp("2020-01-01")


@DUCKDB_ONLY
def test_a_source_removed_from_the_config_leaves_the_profiles(shop):
    shop.write("web", [{"order": "W1", "email": "a@mail.com", "ts": "2025-01-01", "amount": "10"}])
    shop.write("pos", [{"receipt": "R1", "phone": "0591234000", "ts": "2025-01-02", "amount": "10"}])
    shop.run()
    shop.sources = tuple(s for s in shop.sources if s[0] != "pos")
    report = shop.run()
    assert report.customers == 1
    assert shop.query("SELECT DISTINCT source FROM orders")["source"].tolist() == ["web"]


def test_ads_consent_reaches_the_golden_record_and_an_empty_answer_means_no(tmp_path):
    crm = ("crm", "customers", {"source_key": "id", "email": "email", "created_at": "created", "consent_ads": "ads"})
    shop = Shop(tmp_path, sources=(crm,))
    shop.write("crm", [{"id": "1", "email": "a@mail.com", "created": "2024-01-01", "ads": "yes"},
                       {"id": "2", "email": "b@mail.com", "created": "2024-01-01", "ads": "0"},
                       {"id": "3", "email": "c@mail.com", "created": "2024-01-01", "ads": ""}])
    shop.run()
    golden = shop.query("SELECT email, consent_ads FROM customers ORDER BY email")
    assert [None if pd.isna(v) else bool(v) for v in golden["consent_ads"]] == [True, False, None]
