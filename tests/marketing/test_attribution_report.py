"""The attribution table's files: channel names of any text come out as written (CSV cells that a
spreadsheet would run as a formula get a leading apostrophe), and the chart draws them as text."""

from __future__ import annotations

from html.parser import HTMLParser

import pandas as pd

from marketing.attribution_report import shares_chart, write_report

CHANNELS = ["face=book [ads]", '"organic" social', "insta {gram} 📸", "بحث جوجل", "e-mail, list: 1; 2",
            "cost $x^$ 100%", "=SUM(1)", "+1 push", "-direct", "@mention", "a\\b it's\ttab"]


def _table() -> pd.DataFrame:
    share = 1 / len(CHANNELS)
    return pd.DataFrame({"channel": CHANNELS, "model": "linear", "conversions": 1.0, "value": 10.0,
                         "share": share})


class _Cells(HTMLParser):
    def __init__(self):
        super().__init__()
        self.text: list[str] = []

    def handle_data(self, data):
        self.text.append(data)


def html_text(page: str) -> list[str]:
    """The text pieces of an HTML page, entities decoded: what a reader sees in each cell."""
    cells = _Cells()
    cells.feed(page)
    return cells.text


def test_csv_keeps_each_channel_and_neutralises_formula_starts(tmp_path):
    write_report(_table(), tmp_path / "credit.csv")
    read = pd.read_csv(tmp_path / "credit.csv", dtype={"channel": str}, keep_default_na=False)
    expected = ["'" + c if c[0] in "=+-@" else c for c in CHANNELS]
    assert read["channel"].tolist() == expected


def test_html_shows_each_channel_as_text(tmp_path):
    write_report(_table(), tmp_path / "credit.html", ["a note"])
    assert set(CHANNELS) <= set(html_text((tmp_path / "credit.html").read_text(encoding="utf-8")))


def test_the_chart_draws_dollar_signs_as_text():
    png = shares_chart(_table())  # "$x^$" is invalid mathtext: it would raise if parsed
    assert png.startswith(b"\x89PNG")
