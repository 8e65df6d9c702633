"""`cdp ingest` as a specification: what lands, what is rejected and why, what is an error.

Every case is a small file written here with its outcome worked out by hand: either the
exception and what its message names, or exactly which data rows land in the source
table and which land in `rejects` (with the column their reason names). Whatever happens,
rows accepted + rows rejected = rows read: nothing is dropped silently.
"""

from __future__ import annotations

import codecs
import json
import signal
import subprocess
import sys
import time
import unicodedata
from dataclasses import dataclass

import pandas as pd
import pytest

from cdp.errors import ConfigError, SourceError
from profiles.validate import NOT_SHOWN
from store.duckdb_store import Store

COLUMNS = {"customer_key": "id", "timestamp": "ts", "amount": "amount"}


def orders(**options) -> dict:
    """The [[sources]] entry of an orders file `orders.csv` named 'shop'."""
    return {"name": "shop", "kind": "orders", "path": "orders.csv", "columns": COLUMNS} | options


def customers(**options) -> dict:
    columns = {"source_key": "id", "first_name": "first", "last_name": "last", "email": "email"}
    return {"name": "crm", "kind": "customers", "path": "customers.csv", "columns": columns} | options


def csv(*lines: str) -> str:
    return "".join(line + "\n" for line in lines)


# The bad-input corpus ------------------------------------------------------------------

@dataclass(frozen=True)
class Lands:
    """These data rows land in the source table; these land in `rejects`, each reason containing the text."""

    accepted: tuple[int, ...]
    rejected: dict[int, str]


@dataclass(frozen=True)
class Fails:
    """The run fails with this error, whose message names the source, the file and these."""

    error: type
    says: tuple[str, ...]


BIG = "x" * (1 << 20)  # a 1 MB field

