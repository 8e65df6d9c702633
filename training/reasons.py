"""Churn reasons in plain words: "hasn't bought for 94 days, longer than the typical customer (45)".

`cdp score` names each customer's top churn reasons by feature (``top_reasons``:
``"recency_days, email_open_rate_30d, purchase_history"``, strongest first). A marketer
needs a sentence instead, built from the customer's *own* values in the feature snapshot
and the typical customer's (the median buyer's) value beside it, with the direction the
customer's value really lies in ("fewer than", "longer than").

Which features may be reasons at all is decided here too (`reason_mask`, used by
`training.reason_codes.ReasonCodes` before it picks the strongest): a feature whose
contribution raised the risk, with the customer's value on the side of the typical
customer's that can be a reason to leave (`RISK_SIDE`).

This module is the wording table: one small function per feature that can be a reason
(every model input of `training.purchase.model_inputs`, plus ``purchase_history``, BG/NBD's
view that this customer is less likely to buy than the average buyer). Features counted over a
window (``web_sessions_30d``) share their family's wording with the window filled in. A
feature the table does not know, or a value that is missing, gets a generic sentence that
names the feature and says no more than the model does.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.rows import Rows, as_numbers, has_column, row_count
from features.rows import values as row_values
from training.reason_codes import HISTORY_REASON

__all__ = ["RISK_SIDE", "WORDING", "Customer", "plain_reasons", "reason_mask", "reason_sentence", "reasons_in_words",
           "typical_values"]

SEPARATOR = "; "
_WINDOWED = re.compile(r"^(?P<base>.+)_(?P<days>\d+)d$")


@dataclass(frozen=True)
class Customer:
    """One customer's feature values and the typical (median buyer's) values to compare with."""

    values: Mapping[str, object]
    typical: Mapping[str, float]

    def num(self, name: str) -> float | None:
        """The numeric value of ``name``, or ``None`` when missing or not a finite number."""
        return _finite(self.values.get(name))

    def text(self, name: str) -> str | None:
        value = self.values.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
            return None
        text = str(value).strip()
        return text.replace("_", " ") if text else None

    def typical_of(self, name: str) -> float | None:
        return _finite(self.typical.get(name))


def _finite(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


# ------------------------------------------------------------------ formatting

def _n(x: float) -> str:
    """A count or a number of days: whole, with thousands separators."""
    return f"{x:,.0f}"


def _money(x: float) -> str:
    return f"{x:,.0f}"


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _plural(n: float, singular: str, plural: str | None = None) -> str:
    return f"{_n(n)} {singular if round(n) == 1 else (plural or singular + 's')}"


def _window(days: int | None) -> str:
    return f" in the last {days} days" if days else ""


# ------------------------------------------------------------------ comparing with the typical customer

# Which side of the typical customer's value can be a reason to leave, by feature family:
# HIGHER (more days since the last purchase, more returns), LOWER (fewer purchases, less
# spending, fewer visits) or EITHER (a discount share, a tenure: no side is better in
# itself, the model decides; the sentence says which side the customer is on). A reason
# is given only when the model's contribution raised the risk *and* the customer's value
# lies on that side: "spent 2,400, more than the typical customer" is never a reason to
# leave, whatever a tree's interaction made of it.
HIGHER, LOWER, EITHER = 1, -1, 0
RISK_SIDE: dict[str, int] = {
    "recency_days": HIGHER, "overdue_ratio": HIGHER, "interpurchase_days_mean": HIGHER,
    "interpurchase_days_std": HIGHER, "returns_count": HIGHER, "returns_amount": HIGHER, "returns_rate": HIGHER,
    "cart_abandonment_rate": HIGHER, "days_since_last_engagement": HIGHER, "days_since_last_email_open": HIGHER,
    "purchase_days": LOWER, "orders_count": LOWER, "revenue": LOWER, "revenue_total": LOWER,
    "mean_order_value": LOWER, "frequency_trend": LOWER, "revenue_trend": LOWER,
    "rfm_recency_score": LOWER, "rfm_frequency_score": LOWER, "rfm_monetary_score": LOWER,
    "web_sessions": LOWER, "page_views": LOWER, "product_views": LOWER, "searches": LOWER, "cart_adds": LOWER,
    "checkouts": LOWER, "distinct_products_bought": LOWER, "distinct_categories_bought": LOWER,
    "email_opens": LOWER, "email_open_rate": LOWER, "email_clicks": LOWER, "email_click_rate": LOWER,
    "ad_clicks": LOWER, "social_engagements": LOWER, "active_days": LOWER, "engagement_events": LOWER,
    "engagement_trend": LOWER,
    "tenure_days": EITHER, "customer_age_days": EITHER, "age_years": EITHER, "top_category_order_share": EITHER,
    "discount_order_share": EITHER, "share_web_orders": EITHER, "share_store_orders": EITHER,
    "emails_sent": EITHER, "ad_impressions": EITHER,
}
# Reasons that are a level, not a number: given whenever the model's contribution raised
# the risk (``purchase_history``'s does exactly when BG/NBD rates the customer's chance of
# buying below the average training customer's), and the value is known.
LEVEL_REASONS = frozenset({"age_band", "country", "top_category", "preferred_channel", HISTORY_REASON})
# "more than the typical customer" / "fewer than …": how each kind of number compares.
_MORE_FEWER, _MORE_LESS, _LONGER_SHORTER = ("more", "fewer"), ("more", "less"), ("longer", "shorter")
_HIGHER_LOWER, _OLDER_YOUNGER = ("higher", "lower"), ("older", "younger")
COMPARISON = re.compile(r"\b(?P<word>more|fewer|less|longer|shorter|higher|lower|older|younger) than the typical "
                        r"customer\b")
UP_WORDS = frozenset({"more", "longer", "higher", "older"})


def _versus(c: Customer, name: str, words: tuple[str, str], fmt: Callable[[float], str] = _n) -> str:
    """", fewer than the typical customer (5)": the customer's value against the typical
    one, in the direction it really lies; empty when either is unknown or they are equal."""
    value, ref = c.num(name), c.typical_of(name)
    if value is None or ref is None or value == ref:
        return ""
    word = words[0] if value > ref else words[1]
    return f", {word} than the typical customer ({fmt(ref)})"


# ------------------------------------------------------------------ the wording table
# Each function gets the customer, the feature's full name and its window in days (None
# for all-time features) and returns a sentence, or None when the values it needs are
# missing (then the generic sentence is used). A number is compared with the typical
# customer's in the direction it really lies (`_versus`).

Wording = Callable[[Customer, str, "int | None"], "str | None"]


def _recency(c: Customer, name: str, days: int | None) -> str | None:
    recency, gap = c.num("recency_days"), c.num("interpurchase_days_mean")
    if recency is None:
        return None
    usual = f" (usually buys every {_n(gap)})" if gap is not None and gap > 0 else ""
    return f"hasn't bought for {_n(recency)} days{usual}{_versus(c, name, _LONGER_SHORTER)}"


def _overdue(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recency, gap = c.num("overdue_ratio"), c.num("recency_days"), c.num("interpurchase_days_mean")
    if ratio is None or recency is None or gap is None:
        return None
    return (f"{_n(recency)} days since the last purchase, {ratio:.1f} times their usual gap of {_n(gap)} days"
            f"{_versus(c, name, _HIGHER_LOWER, lambda x: f'{x:.1f} times')}")


def _gap_mean(c: Customer, name: str, days: int | None) -> str | None:
    gap = c.num(name)
    return None if gap is None else f"buys every {_n(gap)} days on average{_versus(c, name, _LONGER_SHORTER)}"


def _gap_std(c: Customer, name: str, days: int | None) -> str | None:
    std = c.num(name)
    return None if std is None else (f"buys irregularly: the gaps between purchases vary by about {_n(std)} days"
                                     f"{_versus(c, name, _MORE_LESS)}")


def _purchase_days(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no purchase{_window(days) or ' yet'}{_versus(c, name, _MORE_FEWER)}"
    return f"bought on {_plural(n, 'day')}{_window(days) or ' in all'}{_versus(c, name, _MORE_FEWER)}"


def _orders(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"{_plural(n, 'order')} in all{_versus(c, name, _MORE_FEWER)}"


def _revenue(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    if x is None:
        return None
    if x <= 0:
        return f"has spent nothing{_window(days)}{_versus(c, name, _MORE_LESS, _money)}"
    return f"spent {_money(x)}{_window(days) or ' in all'}{_versus(c, name, _MORE_LESS, _money)}"


def _returns_count(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"returned {_plural(n, 'order')}{_versus(c, name, _MORE_FEWER)}"


def _returns_amount(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"returned goods worth {_money(x)}{_versus(c, name, _MORE_LESS, _money)}"


def _returns_rate(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"returned {_pct(x)} of purchases{_versus(c, name, _HIGHER_LOWER, _pct)}"


def _tenure(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"a customer for {_n(n)} days{_versus(c, name, _LONGER_SHORTER)}"


def _customer_age(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"known for {_n(n)} days{_versus(c, name, _LONGER_SHORTER)}"


def _order_value(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"spends {_money(x)} per order{_versus(c, name, _MORE_LESS, _money)}"


def _frequency_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recent = c.num(name), c.num("purchase_days_90d")
    if ratio is None or recent is None:
        return None
    if ratio == 0:
        return ("no purchase in the last 90 days after buying in the 90 days before: 0% of that pace"
                f"{_versus(c, name, _HIGHER_LOWER, _pct)}")
    before = recent / ratio
    trend = "buying less often" if ratio < 1 else "buying as often or more"
    return (f"{trend}: {_plural(recent, 'purchase day')} in the last 90 days against {_n(before)} in the 90 days "
            f"before, {_pct(ratio)} of that pace{_versus(c, name, _HIGHER_LOWER, _pct)}")


def _revenue_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recent = c.num(name), c.num("revenue_90d")
    if ratio is None or recent is None:
        return None
    if ratio == 0:
        return ("has spent nothing in the last 90 days after buying in the 90 days before: 0% of that spending"
                f"{_versus(c, name, _HIGHER_LOWER, _pct)}")
    trend = "spending less" if ratio < 1 else "spending as much or more"
    return (f"{trend}: {_money(recent)} in the last 90 days, {_pct(ratio)} of the spending of the 90 days "
            f"before{_versus(c, name, _HIGHER_LOWER, _pct)}")


def _score(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        s = c.num(name)
        return None if s is None else f"{what} score {_n(s)} of 5{_versus(c, name, _HIGHER_LOWER)}"
    return wording


def _age(c: Customer, name: str, days: int | None) -> str | None:
    age = c.num("age_years")
    band = c.text("age_band")
    if age is None and band is None:
        return None
    if name == "age_years" and age is not None:
        return f"{_n(age)} years old{_versus(c, name, _OLDER_YOUNGER)}: customers of their age come back less often"
    return f"customers of their age ({_n(age) if age is not None else band}) come back less often"


def _country(c: Customer, name: str, days: int | None) -> str | None:
    country = c.text(name)
    return None if country is None else f"customers in {country} come back less often"


def _activity(singular: str, plural: str | None = None) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        n = c.num(name)
        if n is None:
            return None
        if n == 0:
            return f"no {plural or singular + 's'}{_window(days) or ' ever'}{_versus(c, name, _MORE_FEWER)}"
        return f"{_plural(n, singular, plural)}{_window(days) or ' in all'}{_versus(c, name, _MORE_FEWER)}"
    return wording


def _abandonment(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else (f"left {_pct(x)} of carts without buying{_window(days)}"
                                   f"{_versus(c, name, _HIGHER_LOWER, _pct)}")


def _distinct_products(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"has bought {_plural(n, 'different product')}{_versus(c, name, _MORE_FEWER)}"


def _distinct_categories(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else (f"has bought from {_plural(n, 'category', 'categories')}"
                                   f"{_versus(c, name, _MORE_FEWER)}")


def _top_category(c: Customer, name: str, days: int | None) -> str | None:
    category = c.text(name)
    return None if category is None else f"mostly buys {category}: customers who do come back less often"


def _top_category_share(c: Customer, name: str, days: int | None) -> str | None:
    share, category = c.num(name), c.text("top_category")
    if share is None:
        return None
    return (f"{_pct(share)} of purchases in one category" + (f" ({category})" if category else "")
            + _versus(c, name, _HIGHER_LOWER, _pct))


def _share(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        x = c.num(name)
        return None if x is None else f"{_pct(x)} of purchases {what}{_versus(c, name, _HIGHER_LOWER, _pct)}"
    return wording


def _channel(c: Customer, name: str, days: int | None) -> str | None:
    channel = c.text(name)
    return None if channel is None else (f"mostly buys through the {channel} channel: customers who do come back "
                                         "less often")


def _emails_sent(c: Customer, name: str, days: int | None) -> str | None:
    sent = c.num(name)
    if sent is None:
        return None
    if sent == 0:
        return f"was sent no emails{_window(days) or ' yet'}{_versus(c, name, _MORE_FEWER)}"
    opens = c.num(_windowed("email_opens", days))
    opened = f", and opened {_n(opens)}" if opens is not None else ""
    return f"was sent {_plural(sent, 'email')}{_window(days)}{_versus(c, name, _MORE_FEWER)}{opened}"


def _engagement_with_emails(verb: str, past: str) -> Wording:
    """Opens or clicks (counts or rates): zero after earlier ones reads "stopped opening emails"."""
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        counts = f"email_{verb}s"
        sent = c.num(_windowed("emails_sent", days))
        done = c.num(_windowed(counts, days))
        rate = "_rate" in name
        versus = _versus(c, name, _HIGHER_LOWER, _pct) if rate else _versus(c, name, _MORE_FEWER)
        if rate:
            share = c.num(name)
            if share is None:
                return f"was sent no emails{_window(days)}" if sent == 0 else None
            if share > 0:
                return f"{past} {_pct(share)} of emails{_window(days)}{versus}"
            done = 0.0
        if done is None:
            return None
        if done > 0:
            of = f" of {_n(sent)}" if sent is not None else ""
            return f"{past} {_n(done)}{of} emails{_window(days) or ' in all'}{versus}"
        ever = c.num(counts)
        if days and ever:
            of = f" (none of {_n(sent)} in the last {days} days)" if sent else ""
            return f"stopped {verb}ing emails{of}{versus}"
        return f"has never {past} an email" + (f" ({_plural(sent, 'email')} sent)" if sent else "") + versus
    return wording


def _ads(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        n = c.num(name)
        channel = name.split("_", 2)[2].rsplit("_", 1)[0].replace("_", " ").title()
        return None if n is None else (f"{what} {_plural(n, channel + ' ad')}{_window(days)}"
                                       f"{_versus(c, name, _MORE_FEWER)}")
    return wording


def _social(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else (f"{_plural(n, 'interaction')} with the shop on social media{_window(days)}"
                                   f"{_versus(c, name, _MORE_FEWER)}")


def _since_engagement(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"no visit, click or purchase for {_n(n)} days{_versus(c, name, _LONGER_SHORTER)}"


def _active_days(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no visit, click or purchase{_window(days)}{_versus(c, name, _MORE_FEWER)}"
    return f"active on {_plural(n, 'day')}{_window(days)}{_versus(c, name, _MORE_FEWER)}"


def _engagement_events(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no visits, clicks or other actions{_window(days)}{_versus(c, name, _MORE_FEWER)}"
    return (f"{_plural(n, 'visit, click or other action', 'visits, clicks or other actions')}{_window(days)}"
            f"{_versus(c, name, _MORE_FEWER)}")


def _engagement_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio = c.num(name)
    if ratio is None:
        return None
    if ratio == 0:
        return ("no activity in the last 90 days after some in the 90 days before: 0% of that activity"
                f"{_versus(c, name, _HIGHER_LOWER, _pct)}")
    trend = "less active" if ratio < 1 else "as active or more"
    return f"{trend}: {_pct(ratio)} of the activity of the 90 days before{_versus(c, name, _HIGHER_LOWER, _pct)}"


def _since_email_open(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        sent = c.num("emails_sent")
        return f"has never opened an email ({_plural(sent, 'email')} sent)" if sent else None
    return f"last opened an email {_n(n)} days ago{_versus(c, name, _LONGER_SHORTER)}"


def _purchase_history(c: Customer, name: str, days: int | None) -> str | None:
    purchase_days, tenure, recency = c.num("purchase_days"), c.num("tenure_days"), c.num("recency_days")
    if purchase_days is None or tenure is None or recency is None:
        return None
    if purchase_days <= 1:
        return f"bought only once, {_n(recency)} days ago: less likely to buy again than the average customer"
    return (f"judged by their whole history ({_plural(purchase_days, 'purchase day')} in {_n(tenure)} days, "
            f"the last {_n(recency)} days ago), less likely to buy again than the average customer")


WORDING: dict[str, Wording] = {
    "recency_days": _recency,
    "overdue_ratio": _overdue,
    "interpurchase_days_mean": _gap_mean,
    "interpurchase_days_std": _gap_std,
    "purchase_days": _purchase_days,
    "orders_count": _orders,
    "revenue": _revenue,                       # revenue_30d, revenue_90d, revenue_365d
    "revenue_total": _revenue,
    "returns_count": _returns_count,
    "returns_amount": _returns_amount,
    "returns_rate": _returns_rate,
    "tenure_days": _tenure,
    "customer_age_days": _customer_age,
    "mean_order_value": _order_value,
    "frequency_trend": _frequency_trend,       # frequency_trend_90d
    "revenue_trend": _revenue_trend,           # revenue_trend_90d
    "rfm_recency_score": _score("recency"),
    "rfm_frequency_score": _score("frequency"),
    "rfm_monetary_score": _score("spending"),
    "age_years": _age,
    "age_band": _age,
    "country": _country,
    "web_sessions": _activity("website visit"),
    "page_views": _activity("page view"),
    "product_views": _activity("product view"),
    "searches": _activity("site search", "site searches"),
    "cart_adds": _activity("add to cart", "adds to cart"),
    "checkouts": _activity("checkout"),
    "cart_abandonment_rate": _abandonment,
    "distinct_products_bought": _distinct_products,
    "distinct_categories_bought": _distinct_categories,
    "top_category": _top_category,
    "top_category_order_share": _top_category_share,
    "discount_order_share": _share("with a discount"),
    "share_web_orders": _share("on the website"),
    "share_store_orders": _share("in the store"),
    "preferred_channel": _channel,
    "emails_sent": _emails_sent,
    "email_opens": _engagement_with_emails("open", "opened"),
    "email_open_rate": _engagement_with_emails("open", "opened"),
    "email_clicks": _engagement_with_emails("click", "clicked"),
    "email_click_rate": _engagement_with_emails("click", "clicked"),
    "ad_impressions": _ads("saw"),             # ad_impressions_<channel>_90d
    "ad_clicks": _ads("clicked"),              # ad_clicks_<channel>_90d
    "social_engagements": _social,             # social_engagements_organic_social_90d
    "days_since_last_engagement": _since_engagement,
    "active_days": _active_days,               # active_days_90d
    "engagement_events": _engagement_events,   # engagement_events_90d
    "engagement_trend": _engagement_trend,     # engagement_trend_90d
    "days_since_last_email_open": _since_email_open,
    HISTORY_REASON: _purchase_history,
}


def _windowed(base: str, days: int | None) -> str:
    return f"{base}_{days}d" if days else base


def _family(feature: str) -> tuple[str | None, int | None]:
    """The wording family of a feature and its window: exact name first, then
    ``<family>_<N>d``, then the ad and social families (``ad_clicks_facebook_90d``)."""
    if feature in WORDING:
        return feature, None
    match = _WINDOWED.match(feature)
    if match:
        base, days = match.group("base"), int(match.group("days"))
        if base in WORDING:
            return base, days
        for family in ("ad_impressions", "ad_clicks", "social_engagements"):
            if base.startswith(family + "_"):
                return family, days
    return None, None


def _lookup(feature: str) -> tuple[Wording | None, int | None]:
    family, days = _family(feature)
    return (WORDING[family], days) if family is not None else (None, None)


def reason_mask(rows: Rows, names: Sequence[str], typical: Mapping[str, float]) -> np.ndarray:
    """Which of the reason codes ``names`` may be given to each of ``rows``, as a
    ``(len(rows), len(names))`` boolean array: a number on its family's risky side of the
    typical customer's value (`RISK_SIDE`; either side, but not equal, for ``EITHER``), a
    known level (`LEVEL_REASONS`), ``purchase_history`` always (its contribution says it
    all), and never a feature the wording table does not know. The model's contribution
    must still raise the risk (`training.reason_codes.ReasonCodes`).

    The numbers are compared as one matrix (one request's row costs microseconds, not a
    pandas operation per feature)."""
    plan = _mask_plan(tuple(names))
    mask = np.zeros((row_count(rows), len(names)), dtype=bool)
    mask[:, plan.history] = True
    present = [i for i, name in zip(plan.numeric, plan.numeric_names) if has_column(rows, name)]
    if present:
        columns = [names[i] for i in present]
        values = _as_matrix(rows, columns)
        refs = np.array([_finite(typical.get(name)) if _finite(typical.get(name)) is not None else np.nan
                         for name in columns])
        sides = np.array([plan.side[name] for name in columns])
        with np.errstate(invalid="ignore"):
            ok = np.where(sides == HIGHER, values > refs, np.where(sides == LOWER, values < refs, values != refs))
        ok &= np.isfinite(values) & np.isfinite(refs)
        if "days_since_last_email_open" in columns and has_column(rows, "emails_sent"):
            # Never opened one of the emails sent: further from the last open than anyone.
            where = columns.index("days_since_last_email_open")
            sent = _as_matrix(rows, ["emails_sent"])[:, 0]
            ok[:, where] |= np.isnan(values[:, where]) & (sent > 0) & np.isfinite(refs[where])
        mask[:, present] = ok
    for column in plan.levels:
        name = names[column]
        if has_column(rows, name):
            mask[:, column] = _known_levels(row_values(rows, name))
    return mask


@functools.lru_cache(maxsize=64)
def reason_families(names: tuple[str, ...]) -> np.ndarray:
    """One number per reason code: the same measure over different windows shares it
    (``emails_sent`` and ``emails_sent_90d``; ``purchase_days_30d`` and ``purchase_days_365d``),
    so a customer is not told the same reason twice (`training.reason_codes.ReasonCodes`);
    every other code has its own."""
    seen: dict[str, int] = {}
    bases = [match.group("base") if (match := _WINDOWED.match(name)) else name for name in names]
    return np.array([seen.setdefault(base, len(seen)) for base in bases], dtype=np.int64)


@dataclass(frozen=True)
class _MaskPlan:
    """`reason_mask`'s view of a list of reason codes: which are numbers (and their risky
    side), levels or ``purchase_history``; the rest are never given."""

    numeric: tuple[int, ...]
    numeric_names: tuple[str, ...]
    side: Mapping[str, int]
    levels: tuple[int, ...]
    history: tuple[int, ...]


@functools.lru_cache(maxsize=64)
def _mask_plan(names: tuple[str, ...]) -> _MaskPlan:
    numeric, side, levels, history = [], {}, [], []
    for column, name in enumerate(names):
        family, _ = _family(name)
        if name == HISTORY_REASON:
            history.append(column)
        elif family in LEVEL_REASONS:
            levels.append(column)
        elif family is not None and family in RISK_SIDE:
            numeric.append(column)
            side[name] = RISK_SIDE[family]
    return _MaskPlan(tuple(numeric), tuple(names[i] for i in numeric), side, tuple(levels), tuple(history))


def _as_matrix(rows: Rows, columns: list[str]) -> np.ndarray:
    """``rows[columns]`` as float64, anything not a number NaN: one positional take when
    every column is already a NumPy number (model-ready frames), else column by column."""
    if not columns:
        return np.zeros((row_count(rows), 0))
    if not isinstance(rows, pd.DataFrame):
        return np.column_stack([as_numbers(rows[c]) for c in columns])
    where = rows.columns.get_indexer(columns)
    dtypes = rows.dtypes.to_numpy()[where]
    if all(isinstance(dtype, np.dtype) and dtype.kind in "fiu" for dtype in dtypes):
        return rows.iloc[:, where].to_numpy(dtype=float)
    return np.column_stack([pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
                            for c in columns])


def _known_levels(values: np.ndarray) -> np.ndarray:
    """Which of ``values`` hold a level: not missing, not blank."""
    return np.fromiter((not (v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)))
                        and str(v).strip() != "" for v in np.asarray(values, dtype=object)), dtype=bool,
                       count=len(values))


def _generic(c: Customer, feature: str) -> str:
    value = c.values.get(feature)
    number = _finite(value)
    shown = (f"{number:,.4g}" if number is not None else c.text(feature))
    label = feature.replace("_", " ")
    return f"{label} ({shown}) raises the risk" if shown is not None else f"{label} raises the risk"


def reason_sentence(feature: str, customer: Customer) -> str:
    """One reason in plain words, from the customer's own values (generic when unknown)."""
    wording, days = _lookup(feature)
    sentence = wording(customer, feature, days) if wording is not None else None
    return sentence if sentence is not None else _generic(customer, feature)


