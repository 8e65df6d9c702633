"""Type and check a source's rows, value by value; every failing row gets its reasons.

Input is what `profiles.read` produced (text exactly as in the file); output is one
frame of canonical, typed columns for the rows that passed and one frame of rejects
(``row_number``, ``raw``, ``reason``) for the rows that did not. Nothing is dropped
silently: ``len(accepted) + len(rejected) == len(rows)``.

Reasons name the column and what was expected. They quote the offending value only
when it is made of digits and date/number punctuation (``'12,50'``, ``'2024-02-30'``)
or is a junk token (``'NaN'``); anything else — letters, an @, a phone number — may be
a name, email or phone that landed in the wrong column, and is not shown.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cdp.config import SourceConfig
from cdp.sources import FIELDS, IDENTIFIERS, REQUIRED
from profiles.normalize import normalize_emails, normalize_phones
from profiles.read import ROW

MAX_VALUE_CHARS = 4096
_TRUE = frozenset({"yes", "y", "true", "t", "1"})
_FALSE = frozenset({"no", "n", "false", "f", "0"})
# An offset ends a value only after a time ("...T10:00+02:00"); "2024-01-15" ends in "-15" but has none.
_ZONE_SUFFIX = r"[Tt ]\d.*(?:[zZ]|[+-]\d\d(?::?\d\d)?)$"
_CLOCK_WORDS = frozenset({"now", "today"})  # pandas reads these as the current time
_MIN_YEAR, _MAX_YEAR = 1900, 2200
_SHOWABLE = re.compile(r"[0-9 .,:+\-/TZ]{1,40}")
_DATE_START = re.compile(r"\d{4}-\d\d-\d\d")
_SHOWABLE_TOKENS = frozenset({"nan", "-nan", "inf", "-inf", "+inf", "infinity", "-infinity",
                              "null", "none", "na", "n/a"})
NOT_SHOWN = "(value not shown)"


@dataclass(frozen=True)
class Validated:
    """Rows that passed, typed, and rows that failed, with reasons."""

    accepted: pd.DataFrame
    rejected: pd.DataFrame


def validate_rows(source: SourceConfig, rows: pd.DataFrame,
                  phone_cache: dict[str, str | None] | None = None) -> Validated:
    """Turn a source's text rows into typed canonical columns; reject rows that do not fit.

    The accepted frame has ``source``, ``source_key``, ``row_number``, every canonical
    field of the source's kind (NA where the source has no such column), and, for
    identifiers, ``key_namespace``, ``email_norm`` and ``phone_norm``.
    """
    fields = FIELDS[source.kind]
    n = len(rows)
    index = rows.index
    reasons = _Reasons(index, source.default_phone_region)
    out: dict[str, pd.Series] = {}
    empty: dict[str, pd.Series] = {}

    for field, kind in fields.items():
        if field not in source.columns:
            continue
        raw = rows[source.columns[field]].astype("string")
        text = raw.str.strip()
        reasons.add(text.str.len() > MAX_VALUE_CHARS,
                    f"{field} (column {source.columns[field]!r}) is longer than {MAX_VALUE_CHARS} characters")
        text = text.where(text.str.len() <= MAX_VALUE_CHARS, "")
        present = text != ""
        empty[field] = ~present
        column = source.columns[field]
        if kind in ("id", "text", "email", "phone"):
            out[field] = text.where(present, pd.NA)
        elif kind == "timestamp":
            out[field] = _timestamps(text, present, source, field, column, reasons)
        elif kind == "date":
            out[field] = _dates(text, present, field, column, reasons)
        elif kind in ("amount", "count", "number"):
            out[field] = _numbers(text, present, kind, field, column, reasons)
        elif kind == "bool":
            lowered = text.str.lower()
            valid = lowered.isin(_TRUE | _FALSE) | ~present
            reasons.add_values(~valid, text, f"{field} (column {column!r}) is", "not yes/no/true/false/1/0")
            out[field] = lowered.map(
                lambda v: True if v in _TRUE else (False if v in _FALSE else pd.NA)).astype("boolean")
        else:  # pragma: no cover - schema and validator are kept in step
            raise AssertionError(f"unhandled field type {kind}")

    for field in REQUIRED[source.kind] + ("source_key",):
        if field in empty:
            reasons.add(empty[field], f"{field} (column {source.columns[field]!r}) is empty")

    if "is_return" in out and "amount" in out:
        negative = out["amount"] < 0
        reasons.add((negative & ~out["is_return"].fillna(False)).fillna(False),
                    f"amount (column {source.columns['amount']!r}) is negative; mark returns with is_return")
    elif "amount" in out:
        reasons.add((out["amount"] < 0).fillna(False),
                    f"amount (column {source.columns['amount']!r}) is negative (map an is_return column for returns)")
    if "discount" in out:
        reasons.add((out["discount"] < 0).fillna(False),
                    f"discount (column {source.columns['discount']!r}) is negative; a discount is the amount taken off")

    email_norm = normalize_emails(out["email"]) if "email" in out else pd.Series(pd.NA, index=index, dtype="string")
    phone_norm = (normalize_phones(out["phone"], source.default_phone_region, phone_cache) if "phone" in out
                  else pd.Series(pd.NA, index=index, dtype="string"))
    if source.kind == "orders":
        has_id = email_norm.notna() | phone_norm.notna()
        for field in ("customer_key", "external_id"):
            if field in out:
                has_id |= out[field].notna()
        mapped = [source.columns[f] for f in IDENTIFIERS if f in source.columns]
        reasons.add(~has_id, f"no usable identifier: {', '.join(repr(c) for c in mapped)} all empty or invalid")

    if "source_key" in source.columns:
        keys = out["source_key"]
    else:
        keys = derived_keys(rows, source)
    duplicate = keys.notna() & keys.duplicated(keep="first")
    if duplicate.any():
        first_row = rows[ROW].groupby(keys).transform("min")
        message = (f"source_key (column {source.columns['source_key']!r}) "
                   + shown_values(keys, source.default_phone_region)
                   + " already used by row " + first_row.astype("string"))
        reasons.add_messages(duplicate, message)

    rejected_mask = reasons.any()
    typed = pd.DataFrame(index=index)
    typed["source"] = source.name
    typed["source_key"] = keys.astype("string")
    typed["row_number"] = rows[ROW].astype("int64")
    for field, kind in fields.items():
        if field == "source_key":
            continue
        typed[field] = out[field] if field in out else _empty(kind, index)
    typed["key_namespace"] = pd.Series(source.key_namespace, index=index, dtype="string").where(
        typed["customer_key"].notna(), pd.NA)
    typed["email_norm"] = email_norm
    typed["phone_norm"] = phone_norm

    accepted = typed.loc[~rejected_mask].reset_index(drop=True)
    bad = rows.loc[rejected_mask]
    rejected = pd.DataFrame({
        "row_number": bad[ROW].astype("int64").to_numpy(),
        "raw": [json.dumps(r, ensure_ascii=False) for r in bad.drop(columns=[ROW]).to_dict("records")],
        "reason": reasons.text().loc[rejected_mask].to_numpy(),
        "source_key": keys.loc[rejected_mask].astype("string").to_numpy(),
    })
    assert len(accepted) + len(rejected) == n
    return Validated(accepted=accepted, rejected=rejected)


class _Reasons:
    """Collects, per row, every reason it fails, joined with '; '."""

    def __init__(self, index: pd.Index, phone_region: str | None):
        self._text = pd.Series(pd.NA, index=index, dtype="string")
        self._phone_region = phone_region

    def add(self, mask: pd.Series, reason: str) -> None:
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            self._append(pd.Series(reason, index=self._text.index, dtype="string").where(mask, pd.NA))

    def add_values(self, mask: pd.Series, values: pd.Series, prefix: str, suffix: str) -> None:
        """Add '<prefix> '<value>' <suffix>' for the rows in mask (the value quoted when it is safe to show)."""
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            shown = pd.Series(NOT_SHOWN, index=values.index, dtype="string")
            shown[mask] = shown_values(values[mask], self._phone_region)
            message = prefix + " " + shown + ((" " + suffix) if suffix else "")
            self._append(message.where(mask, pd.NA))

    def add_messages(self, mask: pd.Series, messages: pd.Series) -> None:
        """Add a row-specific message for the rows in mask."""
        mask = mask.fillna(False).astype(bool)
        if mask.any():
            self._append(messages.astype("string").where(mask, pd.NA))

    def _append(self, new: pd.Series) -> None:
        both = self._text.notna() & new.notna()
        self._text = self._text.where(~both, self._text + "; " + new).fillna(new)

    def any(self) -> pd.Series:
        return self._text.notna()

    def text(self) -> pd.Series:
        return self._text


def shown_values(values: pd.Series, phone_region: str | None) -> pd.Series:
    """Each value quoted (``'12,50'``) if it cannot be personal data, else `NOT_SHOWN`.

    Shown: digits with number/date punctuation (fewer than 9 digits unless it starts
    like a date, and not a valid phone number) and junk tokens such as NaN or inf.
    """
    text = values.astype("string").fillna("")
    digits = text.str.count(r"\d")
    shape_ok = text.str.fullmatch(_SHOWABLE.pattern).fillna(False) & (
        (digits < 9) | text.str.match(_DATE_START.pattern).fillna(False))
    is_phone = normalize_phones(text.where(shape_ok & (digits >= 5), pd.NA), phone_region).notna()
    ok = (shape_ok & ~is_phone) | text.str.strip().str.lower().isin(_SHOWABLE_TOKENS)
    return ("'" + text + "'").where(ok, NOT_SHOWN).astype("string")


def _timestamps(text, present, source, field, column, reasons) -> pd.Series:
    """UTC timestamps (naive). Values without a zone are read in the source's timezone."""
    if source.timestamp_format:
        # A format with an offset (%z) gives aware values, possibly with different offsets.
        with_zone = "%z" in source.timestamp_format or "%Z" in source.timestamp_format
        if with_zone:
            parsed = pd.to_datetime(_no_clock_words(text.where(present, None)), format=source.timestamp_format,
                                    errors="coerce", utc=True)
            utc = parsed.dt.tz_localize(None)
        else:
            utc = _localize(_naive_datetimes(text.where(present, None), source.timestamp_format), source.timezone)
        expected = f"a date/time in timestamp_format {source.timestamp_format!r}"
    else:
        has_zone = text.str.contains(_ZONE_SUFFIX, regex=True).fillna(False).astype(bool)
        utc = pd.Series(pd.NaT, index=text.index, dtype="datetime64[us]")
        aware = present & has_zone
        naive = present & ~has_zone
        if aware.any():
            values = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
            utc.loc[aware] = values.dt.tz_localize(None).astype("datetime64[us]")
        if naive.any():
            values = _naive_datetimes(text[naive], "ISO8601")
            utc.loc[naive] = _localize(values, source.timezone).astype("datetime64[us]")
        expected = "an ISO 8601 date or date/time (or set timestamp_format)"
    utc = utc.astype("datetime64[us]")
    bad = present & (utc.isna() | (utc.dt.year < _MIN_YEAR) | (utc.dt.year > _MAX_YEAR)).fillna(True)
    reasons.add_values(bad, text, f"{field} (column {column!r})", f"is not {expected}")
    return utc.where(~bad, pd.NaT)


