"""What a feature value can be: the rules every row `features.build` writes obeys.

A caller that describes a customer by feature values (``POST /score_features``) can send
numbers no shop could produce: a negative count, 2.5 purchase days, a last purchase
before the first, a share above 1, a category history that is not ``category:n;…``.
The models would still answer, with scores invented from impossible input, so such
values are refused with a message that names the feature and the rule it breaks.

Two kinds of rule:

- one value (`VALUE_RULES`): its kind gives the range (a count is a whole number ≥ 0, a
  share lies in [0, 1], an RFM score is a whole number from 1 to 5, days and money are
  ≥ 0), also written into the OpenAPI schema (`json_schema`);
- between values (`RELATIONS`): recency ≤ tenure, purchase days ≤ orders, a window's
  count ≤ the longer window's, … which a schema cannot say.

Rules only apply to the values given; a feature left out (or null) is imputed as in
training. Every rule holds for every row of the builder's output (tested on the
generated shop and on CDNOW), so a real customer's row is never refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Real

from features.text_items import ESCAPES


@dataclass(frozen=True)
class Range:
    """Bounds of one value; ``whole``: an integer (``3.0`` is whole, ``2.5`` is not)."""

    minimum: float = 0.0
    maximum: float | None = None
    whole: bool = False
    what: str = "a number"

    def broken_by(self, value: float) -> str | None:
        """The rule ``value`` breaks, in words, or None."""
        if self.whole and value != math.floor(value):
            return f"must be {self.what}, a whole number"
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            upper = f" and {_number(self.maximum)}" if self.maximum is not None else ""
            return (f"must be {self.what} between {_number(self.minimum)}{upper}" if upper
                    else f"must be {self.what} ≥ {_number(self.minimum)}")
        return None


COUNT = Range(whole=True, what="a count")
DAYS = Range(what="a number of days")
WHOLE_DAYS = Range(whole=True, what="a whole number of days")
MONEY = Range(what="an amount")
RATIO = Range(what="a ratio")
SHARE = Range(maximum=1.0, what="a share")
RFM_SCORE = Range(minimum=1.0, maximum=5.0, whole=True, what="a score")
AGE = Range(maximum=150.0, whole=True, what="an age in years")

_COUNT_STEMS = ("purchase_days", "orders_count", "returns_count", "web_sessions", "page_views", "product_views",
                "searches", "cart_adds", "checkouts", "distinct_products_bought", "distinct_categories_bought",
                "emails_sent", "email_opens", "email_clicks", "ad_impressions", "ad_clicks", "social_engagements",
                "active_days", "engagement_events")
_SHARES = ("cart_abandonment_rate", "top_category_order_share", "discount_order_share", "share_web_orders",
           "share_store_orders")
_WINDOW = re.compile(r"_(\d+)d$")


def value_rule(name: str) -> Range | None:
    """The range of feature ``name`` (None for text and for features without one)."""
    stem = _WINDOW.sub("", name)
    if stem.startswith("rfm_") and stem.endswith("_score"):
        return RFM_SCORE
    if stem in _SHARES:
        return SHARE
    if stem == "age_years":
        return AGE
    if any(stem == count or stem.startswith(count + "_") for count in _COUNT_STEMS):
        return COUNT
    if stem in ("recency_days", "tenure_days", "customer_age_days"):
        return WHOLE_DAYS
    if stem.endswith("_days") or "_days_" in stem:  # interpurchase_days_mean, days_since_last_engagement …
        return DAYS
    if stem.startswith("days_since_"):
        return DAYS
    if stem.startswith("revenue") or stem in ("returns_amount", "mean_order_value"):
        return RATIO if stem.endswith("_trend") else MONEY
    if stem.endswith(("_rate", "_ratio", "_trend")):  # email rates can exceed 1 (opens of earlier sends)
        return RATIO
    return None


@dataclass(frozen=True)
class AtMost:
    """``smaller`` ≤ ``larger`` + ``slack`` when both are given, with the reason in words."""

    smaller: str
    larger: str
    why: str
    slack: float = 0.0

    def broken_by(self, values: Mapping[str, float]) -> str | None:
        a, b = values.get(self.smaller), values.get(self.larger)
        if a is None or b is None or a <= b + self.slack + 1e-9 * max(1.0, abs(b)):
            return None
        plus = f" + {_number(self.slack)}" if self.slack else ""
        return (f"{self.smaller} ({_number(a)}) must be at most {self.larger}{plus} ({_number(b + self.slack)}): "
                f"{self.why}")


def _windows(stem: str, windows: tuple[int, ...], total: str | None, what: str) -> list[AtMost]:
    names = [f"{stem}_{w}d" for w in windows] + ([total] if total else [])
    return [AtMost(shorter, longer, f"{what} in a shorter window cannot exceed a longer one")
            for i, shorter in enumerate(names) for longer in names[i + 1:]]


RELATIONS: tuple[AtMost, ...] = (
    AtMost("recency_days", "tenure_days", "the latest purchase cannot come before the first"),
    AtMost("purchase_days", "tenure_days", "there are at most tenure_days + 1 days to buy on", slack=1.0),
    AtMost("purchase_days", "orders_count", "every purchase day has at least one order"),
    *_windows("purchase_days", (30, 90, 365), "purchase_days", "purchase days"),
    *_windows("revenue", (30, 90, 365), "revenue_total", "revenue"),
    *[rule for stem in ("web_sessions", "page_views", "product_views", "searches", "cart_adds", "checkouts",
                        "emails_sent", "email_opens", "email_clicks")
      for rule in _windows(stem, (30, 90), stem, stem.replace("_", " "))],
)

# A purchase needs a purchase day: recency given (a buyer) → purchase_days ≥ 1.
_BUYER_NEEDS = ("purchase_days", "orders_count")

HISTORY_COLUMN = "category_history"
_HISTORY_ITEM = re.compile(r"[^:;,]+:[1-9][0-9]{0,8}")
HISTORY_PATTERN = r"^([^:;,]+:[1-9][0-9]{0,8}(;[^:;,]+:[1-9][0-9]{0,8})*)?$"
"""`category_history` as a regular expression (for the OpenAPI schema)."""
_HISTORY_RULE = ("must be `category:n` items joined by ';' (n a whole number ≥ 1; ',', ':', ';' and '%' inside a "
                 "category escaped as " + ", ".join(code for _, code in ESCAPES[1:]) + " and %25), or empty")


def history_error(text: str) -> str | None:
    """Why ``text`` is not a `category_history` value, or None ("" is one: no purchases)."""
    if text == "" or all(_HISTORY_ITEM.fullmatch(item) for item in text.split(";")):
        return None
    return f"{HISTORY_COLUMN} {_HISTORY_RULE}"


def violations(values: Mapping[str, object]) -> list[str]:
    """Every rule the given feature values break, each naming the feature(s): empty when
    they describe a customer a shop could have. Unknown names and nulls are ignored
    (the caller checks names and types)."""
    numbers = {name: float(value) for name, value in values.items()
               if isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(float(value))}
    found = []
    for name, value in numbers.items():
        rule = value_rule(name)
        broken = rule.broken_by(value) if rule else None
        if broken:
            found.append(f"{name} ({_number(value)}) {broken}")
    history = values.get(HISTORY_COLUMN)
    if isinstance(history, str) and (broken := history_error(history)):
        found.append(broken)
    if found:  # relations between values that are each out of range say nothing more
        return found
    found += [broken for rule in RELATIONS if (broken := rule.broken_by(numbers))]
    if numbers.get("recency_days") is not None:
        found += [f"{name} (0) must be at least 1 when recency_days is given: a customer with a latest purchase "
                  "has bought" for name in _BUYER_NEEDS if numbers.get(name) == 0]
    return found


def json_schema(name: str) -> dict:
    """Feature ``name``'s range as OpenAPI 3.0 keywords (``minimum``, ``maximum``,
    ``multipleOf``), empty when it has none."""
    rule = value_rule(name)
    if rule is None:
        return {}
    schema: dict = {"minimum": rule.minimum}
    if rule.maximum is not None:
        schema["maximum"] = rule.maximum
    if rule.whole:
        schema["multipleOf"] = 1
    return schema


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:g}"
