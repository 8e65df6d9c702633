"""Identity resolution measured against the sample generator's ground truth.

The generator knows the true person behind every row. Pairwise precision is the share of
record pairs we put in one customer that truly are one person; pairwise recall the share
of true same-person pairs we put together. Both are counted over the records that carry
a usable identifier (rows whose only identifier is the shop's walk-in phone or a
placeholder are anonymous to any method and stay unlinked by design).
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from math import comb
from pathlib import Path

import pandas as pd
import pytest

from cdp.config import load_config
from profiles.ingest import ingest
from profiles.normalize import normalize_emails, normalize_phones
from profiles.unify import unify
from sample import write_sample
from store.duckdb_store import Store

END = date(2026, 10, 31)


def run(root: Path, step: int):
    config = load_config(root / "cdp.toml")
    with Store(config.store.path) as store:
        reports = ingest(store, config, now=datetime(2026, 11, step), run_id=f"i{step}")
        unify_report = unify(store, config, now=datetime(2026, 11, step), run_id=f"u{step}")
    return reports, unify_report


def table(root: Path, sql: str) -> pd.DataFrame:
    with Store(root / "cdp.duckdb", read_only=True) as store:
        return store.frame(sql)


def pair_count(sizes: pd.Series) -> int:
    return sum(comb(int(n), 2) for n in sizes)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("shop")
    write_sample(root, n_customers=2000, seed=11, end=END)
    run(root, 1)
    return root


def linked_with_truth(root: Path) -> pd.DataFrame:
    linked = table(root, "SELECT source, source_key, customer_id FROM record_map")
    truth = pd.read_csv(root / "truth" / "records.csv", dtype=str, keep_default_na=False)
    merged = linked.merge(truth[["source", "source_key", "person_id"]], on=["source", "source_key"], how="left")
    assert merged["person_id"].notna().all(), "every linked record is in the ground truth"
    return merged[merged["person_id"] != ""]


def test_pairwise_precision_and_recall_meet_the_bar(shop):
    m = linked_with_truth(shop)
    together = pair_count(m.groupby(["customer_id", "person_id"]).size())
    precision = together / pair_count(m.groupby("customer_id").size())
    recall = together / pair_count(m.groupby("person_id").size())
    assert precision >= 0.99, precision
    assert recall >= 0.98, recall


def test_every_record_with_a_usable_identifier_is_linked(shop):
    unlinked = table(shop, """
        SELECT s.source, s.source_key FROM source_orders s
        LEFT JOIN record_map m USING (source, source_key)
        WHERE m.customer_id IS NULL""")
    excluded = set(table(shop, "SELECT id_value FROM identifier_exclusions")["id_value"])
    orders = table(shop, "SELECT source, source_key, email_norm, phone_norm, external_id FROM source_orders")
    lonely = orders.merge(unlinked, on=["source", "source_key"])
    # Each unlinked order carries nothing but excluded identifiers.
    for row in lonely.itertuples():
        for value in (row.email_norm, row.phone_norm, row.external_id):
            assert pd.isna(value) or value in excluded


def test_junk_identifiers_are_excluded_and_never_glue_two_people(shop):
    junk = pd.read_csv(shop / "truth" / "junk_identifiers.csv", dtype=str)
    expected = set(normalize_emails(junk.loc[junk["id_type"] == "email", "value"]).dropna())
    expected |= set(normalize_phones(junk.loc[junk["id_type"] == "phone", "value"], "PS").dropna())
    used = set(table(shop, "SELECT email_norm AS v FROM source_customers UNION SELECT phone_norm FROM source_customers "
                           "UNION SELECT email_norm FROM source_orders "
                           "UNION SELECT phone_norm FROM source_orders")["v"].dropna())
    excluded = set(table(shop, "SELECT id_value FROM identifier_exclusions")["id_value"])
    assert expected & used, "the sample does use junk identifiers"
    assert (expected & used) <= excluded
    m = linked_with_truth(shop)
    persons_per_customer = m.groupby("customer_id")["person_id"].nunique()
    assert persons_per_customer.max() == 1


def test_reingesting_the_same_files_changes_nothing(shop, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(shop, copy)
    before = table(copy, "SELECT * FROM record_map ORDER BY source, source_key")
    reports, report = run(copy, 2)
    assert all(r.added == 0 and r.updated == 0 and r.unchanged == r.accepted for r in reports)
    assert report.new_customers == report.merged_ids == report.split_ids == 0
    after = table(copy, "SELECT * FROM record_map ORDER BY source, source_key")
    pd.testing.assert_frame_equal(before, after)


def test_ids_stay_stable_when_new_data_arrives(tmp_path):
    full = tmp_path / "full"
    write_sample(full, n_customers=1500, seed=5, end=END)
    grow = tmp_path / "grow"
    shutil.copytree(full, grow)
    # First the oldest 70 % of every file, then the whole files.
    for csv in full.glob("*.csv"):
        text = csv.read_bytes().decode("utf-8-sig").splitlines(keepends=True)
        header, rows = text[0], text[1:]
        (grow / csv.name).write_text(header + "".join(rows[: int(len(rows) * 0.7)]), encoding="utf-8")
    run(grow, 1)
    first = table(grow, "SELECT source, source_key, customer_id AS first_id FROM record_map")
    for csv in full.glob("*.csv"):
        shutil.copy(csv, grow / csv.name)
    _, report = run(grow, 2)
    assert report.new_customers > 0
    second = table(grow, "SELECT source, source_key, customer_id AS second_id FROM record_map")
    registry = table(grow, "SELECT customer_id AS first_id, status, merged_into FROM customer_ids")
    both = first.merge(second, on=["source", "source_key"]).merge(registry, on="first_id")
    assert len(both) == len(first)
    kept = both["first_id"] == both["second_id"]
    merged = (both["status"] == "merged") & (both["merged_into"] == both["second_id"])
    assert (kept | merged).all()
    assert kept.mean() > 0.97
    # Every id from the first run that no longer appears was merged, and the merge is on record.
    gone = set(first["first_id"]) - set(second["second_id"])
    history = table(grow, "SELECT customer_id FROM id_events WHERE event = 'merged'")
    assert gone == set(history["customer_id"])