def _no_clock_words(text: pd.Series) -> pd.Series:
    return text.where(~text.str.strip().str.lower().isin(_CLOCK_WORDS).fillna(False), None)


def _naive_datetimes(text: pd.Series, format: str) -> pd.Series:
    """Wall-clock datetimes; NaT for values that do not parse, carry an offset, or say 'now'.

    pandas refuses a column mixing values with and without an offset (it raises even
    with errors="coerce"); then each value is read on its own.
    """
    text = _no_clock_words(text)
    try:
        parsed = pd.to_datetime(text, format=format, errors="coerce")
        if getattr(parsed.dt, "tz", None) is None:
            return parsed.astype("datetime64[us]")
    except (ValueError, TypeError):
        pass
    return pd.Series([_one_naive_datetime(v, format) for v in text], index=text.index, dtype="datetime64[us]")


def _one_naive_datetime(value, format: str):
    if value is None or pd.isna(value):
        return pd.NaT
    try:
        parsed = pd.to_datetime(value, format=format)
    except (ValueError, TypeError, OverflowError):
        return pd.NaT
    return pd.NaT if parsed is pd.NaT or parsed.tzinfo is not None else parsed


def _localize(naive: pd.Series, zone: str) -> pd.Series:
    """Local wall-clock times to naive UTC.

    A time that occurs twice (the hour repeated when clocks go back) is read as the
    first occurrence, as Python's ``fold=0`` does; a time skipped when clocks go
    forward is moved to the end of the gap.
    """
    if zone == "UTC":
        return naive
    first_occurrence = np.ones(len(naive), dtype=bool)  # True = the daylight-saving reading
    local = naive.dt.tz_localize(zone, ambiguous=first_occurrence, nonexistent="shift_forward")
    return local.dt.tz_convert("UTC").dt.tz_localize(None)