CORPUS = [
    pytest.param(csv("id,when,amount", "1,2024-01-01,5"), {},
                 Fails(SourceError, ("column(s) 'ts' not found", "the file has 'id', 'when', 'amount'")),
                 id="missing-column"),
    pytest.param(csv("id;ts;amount", "1;2024-01-01;5"), {},
                 Fails(SourceError, ("'id', 'ts', 'amount' not found", "set delimiter = ';'")),
                 id="wrong-delimiter"),
    pytest.param("", {}, Fails(SourceError, ("is empty",)), id="empty-file"),
    pytest.param(None, {}, Fails(SourceError, ("not found",)), id="missing-file"),
    pytest.param(csv("id,ts,amount"), {}, Lands((), {}), id="header-only"),
    pytest.param("id,ts,amount", {}, Lands((), {}), id="header-only-no-final-newline"),
    pytest.param(codecs.BOM_UTF8 + csv("id,ts,amount", "1,2024-01-01,5").encode(), {}, Lands((1,), {}),
                 id="utf8-bom"),
    pytest.param(csv("id,ts,amount", "1,2024-01-01,5", "2,2024-01-02,6").encode("utf-16"), {}, Lands((1, 2), {}),
                 id="utf16"),
    pytest.param(csv("id,ts,amount",
                     "1,2024-01-15,5",
                     "2,not a date,5",
                     "3,2024-02-30,5",
                     "4,2024-13-01,5",
                     "5,31/01/2024,5",
                     "6,,5",
                     "7,1850-01-01,5",
                     "8,2024-02-29 23:59:59,5",
                     "9,now,5",
                     "10,today,5"), {},
                 Lands((1, 8), {2: f"timestamp (column 'ts') {NOT_SHOWN} is not an ISO 8601 date",
                                3: "timestamp (column 'ts') '2024-02-30' is not an ISO 8601 date",
                                4: "timestamp (column 'ts') '2024-13-01' is not",
                                5: "timestamp (column 'ts') '31/01/2024' is not",
                                6: "timestamp (column 'ts') is empty",
                                7: "timestamp (column 'ts') '1850-01-01' is not",
                                9: f"timestamp (column 'ts') {NOT_SHOWN} is not",  # not the clock at ingest time
                                10: f"timestamp (column 'ts') {NOT_SHOWN} is not"}),
                 id="garbage-dates"),
    pytest.param(csv("id,ts,amount", "1,19970230,5", "2,19970131,5", "3,1997-01-31,5", "4,now,5"),
                 {"timestamp_format": "%Y%m%d"},
                 Lands((2,), {1: "timestamp (column 'ts') '19970230' is not a date/time in timestamp_format '%Y%m%d'",
                              3: "timestamp (column 'ts') '1997-01-31' is not a date/time in timestamp_format",
                              4: "timestamp (column 'ts')"}),
                 id="feb-30-with-timestamp-format"),
    pytest.param(csv("id,ts,amount",
                     "1,2024-01-01,NaN",
                     "2,2024-01-01,inf",
                     "3,2024-01-01,-inf",
                     "4,2024-01-01,-5",
                     "5,2024-01-01,abc",
                     '6,2024-01-01,"12,50"',
                     "7,2024-01-01,",
                     "8,2024-01-01,0.00",
                     "9,2024-01-01,12.50",
                     "10,2024-01-01, 7 ",
                     "11,2024-01-01,1e400"), {},
                 Lands((8, 9, 10), {1: "amount (column 'amount') 'NaN' is not a number",
                                    2: "amount (column 'amount') 'inf' is not a number",
                                    3: "amount (column 'amount') '-inf' is not a number",
                                    4: "amount (column 'amount') is negative",
                                    5: f"amount (column 'amount') {NOT_SHOWN} is not a number",
                                    6: "amount (column 'amount') '12,50' is not a number",
                                    7: "amount (column 'amount') is empty",
                                    11: "amount (column 'amount')"}),
                 id="nan-inf-negative-text-amounts"),
    pytest.param(csv("id,ts,amount,n", "1,2024-01-01,5,2", "2,2024-01-01,5,2.5", "3,2024-01-01,5,-1",
                     "4,2024-01-01,5,"),
                 {"columns": COLUMNS | {"quantity": "n"}},
                 Lands((1, 4), {2: "quantity (column 'n') '2.5' is not a whole number >= 0",
                                3: "quantity (column 'n') '-1' is not a whole number >= 0"}),
                 id="quantities"),
    pytest.param(csv("id,ts,amount", "7,2024-01-01,5", "7,2024-01-01,5"), {}, Lands((1, 2), {}),
                 id="identical-rows-without-source-key-both-land"),
    pytest.param(csv("order,id,ts,amount", "1001,7,2024-01-01,5", "1002,8,2024-01-01,6", "1001,9,2024-01-02,7"),
                 {"columns": COLUMNS | {"source_key": "order"}},
                 Lands((1, 2), {3: "source_key (column 'order') '1001' already used by row 1"}),
                 id="duplicate-source-key"),
    pytest.param(csv("id,ts,amount,note", "1,2024-01-01,5,a", f"{BIG},2024-01-01,6,b", "3,2024-01-01,7,c"), {},
                 Lands((1, 3), {2: "customer_key (column 'id') is longer than 4096 characters"}),
                 id="1mb-field-in-a-mapped-column"),
    pytest.param(csv("id,ts,amount,note", "1,2024-01-01,5,a", f"2,2024-01-01,6,{BIG}", "3,2024-01-01,7,c"), {},
                 Lands((1, 2, 3), {}),
                 id="1mb-field-in-an-unmapped-column"),
    pytest.param(csv("id,ts,amount,category", "1,2024-01-01,5,café").encode()
                 + csv("2,2024-01-01,6,café").encode("latin-1")
                 + csv("3,2024-01-01,7,زيت").encode(),
                 {"columns": COLUMNS | {"category": "category"}},
                 Lands((1, 3), {2: "column(s) 'category' not valid UTF-8"}),
                 id="latin1-line-among-utf8"),
    pytest.param(csv("id,ts,amount", "1,2024-01-01,5", "2,2024-01-01", "3,2024-01-01,5,x", "4,2024-01-01,5"), {},
                 Lands((1, 4), {2: "expected 3 fields, found 2", 3: "expected 3 fields, found 4"}),
                 id="wrong-number-of-fields"),
    pytest.param(csv("id,ts,amount", "1,2024-01-01,5", ",2024-01-01,5", " ,2024-01-01,5"), {},
                 Lands((1,), {2: "no usable identifier: 'id' all empty or invalid",
                              3: "no usable identifier: 'id' all empty or invalid"}),
                 id="orders-row-without-identifier"),
    pytest.param(csv("email,phone,ts,amount",
                     "not-an-email,12,2024-01-01,5",
                     "layla@mail.ps,,2024-01-01,5",
                     ",0598123456,2024-01-01,5",
                     "layla@,+1 555,2024-01-01,5"),
                 {"columns": {"email": "email", "phone": "phone", "timestamp": "ts", "amount": "amount"},
                  "default_phone_region": "PS"},
                 Lands((2, 3), {1: "no usable identifier: 'email', 'phone' all empty or invalid",
                                4: "no usable identifier"}),
                 id="invalid-only-identifiers"),
    pytest.param(csv("id,ts,amount", ",,"), {},
                 Lands((), {1: "timestamp (column 'ts') is empty; amount (column 'amount') is empty; "
                                "no usable identifier: 'id' all empty or invalid"}),
                 id="a-row-of-empty-fields-gets-every-reason"),
]


