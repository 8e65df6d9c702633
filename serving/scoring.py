"""Scoring for the HTTP service: feature rows in, one answer per customer out.

The combination of the three champions is `training.score.score`, the very function
`cdp score` runs in batch, so a customer gets the same numbers online and in the nightly
file. This module adds what ``/score_features`` needs around it: a feature row for a
customer the store does not know, checked against the features the models read.
Answers are shaped by `serving.answers.AnswerTable`, as for known customers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from cdp.errors import CdpError
from features.rows import Rows, row_count
from features.value_rules import violations
from serving.answers import AnswerTable
from serving.models import ModelSet
from training.risk_bands import ChurnRiskBands

MAX_FEATURES = 200


class RequestError(CdpError, ValueError):
    """A request the service understood but cannot answer as asked (HTTP 400)."""


def score_rows(features: Rows, models: ModelSet, bands: ChurnRiskBands,
               typical: Mapping[str, float] | None = None) -> list[dict]:
    """Score feature rows (one per customer, with ``customer_id`` and ``features_as_of``): a
    frame, or the model-ready columns of `feature_row`.

    Returns one JSON-ready dict per row, in order. Customers who never bought get their
    segment ("Prospects"), next-best categories and, where a first-purchase model is served,
    their chance of a first purchase as ``purchase_probability``; their other purchase
    scores are ``None``.
    ``typical``: the values the reasons compare with (the served snapshot's; default the
    rows' own medians).
    """
    if row_count(features) == 0:
        return []
    return AnswerTable.score(features, models, bands, typical=typical).all()


def feature_row(features: Mapping[str, float | str | None], models: ModelSet, as_of: dt.date) -> dict[str, np.ndarray]:
    """One feature row for a customer the store does not know, from a name → value mapping,
    as model-ready `features.rows` columns (float64 numbers, object text with None for
    missing): `score_rows` scores it without building a frame.

    Every column a model reads and the caller left out is missing (NaN / ``None``), which
    the models' preprocessing imputes exactly as in training (medians for numbers, a
    missing level for text). Leaving out ``recency_days`` means "has not bought yet".

    Raises
    ------
    RequestError
        A name no served model reads, a value of the wrong kind (text for a number), or
        values no customer could have (`features.value_rules`: a negative count, recency
        beyond tenure, a malformed category history …).
    """
    types = models.feature_types()
    unknown = sorted(name for name in features if name not in types)
    if unknown:
        shown = ", ".join(repr(name[:64]) for name in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise RequestError(f"unknown feature(s) {shown}{more}: GET /versions lists the {len(types)} features the "
                           "served models read (feature_names)")
    wrong = []
    for name, value in features.items():
        if value is None:
            continue
        if types[name] == "number" and not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            wrong.append(f"{name} must be a number")
        elif types[name] == "number" and not math.isfinite(float(value)):
            wrong.append(f"{name} must be a finite number")
        elif types[name] == "string" and not isinstance(value, str):
            wrong.append(f"{name} must be a string")
    if wrong:
        raise RequestError("; ".join(wrong))
    broken = violations(features)
    if broken:
        raise RequestError("impossible feature values: " + "; ".join(broken[:10])
                           + (f" and {len(broken) - 10} more" if len(broken) > 10 else ""))
    # One array per column, typed here as the models read them.
    columns: dict[str, np.ndarray] = {"customer_id": np.array([""], dtype=object),
                                      "features_as_of": np.array([pd.Timestamp(as_of)], dtype="datetime64[ns]")}
    for name, kind in types.items():
        value = features.get(name)
        columns[name] = (np.array([np.nan if value is None else float(value)]) if kind == "number"
                         else np.array([value], dtype=object))
    return columns
