"""The simulated persons: their latent behavioural group, purchase process and purchases.

**Persons** (``n_customers`` of them) belong to one latent behavioural group:

``champions``
    frequent, high-spend, long-lived, engaged by email.
``loyal``
    steady pantry shoppers (oil, za'atar, maftoul), mostly alive.
``promising``
    first purchase in the last eight months, gift-leaning baskets.
``at_risk``
    regulars of one to three years whose dropout falls around ``end``.
``hibernating``
    one-off bargain hunters: rare, cheap, discounted purchases, short lifetimes.
``prospects``
    seen as leads, subscribers or browsers; their first purchase lies after ``end``.

**Purchases** follow the Pareto/NBD story (Schmittlein, Morrison & Colombo, 1987). Each
person has a purchase rate ``purchase_rate_per_day`` (gamma-distributed around the
group's mean), a first-purchase day ``first_purchase_date`` (the birth into the customer
base) and a dropout day ``death_date`` (the first day on which the person can no longer
buy; it may lie after ``end``). The first purchase happens on the birth day; repeat
purchases are a Poisson process of rate ``purchase_rate_per_day`` on
``[first_purchase_date + 1, death_date)`` (each purchase falls on the day containing a
continuous Poisson time). Hence, with full latent knowledge, the chance of at least one
purchase on days ``as_of + 1 .. as_of + H`` is ``1 - exp(-rate * overlap_days)``
(see :func:`sample.oracles.oracle_purchase_probability`). Returns are extra rows a few
days after a purchase and never after ``death_date`` or ``end``: no row of any order
source falls on or after a person's ``death_date``. Amounts are gamma-distributed around
the person's ``mean_order_value_ils`` (itself gamma around the group mean); customers
abroad pay in USD at ``ILS_PER_USD``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sample.dates import DAY_S, NOMINAL_UTC_OFFSET_S
from sample.shop import (
    CATEGORIES,
    COUNTRIES,
    EVENT_WINDOW_DAYS,
    HISTORY_DAYS,
    PRODUCTS,
    STORE_OF_CITY,
)


@dataclass(frozen=True)
class GroupProfile:
    """The parameters of one behavioural group (rates per day, money in ILS).

    ``first_purchase_days`` and ``death_days_after_end`` are ranges of days relative to
    ``end``; ``death_days_after_end`` (when set) replaces the exponential lifetime of mean
    ``mean_lifetime_days``. ``web_share_shift`` moves the person's share of online
    orders; ``category_weights`` follow ``CATEGORIES``.
    """

    name: str
    share: float
    purchase_rate_per_day: float
    rate_shape: float
    mean_lifetime_days: float
    first_purchase_days: tuple[int, int]
    death_days_after_end: tuple[int, int] | None
    mean_order_value_ils: float
    discount_probability: float
    return_probability: float
    web_share_shift: float
    email_subscribe_probability: float
    email_open_rate: float
    email_click_rate: float
    browse_sessions_per_day: float
    abandoned_carts_per_day: float
    crm_probability: float
    lead_probability: float
    category_weights: tuple[float, ...]


GROUPS: tuple[GroupProfile, ...] = (
    GroupProfile("champions", 0.05, 0.040, 3.0, 4000, (-1094, -450), None, 260, 0.10, 0.015, 0.0,
                 0.75, 0.55, 0.20, 0.022, 0.005, 0.85, 0.15,
                 (0.34, 0.12, 0.08, 0.08, 0.07, 0.08, 0.08, 0.08, 0.07)),
    GroupProfile("loyal", 0.14, 0.015, 3.0, 1800, (-1094, -200), None, 180, 0.15, 0.015, 0.0,
                 0.60, 0.40, 0.15, 0.011, 0.003, 0.75, 0.15,
                 (0.30, 0.20, 0.15, 0.12, 0.10, 0.04, 0.03, 0.03, 0.03)),
    GroupProfile("promising", 0.14, 0.018, 2.5, 700, (-240, -1), None, 150, 0.25, 0.02, 0.1,
                 0.50, 0.35, 0.12, 0.011, 0.004, 0.45, 0.35,
                 (0.15, 0.10, 0.05, 0.10, 0.10, 0.15, 0.15, 0.12, 0.08)),
    GroupProfile("at_risk", 0.16, 0.010, 3.0, 0, (-1094, -365), (-150, 90), 170, 0.20, 0.025, 0.0,
                 0.50, 0.35, 0.10, 0.006, 0.002, 0.60, 0.15,
                 (0.25, 0.15, 0.10, 0.10, 0.10, 0.08, 0.07, 0.08, 0.07)),
    GroupProfile("hibernating", 0.38, 0.0036, 2.0, 150, (-1094, -30), None, 70, 0.60, 0.03, 0.2,
                 0.30, 0.12, 0.05, 0.003, 0.0015, 0.45, 0.20,
                 (0.15, 0.15, 0.10, 0.10, 0.30, 0.05, 0.05, 0.05, 0.05)),
    GroupProfile("prospects", 0.13, 0.014, 2.5, 900, (1, 365), None, 120, 0.30, 0.02, 0.2,
                 0.60, 0.25, 0.08, 0.008, 0.003, 0.40, 0.60,
                 (0.15, 0.10, 0.05, 0.10, 0.10, 0.15, 0.15, 0.12, 0.08)),
)


def group_param(field: str, group: np.ndarray) -> np.ndarray:
    """One GroupProfile field, per person."""
    return np.array([getattr(g, field) for g in GROUPS])[group]


def draw_persons(rng: np.random.Generator, n: int, end_day: int) -> pd.DataFrame:
    """Draw each person's latent group, geography, purchase process and engagement.

    Day columns are day numbers since 1970-01-01. ``death_day`` is the first day the
    person can no longer buy.
    """
    shares = np.array([g.share for g in GROUPS])
    group = rng.choice(len(GROUPS), size=n, p=shares / shares.sum())
    shape = group_param("rate_shape", group)
    rate = rng.gamma(shape, group_param("purchase_rate_per_day", group) / shape)
    lo = np.array([g.first_purchase_days[0] for g in GROUPS])[group]
    hi = np.array([g.first_purchase_days[1] for g in GROUPS])[group]
    birth = end_day + lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)

    lifetime = np.ceil(rng.exponential(np.maximum(group_param("mean_lifetime_days", group), 1.0)))
    death = birth + 1 + lifetime.astype(np.int64)
    fixed = np.array([g.death_days_after_end is not None for g in GROUPS])[group]
    d_lo = np.array([(g.death_days_after_end or (0, 0))[0] for g in GROUPS])[group]
    d_hi = np.array([(g.death_days_after_end or (0, 0))[1] for g in GROUPS])[group]
    fixed_death = end_day + d_lo + np.floor(rng.random(n) * (d_hi - d_lo + 1)).astype(np.int64)
    death = np.where(fixed, np.maximum(fixed_death, birth + 30), death)

    start_day = end_day - HISTORY_DAYS + 1
    prospect = birth > end_day
    seen_before = np.ceil(rng.exponential(40.0, n)).astype(np.int64)
    prospect_seen = end_day - np.floor(rng.random(n) * EVENT_WINDOW_DAYS).astype(np.int64)
    first_seen = np.where(prospect, prospect_seen, np.maximum(start_day, birth - seen_before))

    country = rng.choice(len(COUNTRIES), size=n, p=[c[1] for c in COUNTRIES])
    n_cities = np.array([len(c[2]) for c in COUNTRIES])[country]
    city_offset = np.concatenate([[0], np.cumsum([len(c[2]) for c in COUNTRIES])[:-1]])[country]
    city = city_offset + np.floor(rng.random(n) * n_cities).astype(np.int64)
    all_cities = [city_name for c in COUNTRIES for city_name in c[2]]
    store_of_city = np.array([STORE_OF_CITY.get(c, -1) for c in all_cities])[city]
    code = np.array([c[0] for c in COUNTRIES])[country]
    abroad = ~np.isin(code, ["PS", "IL"])
    base_web = np.where(store_of_city >= 0, 0.15, np.where(code == "IL", 0.6, 0.45))
    web_share = np.clip(base_web + group_param("web_share_shift", group) + rng.normal(0, 0.12, n), 0.02, 0.98)
    web_share = np.where(abroad, 1.0, web_share)
    home_store = np.where(store_of_city >= 0, store_of_city, rng.integers(0, 2, n))

    mov = rng.gamma(6.0, group_param("mean_order_value_ils", group) / 6.0) * np.where(abroad, 1.3, 1.0)
    category_weights = rng.gamma(20.0 * np.array([g.category_weights for g in GROUPS])[group], 1.0)
    category_weights /= category_weights.sum(axis=1, keepdims=True)

    has_email = rng.random(n) < np.where(abroad | prospect, 0.97, 0.45 + 0.5 * web_share)
    has_phone = rng.random(n) < np.where(abroad & (code != "JO"), 0.5, 0.93)
    has_email |= ~has_phone
    subscribed = has_email & (rng.random(n) < group_param("email_subscribe_probability", group))
    open_mean = group_param("email_open_rate", group)
    click_mean = group_param("email_click_rate", group)
    return pd.DataFrame({
        "group_index": group,
        "purchase_rate_per_day": rate,
        "first_seen_day": first_seen,
        "first_purchase_day": birth,
        "death_day": death,
        "country_index": country,
        "city_index": city,
        "home_store": home_store,
        "web_share": web_share,
        "mean_order_value_ils": mov,
        **{f"category_weight_{c}": category_weights[:, k] for k, c in enumerate(CATEGORIES)},
        "has_email": has_email,
        "has_phone": has_phone,
        "email_subscribed": subscribed,
        "email_open_rate": rng.beta(8.0 * open_mean, 8.0 * (1.0 - open_mean)),
        "email_click_rate": rng.beta(8.0 * click_mean, 8.0 * (1.0 - click_mean)),
        "email_decay_days": rng.gamma(4.0, 30.0, n),
    })


def person_category_weights(persons: pd.DataFrame) -> np.ndarray:
    """Each person's category weights as a (persons, categories) matrix, in ``CATEGORIES`` order."""
    return persons[[f"category_weight_{c}" for c in CATEGORIES]].to_numpy()


