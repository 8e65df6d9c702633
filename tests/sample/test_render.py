"""The CRM export looks like a real one: BOM, zero-padded ids, mixed styles, duplicate rows."""

from __future__ import annotations

from tests.sample.conftest import normalize_identifier, read, source_with_truth


def test_crm_export_has_a_bom_and_string_ids_with_leading_zeros(sample):
    raw = (sample / "crm_customers.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfcustomer_id,")
    crm = read(sample, "crm_customers")
    assert crm["customer_id"].str.fullmatch(r"\d{6}").all()
    assert crm["customer_id"].iloc[0] == "000001"
    assert set(crm["consent_email"]) <= {"yes", "no", "true", "false", "1", "0"}
    assert len(set(crm["consent_email"])) == 6, "consent is written in mixed styles"
    arabic = crm["first_name"].str.contains(r"[\u0600-\u06FF]")
    assert 0.1 < arabic.mean() < 0.6, "a mix of Arabic-script and Latin names"


def test_duplicate_crm_rows_share_an_email_or_phone_with_their_person(sample):
    crm = source_with_truth(sample, "crm_customers")
    twice = crm[crm.duplicated("person_id", keep=False)]
    assert twice["person_id"].nunique() >= 5
    for _, rows in twice.groupby("person_id"):
        emails = set(rows["email"].str.strip().str.lower()) - {""}
        phones = {normalize_identifier("crm_customers", "phone", p) for p in rows["phone"] if p and p != "0000000000"}
        assert len(emails) < len(rows["email"][rows["email"] != ""]) or len(phones) < (rows["phone"] != "").sum()
