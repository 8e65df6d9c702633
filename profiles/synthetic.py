"""Synthetic multi-source sample data with known ground truth, for a fictional shop.

The shop (``zaytoun.example``) sells olive oil, za'atar, maftoul, dates, Nabulsi soap,
Hebron ceramics, tatreez embroidery, olive-wood carvings and books, online and in two
stores (Bethlehem and Ramallah), and advertises on Facebook, Instagram, Google and by
email. :func:`generate` builds seven source tables in the shapes real exports have, a
``cdp.toml`` describing them, and the ground truth behind every row; :func:`write_sample`
writes them to a folder. Demo, identity-resolution tests and, later, churn, segmentation
and attribution tests are checked against that truth.

Generative model
----------------
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
(see :func:`oracle_purchase_probability`). Returns are extra rows a few days after a
purchase and never after ``death_date`` or ``end``: no row of any order source falls on
or after a person's ``death_date``. Amounts are gamma-distributed around the person's
``mean_order_value_ils`` (itself gamma around the group mean); customers abroad pay in
USD at ``ILS_PER_USD``.

**Journeys.** Purchase intents arrive while a person is in the market (from
``first_seen_date`` to ``death_date``) at rate ``rate / p_convert``. Each intent draws an
exposure set: channel ``c`` is present with probability ``exposure_probability`` (email
only for subscribers). It converts with the noisy-OR probability
``1 - (1 - BASE_CONVERSION) * prod_c (1 - true_effect_c)`` over its exposed channels, so
``true_effect`` is the causal activation probability of a channel; ``p_convert`` is the
mean of that probability over exposure sets. Thinning a Poisson process by independent
coin flips leaves a Poisson process: converted intents are the purchases above (rate
``rate``) and non-converted intents an independent Poisson process of rate
``rate * (1 - p_convert) / p_convert``; exposures are drawn from their distribution given
the outcome. Only a share of journeys is tracked (``JOURNEY_TRACKING_WEB`` of web and
``JOURNEY_TRACKING_STORE`` of store purchases, the same shares of non-converted intents),
and only journeys that end at least ``JOURNEY_MAX_DAYS`` into the last
``EVENT_WINDOW_DAYS``. Touches fall up to ``JOURNEY_MAX_DAYS`` before the journey's end by
funnel stage: Facebook and Instagram early, email in the middle, search and direct late.
Last-touch attribution therefore over-credits ``google_search`` and ``direct`` and
under-credits ``facebook`` and ``instagram``, which cause most conversions. What a channel
causes is its ``true_share`` in ``truth/channels.csv``: the conversions that would be lost
if it were switched off, a share of all the channels' lost conversions; it depends on how
many journeys the channel reaches as well as on its ``true_effect``. Touches are written
to ``ad_touchpoints.csv`` (keyed by email, CRM key or cookie) and, for email, to
``email_events.csv`` (a send, then the click).

**Engagement.** Subscribers get a newsletter every ``NEWSLETTER_EVERY_DAYS`` of the last
``EVENT_WINDOW_DAYS``; they open it with their ``email_open_rate`` times an engagement
factor that falls linearly from 1 to ``ENGAGEMENT_FLOOR`` over the ``email_decay_days``
before ``death_date`` (so "stopped opening emails" is a real churn signal), and click
with ``email_click_rate`` once opened. Browsing sessions, searches and abandoned carts
thin out the same way; ``CHECKOUT_TRACKING`` of web purchases in the window have their
product view, add-to-cart and checkout events minutes before them. Visitors who are
nobody browse too (their rows have no person in truth).

**Identifiers and mess.** Every person has one true email and/or one true phone; a
minority has a second email or changed phone on ``phone_changed_date``. Emails get case
and whitespace noise; phones are written in local and international styles; CRM keys keep
leading zeros; a few persons have two CRM rows under different keys that share an email
or a phone. Junk identifiers (placeholder emails and phones, the shop's own email on phone
orders and its walk-in phone on store receipts) appear on real persons' rows and must not
glue persons together. In files of at least 500 rows, ``INVALID_ORDER_SHARE`` of order
rows (impossible timestamps, non-numeric or negative amounts, no identifier) and
``INVALID_EVENT_SHARE`` of event rows (impossible timestamps) are invalid.

Ground truth (``truth/``, all CSV)
----------------------------------
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
    the invalid rows (source, source_key, row_number, problem).
``junk_identifiers.csv``
    id_type, value and reason of every junk identifier.

Everything is vectorized and deterministic: the same arguments give byte-identical files.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

__all__ = [
    "CHANNELS",
    "GROUPS",
    "SOURCE_SPECS",
    "Channel",
    "GroupProfile",
    "SampleData",
    "SampleSummary",
    "SourceSpec",
    "config_toml",
    "generate",
    "oracle_purchase_probability",
    "write_sample",
]

HISTORY_DAYS = 3 * 365
EVENT_WINDOW_DAYS = 365
JOURNEY_MAX_DAYS = 30
NEWSLETTER_EVERY_DAYS = 42
ENGAGEMENT_FLOOR = 0.03
ILS_PER_USD = 3.7
BASE_CONVERSION = 0.04
JOURNEY_TRACKING_WEB = 0.25
JOURNEY_TRACKING_STORE = 0.08
CHECKOUT_TRACKING = 0.5
INVALID_ORDER_SHARE = 0.002
WEB_DELIVERY_PHONE_SHARE = 0.4  # web orders whose checkout form carries a delivery phone
INVALID_EVENT_SHARE = 0.001

SHOP_DOMAIN = "zaytoun.example"
STORE_EMAIL = f"store@{SHOP_DOMAIN}"
WALK_IN_PHONE = "02-274 1234"
JUNK_EMAILS = ("test@test.com", "no@email.com", "none@none.com")
JUNK_PHONES = ("0000000000", "0599999999")
STORE_TIMEZONE = "Asia/Hebron"
_NOMINAL_UTC_OFFSET_S = 2 * 3600
_DAY_S = 86_400


# --------------------------------------------------------------------------- model


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


CATEGORIES = (
    "olive_oil", "zaatar_spices", "maftoul_grains", "dates", "soap",
    "ceramics", "embroidery", "olive_wood", "books",
)

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


@dataclass(frozen=True)
class Channel:
    """A marketing channel and its true causal effect on a journey's conversion.

    ``true_effect`` is the noisy-OR activation probability: exposure to the channel
    converts an otherwise unconverted purchase intent with this probability.
    ``exposure_probability`` is the chance an intent's journey includes the channel
    (email: for subscribers only); ``lag_days`` the range of days before the journey's
    end in which its touch falls.
    """

    name: str
    funnel_stage: str
    exposure_probability: float
    true_effect: float
    lag_days: tuple[float, float]
    event_types: tuple[str, ...]
    campaigns: tuple[str, ...]


CHANNELS: tuple[Channel, ...] = (
    Channel("facebook", "upper", 0.45, 0.22, (4.0, 28.0), ("ad_impression", "ad_click"),
            ("fb_harvest_new_oil", "fb_lookalike_diaspora", "fb_retarget_viewers")),
    Channel("instagram", "upper", 0.35, 0.18, (3.0, 25.0), ("ad_impression", "ad_click"),
            ("ig_reels_tatreez", "ig_stories_olive_oil")),
    Channel("organic_social", "upper", 0.20, 0.05, (2.0, 20.0), ("social_engagement",),
            ("page_post", "community_share")),
    Channel("email", "middle", 0.60, 0.12, (0.5, 10.0), ("email_click",),
            ("flow_browse_reminder", "flow_back_in_stock", "flow_new_harvest_alert")),
    Channel("google_search", "lower", 0.35, 0.05, (0.1, 6.0), ("search_click",),
            ("gs_generic_olive_oil", "gs_palestinian_products")),
    Channel("direct", "lower", 0.15, 0.0, (0.05, 4.0), ("direct_visit",), ("",)),
)

# (sku, category, unit price in ILS)
PRODUCTS: tuple[tuple[str, str, float], ...] = (
    ("OIL-EV-0500", "olive_oil", 45.0), ("OIL-EV-1000", "olive_oil", 80.0),
    ("OIL-ORG-0750", "olive_oil", 70.0), ("OIL-TIN-3L", "olive_oil", 210.0),
    ("OIL-TIN-5L", "olive_oil", 330.0),
    ("ZTR-0250", "zaatar_spices", 25.0), ("ZTR-0500", "zaatar_spices", 45.0),
    ("SUMAC-0200", "zaatar_spices", 20.0), ("ZTR-GIFT", "zaatar_spices", 60.0),
    ("MFT-0500", "maftoul_grains", 20.0), ("MFT-1000", "maftoul_grains", 35.0),
    ("FRK-0500", "maftoul_grains", 22.0),
    ("DATE-MJ-0500", "dates", 35.0), ("DATE-MJ-1000", "dates", 60.0),
    ("SOAP-NAB-1", "soap", 15.0), ("SOAP-NAB-6", "soap", 70.0), ("SOAP-GIFT", "soap", 55.0),
    ("CER-BOWL", "ceramics", 90.0), ("CER-PLATE", "ceramics", 140.0), ("CER-MUG", "ceramics", 55.0),
    ("EMB-POUCH", "embroidery", 65.0), ("EMB-CUSHION", "embroidery", 180.0),
    ("EMB-PANEL", "embroidery", 450.0),
    ("OW-NATIVITY", "olive_wood", 220.0), ("OW-CROSS", "olive_wood", 45.0),
    ("OW-ROSARY", "olive_wood", 30.0),
    ("BK-COOKBOOK", "books", 120.0), ("BK-POETRY", "books", 60.0), ("BK-CHILDREN", "books", 45.0),
)

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

# (ISO country, share of persons, cities, calling code)
_COUNTRIES: tuple[tuple[str, float, tuple[str, ...], str], ...] = (
    ("PS", 0.72, ("Ramallah", "Al-Bireh", "Bethlehem", "Beit Sahour", "Beit Jala", "Hebron",
                  "Nablus", "Jenin", "Jericho", "Tulkarm"), "970"),
    ("IL", 0.08, ("Nazareth", "Haifa", "Jaffa", "Acre", "Umm al-Fahm"), "972"),
    ("JO", 0.06, ("Amman", "Irbid", "Zarqa"), "962"),
    ("US", 0.06, ("Chicago", "Paterson", "Dearborn", "San Francisco"), "1"),
    ("GB", 0.03, ("London", "Manchester"), "44"),
    ("DE", 0.03, ("Berlin", "Hamburg"), "49"),
    ("FR", 0.02, ("Paris", "Marseille"), "33"),
)
_STORES = ("RAM", "BTH")
_STORE_NAMES = ("Ramallah", "Bethlehem")
_STORE_OF_CITY = {"Ramallah": 0, "Al-Bireh": 0, "Bethlehem": 1, "Beit Sahour": 1, "Beit Jala": 1}
_EMAIL_DOMAINS = ("gmail.example", "hotmail.example", "yahoo.example", "outlook.example",
                  "palnet.example")
_EMAIL_DOMAIN_SHARES = (0.45, 0.2, 0.15, 0.1, 0.1)
_NEWSLETTER_THEMES = {
    1: "winter_maftoul_recipes", 2: "zaatar_season", 3: "mothers_day_gifts", 4: "spring_tatreez",
    5: "olive_wood_collection", 6: "summer_dates", 7: "soap_bundles", 8: "books_for_kids",
    9: "harvest_preorder", 10: "harvest_new_oil", 11: "new_oil_last_call", 12: "bethlehem_gifts",
}
_WEB_EVENT_TYPES = ("page_view", "search", "product_view", "add_to_cart", "checkout")
_EMAIL_EVENT_TYPES = ("email_sent", "email_open", "email_click")


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class SourceSpec:
    """How one generated file is described in cdp.toml (``columns``: canonical = file column)."""

    name: str
    kind: str
    columns: Mapping[str, str]
    options: Mapping[str, str]
    with_bom: bool = False

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"


SOURCE_SPECS: tuple[SourceSpec, ...] = (
    SourceSpec("crm_customers", "customers", MappingProxyType({
        "source_key": "customer_id", "customer_key": "customer_id", "email": "email",
        "phone": "phone", "first_name": "first_name", "last_name": "last_name",
        "birth_date": "birth_date", "gender": "gender", "country": "country", "city": "city",
        "consent_email": "consent_email", "consent_sms": "consent_sms", "created_at": "created_at",
    }), MappingProxyType({"default_phone_region": "PS", "timezone": STORE_TIMEZONE}), with_bom=True),
    SourceSpec("web_orders", "orders", MappingProxyType({
        "source_key": "order_id", "email": "email", "phone": "delivery_phone", "timestamp": "created_at",
        "amount": "amount",
        "quantity": "items", "product_id": "sku", "category": "category", "channel": "channel",
        "currency": "currency", "discount": "discount", "is_return": "is_return",
    }), MappingProxyType({"default_phone_region": "PS"})),
    SourceSpec("pos_receipts", "orders", MappingProxyType({
        "source_key": "receipt_id", "phone": "phone", "external_id": "loyalty_card",
        "timestamp": "date", "amount": "amount", "quantity": "items", "product_id": "sku",
        "category": "category", "channel": "channel", "currency": "currency",
        "discount": "discount", "is_return": "is_return",
    }), MappingProxyType({"default_phone_region": "PS", "timestamp_format": "%Y%m%d %H:%M",
                          "timezone": STORE_TIMEZONE})),
    SourceSpec("facebook_leads", "customers", MappingProxyType({
        "source_key": "lead_id", "email": "email", "phone": "phone", "first_name": "first_name",
        "last_name": "last_name", "created_at": "created_time",
    }), MappingProxyType({"default_phone_region": "PS"})),
    SourceSpec("web_events", "events", MappingProxyType({
        "source_key": "event_id", "anonymous_id": "anonymous_id", "email": "email",
        "timestamp": "timestamp", "event_type": "event_type", "channel": "channel",
        "product_id": "product_id", "category": "category", "value": "value",
    }), MappingProxyType({})),
    SourceSpec("email_events", "events", MappingProxyType({
        "source_key": "event_id", "email": "email", "timestamp": "timestamp",
        "event_type": "event_type", "campaign": "campaign", "channel": "channel",
    }), MappingProxyType({})),
    SourceSpec("ad_touchpoints", "events", MappingProxyType({
        "source_key": "touch_id", "email": "email", "customer_key": "customer_key",
        "anonymous_id": "anonymous_id", "timestamp": "timestamp", "event_type": "event_type",
        "channel": "channel", "campaign": "campaign",
    }), MappingProxyType({"customer_key_namespace": "crm_customers"})),
)


@dataclass(frozen=True)
class SampleData:
    """Generated sources and their ground truth, all as text tables.

    ``sources`` maps a source name (see ``SOURCE_SPECS``) to its rows in file order,
    with exactly the file's columns; ``truth`` maps a truth table name (``records``,
    ``persons``, ``identifiers``, ``channels``, ``journeys``, ``expected_rejects``,
    ``junk_identifiers``) to its table; ``config_toml`` is the cdp.toml text.
    """

    start: dt.date
    end: dt.date
    sources: Mapping[str, pd.DataFrame]
    truth: Mapping[str, pd.DataFrame]
    config_toml: str


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`write_sample` wrote, for the CLI to print.

    ``files`` maps each source file name to its data rows, in cdp.toml order;
    ``truth_files`` does the same for the files under ``truth/``. ``n_buyers`` counts
    persons whose first purchase falls on or before ``end``.
    """

    out_dir: Path
    start: dt.date
    end: dt.date
    n_persons: int
    n_buyers: int
    files: Mapping[str, int]
    truth_files: Mapping[str, int]
    n_expected_rejects: int

    @property
    def n_order_rows(self) -> int:
        """Rows of the order sources (web orders and store receipts, returns included)."""
        return self._rows_of_kind("orders")

    @property
    def n_event_rows(self) -> int:
        """Rows of the event sources (web, email, ad touchpoints)."""
        return self._rows_of_kind("events")

    def _rows_of_kind(self, kind: str) -> int:
        return sum(self.files[s.file_name] for s in SOURCE_SPECS if s.kind == kind)


