"""Audiences for ad platforms, email platforms and any tool: identifiers as each platform takes
them, who is chosen, who each channel may get, and who joined and left between two exports.

Hashes are checked against hex digests computed outside the code, with the shell
(``printf '%s' omar@example.com | sha256sum``). Selection is checked on a hand-made shop whose
revenue at risk is worked out by hand, and end to end on the trained sample shop against
values recomputed here from the store's own tables.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from typer.testing import CliRunner

from cdp.cli import app
from cdp.config import load_config
from cdp.errors import CdpError
from marketing.audiences import (
    AudienceRequest,
    AudienceSelection,
    changes,
    export_audience,
    format_rows,
    google_email,
    meta_email,
    meta_phone,
    phone_e164,
    select_audience,
    sha256_hex,
)
from marketing.lists import ListInputs
from profiles.erasure import forget
from profiles.subject import Lookup
from store.duckdb_store import Store
from store.snapshot import ServingSnapshot
from tests.trained_shop import TrainedShop, private_copy
from training.risk_bands import ChurnRiskBands

AS_OF = pd.Timestamp("2026-10-31")


# ------------------------------------------------------------------ identifiers, by hand

@pytest.mark.parametrize("raw, digest", [
    # printf '%s' omar@example.com | sha256sum
    (" Omar@Example.com ", "0de61b11104624354afdd7c32d7eff20c80cc5af60e43a30e87a95e8b9bd1b34"),
    # Meta keeps the dots of a Gmail address: printf '%s' omar.khalil@gmail.com | sha256sum
    ("Omar.Khalil@Gmail.com", "962e72ad3b8634af16d91f7f2d45818e0d33ebc54bf2c9f5da63fd803e7af54d"),
])
def test_meta_hashes_the_trimmed_lower_cased_email(raw, digest):
    assert sha256_hex(meta_email(raw)) == digest


@pytest.mark.parametrize("raw, normalized, digest", [
    ("Omar.Khalil@Gmail.com", "omarkhalil@gmail.com",
     "809ae7eae92c940c9067f5c31dc3d3183e93a17f87a489c29c5684d8a00aa72f"),
    ("o.m.a.r@googlemail.com", "omar@googlemail.com",
     "b13de1ec09c95161aa384d7079ac29347cf7bc3e7ba04a354688f5cc99f5fc6f"),
    # Google documents no +suffix rule: it stays (only the dots go)
    ("omar.khalil+news@gmail.com", "omarkhalil+news@gmail.com",
     "e2f97fd6146435a926fe4aaa53a68d1eb275faced18162c98bbdc0acc775695f"),
    # dots of other domains are part of the address
    ("omar.khalil@example.org", "omar.khalil@example.org",
     "5a78cd255ab89a074281223db6a505001717778374540dd584f2e93a8ba37248"),
])
def test_google_removes_the_dots_of_gmail_and_googlemail_local_parts_only(raw, normalized, digest):
    assert google_email(raw) == normalized
    assert sha256_hex(google_email(raw)) == digest


@pytest.mark.parametrize("raw, region, e164, meta, meta_digest, google_digest", [
    ("059-123-4567", "PS", "+970591234567", "970591234567",
     "36c0dcbafa476b1534d5c5c112d2578aed2f7082fbfa9e446379996973b66653",
     "5e82205360f253a590f7cd124935e7435456bc0a066f52dfee8fb6dd1614d2d0"),
    ("(415) 555-2671", "US", "+14155552671", "14155552671",
     "758fbf68945f21c416814c539ab578876c8d98fb69e6da692def92cd52417fe0",
     "cb6880e416769253645cb9c6b8989154bf66a56a77fc14c81fb1019663cbb928"),
    # an international prefix written as 00 needs no region
    ("0044 20 7946 0958", None, "+442079460958", "442079460958",
     "35e206e5dec4c89b9e8b71b8c32724a5bb518483ac5a20c6617d738375b3b823",
     "f0bf0228144d9fe2bdf1da2d8ca698f17bf1410ee688b075c27062e47b6f0b6d"),
    # Italy keeps the 0 of its area code after the country code: not a leading zero
    ("06 1234 5678", "IT", "+390612345678", "390612345678",
     "472e1123cd4e2f66f1df06bd488dc6135dab8f80cbfcc4af144d042c005f0fb2",
     "37b702607839d6dc5fc81d95b52e550e336413bf7ae2e04cafeca79f066ea44b"),
])
def test_phones_go_to_google_in_e164_and_to_meta_as_digits_with_the_country_code(raw, region, e164, meta,
                                                                                  meta_digest, google_digest):
    assert phone_e164(raw, region) == e164
    assert meta_phone(raw, region) == meta
    assert sha256_hex(meta_phone(raw, region)) == meta_digest
    assert sha256_hex(phone_e164(raw, region)) == google_digest


@pytest.mark.parametrize("raw", ["12345", "  ", None, "not a phone"])
def test_a_phone_that_is_not_a_valid_number_is_not_sent(raw):
    assert phone_e164(raw, "PS") is None and meta_phone(raw, "PS") is None


# ------------------------------------------------------------------ a hand-made shop

def _person(cid, p, revenue, tenure, *, segment="At risk", consent_email=True, consent_ads=True,
            email=None, phone="+970591234567", first_name=None):
    return {"customer_id": cid, "segment": segment, "churn_probability": p, "top_reasons": "",
            "first_name": first_name or f"Name{cid}", "email": email if email is not None else f"{cid}@mail.ps",
            "phone": phone, "consent_email": consent_email, "consent_sms": False, "consent_ads": consent_ads,
            "revenue_total": revenue, "tenure_days": tenure}


SHOP = [
    _person("a", 0.8, 1200.0, 730),                  # at risk 0.8 × 1,200 × 90 / 730 = 118.36: rank 2, high
    _person("b", 0.5, 100.0, 30, consent_ads=None),  # 0.5 × 100 × 90 / 90 = 50.00: rank 3, medium
    _person("c", 0.95, 300.0, 900, consent_email=False, phone=None),  # 0.95 × 300 × 90 / 900 = 28.50: rank 4, high
    _person("d", 0.2, 5000.0, 365, segment="Loyal"),  # 0.2 × 5,000 × 90 / 365 = 246.58: rank 1, low
    _person("e", None, 0.0, 0, segment="Prospects", consent_ads=False),  # no purchase: no churn score, no rank
]


def _inputs(rows: list[dict]) -> tuple[ListInputs, pd.DataFrame]:
    frame = pd.DataFrame(rows)
    scores = frame[["customer_id", "segment", "churn_probability", "top_reasons"]].assign(features_as_of=AS_OF)
    contacts = frame[["customer_id", "first_name", "email", "phone", "consent_email", "consent_sms"]]
    features = frame[["customer_id", "revenue_total", "tenure_days"]].assign(features_as_of=AS_OF)
    customers = frame[["customer_id", "email", "phone", "first_name", "consent_email", "consent_ads"]]
    return ListInputs(scores=scores, customers=contacts, features=features), customers


def _chosen(selection: AudienceSelection, rows=SHOP) -> list[str]:
    inputs, _ = _inputs(rows)
    return select_audience(inputs, selection, ChurnRiskBands(), 90)["customer_id"].tolist()


def test_selection_by_band_keeps_churn_list_order():
    assert _chosen(AudienceSelection(bands=("high",))) == ["a", "c"]
    assert _chosen(AudienceSelection(bands=("medium", "high"))) == ["a", "b", "c"]


def test_selection_by_rank_counts_every_scored_customer_whatever_their_risk():
    assert _chosen(AudienceSelection(top=2)) == ["d", "a"]        # d is low risk but first by revenue at risk
    assert _chosen(AudienceSelection(bands=("high",), top=1)) == ["a"]  # the filters first, then the top


def test_selection_by_segment_reaches_people_with_no_purchase_yet():
    assert _chosen(AudienceSelection(segments=("Prospects",))) == ["e"]
    assert _chosen(AudienceSelection(segments=("Loyal", "Prospects"))) == ["d", "e"]
    inputs, _ = _inputs(SHOP)
    chosen = select_audience(inputs, AudienceSelection(everyone=True), ChurnRiskBands(), 90)
    assert chosen["rank"].tolist()[:4] == [1, 2, 3, 4] and pd.isna(chosen["rank"].iloc[4])
    assert chosen["churn_band"].tolist()[:4] == ["low", "high", "medium", "high"]
    assert pd.isna(chosen["churn_band"].iloc[4])  # no churn score, no band


def test_unknown_segments_bands_and_formats_and_empty_selections_are_refused_with_what_is_known():
    with pytest.raises(CdpError, match=r"--segment 'VIP' is not a segment.*known segments: At risk, Loyal, "
                                       r"Prospects"):
        _chosen(AudienceSelection(segments=("VIP",)))
    with pytest.raises(CdpError, match="--band 'severe' is not a churn band; use low, medium, high"):
        AudienceSelection(bands=("severe",))
    with pytest.raises(CdpError, match="--format 'tiktok' is not an audience format; use meta, google, email, plain"):
        AudienceRequest(name="x", selection=AudienceSelection(top=1), format="tiktok")
    with pytest.raises(CdpError, match="choose the audience with --segment, --band or --top"):
        AudienceSelection()


def test_default_names_follow_the_selection():
    assert AudienceSelection(bands=("high", "medium"), top=500).default_name() == "band-medium_band-high_top-500"
    assert AudienceSelection(segments=("At risk",)).default_name() == "segment-at-risk"


def test_each_format_gets_only_the_people_its_channel_has_consent_for():
    inputs, customers = _inputs(SHOP)
    everyone = select_audience(inputs, AudienceSelection(everyone=True), ChurnRiskBands(), 90)
    meta = format_rows(everyone, customers, "meta", "PS")
    # ads consent: a, c, d (b's flag is missing, e said no)
    assert meta.members["customer_id"].tolist() == ["d", "a", "c"]
    assert meta.without_consent == 2 and meta.without_identifier == 0
    assert meta.rows["email"].tolist() == [sha256_hex(f"{c}@mail.ps") for c in ("d", "a", "c")]
    # printf '%s' 970591234567 | sha256sum; c has no phone
    phone = "36c0dcbafa476b1534d5c5c112d2578aed2f7082fbfa9e446379996973b66653"
    assert meta.rows["phone"].tolist()[:2] == [phone, phone] and pd.isna(meta.rows["phone"].iloc[2])
    assert list(format_rows(everyone, customers, "google", "PS").rows.columns) == ["Email", "Phone"]
    email = format_rows(everyone, customers, "email")
    assert email.members["customer_id"].tolist() == ["d", "a", "b", "e"]  # c said no to email
    assert email.rows.columns.tolist() == ["email", "first_name", "segment", "churn_band"]
    assert email.rows["email"].tolist() == ["d@mail.ps", "a@mail.ps", "b@mail.ps", "e@mail.ps"]
    plain = format_rows(everyone, customers, "plain")
    assert plain.rows.columns.tolist() == ["customer_id", "segment", "churn_band", "churn_probability", "rank"]
    assert plain.rows["customer_id"].tolist() == ["d", "a", "b", "c", "e"] and plain.without_consent == 0


def test_people_with_consent_but_no_usable_identifier_are_counted_apart():
    rows = [_person("a", 0.8, 1200.0, 730, email="not-an-email", phone="123"),
            _person("b", 0.8, 1200.0, 730, email="b@mail.ps", phone=None)]
    inputs, customers = _inputs(rows)
    chosen = select_audience(inputs, AudienceSelection(bands=("high",)), ChurnRiskBands(), 90)
    meta = format_rows(chosen, customers, "meta", "PS")
    assert meta.members["customer_id"].tolist() == ["b"] and meta.without_identifier == 1
    email = format_rows(chosen, customers, "email")
    assert email.members["customer_id"].tolist() == ["b"] and email.without_identifier == 1


def test_the_email_csv_neutralizes_text_a_spreadsheet_would_run():
    rows = [_person("a", 0.8, 1200.0, 730, first_name='=HYPERLINK("http://evil.example","x")')]
    inputs, customers = _inputs(rows)
    chosen = select_audience(inputs, AudienceSelection(bands=("high",)), ChurnRiskBands(), 90)
    first = format_rows(chosen, customers, "email").rows["first_name"].iloc[0]
    assert first == '\'=HYPERLINK("http://evil.example","x")'


def test_changes_are_who_joined_and_who_left_since_the_recorded_membership():
    inputs, customers = _inputs(SHOP)
    chosen = select_audience(inputs, AudienceSelection(bands=("high",)), ChurnRiskBands(), 90)
    now = format_rows(chosen, customers, "email")  # a only (c said no to email)
    previous = pd.DataFrame({"customer_id": ["b", "x"], "email_sha256": [sha256_hex("b@mail.ps"), "f" * 64],
                             "phone_sha256": [None, None]})
    removals = pd.DataFrame({"customer_id_sha256": [None], "email_sha256": ["e" * 64], "phone_sha256": [None]})
    found = changes(now, previous, removals, "email", customers)
    assert found.joined["email"].tolist() == ["a@mail.ps"]
    # b still has that email: named; x is gone from the store: its hash only; the erased one as a hash
    assert found.left["email"].tolist()[0] == "b@mail.ps" and found.left["email"].isna().tolist()[1:] == [True, True]
    assert found.left["email_sha256"].tolist() == [sha256_hex("b@mail.ps"), "f" * 64, "e" * 64]
    assert found.erased == 1


# ------------------------------------------------------------------ the trained sample shop, end to end

@pytest.fixture
def shop(trained_shop, tmp_path) -> TrainedShop:
    """A private copy of the session's trained shop."""
    return private_copy(trained_shop, tmp_path / "copy")


