"""`cdp ingest` and `cdp rejects` as a user meets them: one clear line on bad input, exit
code 1, never a traceback, and never a customer's email, phone or name on the screen."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ORDERS = """[store]
path = "store.duckdb"

[[sources]]
name = "shop"
kind = "orders"
path = "orders.csv"
default_phone_region = "PS"
[sources.columns]
source_key = "order"
email = "email"
phone = "phone"
timestamp = "ts"
amount = "amount"
"""

CRM = """
[[sources]]
name = "crm"
kind = "customers"
path = "customers.csv"
default_phone_region = "PS"
[sources.columns]
source_key = "id"
first_name = "first"
last_name = "last"
email = "email"
phone = "phone"
consent_email = "news"
"""


def cdp(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = os.environ | {"COLUMNS": "400", "NO_COLOR": "1"}  # wide: a wrapped line could split a value
    return subprocess.run([sys.executable, "-m", "cdp.cli", *args, "--config", str(folder / "cdp.toml")],
                          capture_output=True, text=True, env=env, timeout=120)


def assert_one_error_line(run: subprocess.CompletedProcess, *names: str) -> str:
    assert run.returncode == 1
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
    for name in names:
        assert name in lines[0]
    return lines[0]


@pytest.mark.parametrize("config, files, names", [
    (ORDERS.replace('kind = "orders"', 'kind = "purchases"'), {}, ("source 'shop'", "kind 'purchases'")),
    (ORDERS.replace('amount = "amount"', 'amount = "amount"\nsize = "n"'), {}, ("source 'shop'", "size")),
    ("[[sources]\n", {}, ("cdp.toml", "not valid TOML")),
    (ORDERS, {}, ("source 'shop'", "orders.csv not found")),
    (ORDERS, {"orders.csv": "order,email,phone,when,amount\n1,a@b.ps,,2024-01-01,5\n"},
     ("source 'shop'", "orders.csv", "column(s) 'ts' not found")),
    (ORDERS, {"orders.csv": ""}, ("source 'shop'", "orders.csv is empty")),
], ids=["unknown-kind", "unknown-field", "bad-toml", "missing-file", "missing-column", "empty-file"])
def test_bad_input_is_one_error_line_and_exit_code_1(tmp_path, config, files, names):
    (tmp_path / "cdp.toml").write_text(config)
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    assert_one_error_line(cdp(tmp_path, "ingest"), *names)


def test_missing_config_file_is_one_error_line(tmp_path):
    assert_one_error_line(cdp(tmp_path, "ingest"), "config file", "cdp.toml", "not found")


PEOPLE = ["Layla", "Haddad", "layla.haddad@mail.ps", "0598123456", "598123456",
          "محمد", "العلي", "m.ali@mail.ps", "+970 59 222 3344", "222 3344", "O'Neil", "Smith"]


def test_no_email_phone_or_name_reaches_the_screen(tmp_path):
    (tmp_path / "cdp.toml").write_text(ORDERS + CRM)
    (tmp_path / "customers.csv").write_text(
        "id,first,last,email,phone,news\n"
        "1,Layla,Haddad,layla.haddad@mail.ps,0598123456,yes\n"
        "2,محمد,العلي,m.ali@mail.ps,+970 59 222 3344,maybe\n"       # bad consent: rejected
        "2,O'Neil,Smith,m.ali@mail.ps,,no\n"                         # duplicate key: rejected
        "3,Layla,Haddad,layla.haddad@mail.ps,0598123456,no,extra\n",  # one field too many: rejected
        encoding="utf-8")
    (tmp_path / "orders.csv").write_text(
        "order,email,phone,ts,amount\n"
        "10,layla.haddad@mail.ps,0598123456,2024-01-01,5\n"
        "11,layla.haddad@mail.ps,2024-01-01,Layla Haddad,5\n"        # shifted: a name where the amount goes
        "12,not-an-email,12,m.ali@mail.ps,5\n",                      # no usable identifier, an email as date
        encoding="utf-8")
    ingest = cdp(tmp_path, "ingest")
    rejects = cdp(tmp_path, "rejects")
    assert ingest.returncode == rejects.returncode == 0, ingest.stderr + rejects.stderr
    # What the user needs is there: the counts, the reasons, the row numbers.
    assert "rows rejected" in ingest.stdout and "cdp rejects" in ingest.stdout
    assert "consent_email (column 'news')" in rejects.stdout and "no usable identifier" in rejects.stdout
    screen = ingest.stdout + ingest.stderr + rejects.stdout + rejects.stderr
    for personal in PEOPLE:
        assert personal not in screen


def test_a_file_without_header_line_is_an_error_without_the_first_customer(tmp_path):
    (tmp_path / "cdp.toml").write_text(ORDERS)
    (tmp_path / "orders.csv").write_text("10,layla.haddad@mail.ps,0598123456,2024-01-01,5\n")
    line = assert_one_error_line(cdp(tmp_path, "ingest"), "source 'shop'", "orders.csv", "not found",
                                 "header = false")
    for personal in PEOPLE:
        assert personal not in line


def test_brackets_in_a_message_are_printed_as_written(tmp_path):
    (tmp_path / "cdp.toml").write_text(ORDERS)
    (tmp_path / "orders.csv").write_text("order,email,phone,[/x],amount\n1,a@b.ps,,2024-01-01,5\n")
    line = assert_one_error_line(cdp(tmp_path, "ingest"), "source 'shop'", "column(s) 'ts' not found")
    assert "'[/x]'" in line