# --------------------------------------------------------------------------- public API


def write_sample(out_dir: Path, n_customers: int, seed: int, end: dt.date) -> SampleSummary:
    """Generate a sample (see :func:`generate`) and write it into ``out_dir``.

    Writes one CSV per source (UTF-8, ``crm_customers.csv`` with a BOM), ``cdp.toml`` and
    a ``truth/`` folder. Files of the same names are overwritten; nothing else in
    ``out_dir`` is touched.

    Parameters
    ----------
    out_dir : Path
        Folder to write into; created if missing.
    n_customers : int
        Number of persons (customers and prospects) to simulate.
    seed : int
        Seed of every random draw; the same arguments give byte-identical files.
    end : datetime.date
        Last day of data; the history covers the ``HISTORY_DAYS`` days ending on it.

    Returns
    -------
    SampleSummary
    """
    data = generate(n_customers, seed, end)
    out_dir = Path(out_dir)
    (out_dir / "truth").mkdir(parents=True, exist_ok=True)
    files: dict[str, int] = {}
    for spec in SOURCE_SPECS:
        frame = data.sources[spec.name]
        _write_csv(frame, out_dir / spec.file_name, with_bom=spec.with_bom)
        files[spec.file_name] = len(frame)
    (out_dir / "cdp.toml").write_text(data.config_toml, encoding="utf-8")
    truth_files: dict[str, int] = {}
    for name, frame in data.truth.items():
        _write_csv(frame, out_dir / "truth" / f"{name}.csv", with_bom=False)
        truth_files[f"truth/{name}.csv"] = len(frame)
    persons = data.truth["persons"]
    return SampleSummary(
        out_dir=out_dir,
        start=data.start,
        end=data.end,
        n_persons=len(persons),
        n_buyers=int((persons["first_purchase_date"] <= data.end.isoformat()).sum()),
        files=MappingProxyType(files),
        truth_files=MappingProxyType(truth_files),
        n_expected_rejects=len(data.truth["expected_rejects"]),
    )


def generate(n_customers: int, seed: int, end: dt.date) -> SampleData:
    """Simulate ``n_customers`` persons and every source row they leave, with the truth.

    Pure: no I/O and no clock; the module docstring describes the model.

    Parameters
    ----------
    n_customers : int
        Number of persons (at least 1).
    seed : int
        Seed; each stage draws from its own generator spawned from it, so the same
        arguments always give the same tables.
    end : datetime.date
        Last day of data.

    Returns
    -------
    SampleData
    """
    if n_customers < 1:
        raise ValueError(f"n_customers must be >= 1, got {n_customers}")
    stages = ("persons", "ids", "orders", "journeys", "web", "email", "crm", "leads", "mess", "anon")
    rngs = {name: np.random.default_rng(s)
            for name, s in zip(stages, np.random.SeedSequence(seed).spawn(len(stages)))}
    end_day = _day_number(end)
    persons = _persons(rngs["persons"], n_customers, end_day)
    ids = _identifiers(rngs["ids"], persons, end_day)
    purchases = _purchases(rngs["orders"], persons, end_day)
    journeys, touches = _journeys(rngs["journeys"], persons, purchases, end_day)
    anon_cookies, anon_rows = _anonymous_visitors(rngs["anon"], n_customers, end_day, len(ids.cookies))
    web_rows = pd.concat([_web_activity(rngs["web"], persons, ids, purchases, end_day), anon_rows],
                         ignore_index=True)
    email_rows = _email_activity(rngs["email"], persons, end_day)

    tables: dict[str, pd.DataFrame] = {}
    tables["crm_customers"] = _crm_customers(rngs["crm"], persons, ids, end_day)
    tables["web_orders"], tables["pos_receipts"] = _order_sources(rngs["orders"], persons, ids, purchases, journeys)
    tables["facebook_leads"] = _facebook_leads(rngs["leads"], persons, ids, end_day)
    tables["web_events"] = _web_events_source(ids, pa.concat_arrays([ids.cookies, anon_cookies]), web_rows)
    tables["email_events"] = _email_events_source(rngs["email"], ids, email_rows, touches, end_day)
    tables["ad_touchpoints"] = _ad_touchpoints_source(rngs["journeys"], ids, touches)

    rejects = []
    for spec in SOURCE_SPECS:
        tables[spec.name], bad = _inject_invalid_rows(rngs["mess"], spec, tables[spec.name])
        rejects.append(bad)

    person_ids = _seq_ids("P", n_customers, 7)
    sources = {spec.name: tables[spec.name].drop(columns=["_person", "_journey"]) for spec in SOURCE_SPECS}
    truth = {
        "records": pd.concat([_records(s.name, tables[s.name], person_ids) for s in SOURCE_SPECS],
                             ignore_index=True),
        "persons": _persons_truth(persons, ids, person_ids, end_day),
        "identifiers": _identifiers_truth(ids, person_ids),
        "channels": _channels_truth(journeys),
        "journeys": _journeys_truth(journeys, tables, person_ids),
        "expected_rejects": pd.concat(rejects, ignore_index=True),
        "junk_identifiers": _junk_truth(),
    }
    return SampleData(
        start=_date(end_day - HISTORY_DAYS + 1),
        end=end,
        sources=MappingProxyType(sources),
        truth=MappingProxyType(truth),
        config_toml=config_toml(seed=seed, end=end, n_customers=n_customers),
    )


def oracle_purchase_probability(persons: pd.DataFrame, as_of: dt.date, horizon_days: int) -> pd.Series:
    """Chance that each person buys on at least one of days ``as_of + 1 .. as_of + horizon_days``.

    Uses the latent truth of ``truth/persons.csv``: the first purchase is certain on
    ``first_purchase_date``; repeat purchases are a Poisson process of rate
    ``purchase_rate_per_day`` on ``[first_purchase_date + 1, death_date)``, so the chance
    is ``1 - exp(-rate * overlap_days)``. No model fitted on the observable data can do
    better; returns and invalid rows are not purchases of the model and are ignored.

    Parameters
    ----------
    persons : pandas.DataFrame
        ``truth/persons.csv`` as read (dates as ISO text or datetimes).
    as_of : datetime.date
        Last day already observed.
    horizon_days : int
        Length of the prediction window in days.

    Returns
    -------
    pandas.Series
        Probabilities indexed like ``persons``, named ``p_purchase_in_horizon``.
    """
    window_start = _day_number(as_of) + 1
    window_stop = window_start + horizon_days
    birth = _to_day_numbers(persons["first_purchase_date"])
    death = _to_day_numbers(persons["death_date"])
    rate = persons["purchase_rate_per_day"].to_numpy(dtype=float)
    exposure_days = np.clip(np.minimum(window_stop, death) - np.maximum(window_start, birth + 1), 0, None)
    p = 1.0 - np.exp(-rate * exposure_days)
    first_in_window = (birth >= window_start) & (birth < window_stop) & (birth < death)
    return pd.Series(np.where(first_in_window, 1.0, p), index=persons.index, name="p_purchase_in_horizon")


