"""The promise behind every churn reason, checked row by row (issue #18, item 5).

A reason shown for raising a customer's churn risk must be a feature whose contribution
raised it, and its sentence must say on which side of the typical customer the customer's
value lies, truthfully. `untrue_reasons` checks both against references of its own:

- contributions from LightGBM's own TreeSHAP (``pred_contrib``), grouped here by feature,
  not from our tabulated kernels;
- the typical customer as the median among buyers, computed here with pandas;
- the direction words read back from the sentence with a regular expression of its own;
- for the features whose direction is beyond dispute (spending less, buying less, visiting
  less, being away longer), the side the value must lie on for it to be a reason at all.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from training.pyfunc import HISTORY_COLUMNS, model_frame
from training.reasons import Customer, reason_sentence

HISTORY = "purchase_history"
LEVELS = {"age_band", "country", "top_category", "preferred_channel"}
WORD = re.compile(r"\b(more|fewer|less|longer|shorter|higher|lower|older|younger) than the typical customer \(")
UP = {"more", "longer", "higher", "older"}
# Reasons to leave only when the value is below the typical customer's …
MUST_BE_LOW = re.compile(r"^(revenue|revenue_total|purchase_days|orders_count|web_sessions|page_views|"
                         r"product_views|email_opens|email_open_rate|email_clicks|active_days|engagement_events)"
                         r"(_\d+d)?$")
# … or above it.
MUST_BE_HIGH = re.compile(r"^(recency_days|days_since_last_engagement|days_since_last_email_open|overdue_ratio)$")


def _feature_of(column: str, inputs: list[str]) -> str:
    if column.startswith("btyd_"):
        return HISTORY
    if column in inputs:
        return column
    return max((name for name in inputs if column.startswith(name + "_")), key=len)


def toward_churn(model, X: pd.DataFrame) -> pd.DataFrame:
    """Each feature's contribution to the churn log-odds of each row of ``X`` (a positive
    value raises the risk), from LightGBM's ``pred_contrib``; ``purchase_history`` holds
    BG/NBD's log-odds against the training average as well as its columns' contributions."""
    prepared = model.prepare(X)
    contrib = model.classifier_.booster_.predict(prepared.x.to_numpy(dtype=float), pred_contrib=True)[:, :-1]
    owner = [_feature_of(c, list(model.inputs_)) for c in model.columns_]
    grouped = pd.DataFrame(-contrib, index=X.index, columns=owner).T.groupby(level=0).sum().T
    if HISTORY not in grouped:
        grouped[HISTORY] = 0.0
    grouped[HISTORY] -= prepared.margins["purchase"].to_numpy() - model.reasons_.mean_margin_
    return grouped


def untrue_reasons(features: pd.DataFrame, top_reasons: pd.Series, model) -> tuple[int, list[str]]:
    """How many reasons were checked, and a line for each that breaks the promise.

    ``features``: the scored feature rows, indexed by customer id; ``top_reasons``: the
    codes scoring gave them (", "-joined), by customer id; ``model``: the churn
    `PurchaseModel` that scored them.
    """
    buyers = features[features["recency_days"].notna()]
    numeric = buyers.select_dtypes(include="number")
    typical = {name: float(v) for name, v in numeric.median().items() if not math.isnan(v)}
    columns = list(dict.fromkeys([*(c for c in model.inputs_ if not c.startswith("btyd_")), *HISTORY_COLUMNS]))
    contributions = toward_churn(model, model_frame(buyers, columns))
    checked, problems = 0, []
    for customer, codes in top_reasons.reindex(buyers.index).fillna("").items():
        row = buyers.loc[customer]
        person = Customer(row.to_dict(), typical)
        for code in [c.strip() for c in codes.split(",") if c.strip()]:
            checked += 1
            sentence = reason_sentence(code, person)
            where = f"{customer} {code}: {sentence!r}"
            if not contributions.at[customer, code] > 0:
                problems.append(f"{where} lowers the risk ({contributions.at[customer, code]:.4f})")
                continue
            if code == HISTORY or code in LEVELS:
                if code in LEVELS and pd.isna(row[code]):
                    problems.append(f"{where}: no value")
                continue
            value = row[code]
            if pd.isna(value):
                if not (code == "days_since_last_email_open" and "never opened" in sentence):
                    problems.append(f"{where}: a missing value given as a reason")
                continue
            found = WORD.search(sentence)
            if code not in typical or value == typical[code] or found is None:
                problems.append(f"{where}: no comparison with the typical customer ({typical.get(code)})")
                continue
            above = value > typical[code]
            if (found.group(1) in UP) != above:
                problems.append(f"{where}: says {found.group(1)!r} for {value} against {typical[code]}")
            if (MUST_BE_LOW.match(code) and above) or (MUST_BE_HIGH.match(code) and not above):
                problems.append(f"{where}: {value} against {typical[code]} is no reason to leave")
    return checked, problems


def share_with_reasons(top_reasons: pd.Series, features: pd.DataFrame) -> float:
    """The share of buyers given at least one reason."""
    buyers = features.index[features["recency_days"].notna()]
    return float((top_reasons.reindex(buyers).fillna("") != "").mean()) if len(buyers) else math.nan


def repeated_families(top_reasons: pd.Series) -> list[str]:
    """Reason lists naming one measure twice (two windows of it, ``emails_sent`` and
    ``emails_sent_90d``), read with a regular expression of this module's own."""
    window = re.compile(r"_\d+d$")
    repeated = []
    for text in top_reasons.dropna():
        codes = [code.strip() for code in str(text).split(",") if code.strip()]
        bases = [window.sub("", code) for code in codes]
        if len(set(bases)) != len(bases):
            repeated.append(str(text))
    return repeated


__all__ = ["repeated_families", "share_with_reasons", "toward_churn", "untrue_reasons"]
