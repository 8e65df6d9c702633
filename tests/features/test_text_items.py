"""Several free-text items in one text value: escaped by hand-checked rules, and any text round-trips."""

from __future__ import annotations

from urllib.parse import unquote

import ibis
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.text_items import escape, escape_expr, join_items, split_items, unescape
from store.ibis_compat import ensure_duckdb_compat


@pytest.mark.parametrize(("text", "escaped"), [
    ("olive_oil", "olive_oil"),
    ("Oil, olive", "Oil%2C olive"),
    ("a;b:c", "a%3Bb%3Ac"),
    ("100%", "100%25"),
    ("%3A", "%253A"),                      # an escape-looking name stays itself
    ('"q" [l] {s} k=v +1 @x', '"q" [l] {s} k=v +1 @x'),
    ("زيت زيتون 🌿", "زيت زيتون 🌿"),
    ("tab\there back\\slash it's", "tab\there back\\slash it's"),
])
def test_only_the_separators_and_the_percent_sign_are_escaped(text, escaped):
    assert escape(text) == escaped
    assert unescape(escaped) == text == unquote(escaped)  # percent-decoding, as any reader knows it


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1)))
def test_any_list_of_texts_round_trips(items):
    assert split_items(join_items(items)) == items


@pytest.mark.parametrize("empty", ["", None, float("nan")])
def test_no_items(empty):
    assert split_items(empty) == []


def test_the_engine_escapes_as_python_does():
    ensure_duckdb_compat()
    texts = ["Oil, olive", "a;b:c", "100%", "%3A", "زيت 🌿", '"q" {s}', None]
    table = ibis.duckdb.connect().create_table("t", pd.DataFrame({"text": texts}))
    got = table.select(escaped=escape_expr(table.text)).to_pandas()["escaped"].tolist()
    assert got[:-1] == [escape(t) for t in texts[:-1]] and pd.isna(got[-1])
