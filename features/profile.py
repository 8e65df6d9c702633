"""Profile features: who the customer is, from the golden record.

Age band, country and city can be model inputs; consent flags are carried for
marketers' lists and are never model inputs (see `features.catalog`). The golden record
is the current state of a person, not a history: birth date, country and city rarely
change, and consent is always read as it is now, which is what a list sent today needs.
The population is every customer first seen on or before the as-of day.
"""

from __future__ import annotations

import datetime as dt

import ibis
from ibis import _

from features.as_of import cutoff

AGE_BANDS = ((18, "18-24"), (25, "25-34"), (35, "35-44"), (45, "45-54"), (55, "55-64"), (65, "65+"))


def known_customers(customers: ibis.Table, as_of: dt.date) -> ibis.Table:
    """Customers whose first dated record is on or before the as-of day."""
    return customers.filter(_.first_seen < cutoff(as_of))


def profile_features(customers: ibis.Table, as_of: dt.date) -> ibis.Table:
    """One row per known customer: ``age_years``, ``age_band``, ``country``, ``city``,
    ``consent_email``, ``consent_sms``, ``consent_ads``, ``customer_age_days`` (days since first seen)."""
    as_of_date = ibis.date(as_of)
    known = known_customers(customers, as_of)
    # Whole years between birth and the as-of day, from (year, month, day) so it is exact on both engines.
    born = known.birth_date
    years = (as_of.year - born.year()) - ibis.ifelse(
        (born.month() > as_of.month) | ((born.month() == as_of.month) & (born.day() > as_of.day)), 1, 0)
    age = ibis.ifelse(born.isnull() | (years < 0) | (years > 120), ibis.null("int64"), years.cast("int64"))
    band = ibis.cases(*[(age >= low, label) for low, label in reversed(AGE_BANDS)], else_=ibis.null("string"))
    return known.select(
        "customer_id",
        age_years=age,
        age_band=band,
        country=_.country,
        city=_.city,
        consent_email=_.consent_email.fill_null(False),
        consent_sms=_.consent_sms.fill_null(False),
        # A store unified before consent_ads was a field has no such column until the next unify: no consent.
        consent_ads=_.consent_ads.fill_null(False) if "consent_ads" in known.columns else ibis.literal(False),
        customer_age_days=lambda t: as_of_date.delta(t.first_seen.date(), unit="day"),
    )
