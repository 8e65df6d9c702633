"""No email, phone or name of the sample's people reaches MLflow, the CLI's output or the service's log.

The sample shop of `trained_shop` went through the whole pipeline (sample, ingest, unify,
train all, score); its people's identifiers are known from the generator's ground truth
(truth/identifiers.csv) and its source files (names as the CRM and the lead forms wrote
them). Every byte MLflow keeps (the SQLite database, each run's params, metrics, tags,
artifacts, logged models and input examples), every line the CLI printed and every line
the service logged while answering requests is searched for them.

Names are searched as full names ("Layla Haddad", either order): a first name alone
("Anna", "Martin") also occurs in ordinary text and would make the test fail for nothing.
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest


def _real_phone(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return len(digits) >= 9 and len(set(digits)) >= 4


def _identifiers(shop: Path) -> dict[str, set[str]]:
    truth = pd.read_csv(shop / "truth" / "identifiers.csv", dtype=str)
    emails = {v.strip().lower() for v in truth.loc[truth["id_type"] == "email", "value"] if len(v.strip()) > 5}
    phones = {v for v in truth.loc[truth["id_type"] == "phone", "value"] if _real_phone(v)}
    raw_phones, names = set(), set()
    for name, first, last, phone in (("crm_customers.csv", "first_name", "last_name", "phone"),
                                     ("facebook_leads.csv", "first_name", "last_name", "phone")):
        with open(shop / name, encoding="utf-8-sig", newline="") as source:
            for row in csv.DictReader(source):
                if row[first].strip() and row[last].strip():
                    names |= {f"{row[first].strip()} {row[last].strip()}", f"{row[last].strip()} {row[first].strip()}"}
                if _real_phone(row[phone]):  # not a placeholder such as 0000000000
                    raw_phones.add(row[phone].strip())
    return {"email": emails, "phone": phones | raw_phones, "name": names}


def _found(text: str, identifiers: dict[str, set[str]]) -> list[str]:
    lowered = text.lower()
    hits = [f"email {e}" for e in identifiers["email"] if e in lowered]
    hits += [f"phone {p}" for p in identifiers["phone"] if p in text]
    hits += [f"name {n}" for n in identifiers["name"] if n in text]
    return hits


@pytest.fixture(scope="module")
def identifiers(trained_shop):
    found = _identifiers(trained_shop.config.parent)
    # The search must have something to find: the sample has hundreds of each.
    assert min(len(v) for v in found.values()) > 100, {k: len(v) for k, v in found.items()}
    return found


def test_the_search_finds_an_identifier_where_there_is_one(identifiers):
    email, phone, name = (sorted(identifiers[k])[0] for k in ("email", "phone", "name"))
    assert len(_found(f"x {email.upper()} {phone} {name} y", identifiers)) >= 3


def test_nothing_mlflow_keeps_holds_an_email_phone_or_name(trained_shop, identifiers):
    files = [p for p in (trained_shop.root / "mlruns").rglob("*") if p.is_file()]
    assert any(p.suffix == ".db" for p in files) and any("artifacts" in p.parts for p in files)
    for path in files:
        hits = _found(path.read_bytes().decode("utf-8", errors="replace"), identifiers)
        assert not hits, f"{path.relative_to(trained_shop.root)}: {hits[:3]}"


def test_the_pipeline_output_holds_no_email_phone_or_name(trained_shop, identifiers):
    text = (trained_shop.root / "cli.log").read_text(encoding="utf-8")
    for command in ("sample", "ingest", "unify", "train all", "score"):
        assert f"$ cdp {command}" in text
    assert not _found(text, identifiers)


def test_the_service_log_holds_no_email_phone_or_name_after_answering(server, trained_shop, identifiers):
    ids = pd.read_parquet(trained_shop.snapshot, columns=["customer_id"])["customer_id"].astype(str).tolist()[:30]
    for customer_id in ids:
        assert server.post("/score", {"customer_id": customer_id}).status == 200
    assert server.post("/score_batch", {"customer_ids": ids}).status == 200
    assert server.post("/score_features", {"features": {"recency_days": 12.0, "country": "PS"}}).status == 200
    an_email = sorted(identifiers["email"])[0]
    assert server.post("/score_features", {"features": {"email": an_email}}).status == 400
    assert server.post("/score", {"name": sorted(identifiers["name"])[0]}).status == 400
    assert not _found(server.log_text(), identifiers)
