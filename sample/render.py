"""The source tables as the shop's systems export them, from the simulated world.

Each function returns one or two source tables with exactly the file's columns (see
:data:`sample.config_file.SOURCE_SPECS`) plus ``_person`` and ``_journey``: the true person
and journey of each row (-1 for none), which become ``truth/records.csv`` and are dropped
from the files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from sample.dates import (
    DAY_S,
    NOMINAL_UTC_OFFSET_S,
    iso_dates,
    local_iso,
    local_naive,
    pos_stamp,
    utc_iso,
)
from sample.engagement import EMAIL_EVENT_TYPES, WEB_EVENT_TYPES, newsletters
from sample.identifiers import (
    Identifiers,
    first_name_table,
    format_phones,
    noisy_emails,
    person_cookie,
    written_names,
)
from sample.journeys import CHANNELS, touch_vocabulary
from sample.shop import (
    CATEGORIES,
    COUNTRIES,
    HISTORY_DAYS,
    ILS_PER_USD,
    JUNK_EMAILS,
    JUNK_PHONES,
    PRODUCTS,
    STORE_EMAIL,
    STORE_NAMES,
    STORES,
    WALK_IN_PHONE,
)
from sample.text import (
    bool_text,
    cat,
    const,
    dataframe,
    int_text,
    money,
    seq_ids,
    take,
    where,
    zero_padded,
)

WEB_DELIVERY_PHONE_SHARE = 0.4  # web orders whose checkout form carries a delivery phone


def crm_customers(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers, end_day: int) -> pd.DataFrame:
    """The CRM export: one row per CRM person plus duplicate rows under a second id.

    A duplicate repeats either the email (shouted, no phone) or the phone (in another
    format, with the second email or none), so it links to its person only through that.
    The phone is the one the person had when their first CRM row was created.
    """
    main, dup = np.flatnonzero(ids.in_crm), np.flatnonzero(ids.has_crm_duplicate)
    person = np.concatenate([main, dup])
    is_dup = np.concatenate([np.zeros(len(main), bool), np.ones(len(dup), bool)])
    n = len(person)
    key = where(is_dup, ids.crm_key2.take(person), ids.crm_key.take(person))
    created_day = np.minimum(ids.crm_created_day[person] + np.where(is_dup, rng.integers(30, 400, n), 0), end_day)
    created_s = created_day * DAY_S + rng.integers(9 * 3600, 19 * 3600, n) - NOMINAL_UTC_OFFSET_S

    has_email, has_phone = ids.has_email[person], ids.has_phone[person]
    dup_by_email = is_dup & has_email & (~has_phone | (rng.random(n) < 0.6))
    dup_by_phone = is_dup & ~dup_by_email
    true_email = ids.email.take(person)
    email = noisy_emails(rng, true_email)
    email = where(dup_by_email, pc.utf8_upper(true_email), email)
    email = where(dup_by_phone, ids.email2.take(person), email)
    email = where(~has_email & ~is_dup & (rng.random(n) < 0.25), "no@email.com", email)

    # The phone the person had when their (first) CRM row was created; a duplicate repeats it.
    changed_later = ids.phone_changed_day[person] > ids.crm_created_day[person]
    nsn = where(changed_later, ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    phone = where(dup_by_email, "", format_phones(rng, ids.phone_cc.take(person), nsn))
    phone = where(~has_phone & (rng.random(n) < 0.2), "0000000000", phone)

    code = np.array([c[0] for c in COUNTRIES])[persons["country_index"].to_numpy()[person]]
    first, last = written_names(rng, ids, person, arabic=np.isin(code, ["PS", "IL", "JO"]) & (rng.random(n) < 0.5))
    gender_style = rng.choice(3, n, p=[0.6, 0.2, 0.2])
    is_female = np.array(first_name_table()[2])[ids.first_name[person]] == "F"
    gender = take(["M", "F", "male", "female", ""], np.where(gender_style == 2, 4, gender_style * 2 + is_female))
    style = rng.integers(0, 3, n)
    flags = ["no", "yes", "false", "true", "0", "1"]
    consent_email = take(flags, style * 2 + persons["email_subscribed"].to_numpy()[person])
    consent_sms = where(has_phone, take(flags, style * 2 + (rng.random(n) < 0.4)), "")
    consent_ads = _ads_consent(person, persons["email_subscribed"].to_numpy()[person], style, flags)
    all_cities = [c for country in COUNTRIES for c in country[2]]
    order = pc.sort_indices(key).to_numpy()
    columns = {
        "customer_id": key, "first_name": first, "last_name": last, "email": email, "phone": phone,
        "birth_date": iso_dates(ids.birth_date_day[person]), "gender": gender,
        "country": take([c[0] for c in COUNTRIES], persons["country_index"].to_numpy()[person]),
        "city": take(all_cities, persons["city_index"].to_numpy()[person]),
        "consent_email": consent_email, "consent_sms": consent_sms,
        "consent_ads": consent_ads, "created_at": local_naive(created_s),
        "_person": person, "_journey": np.full(n, -1),
    }
    return dataframe({k: (v.take(order) if isinstance(v, pa.Array) else v[order]) for k, v in columns.items()})


def _ads_consent(person: np.ndarray, email_subscribed: np.ndarray, style: np.ndarray, flags: list[str]):
    """Consent to advertising on platforms (Meta, Google), written in the CRM's mixed styles:
    about half of the newsletter subscribers and a fifth of the others said yes, and one row in
    ten left it empty (which counts as no). Drawn from the person's number, not the shared
    random stream, so every other column of a seed's shop is as it was before this one existed."""
    mixed = (np.asarray(person, dtype=np.uint64) * np.uint64(2654435761) + np.uint64(97)) % np.uint64(2**32)
    u = mixed.astype(float) / 2**32
    said_yes = np.where(np.asarray(email_subscribed, dtype=bool), u < 0.55, u < 0.2)
    unanswered = (u * 1000) % 1 < 0.1
    return where(unanswered, "", take(flags, style * 2 + said_yes))