def cdp(shop: TrainedShop, *args: str):
    return CliRunner().invoke(app, [*args, "--config", str(shop.config)],
                              env={"MLFLOW_TRACKING_URI": shop.tracking_uri})


def said(result) -> str:
    """What the command printed, as one line (the terminal wraps long lines)."""
    return " ".join(result.output.split())


def query(shop: TrainedShop, sql: str) -> pd.DataFrame:
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb"), read_only=True) as con:
        return con.sql(sql).df()


def hashes(path: Path, column: str) -> set[str]:
    return set(pd.read_csv(path, dtype=str)[column].dropna())


def expected_meta_emails(shop: TrainedShop, band_sql: str = "s.churn_probability >= 0.75") -> set[str]:
    """Hashed emails of the people a Meta export of the high band must hold, from the store by SQL."""
    rows = query(shop, f"""SELECT c.email FROM customers c JOIN scores s USING (customer_id)
                          WHERE {band_sql} AND c.consent_ads AND c.email IS NOT NULL""")
    return {hashlib.sha256(e.strip().lower().encode()).hexdigest() for e in rows["email"]}


def test_a_meta_export_holds_the_consenting_high_risk_customers_by_hash_and_records_no_raw_values(shop, tmp_path):
    out = tmp_path / "high.csv"
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(out))
    assert result.exit_code == 0, result.output
    expected = expected_meta_emails(shop)
    assert len(expected) > 10
    assert hashes(out, "email") == expected
    phones = query(shop, """SELECT c.phone FROM customers c JOIN scores s USING (customer_id)
                            WHERE s.churn_probability >= 0.75 AND c.consent_ads AND c.phone IS NOT NULL""")
    assert hashes(out, "phone") == {hashlib.sha256(p.lstrip("+").encode()).hexdigest() for p in phones["phone"]}
    no_consent = query(shop, """SELECT count(*) AS n FROM customers c JOIN scores s USING (customer_id)
                                WHERE s.churn_probability >= 0.75 AND NOT coalesce(c.consent_ads, false)""")
    assert f"{int(no_consent['n'].iloc[0]):,} left out without ads consent" in said(result)
    assert hashes(tmp_path / "high.joined.csv", "email") == expected      # the first export: everyone joined
    assert pd.read_csv(tmp_path / "high.left.csv").empty
    recorded = query(shop, "SELECT * FROM audience_members WHERE audience = 'band-high' AND format = 'meta'")
    assert set(recorded["email_sha256"].dropna()) == expected
    emails = query(shop, "SELECT email FROM customers WHERE email IS NOT NULL")["email"]
    assert not recorded.isin(set(emails)).any().any()


