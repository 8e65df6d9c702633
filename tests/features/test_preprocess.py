"""The preprocessing pipeline: learns on training rows only, then treats new rows the same way."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

from features.preprocess import ModelDtypes, as_float, preprocessing_pipeline

TRAIN = pd.DataFrame({
    "recency_days": pd.array([1, 10, None, 30, 400], dtype="Int64"),
    "revenue_total": pd.array([10.0, 20.0, 30.0, 40.0, 10_000.0], dtype="float64[pyarrow]"),
    "constant": [1.0] * 5,
    "country": pd.array(["PS", "PS", "PS", "JO", None], dtype="string[pyarrow]"),
})


def fitted():
    pipe = preprocessing_pipeline(["recency_days", "revenue_total", "constant"], ["country"],
                                  log_variables=["revenue_total"], rare_tolerance=0.3)
    return pipe, pipe.fit_transform(TRAIN)


def test_missing_values_are_flagged_and_filled_with_the_training_median():
    _, out = fitted()
    assert out["recency_days_na"].tolist() == [0, 0, 1, 0, 0]
    # median of 1, 10, 30, 400 is 20; winsorizing (IQR, fold 3) leaves it.
    assert out.loc[2, "recency_days"] == 20.0


def test_money_is_winsorized_then_logged():
    _, out = fitted()
    # quartiles of 10, 20, 30, 40, 10000: 20 and 40 → caps at 40 + 3 * 20 = 100.
    assert math.isclose(out.loc[4, "revenue_total"], math.log(1 + 100))
    assert math.isclose(out.loc[0, "revenue_total"], math.log(1 + 10))


def test_rare_and_missing_categories_are_grouped_and_one_hot_encoded():
    _, out = fitted()
    # PS holds 3/5 of the rows; JO (1/5) and Missing (1/5) fall under the 0.3 tolerance: 'Rare'.
    assert out["country_PS"].tolist() == [1, 1, 1, 0, 0]
    assert out["country_Rare"].tolist() == [0, 0, 0, 1, 1]


def test_constant_columns_are_dropped():
    _, out = fitted()
    assert "constant" not in out.columns


def test_new_rows_get_the_training_statistics_not_their_own():
    pipe, _ = fitted()
    new = pd.DataFrame({"recency_days": pd.array([None], dtype="Int64"),
                        "revenue_total": [5_000_000.0], "constant": [1.0],
                        "country": pd.array(["US"], dtype="string")})
    out = pipe.transform(new)
    assert out.loc[0, "recency_days"] == 20.0                     # the training median
    assert math.isclose(out.loc[0, "revenue_total"], math.log(1 + 100))  # the training cap
    assert out.loc[0, "country_Rare"] == 1                         # an unseen country is rare


def test_unfitted_steps_refuse_to_transform():
    with pytest.raises(NotFittedError):
        ModelDtypes(numeric=["recency_days"]).transform(TRAIN)


def test_log_variables_must_be_numeric_inputs():
    with pytest.raises(ValueError, match="country"):
        preprocessing_pipeline(["recency_days"], ["country"], log_variables=["country"])


def test_the_fitted_pipeline_survives_clone_and_pickle_with_identical_output():
    # The training stage clones the factory's pipeline per model and MLflow pickles it.
    import pickle

    from sklearn.base import clone

    pipe, out = fitted()
    refitted = clone(pipe).fit(TRAIN)
    pd.testing.assert_frame_equal(refitted.transform(TRAIN), out)
    restored = pickle.loads(pickle.dumps(pipe))
    pd.testing.assert_frame_equal(restored.transform(TRAIN), out)


def test_custom_steps_follow_the_estimator_contract():
    # Parameters are stored untouched in __init__ (get_params/set_params round trip);
    # everything learned ends in "_" and appears only after fit.
    from features.preprocess import IqrWinsorizer

    for step in (ModelDtypes(numeric=["a"], categorical=["b"]), IqrWinsorizer(variables=["a"], fold=1.5)):
        params = step.get_params()
        assert type(step)(**params).get_params() == params
        assert not [k for k in vars(step) if k.endswith("_")]
    winsorizer = IqrWinsorizer(variables=["a", "flat"], fold=1.5).fit(
        pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0, 100.0], "flat": [0.0] * 5}))
    # Q1 = 2, Q3 = 4, IQR = 2: values above 4 + 1.5 × 2 = 7 are capped there; a column with
    # no spread is left alone instead of failing.
    assert winsorizer.capped_variables_ == ["a"]
    capped = winsorizer.transform(pd.DataFrame({"a": [100.0, -50.0], "flat": [9.0, 9.0]}))
    assert capped["a"].tolist() == [7.0, -1.0] and capped["flat"].tolist() == [9.0, 9.0]


@pytest.mark.parametrize("values, expected", [
    (pd.Series([3, None], dtype="Int64"), [3.0, None]),
    (pd.Series([True, None], dtype="boolean"), [1.0, None]),
    (pd.Series([True, None], dtype="bool[pyarrow]"), [1.0, None]),
    (pd.Series([1.5, None], dtype="double[pyarrow]"), [1.5, None]),
    (pd.Series([2, 7], dtype="int64"), [2.0, 7.0]),
    (pd.Series(["4.5", "n/a", None], dtype=object), [4.5, None, None]),
])
def test_as_float_casts_every_dtype_the_store_returns_with_nan_for_missing(values, expected):
    got = as_float(values)
    assert got.dtype == "float64"
    assert [None if np.isnan(v) else v for v in got] == expected