def _dates(text, present, field, column, reasons) -> pd.Series:
    parsed = _naive_datetimes(text.where(present, None), "ISO8601")
    bad = present & (parsed.isna() | (parsed.dt.year < _MIN_YEAR) | (parsed.dt.year > _MAX_YEAR)).fillna(True)
    reasons.add_values(bad, text, f"{field} (column {column!r})", "is not an ISO date (YYYY-MM-DD)")
    return parsed.dt.normalize().astype("datetime64[us]").where(~bad, pd.NaT)


def _numbers(text, present, kind, field, column, reasons) -> pd.Series:
    values = pd.to_numeric(text.where(present, None), errors="coerce").astype("Float64")
    finite = values.notna() & np.isfinite(values.fillna(0).to_numpy(dtype=float))
    bad = present & ~finite
    what = {"amount": "a number", "count": "a whole number", "number": "a number"}[kind]
    reasons.add_values(bad, text, f"{field} (column {column!r})", f"is not {what}")
    if kind == "count":
        fractional = finite & (values.fillna(0) % 1 != 0)
        negative = finite & (values.fillna(0) < 0)
        reasons.add_values(fractional | negative, text, f"{field} (column {column!r})", "is not a whole number >= 0")
        return values.where(finite & ~fractional & ~negative).round().astype("Int64")
    return values.where(finite).astype("Float64")