def order_sources(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers,
                  purchases: pd.DataFrame, journeys: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Web orders (email, ISO time with offset, ILS or USD) and store receipts (phone or card, till time)."""
    journey_of = np.full(len(purchases), -1)
    converted = journeys.loc[journeys["converted"], ["purchase_row", "journey"]].to_numpy()
    journey_of[converted[:, 0]] = converted[:, 1]
    is_web = purchases["is_web"].to_numpy()
    skus = [p[0] for p in PRODUCTS]

    w = purchases.loc[is_web]
    person = w["person"].to_numpy()
    n = len(w)
    use_second = ids.has_email2[person] & (rng.random(n) < 0.3)
    true_email = where(use_second, ids.email2.take(person), ids.email.take(person))
    # Orders taken by staff over the phone carry the shop's own email.
    staff_order = ~ids.has_email[person] | (rng.random(n) < 0.01)
    email = where(staff_order, STORE_EMAIL, noisy_emails(rng, true_email))
    # Checkout asks for a delivery phone (optional); staff taking an order by phone always note it.
    phone_then = where(ids.phone_changed_day[person] > w["day"].to_numpy(),
                       ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    give_phone = ids.has_phone[person] & (staff_order | (rng.random(n) < WEB_DELIVERY_PHONE_SHARE))
    delivery_phone = where(give_phone, format_phones(rng, ids.phone_cc.take(person), phone_then), "")
    code = np.array([c[0] for c in COUNTRIES])[persons["country_index"].to_numpy()[person]]
    usd = ~np.isin(code, ["PS", "IL"])
    to_currency = np.where(usd, 1.0 / ILS_PER_USD, 1.0)
    web = dataframe({
        "order_id": seq_ids("W", n, 7),
        "created_at": local_iso(w["time_s"].to_numpy()),
        "email": email,
        "delivery_phone": delivery_phone,
        "amount": money(w["value_ils"].to_numpy() * to_currency),
        "items": int_text(w["items"].to_numpy()),
        "sku": take(skus, w["sku"].to_numpy()), "category": take(CATEGORIES, w["category"].to_numpy()),
        "discount": money(w["discount_ils"].to_numpy() * to_currency),
        "currency": take(["ILS", "USD"], usd), "is_return": bool_text(w["is_return"].to_numpy()),
        "channel": const("web", n), "_person": person, "_journey": journey_of[is_web],
    })

    s = purchases.loc[~is_web]
    person = s["person"].to_numpy()
    n = len(s)
    before_change = ids.phone_changed_day[person] > s["day"].to_numpy()
    nsn = where(before_change, ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    write_phone = ids.has_phone[person] & (rng.random(n) < 0.8)
    write_card = ids.has_card[person] & (rng.random(n) < 0.85)
    phone = where(write_phone, format_phones(rng, ids.phone_cc.take(person), nsn), "")
    phone = where(write_phone & (rng.random(n) < 0.01), JUNK_PHONES[1], phone)
    phone = where(~write_phone & ~write_card, WALK_IN_PHONE, phone)
    home = persons["home_store"].to_numpy()[person]
    store = np.where(rng.random(n) < 0.85, home, 1 - home)
    pos = dataframe({
        "receipt_id": cat(take(STORES, store), "-", zero_padded(np.arange(1, n + 1), 7)),
        "store": take(STORE_NAMES, store),
        "date": pos_stamp(s["time_s"].to_numpy()),
        "phone": phone,
        "loyalty_card": where(write_card, ids.loyalty_card.take(person), ""),
        "amount": money(s["value_ils"].to_numpy()),
        "items": int_text(s["items"].to_numpy()),
        "sku": take(skus, s["sku"].to_numpy()), "category": take(CATEGORIES, s["category"].to_numpy()),
        "discount": money(s["discount_ils"].to_numpy()),
        "currency": const("ILS", n), "is_return": take(["0", "1"], s["is_return"].to_numpy()),
        "channel": const("store", n), "_person": person, "_journey": journey_of[~is_web],
    })
    return web, pos


def facebook_leads(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers, end_day: int) -> pd.DataFrame:
    """Lead-form exports from Facebook and Instagram: the email-phone bridge of many persons."""
    start_day = end_day - HISTORY_DAYS + 1
    person = np.flatnonzero(ids.in_leads & (persons["first_seen_day"].to_numpy() >= start_day))
    created_s = (persons["first_seen_day"].to_numpy()[person] * DAY_S
                 + rng.integers(7 * 3600, 23 * 3600, len(person)) - NOMINAL_UTC_OFFSET_S)
    order = np.lexsort((person, created_s))
    person, created_s = person[order], created_s[order]
    n = len(person)
    has_email = ids.has_email[person]
    email = where(ids.has_email2[person] & (rng.random(n) < 0.4), ids.email2.take(person), ids.email.take(person))
    email = where(rng.random(n) < 0.15, noisy_emails(rng, email), email)
    # The form requires an email: people without one type a placeholder (or leave it blank).
    placeholder = (~has_email & (rng.random(n) < 0.6)) | (has_email & (rng.random(n) < 0.01))
    email = where(placeholder, take(JUNK_EMAILS, rng.integers(0, len(JUNK_EMAILS), n)), email)
    cc, nsn = ids.phone_cc.take(person), ids.phone_nsn.take(person)
    palestinian = persons["country_index"].to_numpy()[person] == [c[0] for c in COUNTRIES].index("PS")
    typed = where(palestinian & (rng.random(n) < 0.5), cat("0", nsn), cat("+", cc, nsn))
    write_phone = ids.has_phone[person] & ((rng.random(n) < 0.85) | ~has_email)
    phone = where(write_phone, typed, "")
    phone = where(rng.random(n) < 0.015, take(JUNK_PHONES, rng.integers(0, 2, n)), phone)
    first, last = written_names(rng, ids, person, arabic=rng.random(n) < 0.2)
    lead_id = int_text(318_400_000_000_000 + np.arange(n) * 19 + rng.integers(0, 19, n))
    return dataframe({
        "lead_id": lead_id, "created_time": utc_iso(created_s, "+00:00"), "email": email, "phone": phone,
        "first_name": first, "last_name": last,
        "platform": take(["facebook", "instagram"], rng.random(n) >= 0.6),
        "_person": person, "_journey": np.full(n, -1),
    })


def web_events_source(ids: Identifiers, cookies: pa.Array, rows: pd.DataFrame) -> pd.DataFrame:
    """The web-analytics export, sorted by time, with sequential event ids."""
    order = np.lexsort((rows["event"].to_numpy(), rows["cookie"].to_numpy(), rows["time_s"].to_numpy()))
    r = rows.iloc[order]
    n = len(r)
    person = r["person"].to_numpy()
    sku, category, value = r["sku"].to_numpy(), r["category"].to_numpy(), r["value"].to_numpy()
    return dataframe({
        "event_id": seq_ids("WE", n, 9),
        "anonymous_id": cookies.take(r["cookie"].to_numpy()),
        "email": where(r["logged_in"].to_numpy() & (person >= 0), ids.email.take(np.maximum(person, 0)), ""),
        "timestamp": utc_iso(r["time_s"].to_numpy(), "Z"),
        "event_type": take(WEB_EVENT_TYPES, r["event"].to_numpy()),
        "channel": const("web", n),
        "product_id": where(sku >= 0, take([p[0] for p in PRODUCTS], np.maximum(sku, 0)), ""),
        "category": where(category >= 0, take(CATEGORIES, np.maximum(category, 0)), ""),
        "value": where(np.isnan(value), "", money(np.nan_to_num(value))),
        "_person": person, "_journey": np.full(n, -1),
    })


def email_events_source(rng: np.random.Generator, ids: Identifiers, newsletter: pd.DataFrame,
                        touches: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """The email platform export: newsletter activity plus journey emails (sent, then clicked)."""
    letter_names = newsletters(end_day)["campaign"].tolist()
    _, touch_campaigns = touch_vocabulary()
    t = touches.loc[touches["channel"] == [c.name for c in CHANNELS].index("email")]
    m = len(t)
    flows = pd.DataFrame({
        "person": np.tile(t["person"].to_numpy(), 2),
        "time_s": np.concatenate([t["time_s"].to_numpy() - rng.integers(3600, 36 * 3600, m), t["time_s"].to_numpy()]),
        "event": np.repeat([EMAIL_EVENT_TYPES.index("email_sent"), EMAIL_EVENT_TYPES.index("email_click")], m),
        "campaign": len(letter_names) + np.tile(t["campaign"].to_numpy(), 2),
        "journey": np.tile(t["journey"].to_numpy(), 2),
    })
    rows = pd.concat([newsletter.assign(journey=-1), flows], ignore_index=True)
    order = np.lexsort((rows["event"].to_numpy(), rows["person"].to_numpy(), rows["time_s"].to_numpy()))
    r = rows.iloc[order]
    n = len(r)
    return dataframe({
        "event_id": seq_ids("EM", n, 9),
        "email": ids.email.take(r["person"].to_numpy()),
        "timestamp": utc_iso(r["time_s"].to_numpy(), "+00:00"),
        "event_type": take(EMAIL_EVENT_TYPES, r["event"].to_numpy()),
        "campaign": take(letter_names + list(touch_campaigns), r["campaign"].to_numpy()),
        "channel": const("email", n), "_person": r["person"].to_numpy(), "_journey": r["journey"].to_numpy(),
    })


def ad_touchpoints_source(rng: np.random.Generator, ids: Identifiers, touches: pd.DataFrame) -> pd.DataFrame:
    """Ad and visit touches, each keyed by one identifier: email, CRM key or cookie.

    Social platforms match many touches to emails or uploaded CRM ids; search clicks and
    direct visits are mostly known by cookie only.
    """
    names = [c.name for c in CHANNELS]
    t = touches.loc[touches["channel"] != names.index("email")]
    n = len(t)
    person = t["person"].to_numpy()
    social = np.isin(t["channel"].to_numpy(), [names.index(c) for c in ("facebook", "instagram", "organic_social")])
    u = rng.random(n)
    by_email = ids.has_email[person] & np.where(social, u < 0.45, u < 0.15)
    by_crm = ~by_email & social & ids.in_crm[person] & (u < 0.75)
    by_cookie = ~by_email & ~by_crm
    events, campaigns = touch_vocabulary()
    return dataframe({
        "touch_id": seq_ids("TP", n, 9),
        "email": where(by_email, ids.email.take(person), ""),
        "customer_key": where(by_crm, ids.crm_key.take(person), ""),
        "anonymous_id": where(by_cookie, ids.cookies.take(person_cookie(rng, ids, person)), ""),
        "timestamp": utc_iso(t["time_s"].to_numpy(), "Z"),
        "event_type": take(events, t["event"].to_numpy()),
        "channel": take(names, t["channel"].to_numpy()),
        "campaign": take(campaigns, t["campaign"].to_numpy()),
        "_person": person, "_journey": t["journey"].to_numpy(),
    })
