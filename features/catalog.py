"""The feature catalog: every column the builder produces, with its family, window, meaning and sources.

`cdp features catalog` prints it and `docs/FEATURES.md` is generated from it; a test
checks that the catalog and the builder's columns are the same set, so no feature goes
undocumented and no entry outlives its feature.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FeatureSpec:
    """One feature column.

    ``model_input`` is False for columns carried for people (consent flags, segment
    names, dates) that models must not read.
    """

    name: str
    family: str
    window: str
    description: str
    sources: tuple[str, ...]
    model_input: bool = True
    kind: str = "numeric"  # numeric | categorical | flag | date | text


def _rfm() -> list[FeatureSpec]:
    o = ("orders",)
    specs = [
        FeatureSpec("first_purchase_date", "rfm", "all time", "Day of the first purchase.", o, False, "date"),
        FeatureSpec("last_purchase_date", "rfm", "all time", "Day of the latest purchase.", o, False, "date"),
        FeatureSpec("purchase_days", "rfm", "all time", "Distinct days with a purchase (BTYD frequency + 1).", o),
        FeatureSpec("orders_count", "rfm", "all time", "Orders, returns excluded.", o),
        FeatureSpec("revenue_total", "rfm", "all time",
                    "Sum of order amounts in the base currency ([currency] in cdp.toml), returns excluded.", o),
    ]
    for w in (30, 90, 365):
        specs += [
            FeatureSpec(f"purchase_days_{w}d", "rfm", f"{w} days", f"Distinct purchase days in the last {w} days.", o),
            FeatureSpec(f"revenue_{w}d", "rfm", f"{w} days", f"Revenue in the last {w} days.", o),
        ]
    specs += [
        FeatureSpec("interpurchase_days_mean", "rfm", "all time", "Mean gap in days between purchase days.", o),
        FeatureSpec("interpurchase_days_std", "rfm", "all time", "Sample standard deviation of those gaps.", o),
        FeatureSpec("returns_count", "rfm", "all time", "Returned orders.", o),
        FeatureSpec("returns_amount", "rfm", "all time", "Amount of returned orders.", o),
        FeatureSpec("recency_days", "rfm", "all time", "Days from the latest purchase to the as-of day.", o),
        FeatureSpec("tenure_days", "rfm", "all time", "Days from the first purchase to the as-of day.", o),
        FeatureSpec("mean_order_value", "rfm", "all time", "Revenue per order.", o),
        FeatureSpec("overdue_ratio", "rfm", "all time",
                    "Days since the latest purchase ÷ the customer's mean gap (> 1: later than usual).", o),
        FeatureSpec("frequency_trend_90d", "rfm", "2 × 90 days",
                    "Purchase days in the last 90 days ÷ the 90 days before.", o),
        FeatureSpec("revenue_trend_90d", "rfm", "2 × 90 days", "Revenue in the last 90 days ÷ the 90 days before.", o),
        FeatureSpec("rfm_recency_score", "rfm", "all time", "Recency quintile among buyers, 5 = most recent.", o),
        FeatureSpec("rfm_frequency_score", "rfm", "all time", "Frequency quintile among buyers, 5 = most frequent.", o),
        FeatureSpec("rfm_monetary_score", "rfm", "all time", "Revenue quintile among buyers, 5 = highest.", o),
        FeatureSpec("rfm_segment", "rfm", "all time",
                    "Named RFM segment (Champions, Loyal customers, At risk, Hibernating, Lost …).", o, False,
                    "categorical"),
    ]
    return specs


def _profile() -> list[FeatureSpec]:
    c = ("customers",)
    return [
        FeatureSpec("age_years", "profile", "as of", "Whole years since birth on the as-of day.", c),
        FeatureSpec("age_band", "profile", "as of", "18-24, 25-34, … 65+ (empty when unknown or under 18).", c,
                    True, "categorical"),
        FeatureSpec("country", "profile", "current", "Country of the golden record.", c, True, "categorical"),
        FeatureSpec("city", "profile", "current", "City of the golden record.", c, False, "categorical"),
        FeatureSpec("consent_email", "profile", "current", "May be emailed (for lists, never a model input).", c,
                    False, "flag"),
        FeatureSpec("consent_sms", "profile", "current", "May be texted (for lists, never a model input).", c,
                    False, "flag"),
        FeatureSpec("consent_ads", "profile", "current",
                    "May be shown ads on platforms (for audiences, never a model input).", c, False, "flag"),
        FeatureSpec("customer_age_days", "profile", "all time", "Days since the customer was first seen.", c),
    ]


def _behaviour() -> list[FeatureSpec]:
    e, o, eo = ("events",), ("orders",), ("events", "orders")
    specs = []
    for name, what in (("web_sessions", "Web sessions (a new one after 30 minutes without an event)"),
                       ("page_views", "Page views"), ("product_views", "Product views"), ("searches", "Site searches"),
                       ("cart_adds", "Add-to-cart events"), ("checkouts", "Checkout events")):
        specs.append(FeatureSpec(name, "behaviour", "all time", f"{what}.", e))
        specs += [FeatureSpec(f"{name}_{w}d", "behaviour", f"{w} days", f"{what} in the last {w} days.", e)
                  for w in (30, 90)]
    specs += [
        FeatureSpec("cart_abandonment_rate", "behaviour", "all time",
                    "Days with a cart add but no purchase that day ÷ days with a cart add.", eo),
        FeatureSpec("cart_abandonment_rate_90d", "behaviour", "90 days", "The same over the last 90 days.", eo),
        FeatureSpec("distinct_products_bought", "behaviour", "all time", "Distinct products purchased.", o),
        FeatureSpec("distinct_categories_bought", "behaviour", "all time", "Distinct categories purchased.", o),
        FeatureSpec("top_category", "behaviour", "all time",
                    "Category with the most purchases (then revenue, then name).", o, True, "categorical"),
        FeatureSpec("top_category_order_share", "behaviour", "all time",
                    "Purchases in the top category ÷ purchases with a category.", o),
        FeatureSpec("returns_rate", "behaviour", "all time", "Returned orders ÷ purchases.", o),
        FeatureSpec("discount_order_share", "behaviour", "all time", "Purchases with a discount ÷ purchases.", o),
        FeatureSpec("share_web_orders", "behaviour", "all time", "Purchases on the web ÷ purchases.", o),
        FeatureSpec("share_store_orders", "behaviour", "all time", "Purchases in the store ÷ purchases.", o),
        FeatureSpec("preferred_channel", "behaviour", "all time", "Channel with the most purchases.", o, True,
                    "categorical"),
    ]
    return specs


def _engagement() -> list[FeatureSpec]:
    e, eo = ("events",), ("events", "orders")
    specs = []
    for name, what in (("emails_sent", "Emails sent"), ("email_opens", "Email opens"),
                       ("email_clicks", "Email clicks")):
        specs.append(FeatureSpec(name, "engagement", "all time", f"{what}.", e))
        specs += [FeatureSpec(f"{name}_{w}d", "engagement", f"{w} days", f"{what} in the last {w} days.", e)
                  for w in (30, 90)]
    for name, what in (("email_open_rate", "Opens"), ("email_click_rate", "Clicks")):
        specs.append(FeatureSpec(name, "engagement", "all time", f"{what} ÷ emails sent.", e))
        specs += [FeatureSpec(f"{name}_{w}d", "engagement", f"{w} days",
                              f"{what} ÷ emails sent, last {w} days.", e) for w in (30, 90)]
    for role, channels in (("ad_impressions", ("facebook", "instagram")),
                           ("ad_clicks", ("facebook", "instagram", "google_search")),
                           ("social_engagements", ("organic_social",))):
        specs += [FeatureSpec(f"{role}_{c}_90d", "engagement", "90 days",
                              f"{role.replace('_', ' ').capitalize()} on {c.replace('_', ' ')} in the last 90 days.", e)
                  for c in channels]
    specs += [
        FeatureSpec("days_since_last_engagement", "engagement", "all time",
                    "Days since the last order or customer-initiated event (sends and impressions excluded).", eo),
        FeatureSpec("active_days_90d", "engagement", "90 days", "Distinct days with an order or engagement.", eo),
        FeatureSpec("engagement_events_90d", "engagement", "90 days", "Customer-initiated events.", e),
        FeatureSpec("engagement_trend_90d", "engagement", "2 × 90 days",
                    "Customer-initiated events in the last 90 days ÷ the 90 days before.", e),
        FeatureSpec("days_since_last_email_open", "engagement", "all time", "Days since the last email open.", e),
    ]
    return specs


def _purchase_history() -> list[FeatureSpec]:
    return [FeatureSpec("category_history", "purchase_history", "all time",
                        "Purchases per category as `category:n;…` text (categories escaped, in code-point "
                        "order): what the next-best-category model reads.", ("orders",), False, "text")]


# The families `features.build` computes; the scoring feature set (`features.scoring`) adds
# each customer's purchase history to them.
FAMILIES = ("profile", "rfm", "behaviour", "engagement")
SCORING_FAMILIES = (*FAMILIES, "purchase_history")
EVENT_FAMILIES = ("behaviour", "engagement")
_SPECS = {"profile": _profile, "rfm": _rfm, "behaviour": _behaviour, "engagement": _engagement,
          "purchase_history": _purchase_history}


def catalog(families: tuple[str, ...] = FAMILIES) -> tuple[FeatureSpec, ...]:
    """Every feature of the given families, in output order (`SCORING_FAMILIES` for the whole
    scoring feature set)."""
    return tuple(spec for family in SCORING_FAMILIES if family in families for spec in _SPECS[family]())


def markdown(specs: tuple[FeatureSpec, ...]) -> str:
    """The catalog as a Markdown page (docs/FEATURES.md)."""
    lines = ["# Feature catalog", "",
             "Generated by `cdp features catalog --markdown docs/FEATURES.md`; do not edit by hand.",
             "Every feature is computed as of a day from data up to and including that day.", ""]
    for family in dict.fromkeys(s.family for s in specs):
        lines += [f"## {family}", "", "| feature | window | model input | sources | description |",
                  "|---|---|---|---|---|"]
        for s in (s for s in specs if s.family == family):
            lines.append(f"| `{s.name}` | {s.window} | {'yes' if s.model_input else 'no'} | "
                         f"{', '.join(s.sources)} | {s.description} |")
        lines.append("")
    return "\n".join(lines)
