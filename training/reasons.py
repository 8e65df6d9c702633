"""Churn reasons in plain words: "hasn't bought for 94 days, usually buys every 30".

`cdp score` names each customer's top churn reasons by feature (``top_reasons``:
``"recency_days, email_open_rate_30d, purchase_history"``, strongest first). A marketer
needs a sentence instead, built from the customer's *own* values in the feature snapshot
and, where a number means little on its own, the typical customer's (the median buyer's)
value beside it.

This module is the wording table: one small function per feature that can be a reason
(every model input of `training.purchase.model_inputs`, plus ``purchase_history``, BG/NBD's
view that this customer buys less often than the average buyer). Features counted over a
window (``web_sessions_30d``) share their family's wording with the window filled in. A
feature the table does not know, or a value that is missing, gets a generic sentence that
names the feature and says no more than the model does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

__all__ = ["WORDING", "Customer", "plain_reasons", "reason_sentence", "reasons_in_words", "typical_values"]

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


def _typical(c: Customer, name: str, fmt: Callable[[float], str] = _n) -> str:
    ref = c.typical_of(name)
    return f" (typical customer: {fmt(ref)})" if ref is not None else ""


# ------------------------------------------------------------------ the wording table
# Each function gets the customer, the feature's full name and its window in days (None
# for all-time features) and returns a sentence, or None when the values it needs are
# missing (then the generic sentence is used).

Wording = Callable[[Customer, str, "int | None"], "str | None"]


def _recency(c: Customer, name: str, days: int | None) -> str | None:
    recency, gap = c.num("recency_days"), c.num("interpurchase_days_mean")
    if recency is None:
        return None
    if gap is not None and gap > 0:
        return f"hasn't bought for {_n(recency)} days, usually buys every {_n(gap)}"
    return f"hasn't bought again in the {_n(recency)} days since their only purchase day"


def _overdue(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recency, gap = c.num("overdue_ratio"), c.num("recency_days"), c.num("interpurchase_days_mean")
    if ratio is None or recency is None or gap is None:
        return None
    return f"{ratio:.1f} times later than usual: hasn't bought for {_n(recency)} days, usually buys every {_n(gap)}"


def _gap_mean(c: Customer, name: str, days: int | None) -> str | None:
    gap = c.num(name)
    return None if gap is None else f"buys only every {_n(gap)} days on average{_typical(c, name)}"


def _gap_std(c: Customer, name: str, days: int | None) -> str | None:
    std = c.num(name)
    return None if std is None else f"buys irregularly: the gaps between purchases vary by about {_n(std)} days"


def _purchase_days(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no purchase{_window(days)}"
    where = _window(days) or " in all"
    return f"bought on {_plural(n, 'day')}{where}{_typical(c, name)}"


def _orders(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"{_plural(n, 'order')} in all{_typical(c, name)}"


def _revenue(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    if x is None:
        return None
    if x <= 0:
        return f"has spent nothing{_window(days)}"
    where = _window(days) or " in all"
    return f"spent {_money(x)}{where}{_typical(c, name, _money)}"


def _returns_count(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"returned {_plural(n, 'order')}"


def _returns_amount(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"returned goods worth {_money(x)}"


def _returns_rate(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"returned {_pct(x)} of purchases"


def _tenure(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"first bought {_n(n)} days ago{_typical(c, name)}"


def _customer_age(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"first seen {_n(n)} days ago{_typical(c, name)}"


def _order_value(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"spends {_money(x)} per order{_typical(c, name, _money)}"


def _frequency_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recent = c.num(name), c.num("purchase_days_90d")
    if ratio is None or recent is None:
        return None
    if ratio == 0:
        return "no purchase in the last 90 days, after buying in the 90 days before"
    before = recent / ratio
    return (f"buying less often: {_plural(recent, 'purchase day')} in the last 90 days "
            f"against {_n(before)} in the 90 days before")


def _revenue_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio, recent = c.num(name), c.num("revenue_90d")
    if ratio is None or recent is None:
        return None
    if ratio == 0:
        return "has spent nothing in the last 90 days, after buying in the 90 days before"
    return f"spending less: {_money(recent)} in the last 90 days, {_pct(ratio)} of the 90 days before"


def _score(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        s = c.num(name)
        return None if s is None else f"{what} score {_n(s)} of 5"
    return wording


def _age(c: Customer, name: str, days: int | None) -> str | None:
    age = c.num("age_years")
    band = c.text("age_band")
    if age is None and band is None:
        return None
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
            return f"no {plural or singular + 's'}{_window(days) or ' ever'}"
        return f"{_plural(n, singular, plural)}{_window(days) or ' in all'}{_typical(c, name)}"
    return wording


def _abandonment(c: Customer, name: str, days: int | None) -> str | None:
    x = c.num(name)
    return None if x is None else f"left {_pct(x)} of carts without buying{_window(days)}"


def _distinct_products(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"has bought {_plural(n, 'different product')}{_typical(c, name)}"


def _distinct_categories(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"has bought from {_plural(n, 'category', 'categories')}{_typical(c, name)}"


def _top_category(c: Customer, name: str, days: int | None) -> str | None:
    category = c.text(name)
    return None if category is None else f"mostly buys {category}"


def _top_category_share(c: Customer, name: str, days: int | None) -> str | None:
    share, category = c.num(name), c.text("top_category")
    if share is None:
        return None
    return f"{_pct(share)} of purchases in one category" + (f" ({category})" if category else "")


def _share(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        x = c.num(name)
        return None if x is None else f"{_pct(x)} of purchases {what}"
    return wording


def _channel(c: Customer, name: str, days: int | None) -> str | None:
    channel = c.text(name)
    return None if channel is None else f"mostly buys through the {channel} channel"


def _emails_sent(c: Customer, name: str, days: int | None) -> str | None:
    sent = c.num(name)
    if sent is None:
        return None
    if sent == 0:
        return f"was sent no emails{_window(days) or ' yet'}"
    opens = c.num(_windowed("email_opens", days))
    opened = f", opened {_n(opens)}" if opens is not None else ""
    return f"was sent {_plural(sent, 'email')}{_window(days)}{opened}"


def _engagement_with_emails(verb: str, past: str) -> Wording:
    """Opens or clicks (counts or rates): zero after earlier ones reads "stopped opening emails"."""
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        counts = f"email_{verb}s"
        sent = c.num(_windowed("emails_sent", days))
        done = c.num(_windowed(counts, days))
        if name.startswith("email_") and "_rate" in name:
            rate = c.num(name)
            if rate is None:
                return f"was sent no emails{_window(days)}" if sent == 0 else None
            if rate > 0:
                return f"{past} {_pct(rate)} of emails{_window(days)}{_typical(c, name, _pct)}"
            done = 0.0
        if done is None:
            return None
        if done > 0:
            of = f" of {_n(sent)}" if sent is not None else ""
            return f"{past} {_n(done)}{of} emails{_window(days) or ' in all'}"
        ever = c.num(counts)
        if days and ever:
            of = f" (none of {_n(sent)} in the last {days} days)" if sent else ""
            return f"stopped {verb}ing emails{of}"
        return f"has never {past} an email" + (f" ({_plural(sent, 'email')} sent)" if sent else "")
    return wording


def _ads(what: str) -> Wording:
    def wording(c: Customer, name: str, days: int | None) -> str | None:
        n = c.num(name)
        channel = name.split("_", 2)[2].rsplit("_", 1)[0].replace("_", " ").title()
        return None if n is None else f"{what} {_plural(n, channel + ' ad')}{_window(days)}"
    return wording


def _social(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"{_plural(n, 'interaction')} with the shop on social media{_window(days)}"


def _since_engagement(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    return None if n is None else f"no visit, click or purchase for {_n(n)} days"


def _active_days(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no visit, click or purchase{_window(days)}"
    return f"active on {_plural(n, 'day')}{_window(days)}{_typical(c, name)}"


def _engagement_events(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        return None
    if n == 0:
        return f"no visits, clicks or other actions{_window(days)}"
    return f"{_plural(n, 'visit, click or other action', 'visits, clicks or other actions')}{_window(days)}" \
           f"{_typical(c, name)}"


def _engagement_trend(c: Customer, name: str, days: int | None) -> str | None:
    ratio = c.num(name)
    if ratio is None:
        return None
    if ratio == 0:
        return "no activity in the last 90 days, after some in the 90 days before"
    return f"less active: {_pct(ratio)} of the activity of the 90 days before"


def _since_email_open(c: Customer, name: str, days: int | None) -> str | None:
    n = c.num(name)
    if n is None:
        sent = c.num("emails_sent")
        return f"has never opened an email ({_plural(sent, 'email')} sent)" if sent else None
    return f"last opened an email {_n(n)} days ago"


def _purchase_history(c: Customer, name: str, days: int | None) -> str | None:
    purchase_days, tenure, recency = c.num("purchase_days"), c.num("tenure_days"), c.num("recency_days")
    if purchase_days is None or tenure is None or recency is None:
        return None
    if purchase_days <= 1:
        return f"bought only once, {_n(recency)} days ago"
    return (f"buys less often than the average customer: {_plural(purchase_days, 'purchase day')} "
            f"in {_n(tenure)} days, the last {_n(recency)} days ago")


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
    "purchase_history": _purchase_history,
}


def _windowed(base: str, days: int | None) -> str:
    return f"{base}_{days}d" if days else base


def _lookup(feature: str) -> tuple[Wording | None, int | None]:
    """The wording of a feature and its window: exact name first, then ``<family>_<N>d``,
    then the ad and social families (``ad_clicks_facebook_90d``)."""
    if feature in WORDING:
        return WORDING[feature], None
    match = _WINDOWED.match(feature)
    if match:
        base, days = match.group("base"), int(match.group("days"))
        if base in WORDING:
            return WORDING[base], days
        for family in ("ad_impressions", "ad_clicks", "social_engagements"):
            if base.startswith(family + "_"):
                return WORDING[family], days
    return None, None


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
    "typical customer" the sentences compare with."""
    buyers = features[pd.to_numeric(features.get("recency_days"), errors="coerce").notna()] \
        if "recency_days" in features else features
    numeric = buyers.select_dtypes(include="number")
    return {name: float(v) for name, v in numeric.median().items() if pd.notna(v)}


def reasons_in_words(rows: pd.DataFrame, typical: Mapping[str, float]) -> pd.Series:
    """``rows`` (one per customer: ``top_reasons`` and the feature columns) → the reasons in
    plain words, joined by ``"; "`` (empty when the model named none)."""
    records = rows.to_dict("records")
    return pd.Series([SEPARATOR.join(plain_reasons(r.get("top_reasons"), Customer(r, typical))) for r in records],
                     index=rows.index, dtype=object)