@pytest.mark.parametrize("content, options, outcome", CORPUS)
def test_bad_input_corpus(project, content, options, outcome):
    if content is not None:
        project.write("orders.csv", content)
    config = project.config(orders(**options))
    if isinstance(outcome, Fails):
        with pytest.raises(outcome.error) as caught:
            project.ingest(config)
        message = str(caught.value)
        assert "source 'shop'" in message and str(project.root / "orders.csv") in message
        for text in outcome.says:
            assert text in message
        assert all(table.empty for table in project.tables().values())
        return

    report = project.ingest(config)["shop"]
    assert report.rows_read == len(outcome.accepted) + len(outcome.rejected)
    assert (report.accepted, report.rejected) == (len(outcome.accepted), len(outcome.rejected))
    landed = project.query("SELECT row_number FROM source_orders ORDER BY row_number")["row_number"].tolist()
    assert landed == list(outcome.accepted)
    rejects = project.query("SELECT row_number, reason, raw FROM rejects ORDER BY row_number")
    assert rejects["row_number"].tolist() == sorted(outcome.rejected)
    for row in rejects.itertuples():
        assert outcome.rejected[row.row_number] in row.reason
        assert row.raw  # the raw row is kept beside the reason


def test_a_rejected_row_keeps_its_raw_values_as_written(project):
    project.write("orders.csv", csv("id,ts,amount,note", '00004,2024-01-01,"12,50",خصم'))
    project.ingest(project.config(orders()))
    (raw,) = project.query("SELECT raw FROM rejects")["raw"]
    assert json.loads(raw) == {"id": "00004", "ts": "2024-01-01", "amount": "12,50", "note": "خصم"}


# Values: identifiers, names, booleans, returns, time zones -----------------------------

def test_customer_key_is_kept_as_the_string_written(project):
    project.write("orders.csv", csv("id,ts,amount", "00004,2024-01-01,5", "4,2024-01-02,6", "0004.0,2024-01-03,7"))
    project.ingest(project.config(orders()))
    stored = project.query("SELECT customer_key FROM source_orders ORDER BY row_number")["customer_key"].tolist()
    assert stored == ["00004", "4", "0004.0"]


def test_arabic_and_latin_names_round_trip_exactly(project):
    decomposed = unicodedata.normalize("NFD", "Zoë")  # 'e' + combining diaeresis: must not be re-normalized
    people = [("1", "محمد", "العلي"), ("2", "José", "Müller-Lüdenscheidt"), ("3", "Ὀδυσσεύς", "Ñúñez"),
              ("4", decomposed, "Ørsted"), ("5", "عبد الله", "O'Neil")]
    lines = ["id,first,last,email"] + [f"{key},{first},{last},p{key}@mail.ps" for key, first, last in people]
    project.write("customers.csv", codecs.BOM_UTF8 + csv(*lines).encode())
    report = project.ingest(project.config(customers()))["crm"]
    assert (report.accepted, report.rejected) == (5, 0)
    stored = project.query("SELECT source_key, first_name, last_name FROM source_customers ORDER BY source_key")
    assert list(stored.itertuples(index=False, name=None)) == people


