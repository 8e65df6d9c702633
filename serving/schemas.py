"""Request and response bodies of the scoring API (Pydantic models, shown on the OpenAPI page).

Requests are strict: no extra fields, no type coercion ("12" is not a number), bounded
sizes, so a bad request is refused with a message naming the field before any model runs.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, StringConstraints, WithJsonSchema, model_validator

from serving.scoring import MAX_FEATURES

MAX_BATCH = 1000
MAX_CUSTOMER_ID_CHARS = 64
MAX_TEXT_CHARS = 4096

CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_CUSTOMER_ID_CHARS,
                                              pattern=r"^[!-~]+$")]


def _feature_value(value: object) -> float | str | None:
    """A JSON number (finite), a string (bounded) or null; one clear message otherwise."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_TEXT_CHARS:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    raise ValueError(f"must be a finite number, a string of at most {MAX_TEXT_CHARS} characters, or null")


FeatureValue = Annotated[float | str | None, PlainValidator(_feature_value), WithJsonSchema(
    {"anyOf": [{"type": "number"}, {"type": "string", "maxLength": MAX_TEXT_CHARS}], "nullable": True})]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


IDENTIFIERS = ("customer_id", "email", "phone", "customer_key", "external_id")
Text = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class ScoreRequest(_Request):
    """One known customer, named by exactly one identifier the app knows.

    Emails and phones are normalized as `cdp ingest` normalizes them (``" Omar@Example.com "``
    is ``omar@example.com``; a local number is read in each source's phone region). An
    identifier held by several customers is answered 409, one excluded as a placeholder or
    shared identifier 404: the service never picks one.
    """

    customer_id: CustomerId | None = Field(
        default=None, description="A customer id from the store (printable ASCII, no spaces, at most "
                                  f"{MAX_CUSTOMER_ID_CHARS} characters); an id merged into another finds the "
                                  "customer it was merged into.", examples=["c0003ca0919a4cc4f"])
    email: Text | None = Field(default=None, description="An email address of the customer, as the app holds it.",
                               examples=[" Omar@Example.com "])
    phone: Text | None = Field(default=None, description="A phone number of the customer, best with its country "
                                                         "code (+970...); a local number is read in the regions "
                                                         "of the shop's sources.", examples=["+970599123456"])
    customer_key: Text | None = Field(default=None, description="The customer's key in one source (a CRM id, a "
                                                                "loyalty number); needs `source`.",
                                      examples=["CRM-000123"])
    external_id: Text | None = Field(default=None, description="An external id the sources carry.")
    source: Text | None = Field(default=None, description="With customer_key: the source (or key namespace) the "
                                                          "key belongs to, as named in cdp.toml.",
                                examples=["crm_customers"])

    @model_validator(mode="after")
    def _one_identifier(self) -> ScoreRequest:
        for name in (*IDENTIFIERS, "source"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} must be a string, not null (leave it out instead)")
        given = [name for name in IDENTIFIERS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"name the customer by exactly one of {', '.join(IDENTIFIERS)} ({len(given)} given)")
        if (self.source is not None) != (given[0] == "customer_key"):
            raise ValueError("source goes with customer_key, and customer_key needs its source")
        return self

    @classmethod
    def of(cls, **given: str | None) -> ScoreRequest:
        """The request from keyword arguments, those that are None left out (as BentoML passes them)."""
        return cls(**{name: value for name, value in given.items() if value is not None})

    def identifier(self) -> tuple[str, str, str | None]:
        """(field, value, source) of the identifier given."""
        field = next(name for name in IDENTIFIERS if getattr(self, name) is not None)
        return field, getattr(self, field), self.source


class ScoreBatchRequest(_Request):
    """Up to 1,000 known customers: by customer id (``customer_ids``) or by any identifier (``customers``)."""

    customer_ids: list[CustomerId] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} customer ids; repeats are scored once.")
    customers: list[ScoreRequest] | None = Field(
        default=None, min_length=1, max_length=MAX_BATCH,
        description=f"1 to {MAX_BATCH} customers, each named as in /score; answered in order, those not found in "
                    "`unresolved` by their position.")

    @model_validator(mode="after")
    def _one_list(self) -> ScoreBatchRequest:
        for name in ("customer_ids", "customers"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} must be a list, not null (leave it out instead)")
        if (self.customer_ids is None) == (self.customers is None):
            raise ValueError("send customer_ids or customers, not both and not neither")
        return self


class ScoreFeaturesRequest(_Request):
    """A customer the store does not know, described by feature values."""

    features: dict[Annotated[str, StringConstraints(min_length=1, max_length=128)], FeatureValue] = Field(
        max_length=MAX_FEATURES,
        description="Feature name → value (numbers for numeric features, text for categorical ones, null for "
                    "unknown). Features left out are imputed as in training; without recency_days the customer "
                    "counts as one who has not bought yet. `GET /versions` lists the names the models read.",
        examples=[{"recency_days": 12, "purchase_days": 3, "tenure_days": 200, "mean_order_value": 85.0,
                   "country": "PS"}])
    as_of: dt.date | None = Field(default=None,
                                  description="The day the features describe (default: the day of the served "
                                              "feature snapshot).")


class EmptyRequest(_Request):
    """No fields."""


class ModelVersions(BaseModel):
    """Registry versions of the served champions (null: none served)."""

    segments: str | None = Field(description="Version of cdp-segments.")
    churn: str | None = Field(description="Version of cdp-churn.")
    next_purchase: str | None = Field(description="Version of cdp-next-purchase.")
    first_purchase: str | None = Field(
        default=None, description="Version of cdp-first-purchase, which scores people who have not bought yet "
                                  "(null: none served; a store without such people trains none).")