def test_the_right_of_access_names_the_audiences_a_person_was_sent_in(shop, tmp_path):
    result = cdp(shop, "audience", "--band", "high", "--format", "google", "--out", str(tmp_path / "g.csv"))
    assert result.exit_code == 0, result.output
    member = query(shop, "SELECT customer_id, email_sha256 FROM audience_members ORDER BY customer_id LIMIT 1").iloc[0]
    result = cdp(shop, "export", "--customer-id", member["customer_id"], "--out", str(tmp_path / "person.json"))
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "person.json").read_text(encoding="utf-8"))
    assert [(a["audience"], a["format"], a["email_sha256"]) for a in data["audiences"]] == [
        ("band-high", "google", member["email_sha256"])]


def test_a_second_export_after_the_store_changed_gives_who_joined_and_who_left(shop, tmp_path):
    out = tmp_path / "meta.csv"
    assert cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(out)).exit_code == 0
    high = query(shop, """SELECT c.customer_id, c.email, c.consent_ads FROM customers c JOIN scores s
                          USING (customer_id) WHERE s.churn_probability >= 0.75 AND c.email IS NOT NULL
                          AND c.phone IS NULL ORDER BY c.customer_id""")
    leaving = high[high["consent_ads"].fillna(False).astype(bool)]["customer_id"].iloc[0]
    joining = high[~high["consent_ads"].fillna(False).astype(bool)]["customer_id"].iloc[0]
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb")) as con:  # the person changed their mind, both ways
        con.execute("UPDATE customers SET consent_ads = (customer_id = ?) WHERE customer_id IN (?, ?)",
                    [joining, leaving, joining])
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(out), "--force")
    assert result.exit_code == 0, result.output
    email_of = dict(zip(high["customer_id"], high["email"]))
    digest = {k: hashlib.sha256(v.encode()).hexdigest() for k, v in email_of.items()}
    assert pd.read_csv(tmp_path / "meta.joined.csv", dtype=str)["email"].tolist() == [digest[joining]]
    assert pd.read_csv(tmp_path / "meta.left.csv", dtype=str)["email"].tolist() == [digest[leaving]]
    assert "1 joined, 1 left since the export of" in said(result)
    assert digest[joining] in hashes(out, "email") and digest[leaving] not in hashes(out, "email")
    # and a third export with nothing changed has no changes
    assert cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(out), "--force").exit_code == 0
    assert pd.read_csv(tmp_path / "meta.joined.csv").empty and pd.read_csv(tmp_path / "meta.left.csv").empty