def test_booleans_accept_yes_no_true_false_1_0_in_any_case(project):
    lines = ["id,news"] + [f"{i},{v}" for i, v in enumerate(
        ["yes", "no", "true", "false", "1", "0", "YES", "False", "Y", "n", "", "maybe", "2"], start=1)]
    project.write("customers.csv", csv(*lines))
    project.ingest(project.config(customers(columns={"source_key": "id", "consent_email": "news"})))
    stored = project.query("SELECT CAST(source_key AS INT) AS k, consent_email FROM source_customers ORDER BY k")
    consent = [None if pd.isna(v) else v for v in stored["consent_email"]]
    assert consent == [True, False, True, False, True, False, True, False, True, False, None]
    rejects = project.query("SELECT row_number, reason FROM rejects ORDER BY row_number")
    assert rejects.to_dict("records") == [
        {"row_number": 12, "reason": f"consent_email (column 'news') is {NOT_SHOWN} not yes/no/true/false/1/0"},
        {"row_number": 13, "reason": "consent_email (column 'news') is '2' not yes/no/true/false/1/0"},
    ]


def test_a_negative_amount_is_accepted_only_on_a_return(project):
    project.write("orders.csv", csv("id,ts,amount,ret", "1,2024-01-01,-5,yes", "2,2024-01-01,-5,no",
                                    "3,2024-01-01,-5,", "4,2024-01-01,5,no"))
    project.ingest(project.config(orders(columns=COLUMNS | {"is_return": "ret"})))
    stored = project.query("SELECT row_number, amount, is_return FROM source_orders ORDER BY row_number")
    assert list(stored.itertuples(index=False, name=None)) == [(1, -5.0, True), (4, 5.0, False)]
    rejects = project.query("SELECT row_number, reason FROM rejects ORDER BY row_number")
    assert rejects["row_number"].tolist() == [2, 3]
    assert all(r == "amount (column 'amount') is negative; mark returns with is_return" for r in rejects["reason"])


@pytest.mark.parametrize("options, values, utc", [
    pytest.param({}, ["2024-06-01T10:00:00+02:00", "2024-06-01T10:00:00Z", "2024-06-01 10:00:00-05:30"],
                 ["2024-06-01 08:00:00", "2024-06-01 10:00:00", "2024-06-01 15:30:00"],
                 id="an-explicit-offset-is-converted"),
    # Hebron is UTC+2 in winter, UTC+3 in summer.
    pytest.param({"timezone": "Asia/Hebron"}, ["2024-01-15 10:00", "2024-07-15 10:00", "2024-07-15T10:00:00+00:00"],
                 ["2024-01-15 08:00:00", "2024-07-15 07:00:00", "2024-07-15 10:00:00"],
                 id="naive-values-are-read-in-the-source-timezone"),
    pytest.param({"timezone": "Asia/Hebron"}, ["2024-01-15", "2024-01-15 00:00", "2024-01-15T00:00:00+02:00"],
                 ["2024-01-14 22:00:00"] * 3,
                 id="a-date-alone-is-local-midnight"),
    pytest.param({"timezone": "Asia/Hebron", "timestamp_format": "%d/%m/%Y %H:%M"},
                 ["15/01/2024 10:00", "15/07/2024 10:00"], ["2024-01-15 08:00:00", "2024-07-15 07:00:00"],
                 id="timestamp-format-in-the-source-timezone"),
    pytest.param({"timezone": "Asia/Hebron", "timestamp_format": "%Y-%m-%d %H:%M %z"},
                 ["2024-06-01 10:00 +0200", "2024-06-01 10:00 +0000"], ["2024-06-01 08:00:00", "2024-06-01 10:00:00"],
                 id="timestamp-format-with-z-and-different-offsets"),
    # Berlin, 27 Oct 2024: 02:30 happens twice (CEST, then CET); read as the first, like Python's fold=0.
    # 31 Mar 2024: 02:30 does not exist; moved to the end of the gap, 03:00 CEST.
    pytest.param({"timezone": "Europe/Berlin"}, ["2024-10-27 02:30", "2024-10-27 03:30", "2024-03-31 02:30"],
                 ["2024-10-27 00:30:00", "2024-10-27 02:30:00", "2024-03-31 01:00:00"],
                 id="daylight-saving-fold-and-gap"),
])
def test_timestamps_are_stored_in_utc(project, options, values, utc):
    project.write("orders.csv", csv("id,ts,amount", *[f"{i},{v},5" for i, v in enumerate(values, start=1)]))
    report = project.ingest(project.config(orders(**options)))["shop"]
    assert report.rejected == 0
    stored = project.query("SELECT strftime(timestamp, '%Y-%m-%d %H:%M:%S') AS t FROM source_orders "
                           "ORDER BY row_number")
    assert stored["t"].tolist() == utc


