"""Reading a source file: every value arrives as the text in the file, every data row is
numbered, rows the parser cannot split are rejected with the raw line, and problems with
the file as a whole are a SourceError naming the source, the file and the column."""

from __future__ import annotations

import codecs
import gzip
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cdp.config import SourceConfig
from cdp.errors import SourceError
from profiles.read import ROW, read_source

COLUMNS = {"customer_key": "id", "timestamp": "ts", "amount": "amount"}


def source(path: Path, **options) -> SourceConfig:
    return SourceConfig(name="shop", kind="orders", path=path, columns=options.pop("columns", COLUMNS), **options)


def read(tmp_path: Path, content: str | bytes, name: str = "orders.csv", **options):
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    raw = read_source(source(path, **options))
    assert raw.rows_read == len(raw.rows) + len(raw.rejects)
    return raw


def values(raw, *columns: str) -> list[tuple]:
    return list(raw.rows[[ROW, *columns]].itertuples(index=False, name=None))


def source_error(tmp_path: Path, content: str | bytes | None, **options) -> str:
    path = tmp_path / "orders.csv"
    if content is not None:
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    with pytest.raises(SourceError) as caught:
        read_source(source(path, **options))
    message = str(caught.value)
    assert "source 'shop'" in message and str(path) in message
    return message


def test_values_arrive_as_the_text_in_the_file_and_rows_are_numbered_from_1(tmp_path):
    raw = read(tmp_path, "id,ts,amount,note\n00004,2024-01-02,  5.50 ,\n7,2024-01-03,0.00,x\n")
    assert values(raw, "id", "ts", "amount", "note") == [
        (1, "00004", "2024-01-02", "  5.50 ", ""),
        (2, "7", "2024-01-03", "0.00", "x"),
    ]
    assert raw.rejects.empty


def test_blank_lines_are_not_rows_and_a_quoted_newline_stays_inside_its_value(tmp_path):
    raw = read(tmp_path, 'id,ts,amount,note\n1,2024-01-01,1,"two\nlines"\n\n\n2,2024-01-02,2,\n')
    assert values(raw, "id", "note") == [(1, "1", "two\nlines"), (2, "2", "")]


def test_a_row_with_the_wrong_number_of_fields_is_rejected_with_its_raw_line(tmp_path):
    raw = read(tmp_path, "id,ts,amount\n1,2024-01-01,1\n2,2024-01-02\n3,2024-01-03,3,extra\n4,2024-01-04,4\n")
    assert values(raw, "id") == [(1, "1"), (4, "4")]
    assert raw.rejects.to_dict("records") == [
        {"row_number": 2, "raw": "2,2024-01-02", "reason": "expected 3 fields, found 2"},
        {"row_number": 3, "raw": "3,2024-01-03,3,extra", "reason": "expected 3 fields, found 4"},
    ]


def test_an_unclosed_quote_runs_to_the_end_and_the_swallowed_line_is_kept_in_raw(tmp_path):
    # CSV rules make everything after an unclosed quote one value; nothing is lost: the
    # following line is inside the rejected row's raw text.
    raw = read(tmp_path, 'id,ts,amount\n1,2024-01-01,1\n2,"2024-01-02,2\n3,2024-01-03,3\n')
    assert values(raw, "id") == [(1, "1")]
    assert raw.rejects["row_number"].tolist() == [2]
    assert "3,2024-01-03,3" in raw.rejects["raw"].iloc[0]


def test_whitespace_delimiter_splits_on_runs_and_ignores_leading_and_trailing_blanks(tmp_path):
    content = b"id  ts \t amount \r\n   00001 19970101   1.00\r\n00002\t19970112 \t 12.00   \r\n"
    raw = read(tmp_path, content, delimiter="whitespace", columns={"customer_key": "id", "timestamp": "ts",
                                                                  "amount": "amount"})
    assert raw.rejects.empty
    assert values(raw, "id", "ts", "amount") == [(1, "00001", "19970101", "1.00"),
                                                 (2, "00002", "19970112", "12.00")]


@pytest.mark.parametrize("content", ["id,ts,amount\n", "id,ts,amount", "id,ts,amount\r\n"])
def test_a_header_only_file_is_zero_rows_not_an_error(tmp_path, content):
    raw = read(tmp_path, content)
    assert raw.rows_read == 0 and raw.rows.empty and raw.rejects.empty


def test_a_utf8_bom_does_not_stick_to_the_first_column_name(tmp_path):
    raw = read(tmp_path, codecs.BOM_UTF8 + "id,ts,amount\n1,2024-01-01,5\n".encode())
    assert values(raw, "id", "amount") == [(1, "1", "5")]


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be"])
def test_utf16_files_with_a_bom_are_read_as_text(tmp_path, codec):
    text = "id,ts,amount,name\n1,2024-01-01,5,سلمى\n2,2024-01-02,6,Zoë\n"
    data = text.encode(codec) if codec == "utf-16" else codecs.BOM_UTF16_BE + text.encode(codec)
    raw = read(tmp_path, data)
    assert values(raw, "id", "name") == [(1, "1", "سلمى"), (2, "2", "Zoë")]


