"""Several free-text items in one text value, escaped so that any text round-trips.

Categories and channels come from a shop's own catalogue and may hold any printable
character ("Oil, olive", "1:1 gifts", "هدايا; عيد"). Where several of them travel in
one text value (a customer's category history ``"olive_oil:3;soap:1"``, the categories
bought in a label window ``"dates,soap"``), the characters that separate items and
fields are escaped inside each item, percent-style: ``%`` → ``%25``, ``,`` → ``%2C``,
``:`` → ``%3A`` and ``;`` → ``%3B``. Every other character is left as it is, so a
plain name reads as before, and `unescape` gives back exactly the text that went in.

The engines write the escaped form (`escape_expr`, the same expression on DuckDB and
Spark); Python writes (`escape`, `join_items`) and reads it (`unescape`, `split_items`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable

import ibis

ITEM_SEPARATOR = ","
# "%" first: the escapes of the others contain it.
ESCAPES = (("%", "%25"), (",", "%2C"), (":", "%3A"), (";", "%3B"))
_UNESCAPES = {code: char for char, code in ESCAPES}
_ESCAPED = re.compile("|".join(code for _, code in ESCAPES))


def escape(text: str) -> str:
    """``text`` with ``% , : ;`` escaped (``"Oil, olive"`` → ``"Oil%2C olive"``)."""
    for char, code in ESCAPES:
        text = text.replace(char, code)
    return text


def escape_expr(value: ibis.Value) -> ibis.Value:
    """`escape` as an engine expression over a string column."""
    for char, code in ESCAPES:
        value = value.replace(char, code)
    return value


def unescape(text: str) -> str:
    """The inverse of `escape`, in one pass (``"100%253A"`` is ``"100%3A"``, not ``"100:"``)."""
    return _ESCAPED.sub(lambda found: _UNESCAPES[found.group(0)], text) if "%" in text else text


def join_items(items: Iterable[str]) -> str:
    """Items as one ``","``-separated text, each escaped; ``""`` for none."""
    return ITEM_SEPARATOR.join(escape(item) for item in items)


def split_items(text: object) -> list[str]:
    """The items of a `join_items` text, in order; none for ``""``, None or NaN."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or text == "":
        return []
    return [unescape(item) for item in str(text).split(ITEM_SEPARATOR)]