def test_a_value_without_offset_under_a_format_with_z_is_rejected(project):
    project.write("orders.csv", csv("id,ts,amount", "1,2024-06-01 10:00 +0200,5", "2,2024-06-01 10:00,5"))
    project.ingest(project.config(orders(timestamp_format="%Y-%m-%d %H:%M %z")))
    rejects = project.query("SELECT row_number, reason FROM rejects")
    assert rejects.to_dict("records") == [{"row_number": 2, "reason": (
        "timestamp (column 'ts') '2024-06-01 10:00' is not a date/time in timestamp_format '%Y-%m-%d %H:%M %z'")}]


def test_a_birth_date_with_an_offset_is_rejected_without_failing_the_run(project):
    project.write("customers.csv", csv("id,born", "1,1990-01-31", "2,1990-01-31T00:00:00+02:00", "3,19900131",
                                       "4,today"))
    report = project.ingest(project.config(customers(columns={"source_key": "id", "birth_date": "born"})))["crm"]
    assert (report.accepted, report.rejected) == (2, 2)
    stored = project.query("SELECT source_key, CAST(birth_date AS VARCHAR) AS d FROM source_customers ORDER BY 1")
    assert list(stored.itertuples(index=False, name=None)) == [("1", "1990-01-31"), ("3", "1990-01-31")]
    rejects = project.query("SELECT row_number, reason FROM rejects ORDER BY 1")
    assert rejects.to_dict("records") == [
        {"row_number": 2,
         "reason": "birth_date (column 'born') '1990-01-31T00:00:00+02:00' is not an ISO date (YYYY-MM-DD)"},
        {"row_number": 4, "reason": f"birth_date (column 'born') {NOT_SHOWN} is not an ISO date (YYYY-MM-DD)"},
    ]


def test_events_may_be_anonymous_but_orders_may_not(project):
    project.write("events.csv", csv("ts,type,cookie", "2024-01-01T10:00:00Z,page_view,c1",
                                    "2024-01-01T10:01:00Z,page_view,"))
    project.write("orders.csv", csv("id,ts,amount", ",2024-01-01,5"))
    events = {"name": "web", "kind": "events", "path": "events.csv",
              "columns": {"timestamp": "ts", "event_type": "type", "anonymous_id": "cookie"}}
    reports = project.ingest(project.config(events, orders()))
    assert (reports["web"].accepted, reports["web"].rejected) == (2, 0)
    assert (reports["shop"].accepted, reports["shop"].rejected) == (0, 1)


def test_reasons_never_quote_an_email_phone_or_name_that_landed_in_a_typed_column(project):
    # Shifted columns put personal data where a number, a date or a key was expected.
    project.write("orders.csv", csv(
        "order,id,ts,amount,email",
        "A-1,1,2024-01-01,Layla Haddad,layla@mail.ps",
        "A-2,2,layla@mail.ps,5,layla@mail.ps",
        "A-3,3,+970 598 123 456,5,x@mail.ps",
        "A-4,4,2024-01-01,O'Neil; Smith,x@mail.ps",
        "layla@mail.ps,5,2024-01-01,5,x@mail.ps",
        "layla@mail.ps,6,2024-01-01,5,x@mail.ps",
        "A-7,7,2024-01-01,0598123456,x@mail.ps"))
    report = project.ingest(project.config(orders(columns=COLUMNS | {"source_key": "order", "email": "email"},
                                                   default_phone_region="PS")))["shop"]
    reasons = " | ".join(project.query("SELECT reason FROM rejects")["reason"])
    assert project.query("SELECT row_number FROM rejects ORDER BY 1")["row_number"].tolist() == [1, 2, 3, 4, 6]
    for personal in ("Layla", "layla", "Haddad", "598", "123 456", "Neil", "Smith"):
        assert personal not in reasons
        assert all(personal not in reason for reason, _ in report.top_reasons)


# Re-ingesting: idempotent, changes picked up -------------------------------------------

