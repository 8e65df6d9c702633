"""One MLflow pyfunc per model family: preprocessing, model, calibration and reasons in one artifact.

Serving and `cdp score` load a champion by alias and call ``predict`` on feature-table
rows; they never need to know which estimator is inside. Inputs are cast the same way at
training and at scoring (`model_frame`), so MLflow's schema check sees the same types.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from mlflow.pyfunc import PythonModel

from features.catalog import catalog
from features.preprocess import as_float
from features.rows import Rows, floats, has_column, index_of, row_count
from features.rows import where as rows_where
from training.categories import HISTORY_COLUMN

NEXT_CATEGORIES = "next_best_categories"
# Columns every purchase model reads beside its declared inputs (the BG/NBD summary).
HISTORY_COLUMNS = ("recency_days", "tenure_days", "purchase_days", "mean_order_value")
_CATEGORICAL = {s.name for s in catalog() if s.kind == "categorical"}
_NUMERIC = {s.name for s in catalog() if s.kind in ("numeric", "flag")}


def model_frame(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """``columns`` of a feature table with model-ready types: float64 numbers, object text.

    Nullable and Arrow dtypes (what Ibis returns) become plain ones, so a model's
    signature and the rows it scores always agree on types.
    """
    missing = [c for c in columns if c not in features.columns]
    if missing:
        raise KeyError(f"feature table lacks column(s) the model reads: {', '.join(missing)}")
    if len(features) < FEW_ROWS and features.columns.is_unique:
        return _few_rows_frame(features, columns)
    out = {}
    for column in columns:
        values = features[column]
        if _is_text(column, values.dtype):
            out[column] = values.astype(object).where(values.notna(), None)
        else:
            out[column] = as_float(values)
    return pd.DataFrame(out, index=features.index)


# Below this many rows `model_frame` casts from one object array instead of column by column
# (one row of ~90 columns: 11 ms in pandas, under 1 ms so).
FEW_ROWS = 256
_PLAIN_KINDS = frozenset("fiub")


def model_rows(features: Rows, columns: list[str]) -> Rows:
    """`model_frame` of a frame; `features.rows` columns (one request's row,
    `serving.scoring.feature_row`) stay columns, each checked as a model reads it (numbers as
    float64, text as objects with None for missing)."""
    if isinstance(features, pd.DataFrame):
        return model_frame(features, columns)
    missing = [c for c in columns if not has_column(features, c)]
    if missing:
        raise KeyError(f"feature table lacks column(s) the model reads: {', '.join(missing)}")
    return {column: _model_ready(column, np.asarray(features[column])) for column in columns}


def _model_ready(column: str, values: np.ndarray) -> np.ndarray:
    """One given column as a model reads it: text as objects with None for missing, numbers
    as float64 (what `model_frame` makes of a frame's column)."""
    if _is_text(column, values.dtype) or values.dtype.kind not in _PLAIN_KINDS:
        if column in _CATEGORICAL or column == HISTORY_COLUMN or column not in _NUMERIC:
            return values if values.dtype == object else values.astype(object)
        return as_float(pd.Series(values, dtype=object)).to_numpy()
    return values if values.dtype == np.float64 else values.astype(np.float64)


def _is_text(column: str, dtype) -> bool:
    return column in _CATEGORICAL or column == HISTORY_COLUMN or (
        column not in _NUMERIC and pd.api.types.is_string_dtype(dtype))


def _few_rows_frame(features: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """`model_frame` of a few rows, the same values and dtypes: text as objects with None for
    missing; plain NumPy numbers cast from the object array (exact: each cell is the
    column's own number); any other dtype through `as_float`, as for many rows."""
    chosen = features[columns]
    cells = chosen.to_numpy(dtype=object)
    missing = pd.isna(cells)
    out: dict[str, Any] = {}
    for i, (column, dtype) in enumerate(zip(columns, chosen.dtypes)):
        if _is_text(column, dtype):
            # A Series, so the frame keeps it as objects rather than inferring a string dtype.
            out[column] = pd.Series(np.where(missing[:, i], None, cells[:, i]), index=features.index, dtype=object)
        elif isinstance(dtype, np.dtype) and dtype.kind in _PLAIN_KINDS:
            out[column] = cells[:, i].astype(np.float64)
        else:
            out[column] = as_float(features[column]).to_numpy()
    return pd.DataFrame(out, index=features.index)



def model_ready(features: pd.DataFrame) -> pd.DataFrame:
    """A whole feature table cast the way models were trained (see `model_frame`): pass
    this, not raw query output, to a pyfunc's ``predict``, whose schema check is strict
    (an int64 column where the signature says double is refused)."""
    columns = [c for c in features.columns if c in _NUMERIC or c in _CATEGORICAL]
    typed = model_frame(features, columns)
    rest = features.drop(columns=columns)
    return pd.concat([rest, typed], axis=1)


def required_columns(estimator, kind: str) -> list[str]:
    """The feature-table columns a fitted estimator of ``kind`` reads."""
    if kind == "segments":
        return list(estimator.features_)
    declared = [c for c in estimator.inputs_ if not c.startswith("btyd_")]  # computed inside the model
    return list(dict.fromkeys([*declared, *HISTORY_COLUMNS]))


class CdpModel(PythonModel):
    """A fitted cdp-ml estimator behind MLflow's pyfunc interface.

    ``kind`` is ``segments`` (a `CustomerSegmenter`: one ``segment`` column),
    ``churn`` / ``next-purchase`` (a `PurchaseModel`) or ``first-purchase`` (a
    `training.first_purchase.FirstPurchaseModel`). Purchase models score customers who
    have bought, the first-purchase model those who have not (``recency_days`` empty);
    each leaves the other rows' outputs empty.
    """

    def __init__(self, estimator, kind: str, columns: list[str], horizon_days: int, recommender=None):
        self.estimator = estimator
        self.kind = kind
        self.columns = columns
        self.horizon_days = horizon_days
        self.recommender = recommender

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        return pd.DataFrame(self.predict_columns(model_input), index=index_of(model_input))

    def predict_columns(self, model_input: Rows) -> dict[str, np.ndarray]:
        """`predict`'s columns as arrays, of a frame or of `features.rows` columns (one request's
        row: no frame is built on the way)."""
        if self.kind == "segments":
            return {"segment": self.estimator.predict(model_rows(model_input, self.columns))}
        if self.kind == "first-purchase":
            return first_purchase_columns(self, model_input)
        return purchase_columns([self], model_input)[0]

    def _assembled(self, X: Rows, bought: np.ndarray, scored: Mapping[str, np.ndarray] | None
                   ) -> dict[str, np.ndarray]:
        """Outputs for every row of ``X``: the buyers' scores in place, the rest empty."""
        out: dict[str, np.ndarray] = {}
        n = row_count(X)
        if self.recommender is not None:
            history = X[HISTORY_COLUMN]
            out[NEXT_CATEGORIES] = list_column(self.recommender.recommend(
                history if isinstance(history, pd.Series) else pd.Series(history, dtype=object)))
        if scored is not None:
            for column, values in scored.items():
                values = np.asarray(values)
                full = np.full(n, np.nan) if values.dtype.kind in "fiub" else np.full(n, "", dtype=object)
                full[bought] = values
                out[column] = full
        return out


def category_lists(lists: list[list[str]], index: pd.Index) -> pd.Series:
    """Lists of categories as one column, a list per row (``next_best_categories``): Arrow
    writes it as a list column (Parquet, the store's ``scores`` table), the service as a JSON
    array. A category may hold any text, so the list is never joined into one string."""
    return pd.Series(list_column(lists), index=index, dtype=object, name=NEXT_CATEGORIES)


def list_column(lists: list[list[str]]) -> np.ndarray:
    """Lists as one object array, a list per element (NumPy would read equal-length lists as a
    2-D array)."""
    out = np.empty(len(lists), dtype=object)
    for row, value in enumerate(lists):
        out[row] = value
    return out


def predict_purchases(models: list[CdpModel], model_input: pd.DataFrame,
                      typical: Mapping[str, float] | None = None) -> list[pd.DataFrame]:
    """`purchase_columns` as frames indexed as ``model_input``."""
    index = index_of(model_input)
    return [pd.DataFrame(columns, index=index) for columns in purchase_columns(models, model_input, typical)]


def purchase_columns(models: list[CdpModel], model_input: Rows,
                     typical: Mapping[str, float] | None = None) -> list[dict[str, np.ndarray]]:
    """The outputs of purchase models (``churn`` / ``next-purchase`` `CdpModel`s) on the same
    rows, in order. ``typical``: the typical customer's values the reasons are weighed
    against (`training.reasons.typical_values` of the population; default: of these rows).

    Models of one training run share their preprocessing and calibrated classifier
    (`PurchaseModel.shares_inputs`): the rows are then prepared, and the purchase
    probability computed, once for all of them rather than once per model.
    """
    columns = list(dict.fromkeys(c for m in models for c in m.columns))
    X = model_rows(model_input, columns)
    bought = ~np.isnan(floats(X, "recency_days"))
    buyers = X[bought] if isinstance(X, pd.DataFrame) else rows_where(X, bought)
    outputs: list[dict[str, np.ndarray]] = []
    shared: list[tuple[Any, Any, np.ndarray | None]] = []  # (estimator, prepared, probability)
    for model in models:
        scored = None
        if bought.any():
            estimator = model.estimator
            partner = next((s for s in shared if s[0].shares_inputs(estimator)), None)
            if partner is None:
                prepared = estimator.prepare(buyers)
                scored = estimator.predict_columns(buyers, prepared=prepared, typical=typical)
            else:
                prepared = partner[1]
                scored = estimator.predict_columns(buyers, prepared=prepared, purchase_probability=partner[2],
                                                   typical=typical)
            probability = scored.get("purchase_probability")
            if partner is None or (partner[2] is None and probability is not None):
                shared.append((estimator, prepared, probability))
        outputs.append(model._assembled(X, bought, scored))
    return outputs


def predict_first_purchase(model: CdpModel, model_input: pd.DataFrame) -> pd.DataFrame:
    """`first_purchase_columns` as a frame indexed as ``model_input``."""
    return pd.DataFrame(first_purchase_columns(model, model_input), index=index_of(model_input))


def first_purchase_columns(model: CdpModel, model_input: Rows) -> dict[str, np.ndarray]:
    """A first-purchase `CdpModel`'s ``purchase_probability`` for the rows without a purchase
    (``recency_days`` empty), NaN for the buyers, whom the purchase models score."""
    X = model_rows(model_input, model.columns)
    prospect = np.isnan(floats(X, "recency_days"))
    probability = np.full(row_count(X), np.nan)
    if prospect.any():
        probability[prospect] = model.estimator.purchase_probability(rows_where(X, prospect))
    return {"purchase_probability": probability}