class Reason(BaseModel):
    """One reason the customer's churn risk is raised."""

    code: str = Field(description="The feature (column of the feature table, `cdp features catalog`), or "
                                  "purchase_history for the BG/NBD view of their buying pattern.",
                      examples=["recency_days"])
    text: str = Field(description="The reason in plain words, from the customer's own values against the typical "
                                  "customer's (the median buyer's), as the churn lists print it.",
                      examples=["hasn't bought for 94 days (usually buys every 30), longer than the typical customer "
                                "(45)"])


class ScoreResult(BaseModel):
    """One customer's scores."""

    customer_id: str | None = Field(description="The customer's id in the store (null for /score_features).")
    segment: str = Field(description="The customer's segment from the segments champion (\"Prospects\" for "
                                     "people who have not bought yet).", examples=["Loyal (high value)"])
    churn_probability: float | None = Field(
        description="Probability of no purchase within horizon_days, 4 decimal places (null for people who have "
                    "not bought yet: there is no purchase to lapse from; see purchase_probability).")
    churn_risk: Literal["low", "medium", "high"] | None = Field(
        description="churn_probability banded by the service's thresholds (`cdp serve --churn-medium/--churn-high`).")
    purchase_probability: float | None = Field(
        description="Probability of at least one purchase within horizon_days, 4 places: 1 - churn_probability "
                    "for customers who have bought; for people who have not (segment \"Prospects\": leads, "
                    "sign-ups, known visitors) the first-purchase model's chance of a first purchase, from their "
                    "profile and engagement (null where the store has no first-purchase model).")
    expected_purchases: float | None = Field(description="Expected purchase days within the horizon, 4 places "
                                                         "(null for people who have not bought yet: it is read "
                                                         "off a purchase history).")
    expected_revenue: float | None = Field(description="Expected revenue within the horizon, in the base currency, "
                                                       "to the cent (null for people who have not bought yet).")
    days_to_next_purchase: float | None = Field(
        description="Median days until the next purchase, one decimal place, assuming the customer keeps the "
                    "daily purchase chance that purchase_probability implies. Past horizon_days it is an "
                    "extrapolation (shown up to 4 horizons); null beyond that (not expected back) or for people "
                    "who have not bought yet.")
    next_best_categories: list[str] = Field(
        description="Categories the customer is most likely to buy next, best first, each exactly as the shop's "
                    "data names it (any text: commas, quotes and emoji included).",
        examples=[["Oil, olive", "za'atar", "soap"]])
    top_reasons: list[str] = Field(description="Codes of the features raising churn risk the most, strongest "
                                               "first (the same as `reasons`' codes): at most 3, each one whose "
                                               "contribution raised this customer's risk and whose value lies on "
                                               "its risky side of the typical customer's; empty when none does, and "
                                               "for people who have not bought yet, who have no churn risk.")
    reasons: list[Reason] = Field(default_factory=list,
                                  description="The same reasons with their plain sentences, strongest first.")
    horizon_days: int = Field(description="The days ahead the probabilities and expectations are about.")
    model_versions: ModelVersions = Field(description="The registry versions of the models that answered.")
    features_as_of: dt.date | None = Field(description="The day the features describe (data up to and including it).")


class Unresolved(BaseModel):
    """A customer of a batch the service could not name (the identifier is never repeated)."""

    index: int = Field(description="Position in the request's `customers` list, from 0.")
    status: Literal[400, 404, 409] = Field(description="As /score would answer: 400 not a valid identifier, 404 "
                                                       "no such customer, 409 held by several customers.")
    error: str = Field(description="Why, as /score would say it (never repeating the identifier).")


class ScoreBatchResponse(BaseModel):
    """The answers of a batch."""

    results: list[ScoreResult] = Field(description="One answer per customer found, in the order asked.")
    not_found: list[str] = Field(description="Requested customer_ids the feature snapshot does not hold.")
    unresolved: list[Unresolved] = Field(default_factory=list,
                                         description="Customers of `customers` not answered, by position.")


class ServiceStatus(BaseModel):
    """What the service serves (`GET /versions`, `POST /admin/reload`)."""

    ready: bool = Field(description="Models and features are loaded and every known customer is scored.")
    model_versions: ModelVersions = Field(description="The served champions.")
    horizon_days: int | None = Field(description="The horizon of the served purchase models.")
    features_as_of: dt.date | None = Field(description="The day the served feature snapshot describes.")
    customers: int = Field(description="Customers in the served feature snapshot.")
    feature_names: dict[str, Literal["number", "string"]] = Field(
        description="Every feature the served models read, for /score_features.")
    last_check: dt.datetime | None = Field(description="When the registry and the snapshot file were last checked.")
    last_swap: dt.datetime | None = Field(description="When models or features were last swapped in.")
    errors: list[str] = Field(description="Refresh problems outstanding (the last good set is still served).")


class ErrorBody(BaseModel):
    """Every error the service answers with (never a stack trace)."""

    error: str = Field(description="What went wrong and what to do.")
    detail: str | None = None


REQUEST_MODELS: dict[str, type[_Request]] = {
    "/score": ScoreRequest,
    "/score_batch": ScoreBatchRequest,
    "/score_features": ScoreFeaturesRequest,
    "/admin/reload": EmptyRequest,
}
