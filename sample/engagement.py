"""Web and email activity: browsing, checkouts, anonymous visitors, newsletters.

**Engagement.** Subscribers get a newsletter every ``NEWSLETTER_EVERY_DAYS`` of the last
``EVENT_WINDOW_DAYS``; they open it with their ``email_open_rate`` times an engagement
factor that falls linearly from 1 to ``ENGAGEMENT_FLOOR`` over the ``email_decay_days``
before ``death_date`` (so "stopped opening emails" is a real churn signal), and click
with ``email_click_rate`` once opened. Browsing sessions, searches and abandoned carts
thin out the same way; ``CHECKOUT_TRACKING`` of web purchases in the window have their
product view, add-to-cart and checkout events minutes before them. Visitors who are
nobody browse too (their rows have no person in truth).

**Interest before a first purchase.** In the ``INTEREST_DAYS`` before their first
purchase (and from the day they are first seen), people look around: browsing sessions
at ``INTEREST_SESSIONS_PER_DAY`` and abandoned carts at ``INTEREST_CARTS_PER_DAY`` on top
of their usual ones (`interest_activity`). It applies to prospects whose first purchase
lies after the end as to everyone else, so a lead's recent browsing is a real sign of a
first purchase to come: the truth's ``first_purchase_date`` says who made one, and when.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from sample.dates import DAY_S, NOMINAL_UTC_OFFSET_S, date_of_day
from sample.identifiers import Identifiers, hex_ids, person_cookie
from sample.shop import CATEGORIES, EVENT_WINDOW_DAYS, PRODUCTS
from sample.world import draw_categories, group_param, person_category_weights, pick_sku

NEWSLETTER_EVERY_DAYS = 42
INTEREST_DAYS = 45
INTEREST_SESSIONS_PER_DAY = 0.06
INTEREST_CARTS_PER_DAY = 0.02
ENGAGEMENT_FLOOR = 0.03
CHECKOUT_TRACKING = 0.5

_NEWSLETTER_THEMES = {
    1: "winter_maftoul_recipes", 2: "zaatar_season", 3: "mothers_day_gifts", 4: "spring_tatreez",
    5: "olive_wood_collection", 6: "summer_dates", 7: "soap_bundles", 8: "books_for_kids",
    9: "harvest_preorder", 10: "harvest_new_oil", 11: "new_oil_last_call", 12: "bethlehem_gifts",
}
WEB_EVENT_TYPES = ("page_view", "search", "product_view", "add_to_cart", "checkout")
EMAIL_EVENT_TYPES = ("email_sent", "email_open", "email_click")


def _engagement(persons: pd.DataFrame, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Engagement in [ENGAGEMENT_FLOOR, 1]: 1 until ``email_decay_days`` before death, then falling linearly."""
    death = persons["death_day"].to_numpy()[person]
    decay = persons["email_decay_days"].to_numpy()[person]
    return np.clip((death - day) / decay, ENGAGEMENT_FLOOR, 1.0)