def draw_purchases(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """Every purchase and return of every person, sorted by time.

    Columns: person, day, time_s (UTC seconds), is_web, sku and category (indexes into
    ``PRODUCTS`` and ``CATEGORIES``), items, value_ils (paid), discount_ils, is_return.
    Times of day are drawn in nominal local time (UTC+2): web 06:00-22:59, store
    09:00-20:59 in whole minutes, so the local date never differs from the model's day.
    """
    n = len(persons)
    birth = persons["first_purchase_day"].to_numpy()
    death = persons["death_day"].to_numpy()
    buyer = birth <= end_day
    active_from = birth + 1
    active_days = np.where(buyer, np.clip(np.minimum(death, end_day + 1) - active_from, 0, None), 0)
    repeats = rng.poisson(persons["purchase_rate_per_day"].to_numpy() * active_days)
    first = np.flatnonzero(buyer)
    repeat_person = np.repeat(np.arange(n), repeats)
    repeat_day = active_from[repeat_person] + np.floor(
        rng.random(len(repeat_person)) * active_days[repeat_person]).astype(np.int64)
    person = np.concatenate([first, repeat_person])
    day = np.concatenate([birth[first], repeat_day])
    m = len(person)

    is_web = rng.random(m) < persons["web_share"].to_numpy()[person]
    web_hours = np.array([1, 1, 2, 3, 3, 3, 3, 3, 4, 4, 4, 5, 6, 8, 9, 9, 6], dtype=float)
    hour = np.where(is_web, 6 + rng.choice(17, m, p=web_hours / web_hours.sum()), 9 + rng.integers(0, 12, m))
    second = np.where(is_web, rng.integers(0, 3600, m), 60 * rng.integers(0, 60, m))
    time_s = day * DAY_S + hour * 3600 + second - NOMINAL_UTC_OFFSET_S

    category = draw_categories(rng, person_category_weights(persons)[person])
    sku = pick_sku(rng, category)
    price = np.array([p[2] for p in PRODUCTS])[sku]
    gross = np.maximum(rng.gamma(4.0, persons["mean_order_value_ils"].to_numpy()[person] / 4.0), price)
    items = np.clip(np.rint(gross / np.maximum(price, 40.0)), 1, 12).astype(np.int64)
    group = persons["group_index"].to_numpy()[person]
    discount_rate = np.where(rng.random(m) < group_param("discount_probability", group),
                             rng.choice([0.10, 0.15, 0.20, 0.25], m), 0.0)
    discount = np.round(gross * discount_rate, 2)
    purchases = pd.DataFrame({
        "person": person, "day": day, "time_s": time_s, "is_web": is_web, "sku": sku, "category": category,
        "items": items, "value_ils": np.round(gross - discount, 2), "discount_ils": discount,
        "is_return": np.zeros(m, dtype=bool),
    })

    # Returns: a few days later, never on or after death or after end.
    return_p = group_param("return_probability", group) * np.where(
        category == CATEGORIES.index("ceramics"), 3.0, 1.0)
    return_day = day + rng.integers(1, 15, m)
    returned = (rng.random(m) < return_p) & (return_day < np.minimum(death[person], end_day + 1))
    returns = purchases.loc[returned].copy()
    returns["day"] = return_day[returned]
    returns["time_s"] = time_s[returned] + (return_day[returned] - day[returned]) * DAY_S
    returns["is_return"] = True
    returns["discount_ils"] = 0.0
    out = pd.concat([purchases, returns], ignore_index=True)
    order = np.lexsort((np.arange(len(out)), out["person"].to_numpy(), out["time_s"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def draw_categories(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category index per row of a (rows, categories) weight matrix."""
    chosen = (rng.random(len(weights))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    return np.minimum(chosen, len(CATEGORIES) - 1)


def pick_sku(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """A product index drawn uniformly among the products of each row's category."""
    category_of = np.array([CATEGORIES.index(p[1]) for p in PRODUCTS])
    starts = np.array([np.flatnonzero(category_of == c)[0] for c in range(len(CATEGORIES))])
    counts = np.bincount(category_of, minlength=len(CATEGORIES))
    return starts[category] + np.floor(rng.random(len(category)) * counts[category]).astype(np.int64)
