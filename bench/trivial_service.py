"""The floor of the serving benchmark: a BentoML service that answers /score with a constant.

Same BentoML version, worker and thread settings and routes as `serving.service`, and an
answer of the same shape and size (to a customer id on /score, to a body of feature values
on /score_features), but no authentication, no validation beyond BentoML's own, no lookup:
what HTTP and BentoML cost by themselves on this machine.

    bentoml serve bench.trivial_service:Constant --port 3001
"""

from __future__ import annotations

import bentoml

ANSWER = {
    "customer_id": "c0003ca0919a4cc4f", "segment": "Loyal", "churn_probability": 0.2314, "churn_risk": "low",
    "purchase_probability": 0.7686, "expected_purchases": 2.41, "expected_revenue": 512.3,
    "days_to_next_purchase": 21.5, "next_best_categories": ["olive oil", "za'atar", "soap"],
    "top_reasons": ["recency_days", "email_opens_30d", "purchase_history"], "horizon_days": 90,
    "model_versions": {"segments": "1", "churn": "1", "next_purchase": "1"}, "features_as_of": "2026-10-31",
}


@bentoml.service(name="cdp-constant", workers=1, threads=4)
class Constant:
    @bentoml.api(route="/score")
    def score(self, customer_id: str) -> dict:
        return ANSWER

    @bentoml.api(route="/score_features")
    def score_features(self, features: dict) -> dict:
        """The same constant for a body of feature values: BentoML parsing a customer's ~90 features."""
        return ANSWER
