"""Each person's true identifiers, and the mess sources make of them.

**Identifiers and mess.** Every person has one true email and/or one true phone; a
minority has a second email or changed phone on ``phone_changed_date``. Emails get case
and whitespace noise; phones are written in local and international styles; CRM keys keep
leading zeros; a few persons have two CRM rows under different keys that share an email
or a phone. Junk identifiers (placeholder emails and phones, the shop's own email on phone
orders and its walk-in phone on store receipts) appear on real persons' rows and must not
glue persons together. Invalid rows are planted apart (:mod:`sample.invalid_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sample.shop import COUNTRIES, HISTORY_DAYS, JUNK_PHONES, WALK_IN_PHONE
from sample.text import (
    cat,
    choose,
    int_text,
    scatter,
    take,
    text_array,
    where,
    zero_padded,
)
from sample.world import GROUPS, group_param

# (Arabic script, Latin spellings, gender)
_FIRST_NAMES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("محمد", ("Mohammad", "Mohammed", "Muhammad"), "M"), ("أحمد", ("Ahmad", "Ahmed"), "M"),
    ("علي", ("Ali",), "M"), ("خليل", ("Khalil",), "M"), ("يوسف", ("Yousef", "Yusuf", "Youssef"), "M"),
    ("عمر", ("Omar",), "M"), ("إبراهيم", ("Ibrahim",), "M"), ("سامي", ("Sami",), "M"),
    ("رامي", ("Rami",), "M"), ("كريم", ("Karim", "Kareem"), "M"), ("جورج", ("George",), "M"),
    ("عيسى", ("Issa",), "M"), ("فادي", ("Fadi",), "M"), ("طارق", ("Tareq", "Tariq"), "M"),
    ("فاطمة", ("Fatima", "Fatma"), "F"), ("مريم", ("Maryam", "Mariam"), "F"),
    ("نور", ("Nour", "Noor"), "F"), ("ليلى", ("Layla", "Leila"), "F"), ("سارة", ("Sara", "Sarah"), "F"),
    ("هدى", ("Huda",), "F"), ("رنا", ("Rana",), "F"), ("سلمى", ("Salma",), "F"),
    ("دينا", ("Dina",), "F"), ("آية", ("Aya", "Ayah"), "F"), ("رزان", ("Razan",), "F"),
    ("ميساء", ("Maysa",), "F"), ("هبة", ("Hiba", "Heba"), "F"), ("لينا", ("Lina",), "F"),
)
_LAST_NAMES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("خليل", ("Khalil",)), ("حداد", ("Haddad",)), ("نصار", ("Nassar",)), ("عودة", ("Odeh", "Awda")),
    ("صالح", ("Saleh",)), ("منصور", ("Mansour",)), ("قسيس", ("Qassis", "Kassis")),
    ("عبد الله", ("Abdallah", "Abdullah")), ("الخطيب", ("Khatib", "Al-Khatib")),
    ("البرغوثي", ("Barghouti", "Al-Barghouthi")), ("حمدان", ("Hamdan",)), ("جبارة", ("Jabara",)),
    ("عيسى", ("Issa",)), ("سعادة", ("Saadeh",)), ("الشريف", ("Sharif", "Al-Sharif")),
    ("أبو غوش", ("Abu Ghosh",)), ("زعرور", ("Zarour",)), ("شحادة", ("Shehadeh", "Shahada")),
    ("عمرو", ("Amro",)), ("النتشة", ("Natsheh",)), ("مصلح", ("Musleh",)), ("الزغبي", ("Zoughbi",)),
)
# Customers abroad without Arabic names: (first, gender) and last names, in Latin script only.
_WESTERN_FIRST = (("Sarah", "F"), ("John", "M"), ("Emma", "F"), ("James", "M"), ("Anna", "F"),
                  ("Lukas", "M"), ("Claire", "F"), ("Thomas", "M"), ("Julia", "F"), ("David", "M"))
_WESTERN_LAST = ("Smith", "Miller", "Brown", "Taylor", "Schmidt", "Müller", "Martin", "Dubois",
                 "Wilson", "Weber")

_EMAIL_DOMAINS = ("gmail.example", "hotmail.example", "yahoo.example", "outlook.example",
                  "palnet.example")
_EMAIL_DOMAIN_SHARES = (0.45, 0.2, 0.15, 0.1, 0.1)


@dataclass(frozen=True)
class Identifiers:
    """Each person's true identifiers in canonical form, and name indexes.

    Text arrays are Arrow arrays indexed by person ("" when the person has none);
    ``cookies`` holds every person's cookies, person ``i`` owning
    ``cookies[cookie_start[i] : cookie_start[i] + cookie_count[i]]``.
    """

    email: pa.Array
    email2: pa.Array
    phone_cc: pa.Array
    phone_nsn: pa.Array
    old_phone_nsn: pa.Array
    loyalty_card: pa.Array
    crm_key: pa.Array
    crm_key2: pa.Array
    cookies: pa.Array
    has_email: np.ndarray
    has_email2: np.ndarray
    has_phone: np.ndarray
    has_old_phone: np.ndarray
    has_card: np.ndarray
    in_crm: np.ndarray
    has_crm_duplicate: np.ndarray
    in_leads: np.ndarray
    phone_changed_day: np.ndarray
    crm_created_day: np.ndarray
    birth_date_day: np.ndarray
    cookie_start: np.ndarray
    cookie_count: np.ndarray
    first_name: np.ndarray
    last_name: np.ndarray


def first_name_table() -> tuple[list[str], list[str], list[str]]:
    """Arabic-script first names, their Latin spellings (three per name, flat) and genders."""
    arabic = [f[0] for f in _FIRST_NAMES] + [w[0] for w in _WESTERN_FIRST]
    latin = [s for f in _FIRST_NAMES for s in _three(f[1])] + [w[0] for w in _WESTERN_FIRST for _ in range(3)]
    gender = [f[2] for f in _FIRST_NAMES] + [w[1] for w in _WESTERN_FIRST]
    return arabic, latin, gender


def _last_name_table() -> tuple[list[str], list[str]]:
    """Arabic-script last names and their Latin spellings (three per name, flat)."""
    arabic = [f[0] for f in _LAST_NAMES] + list(_WESTERN_LAST)
    latin = [s for f in _LAST_NAMES for s in _three(f[1])] + [w for w in _WESTERN_LAST for _ in range(3)]
    return arabic, latin


def _three(spellings: tuple[str, ...]) -> tuple[str, str, str]:
    """Pad a tuple of spellings to three by repeating the first."""
    return tuple((list(spellings) + [spellings[0]] * 3)[:3])  # type: ignore[return-value]


def draw_identifiers(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> Identifiers:
    """Draw names, emails, phones, loyalty cards, CRM keys and cookies for every person."""
    n = len(persons)
    code = np.array([c[0] for c in COUNTRIES])[persons["country_index"].to_numpy()]
    western = ~np.isin(code, ["PS", "IL", "JO"]) & (rng.random(n) < 0.4)
    first = np.where(western, len(_FIRST_NAMES) + rng.integers(0, len(_WESTERN_FIRST), n),
                     rng.integers(0, len(_FIRST_NAMES), n))
    last = np.where(western, len(_LAST_NAMES) + rng.integers(0, len(_WESTERN_LAST), n),
                    rng.integers(0, len(_LAST_NAMES), n))

    has_email = persons["has_email"].to_numpy()
    has_phone = persons["has_phone"].to_numpy()
    email = scatter(n, has_email, _make_emails(rng, first[has_email], last[has_email], taken=text_array([])))
    has_email2 = has_email & (rng.random(n) < 0.07)
    email2 = scatter(n, has_email2, _make_emails(rng, first[has_email2], last[has_email2],
                                                 taken=email.filter(pa.array(has_email))))

    country = persons["country_index"].to_numpy()
    phone_cc = take([c[3] for c in COUNTRIES], country)
    phone_nsn = scatter(n, has_phone, _make_phones(rng, country[has_phone], taken=text_array([])))
    has_old_phone = has_phone & (rng.random(n) < 0.05)
    old_phone_nsn = scatter(n, has_old_phone, _make_phones(rng, country[has_old_phone],
                                                           taken=phone_nsn.filter(pa.array(has_phone))))
    start_day = end_day - HISTORY_DAYS + 1
    phone_changed_day = np.where(has_old_phone, rng.integers(start_day, end_day, n, endpoint=True), -1)

    group = persons["group_index"].to_numpy()
    is_champion = group == [g.name for g in GROUPS].index("champions")
    has_card = (persons["web_share"].to_numpy() < 1.0) & (rng.random(n) < np.where(is_champion, 0.7, 0.35))
    card_numbers = rng.permutation(max(n, 900_000))[:n] + 100_000
    loyalty_card = where(has_card, cat("LC-", int_text(card_numbers)), "")

    in_crm = rng.random(n) < group_param("crm_probability", group)
    has_crm_duplicate = in_crm & (rng.random(n) < 0.03)
    birth = persons["first_purchase_day"].to_numpy()
    seen = persons["first_seen_day"].to_numpy()
    crm_created = np.where((birth <= end_day) & (rng.random(n) < 0.7), birth, seen)
    crm_created = np.minimum(crm_created, end_day)
    # CRM ids are numbered in order of creation and zero-padded to six digits.
    order = np.lexsort((np.arange(n), crm_created))
    order = order[in_crm[order]]
    key_number = np.zeros(n, dtype=np.int64)
    key_number[order] = np.arange(1, len(order) + 1)
    dup = np.flatnonzero(has_crm_duplicate)
    key2_number = np.zeros(n, dtype=np.int64)
    key2_number[dup] = np.arange(len(order) + 1, len(order) + 1 + len(dup))
    crm_key = where(in_crm, zero_padded(key_number, 6), "")
    crm_key2 = where(has_crm_duplicate, zero_padded(key2_number, 6), "")

    cookie_count = 1 + rng.poisson(0.5, n)
    cookie_start = np.concatenate([[0], np.cumsum(cookie_count)[:-1]])
    cookies = hex_ids(rng, int(cookie_count.sum()))

    in_leads = rng.random(n) < group_param("lead_probability", group)
    age_days = rng.integers(18 * 365, 75 * 365, n)
    birth_date_day = np.where(rng.random(n) < 0.7, end_day - age_days, -1)
    return Identifiers(
        email=email, email2=email2, phone_cc=phone_cc, phone_nsn=phone_nsn, old_phone_nsn=old_phone_nsn,
        loyalty_card=loyalty_card, crm_key=crm_key, crm_key2=crm_key2, cookies=cookies,
        has_email=has_email, has_email2=has_email2, has_phone=has_phone, has_old_phone=has_old_phone,
        has_card=has_card, in_crm=in_crm, has_crm_duplicate=has_crm_duplicate, in_leads=in_leads,
        phone_changed_day=phone_changed_day, crm_created_day=crm_created, birth_date_day=birth_date_day,
        cookie_start=cookie_start, cookie_count=cookie_count, first_name=first, last_name=last,
    )


def _make_emails(rng: np.random.Generator, first: np.ndarray, last: np.ndarray, taken: pa.Array) -> pa.Array:
    """Plausible, unique, lowercase emails built from names (never one of ``taken``)."""
    n = len(first)
    _, first_latin, _ = first_name_table()
    _, last_latin = _last_name_table()
    f = take([_ascii_stem(s) for s in first_latin[::3]], first)
    ln = take([_ascii_stem(s) for s in last_latin[::3]], last)
    number = int_text(rng.integers(1, 100, n))
    year = zero_padded(rng.integers(60, 100, n) % 100, 2)
    local = choose(rng.integers(0, 4, n), [
        cat(f, ".", ln), cat(f, ln, number), cat(pc.utf8_slice_codeunits(f, 0, 1), ln, year), cat(f, "_", ln, number),
    ])
    domain = take(_EMAIL_DOMAINS, rng.choice(len(_EMAIL_DOMAINS), n, p=_EMAIL_DOMAIN_SHARES))
    email = cat(local, "@", domain)
    # Disambiguate repeats with a ".<n>" suffix the styles above never produce.
    clash = _clashes(email, taken)
    while clash.any():
        local = where(clash, cat(local, ".", int_text(rng.integers(2, 10_000, n))), local)
        email = cat(local, "@", domain)
        clash = _clashes(email, taken)
    return email


def _ascii_stem(name: str) -> str:
    """Lowercase ASCII form of a Latin name, for an email address."""
    return name.lower().replace("ü", "ue").replace("é", "e").replace(" ", "").replace("-", "")


def _clashes(values: pa.Array, taken: pa.Array) -> np.ndarray:
    """True where a value repeats an earlier value or one in ``taken``."""
    both = pa.concat_arrays([taken.cast(pa.string()), values.cast(pa.string())]).to_pandas()
    return both.duplicated(keep="first").to_numpy()[len(taken):]


def _make_phones(rng: np.random.Generator, country: np.ndarray, taken: pa.Array) -> pa.Array:
    """Valid, unique mobile national significant numbers for each person's country.

    The patterns follow the mobile ranges of libphonenumber's metadata; junk numbers
    (placeholders, the shop's walk-in phone) are never drawn.
    """
    junk = text_array([_nsn_of_local(p) for p in JUNK_PHONES + (WALK_IN_PHONE,)])
    taken = pa.concat_arrays([junk, taken.cast(pa.string())])
    codes = [c[0] for c in COUNTRIES]

    def draw(which: np.ndarray) -> pa.Array:
        size = len(which)
        seven = zero_padded(rng.integers(0, 10**7, size), 7)
        six = zero_padded(rng.integers(0, 10**6, size), 6)
        d0, d1 = rng.integers(0, 10, size), rng.integers(0, 10, size)
        rules = {
            "PS": cat(take(["59", "56"], d0 % 2), seven),
            "IL": cat("5", take(list("024"), d0 % 3), take(list("23456789"), d1 % 8), six),
            "JO": cat("79", seven),
            "US": cat(take(["212", "312", "313", "201", "415", "708"], d0 % 6), take(list("23456789"), d1 % 8), six),
            "GB": cat("79", take(list("02456789"), d0 % 8), seven),
            "DE": cat("17", int_text(d0), seven),
            "FR": cat("6", take(list("0124567"), d0 % 7), seven),
        }
        return choose(which, [rules[c] for c in codes])

    nsn = draw(country)
    clash = _clashes(nsn, taken)
    while clash.any():
        values = nsn.to_numpy(zero_copy_only=False).copy()
        idx = np.flatnonzero(clash)
        values[idx] = draw(country[idx]).to_numpy(zero_copy_only=False)
        nsn = text_array(values)
        clash = _clashes(nsn, taken)
    return nsn


def _nsn_of_local(local_phone: str) -> str:
    """National significant number of a PS phone written locally ("059-123 4567" -> "591234567")."""
    digits = "".join(ch for ch in local_phone if ch.isdigit())
    return digits[1:] if digits.startswith("0") else digits


def e164_of_local(local_phone: str) -> str:
    """E.164 form of a PS phone written locally ("02-274 1234" -> "+97022741234")."""
    return "+970" + _nsn_of_local(local_phone)


def hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random UUID-shaped lowercase hex strings (cookie ids)."""
    nibbles = rng.integers(0, 16, (n, 32), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    full = np.hstack([chars[:, :8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash,
                      chars[:, 20:]])
    ids = pa.array(np.ascontiguousarray(full).view("S36").ravel(), type=pa.binary()).cast(pa.string())
    # pyarrow hands back a ChunkedArray past 16 MiB of binary (~466k ids), which the callers'
    # `pa.concat_arrays` refuses: the generator failed above ~300k customers.
    return ids.combine_chunks() if isinstance(ids, pa.ChunkedArray) else ids


def person_cookie(rng: np.random.Generator, ids: Identifiers, person: np.ndarray) -> np.ndarray:
    """Index (into ``ids.cookies``) of one of each given person's cookies, chosen at random."""
    pick = np.floor(rng.random(len(person)) * ids.cookie_count[person]).astype(np.int64)
    return ids.cookie_start[person] + pick


def written_names(rng: np.random.Generator, ids: Identifiers, person: np.ndarray,
                  arabic: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """First and last names as one source writes them: Arabic script or one Latin spelling."""
    first_ar, first_latin, _ = first_name_table()
    last_ar, last_latin = _last_name_table()
    spelling = rng.integers(0, 3, (len(person), 2))
    first = where(arabic, take(first_ar, ids.first_name[person]),
                  take(first_latin, ids.first_name[person] * 3 + spelling[:, 0]))
    last = where(arabic, take(last_ar, ids.last_name[person]),
                 take(last_latin, ids.last_name[person] * 3 + spelling[:, 1]))
    return first, last


def noisy_emails(rng: np.random.Generator, email: pa.Array) -> pa.Array:
    """Emails as people type them: mostly clean, sometimes capitalised, shouted, padded or title-cased."""
    style = rng.choice(5, len(email), p=[0.72, 0.08, 0.06, 0.08, 0.06])
    out = choose(style, [email, pc.utf8_capitalize(email), pc.utf8_upper(email), cat("  ", email, " "),
                         pc.utf8_title(email)])
    return where(pc.equal(email, ""), "", out)


def format_phones(rng: np.random.Generator, cc: pa.Array, nsn: pa.Array) -> pa.Array:
    """Phones as people and tills write them: PS numbers often local, others international."""
    style = rng.integers(0, 6, len(nsn))
    cut = pc.utf8_slice_codeunits
    a, b, c = cut(nsn, 0, 2), cut(nsn, 2, 5), cut(nsn, 5, 64)
    international = [cat("+", cc, " ", a, " ", b, " ", c), cat("00", cc, nsn), cat("+", cc, nsn)]
    local = [cat("0", nsn), cat("0", a, "-", b, " ", c), cat("0", a, " ", b, " ", c)]
    palestinian = choose(style, local + international)
    foreign = choose(style % 3, international)
    return where(pc.equal(nsn, ""), "", where(pc.equal(cc, "970"), palestinian, foreign))