def plain_reasons(top_reasons: object, customer: Customer) -> list[str]:
    """The sentences of a ``top_reasons`` value (comma-separated feature names), strongest first."""
    if top_reasons is None or (isinstance(top_reasons, float) and math.isnan(top_reasons)):
        return []
    features = [f.strip() for f in str(top_reasons).split(",") if f.strip()]
    return list(dict.fromkeys(reason_sentence(f, customer) for f in features))


def typical_values(features: pd.DataFrame) -> dict[str, float]:
    """The median of every numeric feature among buyers (``recency_days`` known): the
    "typical customer" the sentences compare with and `reason_mask` weighs values against.
    The same whatever the frame's dtypes (numpy, nullable or Arrow numbers), so a feature
    table and the serving snapshot written from it give the same medians."""
    buyers = features[pd.to_numeric(features["recency_days"], errors="coerce").notna()] \
        if "recency_days" in features else features
    typical = {}
    for name in buyers.columns:
        values = buyers[name]
        if pd.api.types.is_bool_dtype(values) or not pd.api.types.is_numeric_dtype(values):
            continue
        median = pd.to_numeric(values, errors="coerce").astype("float64").median()
        if pd.notna(median):
            typical[str(name)] = float(median)
    return typical


def reasons_in_words(rows: pd.DataFrame, typical: Mapping[str, float]) -> pd.Series:
    """``rows`` (one per customer: ``top_reasons`` and the feature columns) → the reasons in
    plain words, joined by ``"; "`` (empty when the model named none)."""
    records = rows.to_dict("records")
    return pd.Series([SEPARATOR.join(plain_reasons(r.get("top_reasons"), Customer(r, typical))) for r in records],
                     index=rows.index, dtype=object)
