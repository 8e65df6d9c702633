"""Why a customer may leave: the features that push their churn risk up the most, by name.

`ReasonCodes` turns the churn classifier's per-row TreeSHAP contributions (from
`training.churn.PurchaseClassifier.contributions`) into each customer's top reasons,
named by feature-table column: ``"recency_days, email_open_rate_30d, purchase_history"``,
strongest first. The words a marketer reads are built from these names in
`training.reasons`, the same for the service's answers and the churn lists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from training.boosting import PREDICT_PARALLEL_FROM_ROWS
from training.explain import KERNEL_LOCK

N_REASONS = 3
# BG/NBD's view of the customer, all of its columns (``btyd_*``) and its starting margin.
HISTORY_REASON = "purchase_history"


def source_feature(column: str, inputs: Sequence[str]) -> str:
    """The feature-table column behind a preprocessed column (``country_PS`` → ``country``,
    ``recency_days_na`` → ``recency_days``)."""
    if column.startswith("btyd_"):
        return HISTORY_REASON
    if column in inputs:
        return column
    best = max((name for name in inputs if column.startswith(name + "_")), key=len, default=None)
    return best if best is not None else column


class ReasonCodes(BaseEstimator):
    """The ``n_reasons`` feature-table columns that raise each customer's churn risk the most.

    Parameters
    ----------
    inputs : sequence of str
        The model's inputs (feature-table columns) the preprocessed columns derive from.
    n_reasons : int

    `fit` learns, from the preprocessed training rows and their BG/NBD log-odds, which
    feature each preprocessed column belongs to (one-hot levels and missing flags explain
    under their feature's name) and the training average of BG/NBD's log-odds. A positive
    contribution to churn is a negative one to the purchase log-odds. BG/NBD's own baseline
    counts as one more reason, ``purchase_history``: its log-odds against the training
    average (a customer buying less often than BG/NBD expects of the average buyer). Rows
    with nothing raising their risk get an empty string.

    Attributes
    ----------
    columns_ : list of str, the preprocessed columns, in the classifier's input order
    features_ : list of str, the reason names (sorted; ``purchase_history`` among them)
    groups_ : int array, ``features_`` position of each of ``columns_``
    mean_margin_ : float, the training rows' mean BG/NBD log-odds
    """

    def __init__(self, inputs: Sequence[str] = (), n_reasons: int = N_REASONS):
        self.inputs = inputs
        self.n_reasons = n_reasons

    def fit(self, X, history_margin) -> "ReasonCodes":
        """``X``: the preprocessed training rows (a DataFrame: its column names are what is
        grouped); ``history_margin``: their BG/NBD log-odds of a purchase."""
        if not hasattr(X, "columns"):
            raise ValueError("ReasonCodes is fitted on a DataFrame: reasons are named by its columns")
        return self._learn([str(c) for c in X.columns], float(np.mean(np.asarray(history_margin, dtype=float))))

    def _learn(self, columns: list[str], mean_margin: float) -> "ReasonCodes":
        inputs = list(self.inputs)
        self.columns_ = columns
        self.features_ = sorted({source_feature(c, inputs) for c in columns} | {HISTORY_REASON})
        where = {name: i for i, name in enumerate(self.features_)}
        self.groups_ = np.array([where[source_feature(c, inputs)] for c in columns], dtype=np.int64)
        self.mean_margin_ = mean_margin
        return self

    def predict(self, toward_purchase: np.ndarray, history_margin, eligible: np.ndarray | None = None,
                families: np.ndarray | None = None) -> np.ndarray:
        """Each row's reasons, ", "-joined, from its contributions to the purchase log-odds
        grouped by `groups_` (``(n_rows, len(features_) + 1)``, the expected value last) and
        its BG/NBD log-odds. ``toward_purchase`` is overwritten: a copy of a million rows'
        contributions costs more than the rest of the wording.

        ``eligible`` (optional, ``(n_rows, len(features_))`` booleans): the features each row
        may be given (`training.reasons.reason_mask`: a value on the side of the typical
        customer's that can be a reason to leave). The strongest ``n_reasons`` among them
        are named; a contribution raising the risk from a value on the other side is not.

        ``families`` (optional, one number per feature): features worded as one thing
        (`training.reasons.reason_families`: ``emails_sent`` and ``emails_sent_90d``). Each row
        names at most one of a family, its strongest; the next family takes the freed place.
        """
        check_is_fitted(self, "groups_")
        if toward_purchase.ndim != 2 or toward_purchase.shape[1] != len(self.features_) + 1:
            raise ValueError(f"expected {len(self.features_) + 1} columns of contributions, "
                             f"got {toward_purchase.shape[-1]}")
        values = np.negative(toward_purchase, out=toward_purchase)[:, :-1]  # toward churn
        history = self.features_.index(HISTORY_REASON)
        values[:, history] -= np.asarray(history_margin, dtype=float) - self.mean_margin_
        if eligible is not None:
            if eligible.shape != values.shape:
                raise ValueError(f"eligible has shape {eligible.shape}, the contributions {values.shape}")
            values[~eligible] = 0.0
        if families is not None:
            strongest_per_family(values, np.asarray(families))
        return top_names(values, self.features_, self.n_reasons)


def strongest_per_family(values: np.ndarray, families: np.ndarray) -> None:
    """Zero every value but the largest of its family, per row (in place; ties keep the
    earlier column, as `top_names` does)."""
    if families.shape != (values.shape[1],):
        raise ValueError(f"{len(families)} families for {values.shape[1]} columns of values")
    if not len(values):
        return
    rows = np.arange(len(values))
    for family in np.unique(families):
        columns = np.flatnonzero(families == family)
        if len(columns) < 2:
            continue
        part = values[:, columns]
        best = np.argmax(part, axis=1)
        kept = part[rows, best]
        part[:] = 0.0
        part[rows, best] = kept
        values[:, columns] = part


def top_names(values: np.ndarray, names: Sequence[str], n: int) -> np.ndarray:
    """Per row, the names of the (at most) ``n`` largest positive values, largest first, ", "-joined.

    Ties go to the earlier name. Each distinct choice is joined once, not once per row:
    a million rows hold a few thousand distinct top-``n`` lists.
    """
    if values.ndim != 2 or values.shape[1] != len(names):
        raise ValueError(f"{len(names)} names for {values.shape[-1]} columns of values")
    k = max(0, min(n, values.shape[1]))
    # Each row's choice as one number: its k column indices (len(names) for "none") in base len(names) + 1.
    if (len(names) + 1) ** k >= 2 ** 62:
        raise ValueError(f"top {k} of {len(names)} names do not fit one 64-bit code: ask for fewer")
    values = np.asarray(values, dtype=np.float64)
    if len(values) >= PREDICT_PARALLEL_FROM_ROWS:
        with KERNEL_LOCK:
            key = _top_codes(values, k)
    else:
        key = _top_codes_serial(values, k)
    distinct, inverse = np.unique(key, return_inverse=True)
    labels = np.array(list(names) + [None], dtype=object)
    texts = []
    for code in distinct.tolist():
        digits = []
        for _ in range(k):
            code, digit = divmod(code, len(names) + 1)
            digits.append(digit)
        texts.append(", ".join(labels[d] for d in reversed(digits) if labels[d] is not None))
    return np.array(texts, dtype=object)[inverse.reshape(-1)] if len(values) else np.array([], dtype=object)


@numba.njit(inline="always")
def _top_code(values, row, k):
    """Row ``row``'s ``k`` largest positive values' columns (first column on ties) as one code."""
    width = values.shape[1]
    best = np.full(k, width, dtype=np.int64)
    for column in range(width):
        value = values[row, column]
        if not value > 0:
            continue
        slot = k
        while slot > 0 and (best[slot - 1] == width or value > values[row, best[slot - 1]]):
            slot -= 1
        if slot < k:
            for move in range(k - 1, slot, -1):
                best[move] = best[move - 1]
            best[slot] = column
    code = 0
    for slot in range(k):
        code = code * (width + 1) + best[slot]
    return code


@numba.njit(parallel=True, cache=True, nogil=True)
def _top_codes(values, k):  # pragma: no cover - compiled
    codes = np.zeros(values.shape[0], dtype=np.int64)
    for row in numba.prange(values.shape[0]):
        codes[row] = _top_code(values, row, k)
    return codes


@numba.njit(cache=True, nogil=True)
def _top_codes_serial(values, k):  # pragma: no cover - compiled
    """`_top_codes` on one thread: for a request's few rows (no thread pool to start)."""
    codes = np.zeros(values.shape[0], dtype=np.int64)
    for row in range(values.shape[0]):
        codes[row] = _top_code(values, row, k)
    return codes