def history_oracle_purchase_probability(persons: pd.DataFrame, last_purchase: pd.Series, end: dt.date,
                                        as_of: dt.date, horizon_days: int) -> pd.Series:
    """The same chance as :func:`oracle_purchase_probability`, for a forecaster who knows every
    latent parameter of a person (purchase rate, behavioural group and so the law of the
    dropout day) but not the dropout day itself, only the purchase history.

    That is the best any model of purchase histories can do, however clever: Bayes'
    rule over the dropout day ``d``, whose prior is the group's (``d = birth + 1 +
    ceil(Exponential(mean_lifetime_days))``, or uniform on ``end + death_days_after_end``
    and at least ``birth + 30``), given the last purchase on day ``t`` and none on days
    ``t + 1 .. as_of``: the person was alive on day ``t`` (``d > t``) and, if alive
    after it, bought nothing in the time they had (likelihood ``exp(-rate * (min(d,
    as_of + 1) - (t + 1)))``). Then ``P = sum_d posterior(d) (1 - exp(-rate * exposure(d)))``.
    The gap between the two oracles is what the dropout day is worth; a model can close
    part of it only from signals that foretell dropout (the generator fades email
    engagement before it).

    Parameters
    ----------
    persons : pandas.DataFrame
        ``truth/persons.csv`` as read, indexed by person.
    last_purchase : pandas.Series
        Each person's last purchase day on or before ``as_of`` (dates), indexed like
        ``persons``; people without one get NaN.
    end : datetime.date
        The sample's last day (``death_days_after_end`` counts from it).
    as_of, horizon_days :
        As in :func:`oracle_purchase_probability`.
    """
    groups = {g.name: g for g in GROUPS}
    a = _day_number(as_of)
    end_day = _day_number(end)
    stop = a + horizon_days + 1                      # every dropout day from here on looks alike
    birth = _to_day_numbers(persons["first_purchase_date"])
    last = _to_day_numbers(last_purchase.reindex(persons.index))
    rate = persons["purchase_rate_per_day"].to_numpy(dtype=float)
    out = np.full(len(persons), np.nan)
    for i, group_name in enumerate(persons["group"].to_numpy()):
        if last[i] > a or last[i] < birth[i]:
            continue
        group = groups[group_name]
        days = np.arange(last[i] + 1, stop + 1)       # candidate dropout days; the last one lumps the tail
        if group.death_days_after_end is None:
            mean = max(group.mean_lifetime_days, 1.0)
            k = days - birth[i] - 1                    # d = birth + 1 + k, P(k) = P(ceil(X) = k)
            prior = np.where(k >= 1, np.exp(-(k - 1) / mean) - np.exp(-k / mean), 0.0)
            prior[-1] = np.exp(-(k[-1] - 1) / mean) if k[-1] >= 1 else 1.0
        else:
            lo, hi = end_day + group.death_days_after_end[0], end_day + group.death_days_after_end[1]
            support = np.maximum(np.arange(lo, hi + 1), birth[i] + 30)
            prior = np.bincount(np.clip(support, days[0] - 1, stop) - (days[0] - 1),
                                minlength=len(days) + 1)[1:].astype(float)
        silent = np.clip(np.minimum(days, a + 1) - (last[i] + 1), 0, None)
        posterior = prior * np.exp(-rate[i] * silent)
        if posterior.sum() <= 0:
            continue
        exposure = np.clip(np.minimum(days, stop) - max(a + 1, birth[i] + 1), 0, None)
        out[i] = posterior @ (1.0 - np.exp(-rate[i] * exposure)) / posterior.sum()
    return pd.Series(out, index=persons.index, name="p_purchase_in_horizon")


def config_toml(seed: int, end: dt.date, n_customers: int) -> str:
    """The cdp.toml text describing the generated files (paths relative to it)."""
    lines = [
        "# Sample data of a fictional olive-oil and Palestinian-products shop, written by",
        f"# `cdp sample --customers {n_customers} --seed {seed} --end {end.isoformat()}`.",
        "# The ground truth is in truth/ (not a source).",
        "",
        "[store]",
        'path = "cdp.duckdb"',
        "",
        "[unify]",
        "# The shop's own email (phone orders) and walk-in phone (store receipts) are shared by many customers.",
        f"blocked_identifiers = [{_toml_str(STORE_EMAIL)}, {_toml_str(_e164_of_local(WALK_IN_PHONE))}]",
        "",
        "[currency]",
        "# The website also sells in US dollars; money features are in shekels.",
        'base = "ILS"',
        f"rates = {{ USD = {ILS_PER_USD} }}",
    ]
    for spec in SOURCE_SPECS:
        lines += ["", "[[sources]]", f"name = {_toml_str(spec.name)}", f"kind = {_toml_str(spec.kind)}",
                  f"path = {_toml_str(spec.file_name)}"]
        lines += [f"{k} = {_toml_str(v)}" for k, v in spec.options.items()]
        lines += ["", "[sources.columns]"]
        lines += [f"{k} = {_toml_str(v)}" for k, v in spec.columns.items()]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- persons


def _group_param(field: str, group: np.ndarray) -> np.ndarray:
    """One GroupProfile field, per person."""
    return np.array([getattr(g, field) for g in GROUPS])[group]


def _persons(rng: np.random.Generator, n: int, end_day: int) -> pd.DataFrame:
    """Draw each person's latent group, geography, purchase process and engagement.

    Day columns are day numbers since 1970-01-01. ``death_day`` is the first day the
    person can no longer buy.
    """
    shares = np.array([g.share for g in GROUPS])
    group = rng.choice(len(GROUPS), size=n, p=shares / shares.sum())
    shape = _group_param("rate_shape", group)
    rate = rng.gamma(shape, _group_param("purchase_rate_per_day", group) / shape)
    lo = np.array([g.first_purchase_days[0] for g in GROUPS])[group]
    hi = np.array([g.first_purchase_days[1] for g in GROUPS])[group]
    birth = end_day + lo + np.floor(rng.random(n) * (hi - lo + 1)).astype(np.int64)

    lifetime = np.ceil(rng.exponential(np.maximum(_group_param("mean_lifetime_days", group), 1.0)))
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

    country = rng.choice(len(_COUNTRIES), size=n, p=[c[1] for c in _COUNTRIES])
    n_cities = np.array([len(c[2]) for c in _COUNTRIES])[country]
    city_offset = np.concatenate([[0], np.cumsum([len(c[2]) for c in _COUNTRIES])[:-1]])[country]
    city = city_offset + np.floor(rng.random(n) * n_cities).astype(np.int64)
    all_cities = [city_name for c in _COUNTRIES for city_name in c[2]]
    store_of_city = np.array([_STORE_OF_CITY.get(c, -1) for c in all_cities])[city]
    code = np.array([c[0] for c in _COUNTRIES])[country]
    abroad = ~np.isin(code, ["PS", "IL"])
    base_web = np.where(store_of_city >= 0, 0.15, np.where(code == "IL", 0.6, 0.45))
    web_share = np.clip(base_web + _group_param("web_share_shift", group) + rng.normal(0, 0.12, n), 0.02, 0.98)
    web_share = np.where(abroad, 1.0, web_share)
    home_store = np.where(store_of_city >= 0, store_of_city, rng.integers(0, 2, n))

    mov = rng.gamma(6.0, _group_param("mean_order_value_ils", group) / 6.0) * np.where(abroad, 1.3, 1.0)
    category_weights = rng.gamma(20.0 * np.array([g.category_weights for g in GROUPS])[group], 1.0)
    category_weights /= category_weights.sum(axis=1, keepdims=True)

    has_email = rng.random(n) < np.where(abroad | prospect, 0.97, 0.45 + 0.5 * web_share)
    has_phone = rng.random(n) < np.where(abroad & (code != "JO"), 0.5, 0.93)
    has_email |= ~has_phone
    subscribed = has_email & (rng.random(n) < _group_param("email_subscribe_probability", group))
    open_mean = _group_param("email_open_rate", group)
    click_mean = _group_param("email_click_rate", group)
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


def _category_weights(persons: pd.DataFrame) -> np.ndarray:
    return persons[[f"category_weight_{c}" for c in CATEGORIES]].to_numpy()


def _engagement(persons: pd.DataFrame, person: np.ndarray, day: np.ndarray) -> np.ndarray:
    """Engagement in [ENGAGEMENT_FLOOR, 1]: 1 until ``email_decay_days`` before death, then falling linearly."""
    death = persons["death_day"].to_numpy()[person]
    decay = persons["email_decay_days"].to_numpy()[person]
    return np.clip((death - day) / decay, ENGAGEMENT_FLOOR, 1.0)


# --------------------------------------------------------------------------- identifiers


@dataclass(frozen=True)
class _Identifiers:
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


def _first_name_table() -> tuple[list[str], list[str], list[str]]:
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