KEYED = orders(columns=COLUMNS | {"source_key": "order"})


def test_re_ingesting_the_same_file_adds_nothing(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,x", "3,8,2024-01-03,6"))
    config = project.config(KEYED)
    first = project.ingest(config)["shop"]
    before = project.tables()
    second = project.ingest(config)["shop"]
    after = project.tables()
    assert (first.added, first.rejected) == (2, 1)
    assert second.skipped and (second.added, second.updated, second.unchanged) == (0, 0, 2)
    for table in ("source_orders", "rejects"):
        pd.testing.assert_frame_equal(before[table], after[table])
    assert len(after["ingestions"]) == 2  # the skipped run is logged


def test_the_same_rows_saved_again_differently_add_nothing(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,8,2024-01-02,6"))
    config = project.config(KEYED)
    project.ingest(config)
    before = project.query("SELECT * FROM source_orders ORDER BY source_key")
    project.write("orders.csv", codecs.BOM_UTF8 + b"order,id,ts,amount\r\n1,7,2024-01-01,5\r\n2,8,2024-01-02,6\r\n")
    again = project.ingest(config)["shop"]
    assert not again.skipped and (again.added, again.updated, again.unchanged) == (0, 0, 2)
    pd.testing.assert_frame_equal(before, project.query("SELECT * FROM source_orders ORDER BY source_key"))


def test_a_changed_file_updates_edited_rows_and_adds_new_ones(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,6", "3,8,2024-01-03,7"))
    config = project.config(KEYED)
    project.ingest(config)
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,9.5", "3,8,2024-01-03,7",
                                    "4,9,2024-01-04,8"))
    report = project.ingest(config)["shop"]
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 2, 0)
    stored = project.query("SELECT source_key, amount FROM source_orders ORDER BY source_key")
    assert list(stored.itertuples(index=False, name=None)) == [("1", 5.0), ("2", 9.5), ("3", 7.0), ("4", 8.0)]


def test_a_file_changed_back_is_read_again_even_within_the_same_second(project):
    # Every run here has the same `now`: what was ingested last must not depend on the clock.
    config = project.config(KEYED)
    for amount, expected in (("5", (False, 1, 0)), ("6", (False, 0, 1)), ("5", (False, 0, 1)), ("5", (True, 0, 0))):
        project.write("orders.csv", csv("order,id,ts,amount", f"1,7,2024-01-01,{amount}"))
        report = project.ingest(config)["shop"]
        assert (report.skipped, report.added, report.updated) == expected
        assert project.query("SELECT amount FROM source_orders")["amount"].tolist() == [float(amount)]


def test_upsert_keeps_rows_missing_from_an_increment_and_replace_removes_them(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,6", "3,8,2024-01-03,7"))
    project.ingest(project.config(KEYED))
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "4,9,2024-01-04,8"))
    upsert = project.ingest(project.config(KEYED))["shop"]
    assert (upsert.added, upsert.removed) == (1, 0)
    keys = project.query("SELECT source_key FROM source_orders ORDER BY 1")["source_key"].tolist()
    assert keys == ["1", "2", "3", "4"]

    replace = project.ingest(project.config(KEYED | {"mode": "replace"}))["shop"]
    assert (replace.added, replace.updated, replace.removed, replace.unchanged) == (0, 0, 2, 2)
    assert project.query("SELECT source_key FROM source_orders ORDER BY 1")["source_key"].tolist() == ["1", "4"]


def test_rejects_hold_the_latest_read_of_the_file(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,x"))
    config = project.config(KEYED)
    assert project.ingest(config)["shop"].rejected == 1
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,2024-01-02,6"))
    fixed = project.ingest(config)["shop"]
    assert (fixed.rejected, fixed.added) == (0, 1)
    assert project.query("SELECT count(*) AS n FROM rejects")["n"].item() == 0


# A failed or interrupted run leaves the previous store ---------------------------------

def test_a_run_whose_second_source_fails_writes_nothing(project):
    project.write("customers.csv", csv("id,first,last,email", "1,Layla,Haddad,l@mail.ps"))
    project.write("orders.csv", csv("id,ts,amount", "1,2024-01-01,5"))
    config = project.config(customers(), orders())
    project.ingest(config)
    before = project.tables()

    project.write("customers.csv", csv("id,first,last,email", "1,Layla,Haddad,layla@mail.ps", "2,Omar,Nasser,x",
                                       "3,Sara,Khoury,s@mail.ps,extra"))
    project.write("orders.csv", csv("id,ts,total", "1,2024-01-01,5"))
    with pytest.raises(SourceError, match=r"source 'shop': file .*orders\.csv: column\(s\) 'amount' not found"):
        project.ingest(config)
    after = project.tables()
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)

    # The first source's change was real: once the second source is fixed, it lands.
    project.write("orders.csv", csv("id,ts,amount", "1,2024-01-01,5"))
    reports = project.ingest(config)
    assert (reports["crm"].added, reports["crm"].updated, reports["crm"].rejected) == (1, 1, 1)