def test_an_erased_person_is_in_one_removal_list_per_audience_as_hashes_and_then_nowhere(shop, tmp_path):
    meta, plain = tmp_path / "meta.csv", tmp_path / "plain.csv"
    for fmt, out in (("meta", meta), ("plain", plain)):
        assert cdp(shop, "audience", "--band", "high", "--format", fmt, "--out", str(out)).exit_code == 0
    person = query(shop, """SELECT customer_id, email, phone FROM audience_members JOIN customers USING (customer_id)
                            WHERE format = 'meta' AND email IS NOT NULL AND phone IS NOT NULL
                            ORDER BY customer_id LIMIT 1""").iloc[0]
    raw = (person["email"], person["phone"], person["customer_id"])
    email_hash = hashlib.sha256(person["email"].encode()).hexdigest()
    phone_hash = hashlib.sha256(person["phone"].lstrip("+").encode()).hexdigest()
    id_hash = hashlib.sha256(person["customer_id"].encode()).hexdigest()
    config = load_config(shop.config)
    with Store(config.store.path) as store:
        forget(store, config, Lookup("customer_id", person["customer_id"]), actor="test",
               now=pd.Timestamp("2026-11-20 09:00").to_pydatetime(), snapshot=ServingSnapshot.beside(config.store.path),
               tombstone_key=None)
    store_file = shop.root / "shop" / "cdp.duckdb"
    assert not any(v.encode() in store_file.read_bytes() for v in raw)  # forget's own guarantee still holds
    owed = query(shop, "SELECT * FROM audience_removals ORDER BY format")
    assert owed["format"].tolist() == ["meta", "plain"]
    assert owed["email_sha256"].tolist()[0] == email_hash and owed["customer_id_sha256"].tolist()[1] == id_hash

    for fmt, out in (("meta", meta), ("plain", plain)):
        result = cdp(shop, "audience", "--band", "high", "--format", fmt, "--out", str(out), "--force")
        assert result.exit_code == 0, result.output
        assert "1 erased people are in the left file" in said(result)
    left = pd.read_csv(tmp_path / "meta.left.csv", dtype=str)
    assert left.to_dict("records") == [{"email": email_hash, "phone": phone_hash}]
    left_plain = pd.read_csv(tmp_path / "plain.left.csv", dtype=str)
    assert left_plain["customer_id_sha256"].tolist() == [id_hash] and left_plain["customer_id"].isna().all()
    assert email_hash not in hashes(meta, "email") and email_hash not in hashes(tmp_path / "meta.joined.csv", "email")
    written = sorted(tmp_path.glob("*.csv"))
    assert not any(v.encode() in p.read_bytes() for p in written for v in raw)  # never the values
    assert query(shop, "SELECT count(*) AS n FROM audience_removals")["n"].iloc[0] == 0
    data = store_file.read_bytes()  # emitted, then deleted, and the file rebuilt without them
    assert not any(h.encode() in data for h in (email_hash, phone_hash, id_hash))

    for fmt, out in (("meta", meta), ("plain", plain)):  # the next export: nowhere
        assert cdp(shop, "audience", "--band", "high", "--format", fmt, "--out", str(out), "--force").exit_code == 0
    assert pd.read_csv(tmp_path / "meta.left.csv").empty and pd.read_csv(tmp_path / "plain.left.csv").empty


