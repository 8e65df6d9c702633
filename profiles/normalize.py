"""Normalization of identifiers, so the same person written two ways links.

Emails are trimmed and lower-cased; phones become E.164 (``+970591234567``) with
``phonenumbers`` and the source's default region for numbers written locally.
A value that does not normalize (not an email, not a valid phone number) gives NA:
it stays in the source record as written but is never used as a link.
Work is done once per distinct value, which is what makes a million rows cheap.
"""

from __future__ import annotations

import re

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
    ok = text.str.match(_EMAIL.pattern).fillna(False).astype(bool)  # anchored pattern; runs in Arrow
    return text.where(ok, pd.NA).astype("string")


def normalize_phones(values: pd.Series, region: str | None, cache: dict[str, str | None] | None = None) -> pd.Series:
    """E.164 phone numbers; NA where the value is empty or not a valid number.

    Numbers written with a country code (``+970…``, ``00970…``) parse anywhere; local
    numbers (``059…``) need ``region``, the source's ``default_phone_region``.

    Validity is always phonenumbers' ``is_valid_number``. To keep a million rows cheap,
    the common shapes (international, or local with the region's plain national prefix)
    are turned into a candidate E.164 string first, so the formats of one number collapse
    into one check; anything the shortcut cannot settle goes through ``phonenumbers.parse``.
    ``cache`` (candidate → E.164 or None) may be shared between calls: the candidates are
    region-independent, so a number seen in several sources is checked once.
    """
    text = values.astype("string")
    cleaned = text.str.strip().str.replace(_PHONE_JUNK_CHARS, "", regex=True)
    cleaned = cleaned.where(~cleaned.str.startswith("00").fillna(False), "+" + cleaned.str.slice(2))
    cleaned = cleaned.where(cleaned.str.len() > 0, pd.NA)
    candidate = _candidates(cleaned, region)
    cache = {} if cache is None else cache
    for c in pd.unique(candidate.dropna()):
        if c not in cache:
            cache[c] = _valid_candidate(c)
    checked = cache
    out = candidate.map(checked, na_action="ignore").astype("string")
    unsettled = cleaned.notna() & out.isna()
    if unsettled.any():
        slow = {raw: _e164(raw, region) for raw in pd.unique(cleaned[unsettled])}
        out = out.where(~unsettled, cleaned.map(slow, na_action="ignore").astype("string"))
    return out


def _candidates(cleaned: pd.Series, region: str | None) -> pd.Series:
    """'+<country code><national number>' for the shapes that need no parsing rules."""
    international = cleaned.str.startswith("+").fillna(False)
    candidate = cleaned.where(international, pd.NA)
    if region:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        prefix = metadata.national_prefix if metadata is not None else None
        plain_prefix = (prefix is not None and prefix.isdigit()
                        and metadata.national_prefix_for_parsing in (None, prefix))
        local = cleaned.where(~international, pd.NA)
        if plain_prefix:
            local = local.where(local.str.startswith(prefix).fillna(False), pd.NA).str.slice(len(prefix))
            candidate = candidate.fillna("+" + str(metadata.country_code) + local)
    return candidate


def _valid_candidate(candidate: str) -> str | None:
    digits = candidate[1:]
    if not digits.isdigit():
        return None
    for length in (1, 2, 3):
        code = int(digits[:length])
        if code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            national = digits[length:]
            if not national or national.startswith("0"):
                return None  # leading zeros (Italy) need the full parser
            number = phonenumbers.PhoneNumber(country_code=code, national_number=int(national))
            return candidate if phonenumbers.is_valid_number(number) else None
    return None


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
    """True for E.164 phones whose last seven digits are one repeated digit or an ascending run (…9999999, …1234567).

    Seven digits is the shortest subscriber number in most numbering plans, so the rule
    needs no parsing and cannot fire on a country or area code alone.
    """
    flags = [isinstance(v, str) and _is_placeholder_tail(v[-7:]) for v in phones.tolist()]
    return pd.Series(flags, index=phones.index, dtype=bool)


def _is_placeholder_tail(tail: str) -> bool:
    return len(tail) == 7 and (len(set(tail)) == 1 or tail in _ASCENDING)