def test_an_unknown_source_name_is_a_config_error_and_writes_nothing(project):
    project.write("orders.csv", csv("id,ts,amount", "1,2024-01-01,5"))
    config = project.config(orders())
    with pytest.raises(ConfigError, match="no source named 'shopp'"):
        project.ingest(config, "shopp")
    assert all(table.empty for table in project.tables().values())


@pytest.mark.parametrize("project", ["duckdb"], indirect=True)  # the Parquet store's kill test is in tests/store
def test_a_run_killed_mid_write_leaves_the_previous_store(project):
    project.write("orders.csv", csv("order,id,ts,amount", "1,00001,2024-01-01,5", "2,00002,2024-01-02,6"))
    config = project.config(KEYED)
    project.ingest(config)
    before = project.tables()
    store = config.store.path
    size_before = store.stat().st_size
    wal = store.with_name(store.name + ".wal")
    assert not wal.exists()

    lines = [f"{i},{i % 50_000:05d},2024-03-{1 + i % 28:02d} 10:{i % 60:02d}:00,{i % 1000}.5" for i in range(500_000)]
    project.write("orders.csv", "order,id,ts,amount\n" + "\n".join(lines) + "\n")
    run = subprocess.Popen([sys.executable, "-m", "cdp.cli", "ingest", "--config", str(project.root / "cdp.toml")],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # DuckDB writes big inserts into the database file before the commit: kill once
        # uncommitted rows are in the file and the commit has not started.
        mid_write = False
        deadline = time.monotonic() + 120
        while run.poll() is None and time.monotonic() < deadline:
            if store.stat().st_size > size_before and not wal.exists():
                mid_write = True
                break
            time.sleep(0.002)
        assert mid_write and run.poll() is None, "ingest ended before it could be killed mid-write"
        run.send_signal(signal.SIGKILL)
        assert run.wait(timeout=30) == -signal.SIGKILL
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()

    with Store(store):  # the next run opens it read-write
        pass
    after = project.tables()
    for table in before:
        pd.testing.assert_frame_equal(before[table], after[table], obj=table)


def test_an_increment_keeps_the_rejects_of_earlier_versions_until_their_key_lands(project):
    config = project.config(KEYED)
    project.write("orders.csv", csv("order,id,ts,amount", "1,7,2024-01-01,5", "2,7,bad-date,6"))
    project.ingest(config)
    # The next export holds only new orders: order 2 was never accepted, so its reject stays on record.
    project.write("orders.csv", csv("order,id,ts,amount", "3,7,2024-01-03,5"))
    project.ingest(config)
    assert project.query("SELECT source_key FROM rejects")["source_key"].tolist() == ["2"]
    # Then order 2 arrives corrected: its old reject goes.
    project.write("orders.csv", csv("order,id,ts,amount", "2,7,2024-01-02,6"))
    project.ingest(config)
    assert project.query("SELECT count(*) AS n FROM rejects")["n"].item() == 0
    assert sorted(project.query("SELECT source_key FROM source_orders")["source_key"]) == ["1", "2", "3"]


def test_a_negative_discount_is_rejected(project):
    config = project.config(orders(columns=COLUMNS | {"discount": "off"}))
    project.write("orders.csv", csv("id,ts,amount,off", "7,2024-01-01,5,1", "7,2024-01-02,5,-2"))
    report = project.ingest(config)["shop"]
    assert (report.accepted, report.rejected) == (1, 1)
    assert "discount (column 'off') is negative" in project.query("SELECT reason FROM rejects")["reason"].item()
