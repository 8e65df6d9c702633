"""Normalization of identifiers, so the same person written two ways links.

Emails are trimmed and lower-cased; phones become E.164 (``+970591234567``) with
``phonenumbers`` and the source's default region for numbers written locally.
A value that does not normalize (not an email, not a valid phone number) gives NA:
it stays in the source record as written but is never used as a link.
Work is done once per distinct value, which is what makes a million rows cheap.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import phonenumbers

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PHONE_JUNK_CHARS = re.compile(r"[^\d+]")

# Built-in block list: placeholders people type when a form insists on an email or phone.
_PLACEHOLDER_LOCAL_PARTS = frozenset({
    "test", "tests", "testing", "noemail", "no-email", "no_email", "nomail", "none", "no", "na", "n/a",
    "null", "nil", "unknown", "noreply", "no-reply", "donotreply", "dummy", "fake", "asdf", "xxx",
    "email", "customer", "guest",
})
_PLACEHOLDER_DOMAINS = frozenset({
    "example.com", "example.org", "example.net", "test.com", "test.test", "email.com", "none.com",
    "noemail.com", "nomail.com", "invalid", "localhost", "mailinator.com",
})
_ASCENDING = "01234567890"


def normalize_emails(values: pd.Series) -> pd.Series:
    """Trimmed, lower-cased emails; NA where the value is empty or not shaped like an email."""
    text = values.astype("string").str.strip().str.lower()
    ok = text.str.fullmatch(_EMAIL.pattern).fillna(False).astype(bool)
    return text.where(ok, pd.NA).astype("string")


def normalize_phones(values: pd.Series, region: str | None) -> pd.Series:
    """E.164 phone numbers; NA where the value is empty or not a valid number.

    Numbers written with a country code (``+970…``, ``00970…``) parse anywhere; local
    numbers (``059…``) need ``region``, the source's ``default_phone_region``.
    """
    text = values.astype("string")
    cleaned = text.str.strip().str.replace(_PHONE_JUNK_CHARS, "", regex=True)
    cleaned = cleaned.where(~cleaned.str.startswith("00").fillna(False), "+" + cleaned.str.slice(2))
    distinct = pd.unique(cleaned.dropna())
    mapping = {raw: _e164(raw, region) for raw in distinct if raw}
    out = cleaned.map(mapping, na_action="ignore")
    return out.astype("string")


def _e164(raw: str, region: str | None) -> str | None:
    try:
        number = phonenumbers.parse(raw, None if raw.startswith("+") else region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def placeholder_emails(emails: pd.Series) -> pd.Series:
    """True for normalized emails that are placeholders (test@test.com, no@email.com …)."""
    local = emails.str.split("@").str[0]
    domain = emails.str.split("@").str[-1]
    return (local.isin(_PLACEHOLDER_LOCAL_PARTS) | domain.isin(_PLACEHOLDER_DOMAINS)).fillna(False).astype(bool)


def placeholder_phones(phones: pd.Series) -> pd.Series:
    """True for E.164 phones whose subscriber digits are one repeated digit or an ascending run (…9999999, …1234567)."""
    out = np.zeros(len(phones), dtype=bool)
    for i, value in enumerate(phones.tolist()):
        if isinstance(value, str):
            out[i] = _is_placeholder_phone(value)
    return pd.Series(out, index=phones.index)


def _is_placeholder_phone(e164: str) -> bool:
    try:
        nsn = phonenumbers.national_significant_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return True
    tail = nsn[2:] if len(nsn) > 6 else nsn
    return len(set(tail)) == 1 or (len(tail) >= 7 and tail in _ASCENDING)