def test_a_failed_export_leaves_the_recorded_membership_and_the_files_as_they_were(shop, tmp_path, monkeypatch):
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "meta.csv"
    assert cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(out)).exit_code == 0
    before = query(shop, "SELECT * FROM audience_members ORDER BY customer_id")
    files = {p.name: p.read_bytes() for p in folder.iterdir()}
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb")) as con:  # the audience would change
        con.execute("UPDATE customers SET consent_ads = NOT coalesce(consent_ads, false)")
    config = load_config(shop.config)
    request = AudienceRequest(name="band-high", selection=AudienceSelection(bands=("high",)), format="meta",
                              phone_region="PS")
    moves = []

    def failing_replace(self, target):
        moves.append(target)
        raise OSError("disk full")

    monkeypatch.setattr(Path, "replace", failing_replace)
    with Store(config.store.path) as store, pytest.raises(OSError, match="disk full"):
        export_audience(store, ServingSnapshot.beside(config.store.path), request, out,
                        now=pd.Timestamp("2026-11-21").to_pydatetime(), export_id="failing")
    monkeypatch.undo()
    assert moves  # it failed while moving the files into place, inside the transaction
    pd.testing.assert_frame_equal(query(shop, "SELECT * FROM audience_members ORDER BY customer_id"), before)
    assert query(shop, "SELECT count(*) AS n FROM audience_exports")["n"].iloc[0] == 1
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == files  # no temporary file left either


