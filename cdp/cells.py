"""Cells a spreadsheet will not run as formulas: every CSV or XLSX file the project writes.

Text from the sources reaches the outputs as it was written (a channel from a visitor's UTM
parameter, a first name from a web form), and a spreadsheet runs a cell starting with
``= + - @`` (or a tab or carriage return) as a formula (OWASP "CSV injection"). Such text
gets a leading apostrophe, which spreadsheets show as text; phone numbers stay as written.
"""

from __future__ import annotations

import re

import pandas as pd

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PHONE_LIKE = re.compile(r"^\+?[\d ()./-]+$")


def safe_cell(value: object) -> object:
    """``value`` with a leading apostrophe if a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _PHONE_LIKE.match(value):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with every text cell made safe (`safe_cell`); numbers, dates and missing values untouched."""
    text = [c for c in frame.columns
            if pd.api.types.is_object_dtype(frame[c]) or pd.api.types.is_string_dtype(frame[c])]
    return frame.assign(**{c: frame[c].map(safe_cell, na_action="ignore") for c in text}) if text else frame


def safe_arrow(table):
    """An Arrow table with every text cell made safe (`safe_cell`), for CSV written from Arrow."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for i, field in enumerate(table.schema):
        if not (pa.types.is_string(field.type) or pa.types.is_large_string(field.type)):
            continue
        column = table.column(i)
        risky = pc.and_(pc.match_substring_regex(column, r"^[=+\-@\t\r]"),
                        pc.invert(pc.match_substring_regex(column, _PHONE_LIKE.pattern)))
        quoted = pc.binary_join_element_wise(pa.scalar("'", field.type), column, pa.scalar("", field.type))
        table = table.set_column(i, field, pc.if_else(pc.fill_null(risky, False), quoted, column))
    return table