def _identifiers(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> _Identifiers:
    """Draw names, emails, phones, loyalty cards, CRM keys and cookies for every person."""
    n = len(persons)
    code = np.array([c[0] for c in _COUNTRIES])[persons["country_index"].to_numpy()]
    western = ~np.isin(code, ["PS", "IL", "JO"]) & (rng.random(n) < 0.4)
    first = np.where(western, len(_FIRST_NAMES) + rng.integers(0, len(_WESTERN_FIRST), n),
                     rng.integers(0, len(_FIRST_NAMES), n))
    last = np.where(western, len(_LAST_NAMES) + rng.integers(0, len(_WESTERN_LAST), n),
                    rng.integers(0, len(_LAST_NAMES), n))

    has_email = persons["has_email"].to_numpy()
    has_phone = persons["has_phone"].to_numpy()
    email = _scatter(n, has_email, _make_emails(rng, first[has_email], last[has_email], taken=_text([])))
    has_email2 = has_email & (rng.random(n) < 0.07)
    email2 = _scatter(n, has_email2, _make_emails(rng, first[has_email2], last[has_email2],
                                                  taken=email.filter(pa.array(has_email))))

    country = persons["country_index"].to_numpy()
    phone_cc = _take([c[3] for c in _COUNTRIES], country)
    phone_nsn = _scatter(n, has_phone, _make_phones(rng, country[has_phone], taken=_text([])))
    has_old_phone = has_phone & (rng.random(n) < 0.05)
    old_phone_nsn = _scatter(n, has_old_phone, _make_phones(rng, country[has_old_phone],
                                                            taken=phone_nsn.filter(pa.array(has_phone))))
    start_day = end_day - HISTORY_DAYS + 1
    phone_changed_day = np.where(has_old_phone, rng.integers(start_day, end_day, n, endpoint=True), -1)

    group = persons["group_index"].to_numpy()
    is_champion = group == [g.name for g in GROUPS].index("champions")
    has_card = (persons["web_share"].to_numpy() < 1.0) & (rng.random(n) < np.where(is_champion, 0.7, 0.35))
    card_numbers = rng.permutation(max(n, 900_000))[:n] + 100_000
    loyalty_card = _where(has_card, _cat("LC-", _int_text(card_numbers)), "")

    in_crm = rng.random(n) < _group_param("crm_probability", group)
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
    crm_key = _where(in_crm, _digits(key_number, 6), "")
    crm_key2 = _where(has_crm_duplicate, _digits(key2_number, 6), "")

    cookie_count = 1 + rng.poisson(0.5, n)
    cookie_start = np.concatenate([[0], np.cumsum(cookie_count)[:-1]])
    cookies = _hex_ids(rng, int(cookie_count.sum()))

    in_leads = rng.random(n) < _group_param("lead_probability", group)
    age_days = rng.integers(18 * 365, 75 * 365, n)
    birth_date_day = np.where(rng.random(n) < 0.7, end_day - age_days, -1)
    return _Identifiers(
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
    _, first_latin, _ = _first_name_table()
    _, last_latin = _last_name_table()
    f = _take([_ascii_stem(s) for s in first_latin[::3]], first)
    ln = _take([_ascii_stem(s) for s in last_latin[::3]], last)
    number = _int_text(rng.integers(1, 100, n))
    year = _digits(rng.integers(60, 100, n) % 100, 2)
    local = _choose(rng.integers(0, 4, n), [
        _cat(f, ".", ln), _cat(f, ln, number),
        _cat(pc.utf8_slice_codeunits(f, 0, 1), ln, year), _cat(f, "_", ln, number),
    ])
    domain = _take(_EMAIL_DOMAINS, rng.choice(len(_EMAIL_DOMAINS), n, p=_EMAIL_DOMAIN_SHARES))
    email = _cat(local, "@", domain)
    # Disambiguate repeats with a ".<n>" suffix the styles above never produce.
    clash = _clashes(email, taken)
    while clash.any():
        local = _where(clash, _cat(local, ".", _int_text(rng.integers(2, 10_000, n))), local)
        email = _cat(local, "@", domain)
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
    junk = _text([_nsn_of_local(p) for p in JUNK_PHONES + (WALK_IN_PHONE,)])
    taken = pa.concat_arrays([junk, taken.cast(pa.string())])
    codes = [c[0] for c in _COUNTRIES]

    def draw(which: np.ndarray) -> pa.Array:
        size = len(which)
        seven = _digits(rng.integers(0, 10**7, size), 7)
        six = _digits(rng.integers(0, 10**6, size), 6)
        d0, d1 = rng.integers(0, 10, size), rng.integers(0, 10, size)
        rules = {
            "PS": _cat(_take(["59", "56"], d0 % 2), seven),
            "IL": _cat("5", _take(list("024"), d0 % 3), _take(list("23456789"), d1 % 8), six),
            "JO": _cat("79", seven),
            "US": _cat(_take(["212", "312", "313", "201", "415", "708"], d0 % 6), _take(list("23456789"), d1 % 8), six),
            "GB": _cat("79", _take(list("02456789"), d0 % 8), seven),
            "DE": _cat("17", _int_text(d0), seven),
            "FR": _cat("6", _take(list("0124567"), d0 % 7), seven),
        }
        return _choose(which, [rules[c] for c in codes])

    nsn = draw(country)
    clash = _clashes(nsn, taken)
    while clash.any():
        values = nsn.to_numpy(zero_copy_only=False).copy()
        idx = np.flatnonzero(clash)
        values[idx] = draw(country[idx]).to_numpy(zero_copy_only=False)
        nsn = _text(values)
        clash = _clashes(nsn, taken)
    return nsn


def _nsn_of_local(local_phone: str) -> str:
    """National significant number of a PS phone written locally ("059-123 4567" -> "591234567")."""
    digits = "".join(ch for ch in local_phone if ch.isdigit())
    return digits[1:] if digits.startswith("0") else digits


def _e164_of_local(local_phone: str) -> str:
    return "+970" + _nsn_of_local(local_phone)


def _hex_ids(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` random UUID-shaped lowercase hex strings (cookie ids)."""
    nibbles = rng.integers(0, 16, (n, 32), dtype=np.uint8)
    chars = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)[nibbles]
    dash = np.full((n, 1), ord("-"), dtype=np.uint8)
    full = np.hstack([chars[:, :8], dash, chars[:, 8:12], dash, chars[:, 12:16], dash, chars[:, 16:20], dash,
                      chars[:, 20:]])
    return pa.array(np.ascontiguousarray(full).view("S36").ravel(), type=pa.binary()).cast(pa.string())


def _person_cookie(rng: np.random.Generator, ids: _Identifiers, person: np.ndarray) -> np.ndarray:
    """Index (into ``ids.cookies``) of one of each given person's cookies, chosen at random."""
    pick = np.floor(rng.random(len(person)) * ids.cookie_count[person]).astype(np.int64)
    return ids.cookie_start[person] + pick


# --------------------------------------------------------------------------- purchases


def _purchases(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> pd.DataFrame:
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
    time_s = day * _DAY_S + hour * 3600 + second - _NOMINAL_UTC_OFFSET_S

    category = _draw_categories(rng, _category_weights(persons)[person])
    sku = _pick_sku(rng, category)
    price = np.array([p[2] for p in PRODUCTS])[sku]
    gross = np.maximum(rng.gamma(4.0, persons["mean_order_value_ils"].to_numpy()[person] / 4.0), price)
    items = np.clip(np.rint(gross / np.maximum(price, 40.0)), 1, 12).astype(np.int64)
    group = persons["group_index"].to_numpy()[person]
    discount_rate = np.where(rng.random(m) < _group_param("discount_probability", group),
                             rng.choice([0.10, 0.15, 0.20, 0.25], m), 0.0)
    discount = np.round(gross * discount_rate, 2)
    purchases = pd.DataFrame({
        "person": person, "day": day, "time_s": time_s, "is_web": is_web, "sku": sku, "category": category,
        "items": items, "value_ils": np.round(gross - discount, 2), "discount_ils": discount,
        "is_return": np.zeros(m, dtype=bool),
    })

    # Returns: a few days later, never on or after death or after end.
    return_p = _group_param("return_probability", group) * np.where(
        category == CATEGORIES.index("ceramics"), 3.0, 1.0)
    return_day = day + rng.integers(1, 15, m)
    returned = (rng.random(m) < return_p) & (return_day < np.minimum(death[person], end_day + 1))
    returns = purchases.loc[returned].copy()
    returns["day"] = return_day[returned]
    returns["time_s"] = time_s[returned] + (return_day[returned] - day[returned]) * _DAY_S
    returns["is_return"] = True
    returns["discount_ils"] = 0.0
    out = pd.concat([purchases, returns], ignore_index=True)
    order = np.lexsort((np.arange(len(out)), out["person"].to_numpy(), out["time_s"].to_numpy()))
    return out.iloc[order].reset_index(drop=True)


def _draw_categories(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One category index per row of a (rows, categories) weight matrix."""
    chosen = (rng.random(len(weights))[:, None] > np.cumsum(weights, axis=1)).sum(axis=1)
    return np.minimum(chosen, len(CATEGORIES) - 1)


def _pick_sku(rng: np.random.Generator, category: np.ndarray) -> np.ndarray:
    """A product index drawn uniformly among the products of each row's category."""
    category_of = np.array([CATEGORIES.index(p[1]) for p in PRODUCTS])
    starts = np.array([np.flatnonzero(category_of == c)[0] for c in range(len(CATEGORIES))])
    counts = np.bincount(category_of, minlength=len(CATEGORIES))
    return starts[category] + np.floor(rng.random(len(category)) * counts[category]).astype(np.int64)


# --------------------------------------------------------------------------- journeys


def _conversion_probability(exposed: np.ndarray) -> np.ndarray:
    """Noisy-OR conversion probability of exposure rows (journeys, channels)."""
    effect = np.array([c.true_effect for c in CHANNELS])
    return 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - exposed * effect, axis=1)


def _exposure_probabilities(email_available: bool) -> np.ndarray:
    q = np.array([c.exposure_probability for c in CHANNELS])
    return np.where([c.name == "email" and not email_available for c in CHANNELS], 0.0, q)


def _mean_conversion(email_available: np.ndarray) -> np.ndarray:
    """Expected conversion probability of an intent over its random exposures (closed form)."""
    effect = np.array([c.true_effect for c in CHANNELS])
    with_email = 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - _exposure_probabilities(True) * effect)
    without = 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - _exposure_probabilities(False) * effect)
    return np.where(email_available, with_email, without)


def _lost_conversion_probability(email_available: bool) -> np.ndarray:
    """Per channel: the chance that switching it off loses an intent's conversion (closed form).

    Under the noisy-OR the intent converts without channel ``c`` unless ``c`` was the only
    cause: ``c`` was exposed and activated, and neither the base rate nor any other exposed
    channel did. Exposures being independent, that is
    ``q_c e_c (1 - BASE_CONVERSION) prod_{d != c} (1 - q_d e_d)``.
    """
    reach = _exposure_probabilities(email_available) * np.array([c.true_effect for c in CHANNELS])
    return reach * (1.0 - BASE_CONVERSION) * np.prod(1.0 - reach) / (1.0 - reach)


def _draw_exposures(rng: np.random.Generator, email_available: np.ndarray, converted: np.ndarray) -> np.ndarray:
    """Exposure sets drawn from P(exposures | email availability, conversion outcome).

    Rejection sampling of the causal model: draw exposures from their prior and the
    outcome from the noisy-OR; keep the draws whose outcome is the one asked for.
    """
    out = np.zeros((len(converted), len(CHANNELS)), dtype=bool)
    for available in (False, True):
        q = _exposure_probabilities(available)
        p_mean = float(_mean_conversion(np.array([available]))[0])
        for outcome in (False, True):
            rows = np.flatnonzero((email_available == available) & (converted == outcome))
            kept: list[np.ndarray] = []
            need = len(rows)
            accept = p_mean if outcome else 1.0 - p_mean
            while need > 0:
                size = int(need / accept * 1.2) + 64
                x = rng.random((size, len(CHANNELS))) < q
                good = x[(rng.random(size) < _conversion_probability(x)) == outcome][:need]
                kept.append(good)
                need -= len(good)
            if len(rows):
                out[rows] = np.concatenate(kept)
    return out


def _touch_vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Event types and campaigns a touch can carry, in a fixed order."""
    events = tuple(dict.fromkeys(e for c in CHANNELS for e in c.event_types))
    campaigns = tuple(dict.fromkeys(x for c in CHANNELS for x in c.campaigns))
    return events, campaigns


def _journeys(rng: np.random.Generator, persons: pd.DataFrame, purchases: pd.DataFrame,
              end_day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tracked journeys (converting and not) and their touches.

    Returns ``journeys`` (journey, person, converted, purchase_row or -1, end_s,
    email_available, ``exposed_<channel>`` columns) and ``touches`` (journey, person,
    channel, event, campaign, time_s;
    channel, event and campaign are indexes into ``CHANNELS`` and :func:`_touch_vocabulary`),
    touches sorted by time.
    """
    window_from = end_day - EVENT_WINDOW_DAYS + 1 + JOURNEY_MAX_DAYS
    web_share = persons["web_share"].to_numpy()
    email_available = persons["email_subscribed"].to_numpy()

    sale = ~purchases["is_return"].to_numpy() & (purchases["day"].to_numpy() >= window_from)
    tracking = np.where(purchases["is_web"].to_numpy(), JOURNEY_TRACKING_WEB, JOURNEY_TRACKING_STORE)
    converted_rows = np.flatnonzero(sale & (rng.random(len(purchases)) < tracking))

    # Non-converted intents: Poisson of rate * (1 - p) / p while the person is in the market.
    p_mean = _mean_conversion(email_available)
    coverage = web_share * JOURNEY_TRACKING_WEB + (1 - web_share) * JOURNEY_TRACKING_STORE
    rate = persons["purchase_rate_per_day"].to_numpy() * (1 - p_mean) / p_mean * coverage
    lo = np.maximum(persons["first_seen_day"].to_numpy(), window_from)
    span = np.clip(np.minimum(persons["death_day"].to_numpy(), end_day + 1) - lo, 0, None)
    lost_person = np.repeat(np.arange(len(persons)), rng.poisson(rate * span))
    lost_end = (((lo[lost_person] + rng.random(len(lost_person)) * span[lost_person]) * _DAY_S).astype(np.int64)
                - _NOMINAL_UTC_OFFSET_S)

    person = np.concatenate([purchases["person"].to_numpy()[converted_rows], lost_person])
    converted = np.concatenate([np.ones(len(converted_rows), bool), np.zeros(len(lost_person), bool)])
    end_s = np.concatenate([purchases["time_s"].to_numpy()[converted_rows], lost_end])
    exposed = _draw_exposures(rng, email_available[person], converted)

    events, campaigns = _touch_vocabulary()
    j, c = np.nonzero(exposed)
    lag_lo = np.array([ch.lag_days[0] for ch in CHANNELS])[c]
    lag_hi = np.array([ch.lag_days[1] for ch in CHANNELS])[c]
    lag_s = ((lag_lo + rng.random(len(j)) * (lag_hi - lag_lo)) * _DAY_S).astype(np.int64)
    event = _pick_index([[events.index(e) for e in ch.event_types] for ch in CHANNELS], c, rng.random(len(j)))
    campaign = _pick_index([[campaigns.index(x) for x in ch.campaigns] for ch in CHANNELS], c, rng.random(len(j)))
    touches = pd.DataFrame({"journey": j, "channel": c, "event": event, "campaign": campaign,
                            "time_s": end_s[j] - lag_s})
    touches["person"] = person[touches["journey"].to_numpy()]
    order = np.lexsort((touches["channel"].to_numpy(), touches["journey"].to_numpy(), touches["time_s"].to_numpy()))
    touches = touches.iloc[order].reset_index(drop=True)

    journeys = pd.DataFrame({
        "journey": np.arange(len(person)), "person": person, "converted": converted,
        "purchase_row": np.concatenate([converted_rows, np.full(len(lost_person), -1)]),
        "end_s": end_s, "email_available": email_available[person],
    })
    for k, ch in enumerate(CHANNELS):
        journeys[f"exposed_{ch.name}"] = exposed[:, k]
    return journeys, touches


def _pick_index(options: Sequence[Sequence[int]], which: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row, element ``floor(u * len)`` of the option list ``options[which]``."""
    width = max(len(o) for o in options)
    table = np.array([list(o) + [o[0]] * (width - len(o)) for o in options])
    lengths = np.array([len(o) for o in options])
    return table[which, np.floor(u * lengths[which]).astype(np.int64)]


# --------------------------------------------------------------------------- engagement


def _web_activity(rng: np.random.Generator, persons: pd.DataFrame, ids: _Identifiers,
                  purchases: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """Web events of known persons in the event window.

    Checkout sessions (product view, add to cart, checkout) minutes before tracked web
    purchases, plus browsing sessions and abandoned carts thinned by engagement.
    Columns: person, cookie (index into the cookie array), logged_in, time_s, event
    (index into ``_WEB_EVENT_TYPES``), sku, category (indexes or -1), value (NaN if none).
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
        "person": np.tile(person, 3), "cookie": np.tile(_person_cookie(rng, ids, person), 3),
        "logged_in": np.concatenate([logged, logged, np.ones(n, bool)]),
        "time_s": np.concatenate([view_s, cart_s, checkout_s]),
        "event": np.repeat([_WEB_EVENT_TYPES.index(e) for e in ("product_view", "add_to_cart", "checkout")], n),
        "sku": np.tile(sku, 3), "category": np.tile(p["category"].to_numpy()[rows], 3),
        "value": np.concatenate([np.array([q[2] for q in PRODUCTS])[sku], value, value]),
    })
    group = persons["group_index"].to_numpy()
    online = np.maximum(persons["web_share"].to_numpy(), 0.3)
    browse = _sessions(rng, persons, ids, _group_param("browse_sessions_per_day", group) * online,
                       window_from, end_day, abandoned_cart=False)
    carts = _sessions(rng, persons, ids, _group_param("abandoned_carts_per_day", group) * online,
                      window_from, end_day, abandoned_cart=True)
    return pd.concat([checkout, browse, carts], ignore_index=True)


def _sessions(rng: np.random.Generator, persons: pd.DataFrame, ids: _Identifiers, rate: np.ndarray,
              window_from: int, end_day: int, abandoned_cart: bool) -> pd.DataFrame:
    """Browsing sessions or abandoned carts: Poisson per person, thinned by engagement.

    A browsing session is a page view or search followed by up to two product views;
    an abandoned cart is a product view and an add-to-cart, only while the person is alive.
    """
    lo = np.maximum(persons["first_seen_day"].to_numpy(), window_from)
    span = np.clip(end_day + 1 - lo, 0, None)
    person = np.repeat(np.arange(len(persons)), rng.poisson(rate * span))
    start_s = ((lo[person] + rng.random(len(person)) * span[person]) * _DAY_S).astype(np.int64)
    day = start_s // _DAY_S
    keep = rng.random(len(person)) < _engagement(persons, person, day)
    if abandoned_cart:
        keep &= day < persons["death_day"].to_numpy()[person]
    person, start_s = person[keep], start_s[keep] - _NOMINAL_UTC_OFFSET_S
    n = len(person)
    cookie = _person_cookie(rng, ids, person)
    logged = rng.random(n) < (0.45 if abandoned_cart else 0.3)
    category = _draw_categories(rng, _category_weights(persons)[person])
    sku = _pick_sku(rng, category)
    price = np.array([q[2] for q in PRODUCTS])[sku]
    n_events = np.full(n, 2) if abandoned_cart else np.minimum(1 + rng.poisson(0.7, n), 3)
    s = np.repeat(np.arange(n), n_events)
    position = np.arange(len(s)) - np.repeat(np.cumsum(n_events) - n_events, n_events)
    time_s = start_s[s] + position * rng.integers(20, 300, len(s))
    if abandoned_cart:
        event = np.where(position == 0, _WEB_EVENT_TYPES.index("product_view"), _WEB_EVENT_TYPES.index("add_to_cart"))
        value = price[s] * np.where(position == 0, 1, 1 + rng.poisson(0.5, len(s)))
        sku_col, category_col = sku[s], category[s]
    else:
        opener = np.where(rng.random(n) < 0.35, _WEB_EVENT_TYPES.index("search"), _WEB_EVENT_TYPES.index("page_view"))
        event = np.where(position == 0, opener[s], _WEB_EVENT_TYPES.index("product_view"))
        value = np.where(position == 0, np.nan, price[s])
        sku_col = np.where(position == 0, -1, sku[s])
        category_col = np.where(event == _WEB_EVENT_TYPES.index("search"), -1, category[s])
    return pd.DataFrame({
        "person": person[s], "cookie": cookie[s], "logged_in": logged[s], "time_s": time_s,
        "event": event, "sku": sku_col, "category": category_col, "value": value,
    })


def _anonymous_visitors(rng: np.random.Generator, n_persons: int, end_day: int,
                        cookie_offset: int) -> tuple[pa.Array, pd.DataFrame]:
    """Cookies and web events of visitors who are nobody in the person table.

    Their cookie indexes start at ``cookie_offset`` (after the persons' cookies).
    """
    window_from = end_day - EVENT_WINDOW_DAYS + 1
    n_visitors = max(1, n_persons // 4)
    cookies = _hex_ids(rng, n_visitors)
    visitor = np.repeat(np.arange(n_visitors), 1 + rng.poisson(0.4, n_visitors))
    m = len(visitor)
    sku = rng.integers(0, len(PRODUCTS), m)
    view = rng.random(m) < 0.5
    return cookies, pd.DataFrame({
        "person": np.full(m, -1), "cookie": cookie_offset + visitor, "logged_in": np.zeros(m, bool),
        "time_s": ((window_from + rng.random(m) * EVENT_WINDOW_DAYS) * _DAY_S).astype(np.int64),
        "event": np.where(view, _WEB_EVENT_TYPES.index("product_view"), _WEB_EVENT_TYPES.index("page_view")),
        "sku": np.where(view, sku, -1),
        "category": np.array([CATEGORIES.index(q[1]) for q in PRODUCTS])[sku],
        "value": np.where(view, np.array([q[2] for q in PRODUCTS])[sku], np.nan),
    })


def _newsletters(end_day: int) -> pd.DataFrame:
    """The newsletter calendar of the event window: send day, send time (UTC seconds), campaign."""
    days = np.arange(end_day - EVENT_WINDOW_DAYS + 4, end_day + 1, NEWSLETTER_EVERY_DAYS)
    dates = [_date(int(d)) for d in days]
    names = [f"{d.year}-{d.month:02d}_{_NEWSLETTER_THEMES[d.month]}" for d in dates]
    return pd.DataFrame({"day": days, "time_s": days * _DAY_S + 6 * 3600, "campaign": names})


def _email_activity(rng: np.random.Generator, persons: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """Newsletter sends, opens and clicks: person, time_s, event, campaign (newsletter index).

    Every subscriber seen by the send day gets each newsletter; opens follow the
    person's open rate times the engagement factor, clicks the click rate once opened.
    """
    letters = _newsletters(end_day)
    subscribers = np.flatnonzero(persons["email_subscribed"].to_numpy())
    person = np.repeat(subscribers, len(letters))
    letter = np.tile(np.arange(len(letters)), len(subscribers))
    day = letters["day"].to_numpy()[letter]
    got = persons["first_seen_day"].to_numpy()[person] <= day
    person, letter, day = person[got], letter[got], day[got]
    m = len(person)
    sent_s = letters["time_s"].to_numpy()[letter] + rng.integers(0, 1800, m)
    opened = rng.random(m) < persons["email_open_rate"].to_numpy()[person] * _engagement(persons, person, day)
    open_s = sent_s + 60 + np.minimum(rng.exponential(8 * 3600, m), 20 * _DAY_S).astype(np.int64)
    clicked = opened & (rng.random(m) < persons["email_click_rate"].to_numpy()[person])
    click_s = open_s + rng.integers(10, 600, m)
    keep_open = opened & (open_s // _DAY_S <= end_day)
    keep_click = clicked & keep_open & (click_s // _DAY_S <= end_day)
    return pd.DataFrame({
        "person": np.concatenate([person, person[keep_open], person[keep_click]]),
        "time_s": np.concatenate([sent_s, open_s[keep_open], click_s[keep_click]]),
        "event": np.repeat([0, 1, 2], [m, int(keep_open.sum()), int(keep_click.sum())]),
        "campaign": np.concatenate([letter, letter[keep_open], letter[keep_click]]),
    })


# --------------------------------------------------------------------------- sources


def _crm_customers(rng: np.random.Generator, persons: pd.DataFrame, ids: _Identifiers, end_day: int) -> pd.DataFrame:
    """The CRM export: one row per CRM person plus duplicate rows under a second id.

    A duplicate repeats either the email (shouted, no phone) or the phone (in another
    format, with the second email or none), so it links to its person only through that.
    The phone is the one the person had when their first CRM row was created.
    """
    main, dup = np.flatnonzero(ids.in_crm), np.flatnonzero(ids.has_crm_duplicate)
    person = np.concatenate([main, dup])
    is_dup = np.concatenate([np.zeros(len(main), bool), np.ones(len(dup), bool)])
    n = len(person)
    key = _where(is_dup, ids.crm_key2.take(person), ids.crm_key.take(person))
    created_day = np.minimum(ids.crm_created_day[person] + np.where(is_dup, rng.integers(30, 400, n), 0), end_day)
    created_s = created_day * _DAY_S + rng.integers(9 * 3600, 19 * 3600, n) - _NOMINAL_UTC_OFFSET_S

    has_email, has_phone = ids.has_email[person], ids.has_phone[person]
    dup_by_email = is_dup & has_email & (~has_phone | (rng.random(n) < 0.6))
    dup_by_phone = is_dup & ~dup_by_email
    true_email = ids.email.take(person)
    email = _noisy_emails(rng, true_email)
    email = _where(dup_by_email, pc.utf8_upper(true_email), email)
    email = _where(dup_by_phone, ids.email2.take(person), email)
    email = _where(~has_email & ~is_dup & (rng.random(n) < 0.25), "no@email.com", email)

    # The phone the person had when their (first) CRM row was created; a duplicate repeats it.
    changed_later = ids.phone_changed_day[person] > ids.crm_created_day[person]
    nsn = _where(changed_later, ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    phone = _where(dup_by_email, "", _format_phones(rng, ids.phone_cc.take(person), nsn))
    phone = _where(~has_phone & (rng.random(n) < 0.2), "0000000000", phone)

    code = np.array([c[0] for c in _COUNTRIES])[persons["country_index"].to_numpy()[person]]
    first, last = _names(rng, ids, person, arabic=np.isin(code, ["PS", "IL", "JO"]) & (rng.random(n) < 0.5))
    gender_style = rng.choice(3, n, p=[0.6, 0.2, 0.2])
    is_female = np.array(_first_name_table()[2])[ids.first_name[person]] == "F"
    gender = _take(["M", "F", "male", "female", ""], np.where(gender_style == 2, 4, gender_style * 2 + is_female))
    style = rng.integers(0, 3, n)
    flags = ["no", "yes", "false", "true", "0", "1"]
    consent_email = _take(flags, style * 2 + persons["email_subscribed"].to_numpy()[person])
    consent_sms = _where(has_phone, _take(flags, style * 2 + (rng.random(n) < 0.4)), "")
    all_cities = [c for country in _COUNTRIES for c in country[2]]
    order = pc.sort_indices(key).to_numpy()
    columns = {
        "customer_id": key, "first_name": first, "last_name": last, "email": email, "phone": phone,
        "birth_date": _iso_dates(ids.birth_date_day[person]), "gender": gender,
        "country": _take([c[0] for c in _COUNTRIES], persons["country_index"].to_numpy()[person]),
        "city": _take(all_cities, persons["city_index"].to_numpy()[person]),
        "consent_email": consent_email, "consent_sms": consent_sms, "created_at": _local_naive(created_s),
        "_person": person, "_journey": np.full(n, -1),
    }
    return _frame({k: (v.take(order) if isinstance(v, pa.Array) else v[order]) for k, v in columns.items()})


def _order_sources(rng: np.random.Generator, persons: pd.DataFrame, ids: _Identifiers,
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
    true_email = _where(use_second, ids.email2.take(person), ids.email.take(person))
    # Orders taken by staff over the phone carry the shop's own email.
    staff_order = ~ids.has_email[person] | (rng.random(n) < 0.01)
    email = _where(staff_order, STORE_EMAIL, _noisy_emails(rng, true_email))
    # Checkout asks for a delivery phone (optional); staff taking an order by phone always note it.
    phone_then = _where(ids.phone_changed_day[person] > w["day"].to_numpy(),
                        ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    give_phone = ids.has_phone[person] & (staff_order | (rng.random(n) < WEB_DELIVERY_PHONE_SHARE))
    delivery_phone = _where(give_phone, _format_phones(rng, ids.phone_cc.take(person), phone_then), "")
    code = np.array([c[0] for c in _COUNTRIES])[persons["country_index"].to_numpy()[person]]
    usd = ~np.isin(code, ["PS", "IL"])
    to_currency = np.where(usd, 1.0 / ILS_PER_USD, 1.0)
    web = _frame({
        "order_id": _seq_ids("W", n, 7),
        "created_at": _local_iso(w["time_s"].to_numpy()),
        "email": email,
        "delivery_phone": delivery_phone,
        "amount": _money(w["value_ils"].to_numpy() * to_currency),
        "items": _int_text(w["items"].to_numpy()),
        "sku": _take(skus, w["sku"].to_numpy()), "category": _take(CATEGORIES, w["category"].to_numpy()),
        "discount": _money(w["discount_ils"].to_numpy() * to_currency),
        "currency": _take(["ILS", "USD"], usd), "is_return": _bool_text(w["is_return"].to_numpy()),
        "channel": _const("web", n), "_person": person, "_journey": journey_of[is_web],
    })

    s = purchases.loc[~is_web]
    person = s["person"].to_numpy()
    n = len(s)
    before_change = ids.phone_changed_day[person] > s["day"].to_numpy()
    nsn = _where(before_change, ids.old_phone_nsn.take(person), ids.phone_nsn.take(person))
    write_phone = ids.has_phone[person] & (rng.random(n) < 0.8)
    write_card = ids.has_card[person] & (rng.random(n) < 0.85)
    phone = _where(write_phone, _format_phones(rng, ids.phone_cc.take(person), nsn), "")
    phone = _where(write_phone & (rng.random(n) < 0.01), JUNK_PHONES[1], phone)
    phone = _where(~write_phone & ~write_card, WALK_IN_PHONE, phone)
    home = persons["home_store"].to_numpy()[person]
    store = np.where(rng.random(n) < 0.85, home, 1 - home)
    pos = _frame({
        "receipt_id": _cat(_take(_STORES, store), "-", _digits(np.arange(1, n + 1), 7)),
        "store": _take(_STORE_NAMES, store),
        "date": _pos_stamp(s["time_s"].to_numpy()),
        "phone": phone,
        "loyalty_card": _where(write_card, ids.loyalty_card.take(person), ""),
        "amount": _money(s["value_ils"].to_numpy()),
        "items": _int_text(s["items"].to_numpy()),
        "sku": _take(skus, s["sku"].to_numpy()), "category": _take(CATEGORIES, s["category"].to_numpy()),
        "discount": _money(s["discount_ils"].to_numpy()),
        "currency": _const("ILS", n), "is_return": _take(["0", "1"], s["is_return"].to_numpy()),
        "channel": _const("store", n), "_person": person, "_journey": journey_of[~is_web],
    })
    return web, pos


def _facebook_leads(rng: np.random.Generator, persons: pd.DataFrame, ids: _Identifiers, end_day: int) -> pd.DataFrame:
    """Lead-form exports from Facebook and Instagram: the email-phone bridge of many persons."""
    start_day = end_day - HISTORY_DAYS + 1
    person = np.flatnonzero(ids.in_leads & (persons["first_seen_day"].to_numpy() >= start_day))
    created_s = (persons["first_seen_day"].to_numpy()[person] * _DAY_S
                 + rng.integers(7 * 3600, 23 * 3600, len(person)) - _NOMINAL_UTC_OFFSET_S)
    order = np.lexsort((person, created_s))
    person, created_s = person[order], created_s[order]
    n = len(person)
    has_email = ids.has_email[person]
    email = _where(ids.has_email2[person] & (rng.random(n) < 0.4), ids.email2.take(person), ids.email.take(person))
    email = _where(rng.random(n) < 0.15, _noisy_emails(rng, email), email)
    # The form requires an email: people without one type a placeholder (or leave it blank).
    placeholder = (~has_email & (rng.random(n) < 0.6)) | (has_email & (rng.random(n) < 0.01))
    email = _where(placeholder, _take(JUNK_EMAILS, rng.integers(0, len(JUNK_EMAILS), n)), email)
    cc, nsn = ids.phone_cc.take(person), ids.phone_nsn.take(person)
    palestinian = persons["country_index"].to_numpy()[person] == [c[0] for c in _COUNTRIES].index("PS")
    typed = _where(palestinian & (rng.random(n) < 0.5), _cat("0", nsn), _cat("+", cc, nsn))
    write_phone = ids.has_phone[person] & ((rng.random(n) < 0.85) | ~has_email)
    phone = _where(write_phone, typed, "")
    phone = _where(rng.random(n) < 0.015, _take(JUNK_PHONES, rng.integers(0, 2, n)), phone)
    first, last = _names(rng, ids, person, arabic=rng.random(n) < 0.2)
    lead_id = _int_text(318_400_000_000_000 + np.arange(n) * 19 + rng.integers(0, 19, n))
    return _frame({
        "lead_id": lead_id, "created_time": _utc_iso(created_s, "+00:00"), "email": email, "phone": phone,
        "first_name": first, "last_name": last,
        "platform": _take(["facebook", "instagram"], rng.random(n) >= 0.6),
        "_person": person, "_journey": np.full(n, -1),
    })


def _web_events_source(ids: _Identifiers, cookies: pa.Array, rows: pd.DataFrame) -> pd.DataFrame:
    """The web-analytics export, sorted by time, with sequential event ids."""
    order = np.lexsort((rows["event"].to_numpy(), rows["cookie"].to_numpy(), rows["time_s"].to_numpy()))
    r = rows.iloc[order]
    n = len(r)
    person = r["person"].to_numpy()
    sku, category, value = r["sku"].to_numpy(), r["category"].to_numpy(), r["value"].to_numpy()
    return _frame({
        "event_id": _seq_ids("WE", n, 9),
        "anonymous_id": cookies.take(r["cookie"].to_numpy()),
        "email": _where(r["logged_in"].to_numpy() & (person >= 0), ids.email.take(np.maximum(person, 0)), ""),
        "timestamp": _utc_iso(r["time_s"].to_numpy(), "Z"),
        "event_type": _take(_WEB_EVENT_TYPES, r["event"].to_numpy()),
        "channel": _const("web", n),
        "product_id": _where(sku >= 0, _take([p[0] for p in PRODUCTS], np.maximum(sku, 0)), ""),
        "category": _where(category >= 0, _take(CATEGORIES, np.maximum(category, 0)), ""),
        "value": _where(np.isnan(value), "", _money(np.nan_to_num(value))),
        "_person": person, "_journey": np.full(n, -1),
    })


def _email_events_source(rng: np.random.Generator, ids: _Identifiers, newsletter: pd.DataFrame,
                         touches: pd.DataFrame, end_day: int) -> pd.DataFrame:
    """The email platform export: newsletter activity plus journey emails (sent, then clicked)."""
    letter_names = _newsletters(end_day)["campaign"].tolist()
    _, touch_campaigns = _touch_vocabulary()
    t = touches.loc[touches["channel"] == [c.name for c in CHANNELS].index("email")]
    m = len(t)
    flows = pd.DataFrame({
        "person": np.tile(t["person"].to_numpy(), 2),
        "time_s": np.concatenate([t["time_s"].to_numpy() - rng.integers(3600, 36 * 3600, m), t["time_s"].to_numpy()]),
        "event": np.repeat([_EMAIL_EVENT_TYPES.index("email_sent"), _EMAIL_EVENT_TYPES.index("email_click")], m),
        "campaign": len(letter_names) + np.tile(t["campaign"].to_numpy(), 2),
        "journey": np.tile(t["journey"].to_numpy(), 2),
    })
    rows = pd.concat([newsletter.assign(journey=-1), flows], ignore_index=True)
    order = np.lexsort((rows["event"].to_numpy(), rows["person"].to_numpy(), rows["time_s"].to_numpy()))
    r = rows.iloc[order]
    n = len(r)
    return _frame({
        "event_id": _seq_ids("EM", n, 9),
        "email": ids.email.take(r["person"].to_numpy()),
        "timestamp": _utc_iso(r["time_s"].to_numpy(), "+00:00"),
        "event_type": _take(_EMAIL_EVENT_TYPES, r["event"].to_numpy()),
        "campaign": _take(letter_names + list(touch_campaigns), r["campaign"].to_numpy()),
        "channel": _const("email", n), "_person": r["person"].to_numpy(), "_journey": r["journey"].to_numpy(),
    })


def _ad_touchpoints_source(rng: np.random.Generator, ids: _Identifiers, touches: pd.DataFrame) -> pd.DataFrame:
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
    events, campaigns = _touch_vocabulary()
    return _frame({
        "touch_id": _seq_ids("TP", n, 9),
        "email": _where(by_email, ids.email.take(person), ""),
        "customer_key": _where(by_crm, ids.crm_key.take(person), ""),
        "anonymous_id": _where(by_cookie, ids.cookies.take(_person_cookie(rng, ids, person)), ""),
        "timestamp": _utc_iso(t["time_s"].to_numpy(), "Z"),
        "event_type": _take(events, t["event"].to_numpy()),
        "channel": _take(names, t["channel"].to_numpy()),
        "campaign": _take(campaigns, t["campaign"].to_numpy()),
        "_person": person, "_journey": t["journey"].to_numpy(),
    })


def _names(rng: np.random.Generator, ids: _Identifiers, person: np.ndarray,
           arabic: np.ndarray) -> tuple[pa.Array, pa.Array]:
    """First and last names as one source writes them: Arabic script or one Latin spelling."""
    first_ar, first_latin, _ = _first_name_table()
    last_ar, last_latin = _last_name_table()
    spelling = rng.integers(0, 3, (len(person), 2))
    first = _where(arabic, _take(first_ar, ids.first_name[person]),
                   _take(first_latin, ids.first_name[person] * 3 + spelling[:, 0]))
    last = _where(arabic, _take(last_ar, ids.last_name[person]),
                  _take(last_latin, ids.last_name[person] * 3 + spelling[:, 1]))
    return first, last


# --------------------------------------------------------------------------- mess


_ORDER_PROBLEMS = ("bad_timestamp", "bad_amount", "negative_amount", "no_identifier")
_BAD_AMOUNTS = ("abc", "12.5.0", "#VALUE!", "4O.00")


def _inject_invalid_rows(rng: np.random.Generator, spec: SourceSpec,
                         frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Corrupt a few rows the way real exports are corrupted; say which rows and why.

    Orders get impossible timestamps, non-numeric or negative amounts and rows with no
    identifier (never on returns); events get impossible timestamps; customers are left
    intact.
    """
    if spec.kind == "customers" or frame.empty:
        return frame, _rejects_frame(spec.name, frame, np.array([], dtype=np.int64), [])
    if spec.kind == "orders":
        candidates = np.flatnonzero(~frame[spec.columns["is_return"]].isin(["true", "1"]).to_numpy())
        k = min(len(candidates), _n_invalid(INVALID_ORDER_SHARE, len(frame), len(_ORDER_PROBLEMS)))
        rows = np.sort(rng.choice(candidates, k, replace=False))
        problems = rng.permutation(np.resize(np.array(_ORDER_PROBLEMS), k))
    else:
        k = _n_invalid(INVALID_EVENT_SHARE, len(frame), 1)
        rows = np.sort(rng.choice(len(frame), k, replace=False))
        problems = np.full(k, "bad_timestamp")
    frame = frame.copy()
    timestamp = spec.columns["timestamp"]
    amount = spec.columns.get("amount", "")
    for problem in _ORDER_PROBLEMS:
        at = rows[problems == problem]
        if not len(at):
            continue
        if problem == "bad_timestamp":
            frame.loc[at, timestamp] = _impossible_timestamps(rng, frame[timestamp].to_numpy()[at], spec)
        elif problem == "bad_amount":
            frame.loc[at, amount] = np.array(_BAD_AMOUNTS, dtype=object)[rng.integers(0, len(_BAD_AMOUNTS), len(at))]
        elif problem == "negative_amount":
            frame.loc[at, amount] = ["-" + v for v in frame[amount].to_numpy()[at]]
        else:
            for field in ("customer_key", "email", "phone", "external_id", "anonymous_id"):
                if field in spec.columns:
                    frame.loc[at, spec.columns[field]] = ""
    return frame, _rejects_frame(spec.name, frame, rows, list(problems))


def _n_invalid(share: float, n_rows: int, at_least: int) -> int:
    """How many rows to corrupt: ``share`` of them, and ``at_least`` once a file has 500 rows."""
    return min(n_rows, max(round(share * n_rows), at_least if n_rows >= 500 else 0))


def _impossible_timestamps(rng: np.random.Generator, values: np.ndarray, spec: SourceSpec) -> list[str]:
    """The same timestamps with month 13 or day 32: unparseable by any reader."""
    till = spec.options.get("timestamp_format") == "%Y%m%d %H:%M"  # "20240305 10:22" vs ISO "2024-03-05T..."
    month, day = (4, 6) if till else (5, 8)
    out = []
    for v, month13 in zip(values, rng.random(len(values)) < 0.5):
        out.append(v[:month] + "13" + v[month + 2:] if month13 else v[:day] + "32" + v[day + 2:])
    return out


def _rejects_frame(source: str, frame: pd.DataFrame, rows: np.ndarray, problems: list[str]) -> pd.DataFrame:
    keys = frame.iloc[:, 0].to_numpy()[rows] if len(rows) else []
    return _frame({
        "source": _text([source] * len(rows)), "source_key": _text(list(keys)),
        "row_number": _int_text(rows + 1), "problem": _text([str(p) for p in problems]),
    })


# --------------------------------------------------------------------------- truth


def _journey_ids(journey: np.ndarray) -> pa.Array:
    return _where(journey >= 0, _cat("J", _digits(journey + 1, 8)), "")


def _records(source: str, frame: pd.DataFrame, person_ids: pa.Array) -> pd.DataFrame:
    """One truth line per written row: its person (empty for nobody's cookie) and journey."""
    person = frame["_person"].to_numpy()
    n = len(frame)
    return _frame({
        "source": _const(source, n),
        "source_key": _column_text(frame.iloc[:, 0]),
        "row_number": _int_text(np.arange(1, n + 1)),
        "person_id": _where(person >= 0, person_ids.take(np.maximum(person, 0)), ""),
        "journey_id": _journey_ids(frame["_journey"].to_numpy()),
    })


def _persons_truth(persons: pd.DataFrame, ids: _Identifiers, person_ids: pa.Array, end_day: int) -> pd.DataFrame:
    """The latent truth of every person, as text with fixed precision."""
    p = persons
    weights = _category_weights(p)
    all_cities = [c for country in _COUNTRIES for c in country[2]]
    return _frame({
        "person_id": person_ids,
        "group": _take([g.name for g in GROUPS], p["group_index"].to_numpy()),
        "purchase_rate_per_day": _fixed(p["purchase_rate_per_day"].to_numpy(), 6),
        "first_seen_date": _iso_dates(p["first_seen_day"].to_numpy()),
        "first_purchase_date": _iso_dates(p["first_purchase_day"].to_numpy()),
        "death_date": _iso_dates(p["death_day"].to_numpy()),
        "is_alive_at_end": _bool_text(p["death_day"].to_numpy() > end_day),
        "mean_order_value_ils": _fixed(p["mean_order_value_ils"].to_numpy(), 2),
        "web_share": _fixed(p["web_share"].to_numpy(), 4),
        "preferred_category": _take(CATEGORIES, weights.argmax(axis=1)),
        **{f"category_weight_{c}": _fixed(weights[:, k], 4) for k, c in enumerate(CATEGORIES)},
        "country": _take([c[0] for c in _COUNTRIES], p["country_index"].to_numpy()),
        "city": _take(all_cities, p["city_index"].to_numpy()),
        "home_store": _take(_STORE_NAMES, p["home_store"].to_numpy()),
        "email_subscribed": _bool_text(p["email_subscribed"].to_numpy()),
        "email_open_rate": _fixed(p["email_open_rate"].to_numpy(), 4),
        "email_click_rate": _fixed(p["email_click_rate"].to_numpy(), 4),
        "email_decay_days": _fixed(p["email_decay_days"].to_numpy(), 1),
        "n_emails": _int_text(ids.has_email.astype(int) + ids.has_email2.astype(int)),
        "has_phone": _bool_text(ids.has_phone),
        "phone_changed_date": _iso_dates(ids.phone_changed_day),
        "has_loyalty_card": _bool_text(ids.has_card),
        "n_crm_rows": _int_text(ids.in_crm.astype(int) + ids.has_crm_duplicate.astype(int)),
        "in_leads": _bool_text(ids.in_leads),
        "n_cookies": _int_text(ids.cookie_count),
    })


def _identifiers_truth(ids: _Identifiers, person_ids: pa.Array) -> pd.DataFrame:
    """Every true identifier of every person in canonical form (email lowercase, phone E.164)."""
    owners, types, values = [], [], []
    for id_type, value, present in (
        ("email", ids.email, ids.has_email),
        ("email", ids.email2, ids.has_email2),
        ("phone", _cat("+", ids.phone_cc, ids.phone_nsn), ids.has_phone),
        ("phone", _cat("+", ids.phone_cc, ids.old_phone_nsn), ids.has_old_phone),
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
    return _frame({
        "person_id": person_ids.take(owner[order]),
        "id_type": _take(type_names, kind[order]),
        "value": pa.concat_arrays(values).take(order),
    })


def _channels_truth(journeys: pd.DataFrame) -> pd.DataFrame:
    """What each channel truly does: its activation, the lift it implies, the conversions it causes.

    ``true_effect`` is the noisy-OR activation probability of one exposure, whoever sees
    it. ``average_lift`` is E[p | channel exposed] - E[p | not exposed] for an intent whose
    other exposures are random (email available). ``lost_conversions`` is the expected
    number of conversions of the tracked intents (the rows of ``journeys``, converted or
    not) that switching the channel off would lose (see :func:`_lost_conversion_probability`);
    ``true_share`` is the same normalised to sum to 1 over the channels: the share of the
    conversions each channel causes, which is what attribution models try to estimate. It
    depends on reach (``exposure_probability``) as well as on ``true_effect``. The lost
    conversions of all channels add up to less than the conversions they cause together
    (an intent that two channels both activate is lost by switching off neither alone),
    hence the share.
    """
    effect = np.array([c.true_effect for c in CHANNELS])
    q = _exposure_probabilities(True)
    email_available = journeys["email_available"].to_numpy(dtype=bool)
    lost = (email_available.sum() * _lost_conversion_probability(True)
            + (~email_available).sum() * _lost_conversion_probability(False))
    k = len(CHANNELS)
    return _frame({
        "channel": _text([c.name for c in CHANNELS]),
        "funnel_stage": _text([c.funnel_stage for c in CHANNELS]),
        "true_effect": _fixed(effect, 4),
        "average_lift": _fixed(_lost_conversion_probability(True) / q, 6),
        "exposure_probability": _fixed(q, 4),
        "lost_conversions": _fixed(lost, 2),
        "true_share": _fixed(lost / lost.sum(), 4),
        "lag_days_min": _fixed(np.array([c.lag_days[0] for c in CHANNELS]), 2),
        "lag_days_max": _fixed(np.array([c.lag_days[1] for c in CHANNELS]), 2),
        "base_conversion": _fixed(np.full(k, BASE_CONVERSION), 4),
    })


def _journeys_truth(journeys: pd.DataFrame, tables: Mapping[str, pd.DataFrame], person_ids: pa.Array) -> pd.DataFrame:
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
            order_keys.append(_column_text(frame.iloc[:, 0]))
        elif spec.kind == "events":
            touch = has & (frame[spec.columns["event_type"]].to_numpy() != "email_sent")
            n_touches += np.bincount(journey[touch], minlength=n)
    keep = np.flatnonzero(n_touches > 0)
    jr = journeys.iloc[keep]
    source = order_source[keep]
    keys = pa.concat_arrays(order_keys) if order_keys else _text([])
    columns = {
        "journey_id": _journey_ids(jr["journey"].to_numpy()),
        "person_id": person_ids.take(jr["person"].to_numpy()),
        "converted": _bool_text(jr["converted"].to_numpy()),
        "order_source": _where(source >= 0, _take([s.name for s in order_specs], np.maximum(source, 0)), ""),
        "order_key": _where(source >= 0, keys.take(order_row[keep]), "") if len(keys) else _const("", len(keep)),
        "journey_end": _utc_iso(jr["end_s"].to_numpy(), "Z"),
        "n_touches": _int_text(n_touches[keep]),
        "email_available": _bool_text(jr["email_available"].to_numpy()),
    }
    for c in CHANNELS:
        columns[f"exposed_{c.name}"] = _bool_text(jr[f"exposed_{c.name}"].to_numpy())
    return _frame(columns)


def _junk_truth() -> pd.DataFrame:
    rows = ([("email", e, "placeholder") for e in JUNK_EMAILS] + [("email", STORE_EMAIL, "shop_shared")]
            + [("phone", p, "placeholder") for p in JUNK_PHONES] + [("phone", WALK_IN_PHONE, "shop_shared")])
    return _frame({name: _text([r[k] for r in rows]) for k, name in enumerate(("id_type", "value", "reason"))})


# --------------------------------------------------------------------------- text (Arrow)


def _text(values: Sequence[str] | np.ndarray) -> pa.Array:
    return pa.array(values, type=pa.string())


def _column_text(column: pd.Series) -> pa.Array:
    """A text column of a DataFrame as one Arrow array."""
    array = pa.array(column, type=pa.string())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _const(value: str, n: int) -> pa.Array:
    return _take([value], np.zeros(n, dtype=np.int64))


def _take(options: Sequence[str], index: np.ndarray) -> pa.Array:
    """``options[index]`` for every row, as an Arrow string array."""
    return _text(list(options)).take(pa.array(np.asarray(index, dtype=np.int64)))


def _cat(*parts: pa.Array | str) -> pa.Array:
    """Row-wise concatenation of text arrays and constants."""
    return pc.binary_join_element_wise(*parts, "")


def _where(mask: np.ndarray | pa.Array, if_true: pa.Array | str, if_false: pa.Array | str) -> pa.Array:
    condition = mask if isinstance(mask, (pa.Array, pa.ChunkedArray)) else pa.array(np.asarray(mask, dtype=bool))
    return pc.if_else(condition, if_true, if_false)


def _choose(which: np.ndarray, options: Sequence[pa.Array]) -> pa.Array:
    """Row-wise ``options[which]``."""
    out = options[0]
    for k, option in enumerate(options[1:], start=1):
        out = _where(which == k, option, out)
    return out


def _scatter(n: int, mask: np.ndarray, values: pa.Array) -> pa.Array:
    """A length-``n`` text array holding ``values`` where ``mask`` is true, in order, else ""."""
    if not len(values):
        return _const("", n)
    position = np.cumsum(mask) - 1
    return _where(mask, values.take(pa.array(np.clip(position, 0, None))), "")


def _int_text(values: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.string())


def _digits(values: np.ndarray, width: int) -> pa.Array:
    """Whole numbers as text zero-padded to ``width`` digits."""
    return pc.utf8_lpad(_int_text(values), width=width, padding="0")


def _seq_ids(prefix: str, n: int, width: int) -> pa.Array:
    """``prefix`` followed by 1..n zero-padded to ``width`` digits."""
    return _cat(prefix, _digits(np.arange(1, n + 1), width))


def _money(amount: np.ndarray) -> pa.Array:
    """Non-negative amounts as text with two decimals."""
    return _fixed(amount, 2)


def _fixed(x: np.ndarray, decimals: int) -> pa.Array:
    """Numbers as text with a fixed number of decimals (exact, locale-free)."""
    scaled = np.rint(np.asarray(x, dtype=float) * 10**decimals).astype(np.int64)
    sign = _where(scaled < 0, "-", "")
    scaled = np.abs(scaled)
    return _cat(sign, _int_text(scaled // 10**decimals), ".", _digits(scaled % 10**decimals, decimals))


def _bool_text(x: np.ndarray) -> pa.Array:
    return _take(["false", "true"], np.asarray(x, dtype=bool))


def _day_number(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


def _to_day_numbers(values: pd.Series) -> np.ndarray:
    """Day numbers of ISO dates (or datetimes); missing dates become a far-future day."""
    days = (pd.to_datetime(values, errors="coerce") - pd.Timestamp("1970-01-01")).dt.days
    return days.fillna(10**7).to_numpy(dtype=np.int64)


def _iso_dates(days: np.ndarray) -> pa.Array:
    """ISO dates of day numbers; negative day numbers (meaning none) become ""."""
    days = np.asarray(days, dtype=np.int64)
    text = pc.cast(pa.array(np.maximum(days, 0).astype("datetime64[D]")), pa.string())
    return _where(days >= 0, text, "")


def _datetime_text(time_s: np.ndarray) -> pa.Array:
    """``YYYY-MM-DD HH:MM:SS`` of seconds since the epoch (no zone conversion)."""
    return pc.cast(pa.array(np.asarray(time_s, dtype=np.int64).astype("datetime64[s]")), pa.string())


def _utc_iso(time_s: np.ndarray, suffix: str) -> pa.Array:
    """ISO-8601 UTC time with a zone suffix ("Z" or "+00:00")."""
    return _cat(pc.replace_substring(_datetime_text(time_s), " ", "T"), suffix)


def _to_local(time_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock seconds in the store's time zone, and the UTC offset in seconds."""
    time_s = np.asarray(time_s, dtype=np.int64)
    utc = pd.DatetimeIndex(time_s.astype("datetime64[s]")).tz_localize("UTC")
    local_s = utc.tz_convert(STORE_TIMEZONE).tz_localize(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    return local_s, local_s - time_s


def _local_iso(time_s: np.ndarray) -> pa.Array:
    """ISO-8601 local time with the store zone's offset: ``2024-03-05T14:22:10+02:00``."""
    local_s, offset = _to_local(time_s)
    minutes = np.abs(offset) // 60
    return _cat(pc.replace_substring(_datetime_text(local_s), " ", "T"), _where(offset >= 0, "+", "-"),
                _digits(minutes // 60, 2), ":", _digits(minutes % 60, 2))


def _local_naive(time_s: np.ndarray) -> pa.Array:
    """Local time without zone: ``2024-03-05 14:22:10``."""
    return _datetime_text(_to_local(time_s)[0])


def _pos_stamp(time_s: np.ndarray) -> pa.Array:
    """Till time ``%Y%m%d %H:%M`` in local time."""
    s = _datetime_text(_to_local(time_s)[0])
    cut = pc.utf8_slice_codeunits
    return _cat(cut(s, 0, 4), cut(s, 5, 7), cut(s, 8, 10), " ", cut(s, 11, 16))


def _noisy_emails(rng: np.random.Generator, email: pa.Array) -> pa.Array:
    """Emails as people type them: mostly clean, sometimes capitalised, shouted, padded or title-cased."""
    style = rng.choice(5, len(email), p=[0.72, 0.08, 0.06, 0.08, 0.06])
    out = _choose(style, [email, pc.utf8_capitalize(email), pc.utf8_upper(email), _cat("  ", email, " "),
                          pc.utf8_title(email)])
    return _where(pc.equal(email, ""), "", out)


def _format_phones(rng: np.random.Generator, cc: pa.Array, nsn: pa.Array) -> pa.Array:
    """Phones as people and tills write them: PS numbers often local, others international."""
    style = rng.integers(0, 6, len(nsn))
    cut = pc.utf8_slice_codeunits
    a, b, c = cut(nsn, 0, 2), cut(nsn, 2, 5), cut(nsn, 5, 64)
    international = [_cat("+", cc, " ", a, " ", b, " ", c), _cat("00", cc, nsn), _cat("+", cc, nsn)]
    local = [_cat("0", nsn), _cat("0", a, "-", b, " ", c), _cat("0", a, " ", b, " ", c)]
    palestinian = _choose(style, local + international)
    foreign = _choose(style % 3, international)
    return _where(pc.equal(nsn, ""), "", _where(pc.equal(cc, "970"), palestinian, foreign))


def _toml_str(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _frame(columns: Mapping[str, pa.Array | np.ndarray]) -> pd.DataFrame:
    """A DataFrame from Arrow text arrays and numpy arrays (text becomes pandas ``str``)."""
    return pa.table({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in columns.items()}).to_pandas()


def _write_csv(frame: pd.DataFrame, path: Path, with_bom: bool) -> None:
    """Write a text table as CSV: UTF-8, ``\\n`` line ends, no quoting (values never need it)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = pa.table({name: pc.cast(col, pa.string()) for name, col in zip(table.column_names, table.columns)})
    # One chunk per column: pyarrow's CSV writer mangles tables holding empty chunks.
    table = table.combine_chunks()
    for name, column in zip(table.column_names, table.columns):
        if len(column) and pc.any(pc.match_substring_regex(column, r'[,"\r\n]')).as_py():
            raise ValueError(f"column {name!r} of {path.name} holds a value that would need CSV quoting")
    with pa.OSFile(str(path), "wb") as handle:
        handle.write((b"\xef\xbb\xbf" if with_bom else b"") + (",".join(frame.columns) + "\n").encode("utf-8"))
        if len(frame):
            pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=False, quoting_style="none"))
