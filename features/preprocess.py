"""Preprocessing for models: a scikit-learn Pipeline of feature-engine transformers.

Fitted on training snapshots only (the training stage calls `fit` on them and nothing
else), then applied unchanged to any scoring snapshot. Steps, each one job:
dtypes made model-ready → missing indicators → median / 'Missing' imputation → rare
labels grouped → IQR winsorizing → log(1 + x) for skewed non-negative amounts →
one-hot encoding → constant and duplicated columns dropped.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import pandas as pd
from feature_engine.encoding import OneHotEncoder, RareLabelEncoder
from feature_engine.imputation import AddMissingIndicator, CategoricalImputer, MeanMedianImputer
from feature_engine.outliers import Winsorizer
from feature_engine.selection import DropConstantFeatures, DropDuplicateFeatures
from feature_engine.transformation import LogCpTransformer
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import Pipeline


def as_float(values: pd.Series) -> pd.Series:
    """A column as float64 with NaN for missing: a direct cast for numeric and boolean
    dtypes (nullable and Arrow ones included), element-wise parsing only for the rest
    (text that is not a number becomes NaN)."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        try:
            return values.astype("float64")
        except (TypeError, ValueError):
            pass
    return pd.to_numeric(values.astype(object).where(values.notna(), np.nan), errors="coerce").astype("float64")


class ModelDtypes(TransformerMixin, BaseEstimator):
    """Cast chosen columns to the dtypes feature-engine expects: float64 numbers, plain str categories.

    Arrow-backed and nullable dtypes (what the store and Ibis return) are refused or
    mishandled by several feature-engine transformers; this step makes them uniform.

    Parameters
    ----------
    numeric : sequence of str
        Columns cast to float64 (booleans become 0/1).
    categorical : sequence of str
        Columns cast to str, missing values kept as NaN.
    """

    def __init__(self, numeric: Sequence[str] = (), categorical: Sequence[str] = ()):
        self.numeric = numeric
        self.categorical = categorical

    def fit(self, X: pd.DataFrame, y=None):
        missing = [c for c in [*self.numeric, *self.categorical] if c not in X.columns]
        if missing:
            raise KeyError(f"columns not in the feature table: {', '.join(missing)}")
        self.feature_names_in_ = np.array([*self.numeric, *self.categorical], dtype=object)
        self.n_features_in_ = len(self.feature_names_in_)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "feature_names_in_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("ModelDtypes is not fitted yet: call fit first")
        out = {column: as_float(X[column]) for column in self.numeric}
        for column in self.categorical:
            values = X[column].astype("object")
            out[column] = values.where(values.notna(), np.nan).astype("str").where(values.notna(), np.nan)
        return pd.DataFrame(out, index=X.index, columns=[*self.numeric, *self.categorical])

    def get_feature_names_out(self, input_features=None):
        return np.array([*self.numeric, *self.categorical], dtype=object)


class IqrWinsorizer(TransformerMixin, BaseEstimator):
    """feature-engine's IQR `Winsorizer` over the columns that vary.

    The Winsorizer refuses a column whose interquartile range is 0 (a count that is
    mostly zero, a missing-value flag); such columns are left as they are instead.

    Parameters
    ----------
    variables : sequence of str
        Candidate columns.
    fold : float
        Caps at Q1 - fold × IQR and Q3 + fold × IQR.

    Attributes
    ----------
    capped_variables_ : list of str
        The columns that get capped.
    winsorizer_ : feature_engine.outliers.Winsorizer or None
    """

    def __init__(self, variables: Sequence[str] = (), fold: float = 3.0):
        self.variables = variables
        self.fold = fold

    def fit(self, X: pd.DataFrame, y=None):
        spread = X[list(self.variables)].quantile(0.75) - X[list(self.variables)].quantile(0.25)
        self.capped_variables_ = [c for c in self.variables if spread[c] > 0]
        capped: list[str | int] = list(self.capped_variables_)
        self.winsorizer_ = (Winsorizer(capping_method="iqr", tail="both", fold=self.fold, variables=capped).fit(X)
                            if self.capped_variables_ else None)
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        if not hasattr(self, "capped_variables_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError("IqrWinsorizer is not fitted yet: call fit first")
        return self.winsorizer_.transform(X) if self.winsorizer_ is not None else X

    def get_feature_names_out(self, input_features=None):
        return self.feature_names_in_


class FewLevelsRareLabelEncoder(RareLabelEncoder):
    """feature-engine's RareLabelEncoder without its warning about variables that have no
    more levels than ``n_categories`` (``preferred_channel``: web or store). It keeps every
    level of such a variable as frequent, which is what we want, and says so on every fit."""

    def fit(self, X: pd.DataFrame, y: pd.Series | None = None):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=UserWarning, module=r"feature_engine\.encoding\.rare_label",
                                    message=r"The number of unique categories for variable .* is less than that "
                                            r"indicated in n_categories")
            return super().fit(X, y)


def booster_names(n_columns: int) -> list[str]:
    """Column names for a gradient-boosting library: ``f0``, ``f1``, … by position.

    One-hot columns are named after their category (``top_category_Oil, olive``), and a
    category may hold any text; LightGBM refuses names with JSON characters (``, : " [ ]
    { }``). Position is the mapping: the readable name of ``f3`` is the pipeline's fourth
    output column. Stripping characters instead would merge two categories that differ
    only by one of them."""
    return [f"f{i}" for i in range(n_columns)]


def booster_frame(x: pd.DataFrame) -> pd.DataFrame:
    """``x`` (a preprocessed frame) with `booster_names` for columns: what a booster is fitted on."""
    return x.set_axis(booster_names(x.shape[1]), axis=1)


def preprocessing_pipeline(numeric: Sequence[str], categorical: Sequence[str] = (),
                           log_variables: Sequence[str] = (), rare_tolerance: float = 0.02) -> Pipeline:
    """A fresh, unfitted preprocessing Pipeline for the given model inputs.

    ``log_variables`` (a subset of ``numeric``: money and counts, skewed and >= 0) get
    log(1 + x) after winsorizing.
    """
    # feature-engine types column names as ``list[str | int]``.
    numeric_names: list[str | int] = list(numeric)
    categorical_names: list[str | int] = list(categorical)
    log_names: list[str | int] = list(log_variables)
    unknown = {str(v) for v in log_names} - set(numeric)
    if unknown:
        raise ValueError(f"log_variables not among the numeric inputs: {', '.join(sorted(unknown))}")
    steps: list[tuple[str, object]] = [
        ("dtypes", ModelDtypes(numeric=list(numeric), categorical=list(categorical))),
        ("missing_indicators", AddMissingIndicator(variables=numeric_names, missing_only=True)),
        ("impute_numeric", MeanMedianImputer(imputation_method="median", variables=numeric_names)),
    ]
    if categorical_names:
        steps += [
            ("impute_categorical", CategoricalImputer(imputation_method="missing", variables=categorical_names)),
            ("rare_labels", FewLevelsRareLabelEncoder(tol=rare_tolerance, n_categories=2, variables=categorical_names)),
        ]
    steps.append(("winsorize", IqrWinsorizer(variables=list(numeric), fold=3.0)))
    if log_names:
        steps.append(("log", LogCpTransformer(variables=log_names, C=1)))
    if categorical_names:
        steps.append(("one_hot", OneHotEncoder(variables=categorical_names, drop_last=False)))
    steps += [
        ("drop_constant", DropConstantFeatures(tol=1.0, missing_values="ignore")),
        ("drop_duplicated", DropDuplicateFeatures()),
    ]
    return Pipeline(steps).set_output(transform="pandas")
