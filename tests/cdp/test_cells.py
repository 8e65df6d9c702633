"""Every CSV or XLSX cell the project writes that a spreadsheet would run as a formula is written as text."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from cdp.cells import safe_arrow, safe_cell, safe_frame

RISKY = ['=HYPERLINK("http://evil.example","x")', "+1+1", "-2+3", "@SUM(A1:A2)", "\tcmd", "\rcmd"]
PLAIN = ["Oil, olive", "", "a=b", "it's", "+970 59 123 4567", "-", "(02) 123-456"]


@pytest.mark.parametrize("value", RISKY)
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", PLAIN)
def test_other_text_and_phone_numbers_stay_as_written(value):
    assert safe_cell(value) == value


def test_frames_and_arrow_tables_are_made_safe_cell_by_cell_and_numbers_untouched():
    frame = pd.DataFrame({"channel": RISKY + PLAIN, "n": range(len(RISKY + PLAIN)),
                          "maybe": [None] + ["=1"] * (len(RISKY + PLAIN) - 1)})
    expected = ["'" + v for v in RISKY] + PLAIN
    safe = safe_frame(frame)
    assert safe["channel"].tolist() == expected and safe["n"].tolist() == frame["n"].tolist()
    assert pd.isna(safe["maybe"].iloc[0]) and set(safe["maybe"].iloc[1:]) == {"'=1"}
    table = safe_arrow(pa.Table.from_pandas(frame, preserve_index=False))
    assert table.column("channel").to_pylist() == expected
    assert table.column("maybe").to_pylist()[0] is None
