"""The ground truth written beside the sources, in ``truth/`` (all CSV).

``records.csv``
    source, source_key, row_number (1-based, header not counted), person_id (empty for
    web visitors who are nobody) and journey_id, for every written row.
``persons.csv``
    the latent truth of each person: group, purchase rate, first-seen, first-purchase
    and death dates, spend, channel and category preferences, email engagement, and
    which identifiers and sources the person has.
``identifiers.csv``
    every true identifier of every person, canonical (lowercase email, E.164 phone).
``channels.csv``
    each channel's true effect, average conversion lift, exposure probability, and the
    tracked conversions it causes (``lost_conversions``, ``true_share``).
``journeys.csv``
    every tracked journey that left a touch row: converted or not, its order and its
    exposures.
``expected_rejects.csv``
    the invalid rows (source, source_key, row_number, problem); built by
    :mod:`sample.invalid_rows`.
``junk_identifiers.csv``
    id_type, value and reason of every junk identifier.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import pyarrow as pa

from sample.config_file import SOURCE_SPECS
from sample.dates import iso_dates, utc_iso
from sample.identifiers import Identifiers
from sample.journeys import (
    BASE_CONVERSION,
    CHANNELS,
    exposure_probabilities,
    lost_conversion_probability,
)
from sample.shop import (
    CATEGORIES,
    COUNTRIES,
    JUNK_EMAILS,
    JUNK_PHONES,
    STORE_EMAIL,
    STORE_NAMES,
    WALK_IN_PHONE,
)
from sample.text import (
    bool_text,
    cat,
    column_text,
    const,
    dataframe,
    fixed_decimals,
    int_text,
    take,
    text_array,
    where,
    zero_padded,
)
from sample.world import GROUPS, person_category_weights


def _journey_ids(journey: np.ndarray) -> pa.Array:
    return where(journey >= 0, cat("J", zero_padded(journey + 1, 8)), "")


def records_truth(source: str, frame: pd.DataFrame, person_ids: pa.Array) -> pd.DataFrame:
    """One truth line per written row: its person (empty for nobody's cookie) and journey."""
    person = frame["_person"].to_numpy()
    n = len(frame)
    return dataframe({
        "source": const(source, n),
        "source_key": column_text(frame.iloc[:, 0]),
        "row_number": int_text(np.arange(1, n + 1)),
        "person_id": where(person >= 0, person_ids.take(np.maximum(person, 0)), ""),
        "journey_id": _journey_ids(frame["_journey"].to_numpy()),
    })


def persons_truth(persons: pd.DataFrame, ids: Identifiers, person_ids: pa.Array, end_day: int) -> pd.DataFrame:
    """The latent truth of every person, as text with fixed precision."""
    p = persons
    weights = person_category_weights(p)
    all_cities = [c for country in COUNTRIES for c in country[2]]
    return dataframe({
        "person_id": person_ids,
        "group": take([g.name for g in GROUPS], p["group_index"].to_numpy()),
        "purchase_rate_per_day": fixed_decimals(p["purchase_rate_per_day"].to_numpy(), 6),
        "first_seen_date": iso_dates(p["first_seen_day"].to_numpy()),
        "first_purchase_date": iso_dates(p["first_purchase_day"].to_numpy()),
        "death_date": iso_dates(p["death_day"].to_numpy()),
        "is_alive_at_end": bool_text(p["death_day"].to_numpy() > end_day),
        "mean_order_value_ils": fixed_decimals(p["mean_order_value_ils"].to_numpy(), 2),
        "web_share": fixed_decimals(p["web_share"].to_numpy(), 4),
        "preferred_category": take(CATEGORIES, weights.argmax(axis=1)),
        **{f"category_weight_{c}": fixed_decimals(weights[:, k], 4) for k, c in enumerate(CATEGORIES)},
        "country": take([c[0] for c in COUNTRIES], p["country_index"].to_numpy()),
        "city": take(all_cities, p["city_index"].to_numpy()),
        "home_store": take(STORE_NAMES, p["home_store"].to_numpy()),
        "email_subscribed": bool_text(p["email_subscribed"].to_numpy()),
        "email_open_rate": fixed_decimals(p["email_open_rate"].to_numpy(), 4),
        "email_click_rate": fixed_decimals(p["email_click_rate"].to_numpy(), 4),
        "email_decay_days": fixed_decimals(p["email_decay_days"].to_numpy(), 1),
        "n_emails": int_text(ids.has_email.astype(int) + ids.has_email2.astype(int)),
        "has_phone": bool_text(ids.has_phone),
        "phone_changed_date": iso_dates(ids.phone_changed_day),
        "has_loyalty_card": bool_text(ids.has_card),
        "n_crm_rows": int_text(ids.in_crm.astype(int) + ids.has_crm_duplicate.astype(int)),
        "in_leads": bool_text(ids.in_leads),
        "n_cookies": int_text(ids.cookie_count),
    })


def identifiers_truth(ids: Identifiers, person_ids: pa.Array) -> pd.DataFrame:
    """Every true identifier of every person in canonical form (email lowercase, phone E.164)."""
    owners: list[np.ndarray] = []
    types: list[np.ndarray] = []
    values: list = []  # pyarrow arrays
    for id_type, value, present in (
        ("email", ids.email, ids.has_email),
        ("email", ids.email2, ids.has_email2),
        ("phone", cat("+", ids.phone_cc, ids.phone_nsn), ids.has_phone),
        ("phone", cat("+", ids.phone_cc, ids.old_phone_nsn), ids.has_old_phone),
        ("customer_key", ids.crm_key, ids.in_crm),
        ("customer_key", ids.crm_key2, ids.has_crm_duplicate),
        ("external_id", ids.loyalty_card, ids.has_card),
    ):
        idx = np.flatnonzero(present)
        owners.append(idx)
        types.append(np.full(len(idx), len(types)))
        values.append(value.take(idx))
    owners.append(np.repeat(np.arange(len(ids.cookie_count)), ids.cookie_count))
    types.append(np.full(len(ids.cookies), len(types)))
    values.append(ids.cookies)
    owner, kind = np.concatenate(owners), np.concatenate(types)
    order = np.lexsort((np.arange(len(owner)), owner))
    type_names = ["email", "email", "phone", "phone", "customer_key", "customer_key", "external_id", "anonymous_id"]
    return dataframe({
        "person_id": person_ids.take(owner[order]),
        "id_type": take(type_names, kind[order]),
        "value": pa.concat_arrays(values).take(order),
    })


def channels_truth(journeys: pd.DataFrame) -> pd.DataFrame:
    """What each channel truly does: its activation, the lift it implies, the conversions it causes.

    ``true_effect`` is the noisy-OR activation probability of one exposure, whoever sees
    it. ``average_lift`` is E[p | channel exposed] - E[p | not exposed] for an intent whose
    other exposures are random (email available). ``lost_conversions`` is the expected
    number of conversions of the tracked intents (the rows of ``journeys``, converted or
    not) that switching the channel off would lose (see :func:`lost_conversion_probability`);
    ``true_share`` is the same normalised to sum to 1 over the channels: the share of the
    conversions each channel causes, which is what attribution models try to estimate. It
    depends on reach (``exposure_probability``) as well as on ``true_effect``. The lost
    conversions of all channels add up to less than the conversions they cause together
    (an intent that two channels both activate is lost by switching off neither alone),
    hence the share.
    """
    effect = np.array([c.true_effect for c in CHANNELS])
    q = exposure_probabilities(True)
    email_available = journeys["email_available"].to_numpy(dtype=bool)
    lost = (email_available.sum() * lost_conversion_probability(True)
            + (~email_available).sum() * lost_conversion_probability(False))
    k = len(CHANNELS)
    return dataframe({
        "channel": text_array([c.name for c in CHANNELS]),
        "funnel_stage": text_array([c.funnel_stage for c in CHANNELS]),
        "true_effect": fixed_decimals(effect, 4),
        "average_lift": fixed_decimals(lost_conversion_probability(True) / q, 6),
        "exposure_probability": fixed_decimals(q, 4),
        "lost_conversions": fixed_decimals(lost, 2),
        "true_share": fixed_decimals(lost / lost.sum(), 4),
        "lag_days_min": fixed_decimals(np.array([c.lag_days[0] for c in CHANNELS]), 2),
        "lag_days_max": fixed_decimals(np.array([c.lag_days[1] for c in CHANNELS]), 2),
        "base_conversion": fixed_decimals(np.full(k, BASE_CONVERSION), 4),
    })


def journeys_truth(journeys: pd.DataFrame, tables: Mapping[str, pd.DataFrame], person_ids: pa.Array) -> pd.DataFrame:
    """Tracked journeys that left at least one touch row, with their exposures and their order."""
    n = len(journeys)
    order_source = np.full(n, -1)
    order_row = np.zeros(n, dtype=np.int64)
    n_touches = np.zeros(n, dtype=np.int64)
    order_keys: list[pa.Array] = []
    order_specs = [s for s in SOURCE_SPECS if s.kind == "orders"]
    for spec in SOURCE_SPECS:
        frame = tables[spec.name]
        journey = frame["_journey"].to_numpy()
        has = journey >= 0
        if spec.kind == "orders":
            order_source[journey[has]] = order_specs.index(spec)
            order_row[journey[has]] = sum(len(k) for k in order_keys) + np.flatnonzero(has)
            order_keys.append(column_text(frame.iloc[:, 0]))
        elif spec.kind == "events":
            touch = has & (frame[spec.columns["event_type"]].to_numpy() != "email_sent")
            n_touches += np.bincount(journey[touch], minlength=n)
    keep = np.flatnonzero(n_touches > 0)
    jr = journeys.iloc[keep]
    source = order_source[keep]
    keys = pa.concat_arrays(order_keys) if order_keys else text_array([])
    columns = {
        "journey_id": _journey_ids(jr["journey"].to_numpy()),
        "person_id": person_ids.take(jr["person"].to_numpy()),
        "converted": bool_text(jr["converted"].to_numpy()),
        "order_source": where(source >= 0, take([s.name for s in order_specs], np.maximum(source, 0)), ""),
        "order_key": where(source >= 0, keys.take(order_row[keep]), "") if len(keys) else const("", len(keep)),
        "journey_end": utc_iso(jr["end_s"].to_numpy(), "Z"),
        "n_touches": int_text(n_touches[keep]),
        "email_available": bool_text(jr["email_available"].to_numpy()),
    }
    for c in CHANNELS:
        columns[f"exposed_{c.name}"] = bool_text(jr[f"exposed_{c.name}"].to_numpy())
    return dataframe(columns)


def junk_truth() -> pd.DataFrame:
    """The junk identifiers: placeholders people type and the shop's own shared email and phone."""
    rows = ([("email", e, "placeholder") for e in JUNK_EMAILS] + [("email", STORE_EMAIL, "shop_shared")]
            + [("phone", p, "placeholder") for p in JUNK_PHONES] + [("phone", WALK_IN_PHONE, "shop_shared")])
    return dataframe({name: text_array([r[k] for r in rows]) for k, name in enumerate(("id_type", "value", "reason"))})