def test_a_latin1_line_among_utf8_lines_is_rejected_naming_its_column(tmp_path):
    content = ("id,ts,amount,name\n1,2024-01-01,5,José\n".encode("utf-8")
               + "2,2024-01-02,6,José\n".encode("latin-1")
               + "3,2024-01-03,7,Ωmega\n".encode("utf-8"))
    raw = read(tmp_path, content)
    assert values(raw, "id", "name") == [(1, "1", "José"), (3, "3", "Ωmega")]
    (reject,) = raw.rejects.to_dict("records")
    assert reject["row_number"] == 2
    assert reject["reason"] == "column(s) 'name' not valid UTF-8 text (save the file as UTF-8)"
    assert json.loads(reject["raw"])["id"] == "2"


def test_gzipped_csv_is_read_like_the_plain_file(tmp_path):
    raw = read(tmp_path, gzip.compress(b"id,ts,amount\n1,2024-01-01,5\n"), name="orders.csv.gz")
    assert values(raw, "id", "amount") == [(1, "1", "5")]


def test_header_false_uses_the_configured_names_and_row_1_is_the_first_line(tmp_path):
    raw = read(tmp_path, "1,2024-01-01,5\n2,2024-01-02,6\n", header=False, names=("id", "ts", "amount"))
    assert values(raw, "id", "ts") == [(1, "1", "2024-01-01"), (2, "2", "2024-01-02")]


def test_parquet_typed_columns_arrive_as_the_text_a_csv_would_hold(tmp_path):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({
        "id": ["00004", None],
        "ts": pa.array([pd.Timestamp("2024-01-02 03:04:05"), pd.Timestamp("2024-02-01")], pa.timestamp("us")),
        "amount": [5.5, 0.0],
    }), path)
    raw = read_source(source(path))
    assert values(raw, "id", "ts", "amount") == [(1, "00004", "2024-01-02T03:04:05", "5.5"),
                                                 (2, "", "2024-02-01T00:00:00", "0")]


# Problems with the file as a whole ------------------------------------------------------

def test_missing_file(tmp_path):
    assert "not found" in source_error(tmp_path, None)


@pytest.mark.parametrize("content", ["", "\n\n", "  \r\n"])
def test_empty_file(tmp_path, content):
    assert "is empty: expected a header line" in source_error(tmp_path, content)


def test_missing_column_names_the_column_and_lists_what_the_file_has(tmp_path):
    message = source_error(tmp_path, "id,when,amount\n1,2024-01-01,5\n")
    assert "column(s) 'ts' not found; the file has 'id', 'when', 'amount'" in message


@pytest.mark.parametrize("delimiter, expected", [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_a_wrong_delimiter_is_named_in_the_hint(tmp_path, delimiter, expected):
    header = delimiter.join(["id", "ts", "amount"])
    message = source_error(tmp_path, f"{header}\n1{delimiter}2024-01-01{delimiter}5\n")
    assert "'id', 'ts', 'amount' not found" in message
    assert f"the header looks {expected}-delimited: set delimiter = {expected} in cdp.toml" in message


def test_a_file_without_header_line_does_not_put_the_first_customer_into_the_message(tmp_path):
    message = source_error(tmp_path, "layla.haddad@mail.com,+970598123456,Layla,2024-01-01,5\n")
    for personal in ("layla", "Layla", "598123456"):
        assert personal not in message
    assert "'id', 'ts', 'amount' not found" in message
    assert "header = false and names = [...]" in message


def test_a_mapped_column_twice_in_the_header_is_an_error(tmp_path):
    message = source_error(tmp_path, "id,ts,amount,amount\n1,2024-01-01,5,6\n")
    assert "column 'amount' appears more than once" in message


def test_parquet_missing_column_names_the_column(tmp_path):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": ["1"], "when": ["2024-01-01"], "amount": [5.0]}), path)
    with pytest.raises(SourceError, match=r"source 'shop': file .*orders\.parquet: column\(s\) 'ts' not found"):
        read_source(source(path))


def test_parquet_integer_ids_with_nulls_keep_their_integer_text(tmp_path):
    path = tmp_path / "orders.parquet"
    pq.write_table(pa.table({"id": pa.array([123, None], pa.int64()), "ts": ["2024-01-01", "2024-01-02"],
                             "amount": pa.array([5, 6], pa.int64())}), path)
    raw = read_source(source(path))
    assert values(raw, "id", "amount") == [(1, "123", "5"), (2, "", "6")]
