"""Marketing channels, their true causal effects, and the tracked journeys they leave.

**Journeys.** Purchase intents arrive while a person is in the market (from
``first_seen_date`` to ``death_date``) at rate ``rate / p_convert``. Each intent draws an
exposure set: channel ``c`` is present with probability ``exposure_probability`` (email
only for subscribers). It converts with the noisy-OR probability
``1 - (1 - BASE_CONVERSION) * prod_c (1 - true_effect_c)`` over its exposed channels, so
``true_effect`` is the causal activation probability of a channel; ``p_convert`` is the
mean of that probability over exposure sets. Thinning a Poisson process by independent
coin flips leaves a Poisson process: converted intents are the purchases of
:mod:`sample.world` (rate ``rate``) and non-converted intents an independent Poisson
process of rate ``rate * (1 - p_convert) / p_convert``; exposures are drawn from their
distribution given the outcome. Only a share of journeys is tracked (``JOURNEY_TRACKING_WEB`` of web and
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
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sample.dates import DAY_S, NOMINAL_UTC_OFFSET_S
from sample.shop import EVENT_WINDOW_DAYS

BASE_CONVERSION = 0.04
JOURNEY_MAX_DAYS = 30
JOURNEY_TRACKING_WEB = 0.25
JOURNEY_TRACKING_STORE = 0.08


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


def _conversion_probability(exposed: np.ndarray) -> np.ndarray:
    """Noisy-OR conversion probability of exposure rows (journeys, channels)."""
    effect = np.array([c.true_effect for c in CHANNELS])
    return 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - exposed * effect, axis=1)


def exposure_probabilities(email_available: bool) -> np.ndarray:
    """Per channel: the chance an intent's journey includes it (email only when available)."""
    q = np.array([c.exposure_probability for c in CHANNELS])
    return np.where([c.name == "email" and not email_available for c in CHANNELS], 0.0, q)


def _mean_conversion(email_available: np.ndarray) -> np.ndarray:
    """Expected conversion probability of an intent over its random exposures (closed form)."""
    effect = np.array([c.true_effect for c in CHANNELS])
    with_email = 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - exposure_probabilities(True) * effect)
    without = 1.0 - (1.0 - BASE_CONVERSION) * np.prod(1.0 - exposure_probabilities(False) * effect)
    return np.where(email_available, with_email, without)


def lost_conversion_probability(email_available: bool) -> np.ndarray:
    """Per channel: the chance that switching it off loses an intent's conversion (closed form).

    Under the noisy-OR the intent converts without channel ``c`` unless ``c`` was the only
    cause: ``c`` was exposed and activated, and neither the base rate nor any other exposed
    channel did. Exposures being independent, that is
    ``q_c e_c (1 - BASE_CONVERSION) prod_{d != c} (1 - q_d e_d)``.
    """
    reach = exposure_probabilities(email_available) * np.array([c.true_effect for c in CHANNELS])
    return reach * (1.0 - BASE_CONVERSION) * np.prod(1.0 - reach) / (1.0 - reach)


def _draw_exposures(rng: np.random.Generator, email_available: np.ndarray, converted: np.ndarray) -> np.ndarray:
    """Exposure sets drawn from P(exposures | email availability, conversion outcome).

    Rejection sampling of the causal model: draw exposures from their prior and the
    outcome from the noisy-OR; keep the draws whose outcome is the one asked for.
    """
    out = np.zeros((len(converted), len(CHANNELS)), dtype=bool)
    for available in (False, True):
        q = exposure_probabilities(available)
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


def touch_vocabulary() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Event types and campaigns a touch can carry, in a fixed order."""
    events = tuple(dict.fromkeys(e for c in CHANNELS for e in c.event_types))
    campaigns = tuple(dict.fromkeys(x for c in CHANNELS for x in c.campaigns))
    return events, campaigns


def draw_journeys(rng: np.random.Generator, persons: pd.DataFrame, purchases: pd.DataFrame,
                  end_day: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Tracked journeys (converting and not) and their touches.

    Returns ``journeys`` (journey, person, converted, purchase_row or -1, end_s,
    email_available, ``exposed_<channel>`` columns) and ``touches`` (journey, person,
    channel, event, campaign, time_s;
    channel, event and campaign are indexes into ``CHANNELS`` and :func:`touch_vocabulary`),
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
    lost_end = (((lo[lost_person] + rng.random(len(lost_person)) * span[lost_person]) * DAY_S).astype(np.int64)
                - NOMINAL_UTC_OFFSET_S)

    person = np.concatenate([purchases["person"].to_numpy()[converted_rows], lost_person])
    converted = np.concatenate([np.ones(len(converted_rows), bool), np.zeros(len(lost_person), bool)])
    end_s = np.concatenate([purchases["time_s"].to_numpy()[converted_rows], lost_end])
    exposed = _draw_exposures(rng, email_available[person], converted)

    events, campaigns = touch_vocabulary()
    j, c = np.nonzero(exposed)
    lag_lo = np.array([ch.lag_days[0] for ch in CHANNELS])[c]
    lag_hi = np.array([ch.lag_days[1] for ch in CHANNELS])[c]
    lag_s = ((lag_lo + rng.random(len(j)) * (lag_hi - lag_lo)) * DAY_S).astype(np.int64)
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
