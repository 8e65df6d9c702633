"""The real CDNOW transactions land as they are, through the shipped examples/cdnow/cdp.toml.

What the file holds is worked out here by reading it with plain Python (split each line
on whitespace), independently of the ingest code; the published figures (69,659
purchases by 23,570 customers) are checked too.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from cdp.config import load_config
from profiles.ingest import ingest
from profiles.unify import unify
from store.duckdb_store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "cdnow" / "cdp.toml"
NOW = datetime(2024, 7, 1)


@pytest.fixture(scope="module")
def config():
    config = load_config(EXAMPLE)
    path = config.sources[0].path
    assert path.is_file(), f"CDNOW data not found at {path.resolve()}: clone cdp-ml with ../shared beside it"
    return config


@pytest.fixture(scope="module")
def truth(config):
    """The file read without our code: one tuple of strings per data line."""
    lines = config.sources[0].path.read_bytes().split(b"\r\n")
    assert lines[0].split() == [b"customer_id", b"date", b"number_of_cds", b"dollar_value"]
    assert lines[-1] == b""
    return [tuple(v.decode() for v in line.split()) for line in lines[1:-1]]


@pytest.fixture(scope="module")
def store(config, tmp_path_factory):
    path = tmp_path_factory.mktemp("cdnow") / "cdnow.duckdb"  # not the example's own store file
    with Store(path) as store:
        reports = ingest(store, config, now=NOW, run_id="ingest-1")
        again = ingest(store, config, now=NOW, run_id="ingest-2")
        unified = unify(store, config, now=NOW, run_id="unify-1")
        yield store, reports, again, unified


def test_the_file_is_what_the_literature_says(truth):
    assert len(truth) == 69_659
    assert len({row[0] for row in truth}) == 23_570
    repeats = Counter(truth)
    assert sum(n - 1 for n in repeats.values()) == 255  # 215 distinct lines appear more than once


def test_every_row_lands_with_zero_rejects(store, truth):
    store, (report,), _, _ = store
    assert (report.rows_read, report.accepted, report.rejected, report.added) == (len(truth), len(truth), 0, len(truth))
    assert store.count("source_orders") == 69_659
    assert store.count("rejects") == 0


def test_values_land_as_written(store, truth):
    store, _, _, _ = store
    got = store.frame("""
        SELECT count(DISTINCT customer_key) AS customers, sum(quantity) AS cds, round(sum(amount), 2) AS dollars,
               count(*) FILTER (WHERE amount = 0) AS free, min(timestamp) AS first, max(timestamp) AS last
        FROM source_orders""").iloc[0]
    assert got["customers"] == len({r[0] for r in truth}) == 23_570
    assert got["cds"] == sum(int(r[2]) for r in truth)
    assert got["dollars"] == round(sum(float(r[3]) for r in truth), 2)
    assert got["free"] == sum(1 for r in truth if float(r[3]) == 0) > 0  # $0.00 purchases are valid
    assert (got["first"], got["last"]) == (datetime(1997, 1, 1), datetime(1998, 6, 30))

    # Customer 00003, row by row, ids as written (leading zeros kept).
    rows = store.frame("""SELECT customer_key, strftime(timestamp, '%Y%m%d') AS day, quantity, amount
                          FROM source_orders WHERE customer_key = '00003' ORDER BY row_number""")
    expected = [(r[0], r[1], int(r[2]), float(r[3])) for r in truth if r[0] == "00003"]
    assert list(rows.itertuples(index=False, name=None)) == expected


def test_identical_lines_are_separate_purchases(store, truth):
    store, _, _, _ = store
    stored = store.frame("""SELECT customer_key, strftime(timestamp, '%Y%m%d') AS day, quantity, amount, count(*) AS n
                            FROM source_orders GROUP BY ALL HAVING count(*) > 1""")
    landed = {(r.customer_key, r.day, r.quantity, r.amount): r.n for r in stored.itertuples()}
    in_file = Counter((r[0], r[1], int(r[2]), float(r[3])) for r in truth)
    assert landed == {k: n for k, n in in_file.items() if n > 1}


def test_re_ingesting_the_file_adds_nothing(store):
    _, _, (again,), _ = store
    assert again.skipped and (again.added, again.updated, again.unchanged) == (0, 0, 69_659)


def test_unify_finds_one_customer_per_cdnow_id(store):
    store, _, _, unified = store
    assert (unified.records, unified.customers) == (69_659, 23_570)
    assert store.count("customers") == 23_570
    pairs = store.frame("""SELECT DISTINCT m.customer_id, o.customer_key
                           FROM record_map m JOIN source_orders o USING (source, source_key)""")
    assert len(pairs) == pairs["customer_id"].nunique() == pairs["customer_key"].nunique() == 23_570