def web_activity(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers,
                 purchases: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """Web events of known persons in the event window.

    Checkout sessions (product view, add to cart, checkout) minutes before tracked web
    purchases, plus browsing sessions and abandoned carts thinned by engagement.
    Columns: person, cookie (index into the cookie array), logged_in, time_s, event
    (index into ``WEB_EVENT_TYPES``), sku, category (indexes or -1), value (NaN if none).
    """
    window_from = end_day - EVENT_WINDOW_DAYS + 1
    p = purchases
    buyer = p["person"].to_numpy()
    tracked = (p["is_web"].to_numpy() & ~p["is_return"].to_numpy() & (p["day"].to_numpy() >= window_from)
               & ids.has_email[buyer] & (rng.random(len(p)) < CHECKOUT_TRACKING))
    rows = np.flatnonzero(tracked)
    person = buyer[rows]
    n = len(rows)
    checkout_s = p["time_s"].to_numpy()[rows] - rng.integers(5, 90, n)
    cart_s = checkout_s - rng.integers(60, 600, n)
    view_s = cart_s - rng.integers(30, 900, n)
    logged = rng.random(n) < 0.4
    sku = p["sku"].to_numpy()[rows]
    value = p["value_ils"].to_numpy()[rows]
    checkout = pd.DataFrame({
        "person": np.tile(person, 3), "cookie": np.tile(person_cookie(rng, ids, person), 3),
        "logged_in": np.concatenate([logged, logged, np.ones(n, bool)]),
        "time_s": np.concatenate([view_s, cart_s, checkout_s]),
        "event": np.repeat([WEB_EVENT_TYPES.index(e) for e in ("product_view", "add_to_cart", "checkout")], n),
        "sku": np.tile(sku, 3), "category": np.tile(p["category"].to_numpy()[rows], 3),
        "value": np.concatenate([np.array([q[2] for q in PRODUCTS])[sku], value, value]),
    })
    group = persons["group_index"].to_numpy()
    online = np.maximum(persons["web_share"].to_numpy(), 0.3)
    browse = _sessions(rng, persons, ids, group_param("browse_sessions_per_day", group) * online,
                       window_from, end_day, abandoned_cart=False)
    carts = _sessions(rng, persons, ids, group_param("abandoned_carts_per_day", group) * online,
                      window_from, end_day, abandoned_cart=True)
    return pd.concat([checkout, browse, carts], ignore_index=True)


def interest_activity(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers,
                      end_day: int) -> pd.DataFrame:
    """The extra browsing sessions and abandoned carts of the ``INTEREST_DAYS`` before each
    person's first purchase, from the day they are first seen, within the event window
    and up to ``end_day`` (columns as `web_activity`'s)."""
    window_from = end_day - EVENT_WINDOW_DAYS + 1
    first_purchase = persons["first_purchase_day"].to_numpy()
    start = np.maximum(persons["first_seen_day"].to_numpy(), first_purchase - INTEREST_DAYS)
    stop = np.minimum(first_purchase, end_day + 1)
    ones = np.ones(len(persons))
    browse = _sessions(rng, persons, ids, INTEREST_SESSIONS_PER_DAY * ones, window_from, end_day,
                       abandoned_cart=False, start=start, stop=stop)
    carts = _sessions(rng, persons, ids, INTEREST_CARTS_PER_DAY * ones, window_from, end_day,
                      abandoned_cart=True, start=start, stop=stop)
    return pd.concat([browse, carts], ignore_index=True)


def _sessions(rng: np.random.Generator, persons: pd.DataFrame, ids: Identifiers, rate: np.ndarray,
              window_from: int, end_day: int, abandoned_cart: bool, start: np.ndarray | None = None,
              stop: np.ndarray | None = None) -> pd.DataFrame:
    """Browsing sessions or abandoned carts: Poisson per person, thinned by engagement.

    A browsing session is a page view or search followed by up to two product views;
    an abandoned cart is a product view and an add-to-cart, only while the person is alive.
    Each person's sessions fall from the day they are first seen (or ``start``, if later)
    to ``end_day`` (or the day before ``stop``, if earlier), within the event window.
    """
    lo = np.maximum(persons["first_seen_day"].to_numpy(), window_from)
    if start is not None:
        lo = np.maximum(lo, start)
    hi = end_day + 1 if stop is None else np.minimum(stop, end_day + 1)
    span = np.clip(hi - lo, 0, None)
    person = np.repeat(np.arange(len(persons)), rng.poisson(rate * span))
    start_s = ((lo[person] + rng.random(len(person)) * span[person]) * DAY_S).astype(np.int64)
    day = start_s // DAY_S
    keep = rng.random(len(person)) < _engagement(persons, person, day)
    if abandoned_cart:
        keep &= day < persons["death_day"].to_numpy()[person]
    person, start_s = person[keep], start_s[keep] - NOMINAL_UTC_OFFSET_S
    n = len(person)
    cookie = person_cookie(rng, ids, person)
    logged = rng.random(n) < (0.45 if abandoned_cart else 0.3)
    category = draw_categories(rng, person_category_weights(persons)[person])
    sku = pick_sku(rng, category)
    price = np.array([q[2] for q in PRODUCTS])[sku]
    n_events = np.full(n, 2) if abandoned_cart else np.minimum(1 + rng.poisson(0.7, n), 3)
    s = np.repeat(np.arange(n), n_events)
    position = np.arange(len(s)) - np.repeat(np.cumsum(n_events) - n_events, n_events)
    time_s = start_s[s] + position * rng.integers(20, 300, len(s))
    if abandoned_cart:
        event = np.where(position == 0, WEB_EVENT_TYPES.index("product_view"), WEB_EVENT_TYPES.index("add_to_cart"))
        value = price[s] * np.where(position == 0, 1, 1 + rng.poisson(0.5, len(s)))
        sku_col, category_col = sku[s], category[s]
    else:
        opener = np.where(rng.random(n) < 0.35, WEB_EVENT_TYPES.index("search"), WEB_EVENT_TYPES.index("page_view"))
        event = np.where(position == 0, opener[s], WEB_EVENT_TYPES.index("product_view"))
        value = np.where(position == 0, np.nan, price[s])
        sku_col = np.where(position == 0, -1, sku[s])
        category_col = np.where(event == WEB_EVENT_TYPES.index("search"), -1, category[s])
    return pd.DataFrame({
        "person": person[s], "cookie": cookie[s], "logged_in": logged[s], "time_s": time_s,
        "event": event, "sku": sku_col, "category": category_col, "value": value,
    })


def anonymous_visitors(rng: np.random.Generator, n_persons: int, end_day: int,
                       cookie_offset: int) -> tuple[pa.Array, pd.DataFrame]:
    """Cookies and web events of visitors who are nobody in the person table.

    Their cookie indexes start at ``cookie_offset`` (after the persons' cookies).
    """
    window_from = end_day - EVENT_WINDOW_DAYS + 1
    n_visitors = max(1, n_persons // 4)
    cookies = hex_ids(rng, n_visitors)
    visitor = np.repeat(np.arange(n_visitors), 1 + rng.poisson(0.4, n_visitors))
    m = len(visitor)
    sku = rng.integers(0, len(PRODUCTS), m)
    view = rng.random(m) < 0.5
    return cookies, pd.DataFrame({
        "person": np.full(m, -1), "cookie": cookie_offset + visitor, "logged_in": np.zeros(m, bool),
        "time_s": ((window_from + rng.random(m) * EVENT_WINDOW_DAYS) * DAY_S).astype(np.int64),
        "event": np.where(view, WEB_EVENT_TYPES.index("product_view"), WEB_EVENT_TYPES.index("page_view")),
        "sku": np.where(view, sku, -1),
        "category": np.array([CATEGORIES.index(q[1]) for q in PRODUCTS])[sku],
        "value": np.where(view, np.array([q[2] for q in PRODUCTS])[sku], np.nan),
    })


def newsletters(end_day: int) -> pd.DataFrame:
    """The newsletter calendar of the event window: send day, send time (UTC seconds), campaign."""
    days = np.arange(end_day - EVENT_WINDOW_DAYS + 4, end_day + 1, NEWSLETTER_EVERY_DAYS)
    dates = [date_of_day(int(d)) for d in days]
    names = [f"{d.year}-{d.month:02d}_{_NEWSLETTER_THEMES[d.month]}" for d in dates]
    return pd.DataFrame({"day": days, "time_s": days * DAY_S + 6 * 3600, "campaign": names})


def email_activity(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """Newsletter sends, opens and clicks: person, time_s, event, campaign (newsletter index).

    Every subscriber seen by the send day gets each newsletter; opens follow the
    person's open rate times the engagement factor, clicks the click rate once opened.
    """
    letters = newsletters(end_day)
    subscribers = np.flatnonzero(persons["email_subscribed"].to_numpy())
    person = np.repeat(subscribers, len(letters))
    letter = np.tile(np.arange(len(letters)), len(subscribers))
    day = letters["day"].to_numpy()[letter]
    got = persons["first_seen_day"].to_numpy()[person] <= day
    person, letter, day = person[got], letter[got], day[got]
    m = len(person)
    sent_s = letters["time_s"].to_numpy()[letter] + rng.integers(0, 1800, m)
    opened = rng.random(m) < persons["email_open_rate"].to_numpy()[person] * _engagement(persons, person, day)
    open_s = sent_s + 60 + np.minimum(rng.exponential(8 * 3600, m), 20 * DAY_S).astype(np.int64)
    clicked = opened & (rng.random(m) < persons["email_click_rate"].to_numpy()[person])
    click_s = open_s + rng.integers(10, 600, m)
    keep_open = opened & (open_s // DAY_S <= end_day)
    keep_click = clicked & keep_open & (click_s // DAY_S <= end_day)
    return pd.DataFrame({
        "person": np.concatenate([person, person[keep_open], person[keep_click]]),
        "time_s": np.concatenate([sent_s, open_s[keep_open], click_s[keep_click]]),
        "event": np.repeat([0, 1, 2], [m, int(keep_open.sum()), int(keep_click.sum())]),
        "campaign": np.concatenate([letter, letter[keep_open], letter[keep_click]]),
    })