def test_the_email_and_plain_exports_hold_what_their_formats_promise(shop, tmp_path):
    email, plain = tmp_path / "email.csv", tmp_path / "plain.csv"
    segment = query(shop, "SELECT segment FROM scores GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1")["segment"][0]
    result = cdp(shop, "audience", "--segment", segment, "--format", "email", "--out", str(email))
    assert result.exit_code == 0, result.output
    assert cdp(shop, "audience", "--top", "50", "--format", "plain", "--out", str(plain)).exit_code == 0
    expected = query(shop, f"""SELECT c.email FROM customers c JOIN scores s USING (customer_id)
                               WHERE s.segment = '{segment}' AND c.consent_email AND c.email IS NOT NULL""")
    rows = pd.read_csv(email, dtype=str)
    assert rows.columns.tolist() == ["email", "first_name", "segment", "churn_band"]
    assert len(expected) > 10 and set(rows["email"]) == set(expected["email"]) and set(rows["segment"]) == {segment}
    listed = pd.read_csv(plain, dtype={"customer_id": str})
    assert listed["rank"].tolist() == list(range(1, 51))
    recorded = query(shop, "SELECT * FROM audience_members WHERE format = 'plain'")
    assert set(recorded["customer_id"]) == set(listed["customer_id"]) and recorded["email_sha256"].isna().all()


def test_a_store_that_was_never_scored_is_refused_with_the_command_to_run(shop, tmp_path):
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb")) as con:
        con.execute("DROP TABLE scores")
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "has no scores yet: run `cdp score` first" in said(result)
    assert not list(tmp_path.glob("*.csv"))


def test_explicit_out_files_are_not_replaced_without_force_and_must_be_csv(shop, tmp_path):
    (tmp_path / "a.left.csv").write_text("x")
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(tmp_path / "a.csv"))
    assert result.exit_code == 1 and "a.left.csv exists; pass --force to replace it" in said(result)
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(tmp_path / "a.xlsx"))
    assert result.exit_code == 1 and "audiences are CSV files" in said(result)


def test_without_out_the_export_lands_beside_the_store_and_is_replaced_each_time(shop):
    for _ in range(2):
        result = cdp(shop, "audience", "--band", "high", "--format", "google")
        assert result.exit_code == 0, result.output
    folder = shop.root / "shop" / "audiences"
    assert sorted(p.name for p in folder.iterdir()) == ["band-high.google.csv", "band-high.google.joined.csv",
                                                        "band-high.google.left.csv"]
    assert hashes(folder / "band-high.google.csv", "Email")



def test_a_store_unified_before_consent_ads_existed_is_asked_to_unify_again(shop, tmp_path):
    with duckdb.connect(str(shop.root / "shop" / "cdp.duckdb")) as con:
        con.execute("ALTER TABLE customers DROP COLUMN consent_ads")
    result = cdp(shop, "audience", "--band", "high", "--format", "meta", "--out", str(tmp_path / "x.csv"))
    assert result.exit_code == 1 and "run `cdp unify` (or `cdp refresh`) first" in said(result)