def derived_keys(rows: pd.DataFrame, source: SourceConfig) -> pd.Series:
    """A deterministic key for sources without one: a BLAKE2 digest of the mapped values and an occurrence number.

    Identical rows (the same CD bought twice the same day) are kept apart by the
    occurrence number, so a re-read of the same file yields the same keys. The digest is
    a fixed algorithm, not pandas' hash, so keys survive library upgrades.
    """
    columns = _mapped_columns(source)
    joined = rows[columns[0]].astype("string").fillna("")
    for column in columns[1:]:
        joined = joined + "\x1f" + rows[column].astype("string").fillna("")
    digests = pd.Series([hashlib.blake2b(v.encode("utf-8"), digest_size=8).hexdigest() for v in joined.tolist()],
                        index=rows.index, dtype="string")
    occurrence = digests.groupby(digests).cumcount()
    return digests + "-" + occurrence.astype("string")


def _mapped_columns(source: SourceConfig) -> list[str]:
    return list(dict.fromkeys(source.columns.values()))


def _empty(kind: str, index: pd.Index) -> pd.Series:
    dtype = {
        "timestamp": "datetime64[us]", "date": "datetime64[us]", "amount": "Float64", "number": "Float64",
        "count": "Int64", "bool": "boolean",
    }.get(kind, "string")
    return pd.Series(pd.NA if dtype not in ("datetime64[us]",) else pd.NaT, index=index, dtype=dtype)
